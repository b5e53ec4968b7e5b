"""The OCPP 1.6J WebSocket server: ``ws[s]://HOST:PORT{path_prefix}/{charge_point_id}``.

Everything that can be refused is refused at the HTTP handshake with a status and a
plain-text reason, before any OCPP traffic: a bad path (404), an invalid id (400), a
client not offering subprotocol ``ocpp1.6`` (400), an unknown id under policy
``reject`` (404), missing or wrong HTTP Basic credentials for a charger that has a
password (401 + ``WWW-Authenticate: Basic``), a connection that does not fit the
charger's security profile (403: a client certificate naming another charger, profile 3
without a client certificate, profile 2 or 3 without TLS), and, once too many attempts
for that id or from that address have failed, any password that would need checking
(429 + ``Retry-After``, no scrypt run: see :mod:`csms.ocpp16.throttle`). A second
connection for the same id replaces the first, which is closed; there are never two
live sessions for one id.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import time
import weakref
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms import logs
from csms.authz.ports import Authorizer
from csms.cluster.presence import Presence
from csms.config import Config
from csms.datetimes import now_millis
from csms.domain.chargers import HandshakeFacts
from csms.ocpp16.connection import ChargerConnection, ConnectionInfo, Faults
from csms.ocpp16.datatransfer import VendorHandler, VendorRegistry
from csms.ocpp16.events import ChargerEvents, NoEvents
from csms.ocpp16.gateway import ChargerGateway
from csms.ocpp16.handlers import Handlers
from csms.ocpp16.observer import NO_OBSERVER, MessageObserver
from csms.ocpp16.security import SecurityHandlers, signing_ca_from
from csms.ocpp16.security_tls import presented_by, profile_refusal, tls_context
from csms.ocpp16.throttle import AuthThrottle, ThrottleLimits
from csms.ocpp16.wire import DirectTextConnection
from csms.store.charger_writes import AuthFactsReader, ChargerWrites
from csms.store.chargers import ChargerRepo, charger_id_problem
from csms.store.db import Database
from csms.store.passwords import PasswordChecker
from csms.store.status_writes import StatusWrites

SUBPROTOCOL = "ocpp1.6"
log = structlog.get_logger("csms.ocpp")
# One each per connection: cheap during connection storms (see csms.logs.HotEvent).
_connected = logs.HotEvent("csms.ocpp", "ocpp.connected")
_disconnected = logs.HotEvent("csms.ocpp", "ocpp.disconnected")


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [
        p.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for p in value.split(",")
        if p.strip()
    ]


def _basic_credentials(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization")
    if not value:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


@dataclass
class OcppServer:
    """A running server; ``port`` is the bound port (config may say 0)."""

    port: int
    gateway: ChargerGateway
    vendors: VendorRegistry
    _server: Server
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _writes: ChargerWrites | None = None
    faults: Faults = field(default_factory=Faults)
    passwords: PasswordChecker = field(default_factory=PasswordChecker)
    throttle: AuthThrottle | None = None
    _statuses: StatusWrites | None = None

    @property
    def internal_errors(self) -> int:
        """CALLs answered InternalError since start: each is a bug of ours (see
        :class:`csms.ocpp16.connection.Faults`), never a charger's bad input."""
        return self.faults.internal_errors

    @property
    def serving(self) -> bool:
        """Whether the listener accepts connections (readiness)."""
        return self._server.is_serving()

    def register_vendor(
        self, vendor_id: str, handler: VendorHandler, message_id: str | None = None
    ) -> None:
        self.vendors.register_vendor(vendor_id, handler, message_id)

    async def close(self) -> None:
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        if self._writes is not None:
            await self._writes.close()
        if self._statuses is not None:
            await self._statuses.close()
        self.passwords.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


