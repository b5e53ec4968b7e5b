"""``EmspSandbox``: the reference eMSP that the CPO's end-to-end tests talk to over OCPI.

It runs the parts and hands each the one :class:`~simulator.emsp.state.SandboxState`:
the OCPI app (:mod:`~simulator.emsp.app`) on one listener, the control API
(:mod:`~simulator.emsp.control`) on another, the registration
(:mod:`~simulator.emsp.registration`) and the calls to the peer
(:class:`~simulator.emsp.peer_calls.PeerCalls`), all through one logging
:class:`~simulator.emsp.client.OcpiClient`. Tests read the state's tables through it
(``emsp.requests``, ``emsp.sessions``, ``emsp.cdr_posts``...) because a test reads best
when it looks straight at what crossed the wire.

Usage::

    async with EmspSandbox.start(country_code="NL", party_id="EMS") as emsp:
        emsp.generate_tokens(10, seed=7)
        await emsp.register_with(cpo_versions_url, token_a)
        await emsp.push_tokens()
        emsp.set_authorize_behaviour("hang")
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Generic, TypeVar

import structlog
from aiohttp import web

from simulator.emsp import own_tokens, registration
from simulator.emsp.app import build_app
from simulator.emsp.behaviour import DownMode
from simulator.emsp.client import OcpiClient, OcpiReply
from simulator.emsp.control import build_control_app
from simulator.emsp.peer_calls import PeerCalls
from simulator.emsp.state import (
    AuthorizeRecord,
    CommandSent,
    Party,
    Peer,
    SandboxState,
)
from simulator.emsp.wire import VERSION

log = structlog.get_logger("simulator.emsp")
T = TypeVar("T")


class _StateView(Generic[T]):
    """A read-only attribute of the sandbox that shows one part of its state.

    Why: tests read ``emsp.sessions`` and the like; the state is the one owner, and a
    part the state replaces (the peer, after a handshake) must show the new one.
    """

    def __init__(self, read: Callable[[SandboxState], T]) -> None:
        self._read = read

    def __get__(self, sandbox: EmspSandbox, owner: type | None = None) -> T:
        return self._read(sandbox.state)


class EmspSandbox:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        country_code: str = "NL",
        party_id: str = "EMS",
        business_name: str = "eMSP Sandbox",
        control_port: int | None = 0,
        page_limit: int = 1000,
        strict: bool = True,
        seed: int | None = None,
        http_timeout_s: float = 10.0,
        max_recorded: int = 20_000,
        printer: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.control_port = control_port
        self.state = SandboxState(
            party=Party(country_code, party_id, business_name, _url(host, port)),
            page_limit=page_limit,
            strict=strict,
            max_recorded=max_recorded,
            printer=printer,
            rng=random.Random(seed),
        )
        self.client = OcpiClient(self.state.sent, timeout_s=http_timeout_s)
        self.calls = calls = PeerCalls(self.state, self.client)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._control_runner: web.AppRunner | None = None
        # The verbs tests use, each served by the part that owns it.
        state = self.state
        self.add_token = partial(own_tokens.add_token, state)
        self.add_tokens = partial(own_tokens.add_tokens, state)
        self.load_tokens = partial(own_tokens.load_tokens, state)
        self.generate_tokens = partial(own_tokens.generate_tokens, state)
        self.serve_generated_tokens = partial(own_tokens.serve_generated_tokens, state)
        self.set_allowed = partial(own_tokens.set_allowed, state)
        self.set_authorize_behaviour = state.set_authorize_behaviour
        self.release_hung = state.behaviour.release
        self.fail_tokens_page = state.behaviour.fail_page
        self.issue_token_a = state.issue_token_a
        self.requests_to = state.requests_to
        self.evse_status = state.evse_status
        self.references_for = state.references_for
        self.summary = state.summary
        self.wait_until = state.wait_until
        self.call_peer = calls.call_peer
        self.push_token = calls.push_token
        self.push_tokens = calls.push_tokens
        self.patch_token = calls.patch_token
        self.block_token = calls.block_token
        self.get_token_at_cpo = calls.get_token_at_cpo
        self.send_command = calls.send_command
        self.start_session = calls.start_session
        self.stop_session = calls.stop_session
        self.reserve_now = calls.reserve_now
        self.cancel_reservation = calls.cancel_reservation
        self.unlock_connector = calls.unlock_connector

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    @asynccontextmanager
    async def start(cls, **kwargs: Any) -> AsyncIterator[EmspSandbox]:
        sb = cls(**kwargs)
        await sb.open()
        try:
            yield sb
        finally:
            await sb.close()

    async def open(self) -> None:
        app = build_app(self.state, self.client)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()
        if self.control_port is not None:
            control = build_control_app(self.state, self.calls, self)
            self._control_runner = web.AppRunner(control, access_log=None, shutdown_timeout=1.0)
            await self._control_runner.setup()
            site = web.TCPSite(self._control_runner, self.host, self.control_port)
            await site.start()
            self.control_port = _bound_port(self._control_runner)
        log.info(
            "emsp_started", base_url=self.base_url, party=f"{self.country_code}-{self.party_id}"
        )

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = _bound_port(self._runner)
        self.state.party.base_url = _url(self.host, self.port)
        self._site = site

    async def close(self) -> None:
        self.state.behaviour.release()
        await self.client.close()
        if self._control_runner is not None:
            await self._control_runner.cleanup()
            self._control_runner = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def set_down(self, mode: DownMode | str) -> None:
        """``503``: answer 503; ``refuse``: close the listener; ``up``: serve again."""
        new = DownMode(mode)
        old = self.state.behaviour.down
        self.state.behaviour.down = new
        if new == DownMode.REFUSE and old != DownMode.REFUSE and self._site is not None:
            await self._site.stop()
            self._site = None
        elif new != DownMode.REFUSE and self._site is None and self._runner is not None:
            await self._listen()
        self.state.say(f"down mode={new}")

    @property
    def base_url(self) -> str:
        return self.state.party.base_url

    @property
    def versions_url(self) -> str:
        return self.state.party.versions_url

    @property
    def control_url(self) -> str | None:
        return None if self.control_port is None else _url(self.host, self.control_port)

    def endpoints(self) -> list[dict[str, str]]:
        return self.state.party.endpoints()

    def own_credentials(self, token: str) -> dict[str, Any]:
        return self.state.party.own_credentials(token)

    # ------------------------------------------------------------------ the state's tables

    country_code = _StateView(lambda s: s.party.country_code)
    party_id = _StateView(lambda s: s.party.party_id)
    business_name = _StateView(lambda s: s.party.business_name)
    page_limit = _StateView(lambda s: s.page_limit)
    behaviour = _StateView(lambda s: s.behaviour)
    peer = _StateView(lambda s: s.peer)
    token_as = _StateView(lambda s: s.token_as)
    pending_tokens = _StateView(lambda s: s.pending_tokens)
    requests = _StateView(lambda s: s.requests)
    sent = _StateView(lambda s: s.sent)
    violations = _StateView(lambda s: s.violations)
    events = _StateView(lambda s: s.events)
    tokens = _StateView(lambda s: s.tokens)
    authorizations = _StateView(lambda s: s.authorizations)
    authorize_counts = _StateView(lambda s: s.authorize_counts)
    sessions = _StateView(lambda s: s.sessions)
    session_events = _StateView(lambda s: s.session_events)
    cdrs = _StateView(lambda s: s.cdrs)
    cdr_posts = _StateView(lambda s: s.cdr_posts)
    cdr_duplicates = _StateView(lambda s: s.cdr_duplicates)
    cdr_post_counts = _StateView(lambda s: s.cdr_post_counts)
    locations = _StateView(lambda s: s.locations)
    location_events = _StateView(lambda s: s.location_events)
    tariffs = _StateView(lambda s: s.tariffs)
    tariff_events = _StateView(lambda s: s.tariff_events)
    command_results = _StateView(lambda s: s.command_results)
    commands_sent = _StateView(lambda s: s.commands_sent)

    async def wait_command_result(self, ref: str, timeout: float = 5.0) -> dict[str, Any]:
        await self.state.wait_until(lambda: ref in self.state.command_results, timeout)
        return self.state.command_results[ref]

    # ------------------------------------------------------------------ registration

    async def register_with(self, versions_url: str, token_a: str) -> Peer:
        return await registration.register_with(self.state, self.client, versions_url, token_a)

    async def update_credentials(self) -> Peer:
        return await registration.update_credentials(self.state, self.client)

    async def unregister(self) -> OcpiReply:
        return await registration.unregister(self.state, self.client)


def _url(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def _bound_port(runner: web.AppRunner) -> int:
    """The port the runner's one site listens on (an ephemeral one when asked for 0)."""
    return int(runner.addresses[0][1])


__all__ = ["VERSION", "AuthorizeRecord", "CommandSent", "EmspSandbox"]
