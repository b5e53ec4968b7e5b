"""``SandboxState``: everything the eMSP sandbox knows, in one plain object.

Why one explicit object handed to every part: the OCPI app, the control API, the
registration and the outgoing calls all read and write the same tables; giving each of
them the state as an argument (rather than the sandbox that runs them) shows what they
touch and lets each be read on its own. Tests look straight into these tables (through
:class:`~simulator.emsp.sandbox.EmspSandbox`), because they assert on what crossed the wire.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.emsp.behaviour import AuthorizeMode, Behaviour
from simulator.emsp.client import OcpiReply
from simulator.emsp.tables import CiMap, RecordedRequest, SentRequest, TokenTable
from simulator.emsp.tokens import TokenSpec
from simulator.emsp.wire import (
    CREDENTIALS_PATH_SUFFIX,
    MODULE_BASE,
    VERSIONS_PATH,
    header_token_candidates,
    new_credentials_token,
)


@dataclass
class Party:
    """Who the sandbox is on the wire and where its OCPI listener answers."""

    country_code: str = "NL"
    party_id: str = "EMS"
    business_name: str = "eMSP Sandbox"
    base_url: str = "http://127.0.0.1:0"  # the bound address once the listener is up

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}{VERSIONS_PATH}"

    def endpoints(self) -> list[dict[str, str]]:
        base = self.base_url + MODULE_BASE
        return [
            {"identifier": "credentials", "role": "SENDER", "url": self.base_url + CREDENTIALS_PATH_SUFFIX},
            {"identifier": "tokens", "role": "SENDER", "url": f"{base}/tokens"},
            {"identifier": "sessions", "role": "RECEIVER", "url": f"{base}/sessions"},
            {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base}/cdrs"},
            {"identifier": "locations", "role": "RECEIVER", "url": f"{base}/locations"},
            {"identifier": "tariffs", "role": "RECEIVER", "url": f"{base}/tariffs"},
            {"identifier": "commands", "role": "SENDER", "url": f"{base}/commands"},
        ]  # fmt: skip

    def own_credentials(self, token: str) -> dict[str, Any]:
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                    "business_details": {"name": self.business_name},
                }
            ],
        }


@dataclass
class Peer:
    """The one CPO the sandbox is paired with (credentials token_in / token_out).

    ``token_in`` is what the peer sends us, ``token_out`` what we send it.
    """

    token_in: str | None = None
    token_out: str | None = None
    versions_url: str | None = None
    version: str | None = None
    endpoints: dict[tuple[str, str], str] = field(default_factory=dict)
    roles: list[dict[str, Any]] = field(default_factory=list)
    registered: bool = False
    initiator: bool = False  # True when the sandbox did the POST

    def endpoint(self, module: str, role: str) -> str | None:
        return self.endpoints.get((module, role)) or next(
            (u for (m, _), u in self.endpoints.items() if m == module), None
        )

    @property
    def country_code(self) -> str | None:
        return self.roles[0].get("country_code") if self.roles else None

    @property
    def party_id(self) -> str | None:
        return self.roles[0].get("party_id") if self.roles else None


@dataclass(frozen=True)
class AuthorizeRecord:
    """One real-time authorization the sandbox answered from its table."""

    uid: str
    type: str
    allowed: str
    authorization_reference: str
    location: Any


@dataclass(frozen=True)
class CommandSent:
    """A command the sandbox sent; ``result`` is the CPO's CommandResponse ``data``."""

    command: str
    ref: str
    response_url: str
    body: dict[str, Any]
    reply: OcpiReply

    @property
    def result(self) -> str | None:
        data = self.reply.data
        return data.get("result") if isinstance(data, dict) else None