class _Endpoint:
    """The handshake checks and the per-connection handler, sharing config and store."""

    def __init__(
        self,
        config: Config,
        db: Database,
        handlers: Handlers,
        gateway: ChargerGateway,
        passwords: PasswordChecker,
        observer: MessageObserver = NO_OBSERVER,
        presence: Presence | None = None,
    ):
        self.config = config
        self.presence = presence
        self.passwords = passwords
        self.observer = observer
        sec = config.security
        self.throttle = AuthThrottle(
            ThrottleLimits(
                sec.auth_failures_per_charger,
                sec.auth_failures_per_address,
                sec.auth_failure_window_s,
                sec.auth_throttle_entries,
            ),
            time.monotonic,
        )
        self.chargers = ChargerRepo(db)
        self.auth_facts = AuthFactsReader(db)
        self.handlers = handlers
        self.gateway = gateway
        self.prefix = config.server.path_prefix.rstrip("/") + "/"
        self.background: set[asyncio.Task[None]] = set()
        self.faults = Faults()
        # Charger id and registration status from the handshake, until its handler takes
        # them. Why not attributes on the connection: two more attributes than the
        # library's own made every connection's instance dict a full dict of its own,
        # 1.6 KB per connection (tracemalloc, 2,000 connections).
        self._accepted: weakref.WeakKeyDictionary[ServerConnection, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )

    def _refuse(
        self, ws: ServerConnection, status: HTTPStatus, text: str, charger_id: str | None = None
    ) -> Response:
        log.info(
            "ocpp.handshake_refused", status=int(status), reason=text, charge_point_id=charger_id
        )
        return ws.respond(status, text + "\n")

    async def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if not path.startswith(self.prefix):
            return self._refuse(
                ws,
                HTTPStatus.NOT_FOUND,
                f"unknown path; connect to {self.prefix}{{charge_point_id}}",
            )
        charger_id = unquote(path[len(self.prefix) :])
        if "/" in charger_id:
            return self._refuse(
                ws,
                HTTPStatus.NOT_FOUND,
                f"unknown path; connect to {self.prefix}{{charge_point_id}}",
            )
        problem = charger_id_problem(charger_id, self.config.server.charge_point_id_max_length)
        if problem:
            return self._refuse(ws, HTTPStatus.BAD_REQUEST, problem)
        if SUBPROTOCOL not in _offered_subprotocols(request.headers):
            return self._refuse(
                ws,
                HTTPStatus.BAD_REQUEST,
                f"the client must offer WebSocket subprotocol {SUBPROTOCOL} "
                "(Sec-WebSocket-Protocol header); this server speaks only OCPP 1.6J",
                charger_id,
            )
        facts = await self.auth_facts.get(charger_id)
        if facts is None:
            policy = self.config.server.unknown_chargers
            if policy == "reject":
                return self._refuse(ws, HTTPStatus.NOT_FOUND, "unknown charge point id", charger_id)
            status = "Accepted" if policy == "accept" else "Pending"
            await self.chargers.auto_register(charger_id, status)
            log.info("ocpp.auto_registered", charge_point_id=charger_id, status=status)
            facts = HandshakeFacts(status, None)
        refusal = self._certificate_refusal(ws, charger_id, facts.security_profile)
        if refusal is not None:
            return refusal
        registration, pw_hash = facts.registration_status, facts.password_hash
        if pw_hash is not None and facts.security_profile != 3:
            refused = await self._authenticate(ws, request, charger_id, pw_hash)
            if refused is not None:
                return refused
        self._accepted[ws] = (charger_id, registration)
        return None

    async def _authenticate(
        self, ws: ServerConnection, request: Request, charger_id: str, pw_hash: str
    ) -> Response | None:
        """None when the Basic credentials are right; else the refusal. A password the
        verified-cache decides costs no scrypt and is answered whatever the throttle
        says (a charger that authenticated before is never locked out by someone else's
        guessing); any other is checked only while neither this id nor this address is
        over its failure limit, else answered 429."""
        creds = _basic_credentials(request.headers)
        remote = ws.remote_address
        address = str(remote[0]) if remote else ""
        ok: bool | None = False
        counted = False
        if creds is not None and creds[0] == charger_id:
            ok = self.passwords.known(charger_id, creds[1], pw_hash)
            if ok is None:
                wait = self.throttle.retry_after(charger_id, address)
                if wait is not None:
                    response = self._refuse(
                        ws,
                        HTTPStatus.TOO_MANY_REQUESTS,
                        "too many failed authentication attempts; retry later",
                        charger_id,
                    )
                    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                    return response
                self.throttle.failed(charger_id, address)  # counted ahead: see retract()
                counted = True
                ok = await self.passwords.check(charger_id, creds[1], pw_hash)
                if ok:
                    self.throttle.retract(address)
        if ok:
            self.throttle.succeeded(charger_id)
            return None
        if not counted:
            self.throttle.failed(charger_id, address)
        response = self._refuse(
            ws,
            HTTPStatus.UNAUTHORIZED,
            "HTTP Basic credentials missing or wrong (user = charge point id)",
            charger_id,
        )
        response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
        return response

    def _certificate_refusal(
        self, ws: ServerConnection, charger_id: str, profile: int | None
    ) -> Response | None:
        """403 unless the connection fits the charger's security profile (see
        :mod:`csms.ocpp16.security_tls`): a presented client certificate names this
        charger, profile 3 presented one, profiles 2 and 3 came over TLS."""
        reason = profile_refusal(charger_id, profile, presented_by(ws.transport))
        if reason is None:
            return None
        return self._refuse(ws, HTTPStatus.FORBIDDEN, reason, charger_id)

    async def handler(self, ws: ServerConnection) -> None:
        charger_id, registration = self._accepted.pop(ws)
        # The handshake's answer is not read again (the request stays: the library tells
        # the handshake from later events by it); ~0.4 KB of headers per connection.
        ws.response = None
        structlog.contextvars.bind_contextvars(charge_point_id=charger_id)
        remote = ws.remote_address
        connected_at = now_millis()
        info = ConnectionInfo(
            charger_id,
            connected_at,
            f"{remote[0]}:{remote[1]}" if remote else "",
            ws.subprotocol,
        )
        conn = ChargerConnection(
            charger_id,
            ws,
            self.handlers,
            info,
            registration,
            self.faults,
            self.config.server.max_calls_in_flight,
            self.observer,
        )
        if isinstance(ws, DirectTextConnection):
            ws.turn_budget = self.config.server.read_budget_bytes
        old = self.gateway.attach(conn)
        if old is not None:
            log.info(
                "ocpp.replaced", old_remote=old.info.remote_address, new_remote=info.remote_address
            )
            task = asyncio.create_task(old.close("replaced by a newer connection of the same id"))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        _connected(remote=info.remote_address)
        try:
            await self.handlers.writes.connected(charger_id, connected_at)
            await self._present(conn)
            await conn.serve()
        finally:
            self.gateway.detach(conn)
            await self._absent(conn)
            _disconnected(
                code=ws.close_code,
                reason=ws.close_reason,
                replaced=conn.replaced,
            )
            if not conn.replaced:
                try:
                    await self.chargers.mark_disconnected(charger_id, now_millis())
                except Exception:
                    log.exception("ocpp.mark_disconnected_failed")

    async def _present(self, conn: ChargerConnection) -> None:
        """Tell the other nodes this one holds the socket now (they close older ones).

        A store error costs the charger nothing here: the node announces its chargers
        again when it renews its lease after an outage.
        """
        if self.presence is None:
            return
        info = conn.info
        try:
            await self.presence.connected(conn.charger_id, info.connected_at, info.remote_address)
        except Exception:
            log.exception("cluster.presence_write_failed")

    async def _absent(self, conn: ChargerConnection) -> None:
        if self.presence is None:
            return
        try:
            await self.presence.disconnected(conn.charger_id, conn.info.connected_at)
        except Exception:
            log.exception("cluster.presence_write_failed")


