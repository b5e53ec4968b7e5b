"""A simulated OCPP 1.6J charge point, usable from tests, scenarios and the ``csms-sim`` CLI.

Why a facade over parts: the charger is a socket (:mod:`simulator.session`), its own
initiative (:mod:`simulator.driver`, :mod:`simulator.transactions`,
:mod:`simulator.status`), its answers to the CSMS (:mod:`simulator.remote`) and the facts
they share (:mod:`simulator.state`). Each part reads in one sitting; this class only
builds them and offers their public methods under one name, which tests, scenarios and
the demo use.

Errors (all subclasses of :class:`SimulatorError`, from :mod:`simulator.errors`):
    ConnectFailed(url, status, reason)  the handshake failed; ``status`` is the HTTP code
    NotConnected(action)                no open socket (call sent while offline / closed)
    CallFailed(action, code, description, details)   the CSMS answered with a CallError
    CallTimeout(action, timeout)        no answer in time
    IllegalTransition (from simulator.connector)      a status change 1.6 does not allow

Example::

    async with SimulatedChargePoint.connect("ws://127.0.0.1:9000/ocpp", "CP1") as cp:
        await cp.boot()
        await cp.authorize("TAG1")
        tx = await cp.start_transaction(1, "TAG1", meter_start=1000)
        await cp.send_meter_values(1)
        await cp.stop_transaction(1, reason="Local")

Several CSMS nodes: pass a list of base URLs (or one comma-separated string) and
``failover=FailoverPolicy()``; a socket the CSMS side loses then makes the charger boot
again on the next URL and replay the transaction messages that were queued, or sent
and not answered, when the link died (``links`` records each socket's timings).
``keep_unanswered=True`` keeps unanswered messages for :meth:`failover` or
:meth:`reconnect` without failing over by itself::

    cp = SimulatedChargePoint(["ws://a:9000/ocpp", "ws://b:9000/ocpp"], "CP1",
                              failover=FailoverPolicy(initial_s=0.2, max_s=5))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from simulator.certificates import CertificateStore
from simulator.connector import Connector
from simulator.cpconfig import DEFAULT_PROFILES, ConfigTable
from simulator.driver import Driver
from simulator.errors import (
    CallFailed,
    CallTimeout,
    ConnectFailed,
    NotConnected,
    SimulatorError,
)
from simulator.failover import FailoverPolicy, Link, split_urls
from simulator.remote import handlers
from simulator.remote.security import SecurityCalls
from simulator.session import Session, Step
from simulator.state import ChargerState, Identity, QueuedMessage, Tx
from simulator.status import StatusReporter
from simulator.transactions import TransactionFlow
from simulator.wire import SUBPROTOCOL, basic_auth, charger_url, iso, now_iso, shifted, utc_now

__all__ = [
    "SUBPROTOCOL",
    "CallFailed",
    "CallTimeout",
    "ConnectFailed",
    "FailoverPolicy",
    "Link",
    "NotConnected",
    "SimulatedChargePoint",
    "SimulatorError",
    "Step",
    "Tx",
    "basic_auth",
    "charger_url",
    "iso",
    "shifted",
    "utc_now",
]


class SimulatedChargePoint:
    """One charge point: a websocket, connectors, a config table, and answers to every CSMS call.

    Public state tests may read: ``connectors`` (id -> Connector, 0 is the whole charger),
    ``transactions`` (connector id -> active Tx), ``config`` (ConfigTable), ``steps``,
    ``received_calls`` ((action, camelCase payload) in arrival order), ``local_list``,
    ``local_list_version``, ``reservations``, ``boot_count``, ``registration``,
    ``connected``, ``offline_queue``, ``certificates`` (client identity, installed roots),
    ``links`` (every socket opened and its timings).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        cp_id: str,
        *,
        password: str | None = None,
        connectors: int = 2,
        vendor: str = "csms-sim",
        model: str = "SimCharger",
        serial: str | None = None,
        firmware: str = "1.0.0",
        response_timeout: float = 10.0,
        open_timeout: float = 10.0,
        heartbeat: bool = True,
        meter_interval_s: int = 60,
        power_w: float = 11000.0,
        time_scale: float = 1.0,
        step_delay_s: float = 0.2,
        on_step: Callable[[Step], None] | None = None,
        on_call: Callable[[str, dict[str, Any]], None] | None = None,
        local_list_max_length: int = 1000,
        send_local_list_max_length: int = 100,
        feature_profiles: str = DEFAULT_PROFILES,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        csr_key: str = "ec",
        reconnect_on_new_certificate: bool = True,
        failover: FailoverPolicy | None = None,
        keep_unanswered: bool = False,
        seed: int | None = None,
    ) -> None:
        serial = (serial or f"SIM-{cp_id}")[:25]  # CiString25 in BootNotification
        identity = Identity(
            cp_id, vendor, model, serial, firmware, power_w, time_scale, step_delay_s
        )
        self.id = cp_id
        self.base_urls = split_urls(url)
        self.base_url = self.base_urls[0]
        self.state = ChargerState.fresh(
            identity,
            connectors,
            meter_interval_s,
            local_list_max_length=local_list_max_length,
            send_local_list_max_length=send_local_list_max_length,
            feature_profiles=feature_profiles,
        )
        # wss: trust ``ca_file`` (and installed roots), present ``client_cert``/``client_key``
        # (security profile 3); CSRs use ``csr_key`` ("ec" or "rsa:BITS").
        self.certificates = CertificateStore.from_files(
            cp_id, ca_file, client_cert, client_key, csr_key
        )
        self.session = Session(
            url,
            cp_id,
            self.state.config,
            password=password,
            response_timeout=response_timeout,
            open_timeout=open_timeout,
            heartbeat=heartbeat,
            on_step=on_step,
            on_call=on_call,
            ssl_context=self.certificates.ssl_context,
        )
        statuses = StatusReporter(self.state, self.session)
        flow = TransactionFlow(self.state, self.session, statuses)
        # A charger that fails over keeps what the lost link left unanswered for the next.
        keep = keep_unanswered or failover is not None
        flow.keep_unanswered = statuses.tolerate_loss = keep
        self.driver = Driver(self.state, self.session, statuses, flow)
        self.security = SecurityCalls(
            self.driver,
            self.certificates,
            reconnect_on_new_certificate=reconnect_on_new_certificate,
        )
        self.session.answer_with(*handlers(self.driver, self.security))
        if failover is not None:  # ``seed``: the same run waits the same jittered times
            self.driver.fail_over_on_loss(failover, seed)
        # The public surface, each method implemented by the part it belongs to.
        self.open = self.session.open
        self.wait_closed = self.session.wait_closed
        self.wait_until = self.session.wait_until
        self.wait_for_call = self.session.wait_for_call
        self.request = self.session.request
        self.send_raw = self.session.send_raw
        self.heartbeat = self.session.heartbeat
        self.close = self.driver.close
        self.disconnect = self.driver.disconnect
        self.reconnect = self.driver.reconnect
        self.failover = self.driver.failover
        self.boot = self.driver.boot
        self.authorize = self.driver.authorize
        self.data_transfer = self.driver.data_transfer
        self.follow_ups = self.driver.follow_ups
        self.status = statuses.status
        self.start_transaction = flow.start_transaction
        self.send_meter_values = flow.send_meter_values
        self.stop_transaction = flow.stop_transaction
        self.replay_queue = flow.replay_queue
        self.sign_certificate = self.security.sign_certificate
        self.security_event = self.security.security_event

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str, cp_id: str, **kwargs: Any
    ) -> AsyncIterator[SimulatedChargePoint]:
        """Open the socket, yield the charge point, and always close it (tasks included)."""
        cp = cls(url, cp_id, **kwargs)
        await cp.open()
        try:
            yield cp
        finally:
            await cp.close()

    def now(self) -> str:
        return now_iso()

    @property
    def url(self) -> str:
        return self.session.url

    @property
    def connected(self) -> bool:
        return self.session.connected

    @property
    def links(self) -> list[Link]:
        return self.session.links

    @property
    def steps(self) -> list[Step]:
        return self.session.steps

    @property
    def received_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return self.session.received_calls

    @property
    def errors(self) -> list[BaseException]:
        return self.session.errors

    @property
    def serial(self) -> str:
        return self.state.identity.serial

    @property
    def config(self) -> ConfigTable:
        return self.state.config

    @property
    def connectors(self) -> dict[int, Connector]:
        return self.state.connectors

    @property
    def transactions(self) -> dict[int, Tx]:
        return self.state.transactions

    @property
    def offline_queue(self) -> list[QueuedMessage]:
        return self.state.offline_queue

    @property
    def local_list(self) -> dict[str, dict[str, Any]]:
        return self.state.local_list

    @property
    def local_list_version(self) -> int:
        return self.state.local_list_version

    @property
    def auth_cache(self) -> dict[str, dict[str, Any]]:
        return self.state.auth_cache

    @property
    def reservations(self) -> dict[int, dict[str, Any]]:
        return self.state.reservations

    @property
    def data_transfers(self) -> list[dict[str, Any]]:
        return self.state.data_transfers

    @property
    def boot_count(self) -> int:
        return self.state.boot_count

    @property
    def registration(self) -> str | None:
        return self.state.registration

    @property
    def heartbeat_interval(self) -> int | None:
        return self.state.heartbeat_interval