@dataclass
class SandboxState:
    """The sandbox's settings, switches and tables; see the module docstring for why."""

    party: Party = field(default_factory=Party)
    page_limit: int = 1000
    strict: bool = True
    max_recorded: int = 20_000
    printer: Callable[[str], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    behaviour: Behaviour = field(default_factory=Behaviour)
    # --- what crossed the wire
    requests: list[RecordedRequest] = field(default_factory=list)
    sent: list[SentRequest] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, method, id)
    # --- the eMSP's own tokens and its real-time authorization answers
    tokens: TokenTable = field(default_factory=TokenTable)
    generated: TokenSpec | None = None
    authorizations: list[AuthorizeRecord] = field(default_factory=list)
    authorize_counts: dict[str, int] = field(default_factory=dict)
    # --- what the CPO pushed to the Receiver interfaces
    sessions: CiMap[dict[str, Any]] = field(default_factory=CiMap)
    session_events: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, id, body)
    cdrs: CiMap[dict[str, Any]] = field(default_factory=CiMap)
    cdr_posts: list[dict[str, Any]] = field(default_factory=list)
    cdr_duplicates: dict[str, int] = field(default_factory=dict)
    cdr_post_counts: CiMap[int] = field(default_factory=CiMap)  # POSTs received per CDR id
    cdr_posts_open: int = 0  # CDR POSTs received and not yet answered
    locations: CiMap[dict[str, Any]] = field(default_factory=CiMap)
    location_events: list[tuple[str, str, Any]] = field(default_factory=list)
    tariffs: CiMap[dict[str, Any]] = field(default_factory=CiMap)
    tariff_events: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, id, body)
    command_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands_sent: list[CommandSent] = field(default_factory=list)
    # --- pairing
    peer: Peer = field(default_factory=Peer)
    token_as: set[str] = field(default_factory=set)
    pending_tokens: set[str] = field(default_factory=set)
    # --- set (and replaced) on every change, to wake wait_until
    changed_event: asyncio.Event = field(default_factory=asyncio.Event)

    # ------------------------------------------------------------------ bookkeeping

    def authenticate(self, header: str | None) -> tuple[str | None, str | None]:
        """(token, kind) where kind is ``token_in``, ``token_a`` or None (unknown)."""
        for cand in header_token_candidates(header):
            if cand == self.peer.token_in or cand in self.pending_tokens:
                return cand, "token_in"
            if cand in self.token_as:
                return cand, "token_a"
        return None, None

    def issue_token_a(self) -> str:
        """A TOKEN_A for the CPO to register with us (``csms partners register``)."""
        token = new_credentials_token("emsp-a")
        self.token_as.add(token)
        return token

    def set_authorize_behaviour(
        self, mode: AuthorizeMode | str, delay_ms: int = 0, uid: str | None = None
    ) -> None:
        self.behaviour.set_authorize(mode, delay_ms, uid)
        self.say(f"behaviour authorize={mode} delay_ms={delay_ms} uid={uid or '*'}")

    def record(self, req: RecordedRequest) -> None:
        self.requests.append(req)
        if len(self.requests) > self.max_recorded:
            del self.requests[: len(self.requests) - self.max_recorded]

    def violation(self, method: str, path: str, message: str) -> None:
        self.violations.append(f"{method} {path}: {message}")
        self.say(f"VIOLATION {method} {path}: {message}")

    def changed(self, kind: str, method: str, oid: str, body: Any) -> None:
        """Log one change to the tables and wake everyone in :meth:`wait_until`."""
        self.events.append((kind, method, oid))
        if kind == "session":
            self.session_events.append((method, oid, body))
        elif kind == "location":
            self.location_events.append((method, oid, body))
        elif kind == "tariff":
            self.tariff_events.append((method, oid, body))
        self.say(f"{kind} {method} {oid}" + (f" {_short(body)}" if body is not None else ""))
        self.changed_event.set()
        self.changed_event = asyncio.Event()

    def say(self, line: str) -> None:
        if self.printer is not None:
            self.printer(line)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checked after every change; TimeoutError."""
        async with asyncio.timeout(timeout):
            while not predicate():
                event = self.changed_event
                try:
                    await asyncio.wait_for(event.wait(), 0.05)
                except TimeoutError:
                    pass

    # ------------------------------------------------------------------ reading the tables

    def requests_to(self, path_part: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if path_part in r.path and (method is None or r.method == method.upper())
        ]

    def evse_status(self, location_id: str, evse_uid: str) -> str | None:
        loc = self.locations.get(location_id)
        for evse in (loc or {}).get("evses", []):
            if str(evse.get("uid", "")).upper() == evse_uid.upper():
                return evse.get("status")
        return None

    def references_for(self, uid: str) -> list[str]:
        return [
            a.authorization_reference for a in self.authorizations if a.uid.upper() == uid.upper()
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "base_url": self.party.base_url,
            "versions_url": self.party.versions_url,
            "party": f"{self.party.country_code}-{self.party.party_id}",
            "registered": self.peer.registered,
            "peer_versions_url": self.peer.versions_url,
            "tokens": len(self.tokens),
            "generated_tokens": self.generated.count if self.generated else 0,
            "requests": len(self.requests),
            "sessions": len(self.sessions),
            "cdrs": len(self.cdrs),
            "cdr_posts": len(self.cdr_posts),
            "cdr_duplicates": sum(self.cdr_duplicates.values()),
            "locations": len(self.locations),
            "tariffs": len(self.tariffs),
            "command_results": len(self.command_results),
            "authorize_counts": dict(self.authorize_counts),
            "violations": list(self.violations),
            "behaviour": self.behaviour.describe(),
            "time": time.time(),
        }


def _short(body: Any) -> str:
    if isinstance(body, dict):
        keys = ("status", "kwh", "result", "authorization_reference", "total_energy", "valid")
        parts = [f"{k}={body[k]}" for k in keys if k in body]
        return " ".join(parts)
    return ""