async def start_ocpp_server(
    config: Config,
    db: Database,
    authorizer: Authorizer,
    events: ChargerEvents | None = None,
    vendors: VendorRegistry | None = None,
    gateway: ChargerGateway | None = None,
    passwords: PasswordChecker | None = None,
    observer: MessageObserver = NO_OBSERVER,
    presence: Presence | None = None,
) -> OcppServer:
    """Bind and serve; returns once listening. ``config.server.port`` may be 0.

    ``gateway`` is passed in when other parts (admin API, OCPI commands) are built
    before the server listens and must hold the same gateway. ``passwords`` checks
    HTTP Basic passwords (tests pass one with a counting verifier). ``presence`` is told
    which chargers this node holds (several nodes on PostgreSQL).
    """
    passwords = passwords or PasswordChecker()
    vendors = vendors or VendorRegistry()
    gateway = gateway or ChargerGateway(config.server.call_timeout_s)
    handlers = Handlers(config, db, authorizer, events or NoEvents(), vendors)
    endpoint = _Endpoint(config, db, handlers, gateway, passwords, observer, presence)
    SecurityHandlers(db, gateway, signing_ca_from(config), endpoint.background).install(handlers)
    s = config.server
    server = await serve(
        endpoint.handler,
        s.host,
        s.port,
        process_request=endpoint.process_request,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        max_size=s.max_message_bytes,
        ping_interval=s.ping_interval_s or None,
        compression=None,
        ssl=tls_context(config),
        backlog=s.listen_backlog,
        create_connection=DirectTextConnection,
    )
    port = next(iter(server.sockets)).getsockname()[1]
    log.info("ocpp.listening", host=s.host, port=port, tls=bool(s.tls_cert), path=s.path_prefix)
    return OcppServer(
        port,
        gateway,
        vendors,
        server,
        endpoint.background,
        handlers.writes,
        endpoint.faults,
        passwords,
        endpoint.throttle,
        handlers.statuses,
    )
