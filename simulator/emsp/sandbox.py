"""``EmspSandbox``: the reference eMSP that the CPO's end-to-end tests talk to over OCPI.

Why one object with public tables rather than an API of getters: tests assert on what
crossed the wire (``emsp.requests``, ``emsp.sessions``, ``emsp.cdr_posts``...), and a
test reads best when it can look straight into those tables. Everything the sandbox
does to its peer goes through :class:`~simulator.emsp.client.OcpiClient` and is logged
in ``emsp.sent``.

Usage::

    async with EmspSandbox.start(country_code="NL", party_id="EMS") as emsp:
        emsp.generate_tokens(10, seed=7)
        await emsp.register_with(cpo_versions_url, token_a)
        await emsp.push_tokens()
        emsp.set_authorize_behaviour("hang")
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from simulator.emsp import registration
from simulator.emsp.app import MODULE_BASE, build_app
from simulator.emsp.behaviour import AuthorizeMode, Behaviour, DownMode
from simulator.emsp.client import OcpiClient, OcpiReply
from simulator.emsp.state import (
    CiMap,
    Peer,
    RecordedRequest,
    SentRequest,
    TokenRecord,
    TokenTable,
)
from simulator.emsp.tokens import TokenSpec, load_file
from simulator.emsp.wire import (
    CREDENTIALS_PATH_SUFFIX,
    VERSION,
    join_url,
    new_credentials_token,
    now_iso,
    parse_time,
)

log = structlog.get_logger("simulator.emsp")

ALLOWED_TYPES = ("ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED")
_REF_ALPHABET = "0123456789abcdefABCDEF"


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
        self.country_code = country_code
        self.party_id = party_id
        self.business_name = business_name
        self.control_port = control_port
        self.page_limit = page_limit
        self.strict = strict
        self.max_recorded = max_recorded
        self.printer = printer
        self._rng = random.Random(seed)
        # --- tables tests assert on
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentRequest] = []
        self.tokens = TokenTable()
        self.generated: TokenSpec | None = None
        self.sessions: CiMap[dict[str, Any]] = CiMap()
        self.session_events: list[tuple[str, str, Any]] = []  # (method, session_id, body)
        self.cdrs: CiMap[dict[str, Any]] = CiMap()
        self.cdr_posts: list[dict[str, Any]] = []
        self.cdr_duplicates: dict[str, int] = {}
        self.locations: CiMap[dict[str, Any]] = CiMap()
        self.location_events: list[tuple[str, str, Any]] = []
        self.tariffs: CiMap[dict[str, Any]] = CiMap()
        self.command_results: dict[str, dict[str, Any]] = {}
        self.commands_sent: list[CommandSent] = []
        self.authorizations: list[AuthorizeRecord] = []
        self.authorize_counts: dict[str, int] = {}
        self.violations: list[str] = []
        self.events: list[tuple[str, str, str]] = []  # (kind, method, id)
        # --- pairing and switches
        self.peer = Peer()
        self.token_as: set[str] = set()
        self.pending_tokens: set[str] = set()
        self.behaviour = Behaviour()
        self.client = OcpiClient(self.sent, timeout_s=http_timeout_s)
        self._changed = asyncio.Event()
        self._cmd_seq = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._control_runner: web.AppRunner | None = None

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
        self._runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()
        if self.control_port is not None:
            from simulator.emsp.control import build_control_app

            self._control_runner = web.AppRunner(
                build_control_app(self), access_log=None, shutdown_timeout=1.0
            )
            await self._control_runner.setup()
            site = web.TCPSite(self._control_runner, self.host, self.control_port)
            await site.start()
            self.control_port = _bound_port(site)
        log.info(
            "emsp_started", base_url=self.base_url, party=f"{self.country_code}-{self.party_id}"
        )

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = _bound_port(site)
        self._site = site

    async def close(self) -> None:
        self.behaviour.release()
        await self.client.close()
        if self._control_runner is not None:
            await self._control_runner.cleanup()
            self._control_runner = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    @property
    def control_url(self) -> str | None:
        if self.control_port is None:
            return None
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.control_port}"

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

    # ------------------------------------------------------------------ bookkeeping

    def authenticate(self, header: str | None) -> tuple[str | None, str | None]:
        """(token, kind) where kind is ``token_in``, ``token_a`` or None (unknown)."""
        from simulator.emsp.wire import header_token_candidates

        for cand in header_token_candidates(header):
            if cand == self.peer.token_in or cand in self.pending_tokens:
                return cand, "token_in"
            if cand in self.token_as:
                return cand, "token_a"
        return None, None

    def record(self, req: RecordedRequest) -> None:
        self.requests.append(req)
        if len(self.requests) > self.max_recorded:
            del self.requests[: len(self.requests) - self.max_recorded]

    def violation(self, request: web.Request, message: str) -> None:
        self.violations.append(f"{request.method} {request.path}: {message}")
        self._say(f"VIOLATION {request.method} {request.path}: {message}")

    def changed(self, kind: str, method: str, oid: str, body: Any) -> None:
        self.events.append((kind, method, oid))
        if kind == "session":
            self.session_events.append((method, oid, body))
        elif kind == "location":
            self.location_events.append((method, oid, body))
        self._say(f"{kind} {method} {oid}" + (f" {_short(body)}" if body is not None else ""))
        self._changed.set()
        self._changed = asyncio.Event()

    def _say(self, line: str) -> None:
        if self.printer is not None:
            self.printer(line)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checked after every change; TimeoutError."""
        async with asyncio.timeout(timeout):
            while not predicate():
                event = self._changed
                try:
                    await asyncio.wait_for(event.wait(), 0.05)
                except TimeoutError:
                    pass

    async def wait_command_result(self, ref: str, timeout: float = 5.0) -> dict[str, Any]:
        await self.wait_until(lambda: ref in self.command_results, timeout)
        return self.command_results[ref]

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

    # ------------------------------------------------------------------ behaviour switches

    def set_authorize_behaviour(
        self, mode: AuthorizeMode | str, delay_ms: int = 0, uid: str | None = None
    ) -> None:
        self.behaviour.set_authorize(mode, delay_ms, uid)
        self._say(f"behaviour authorize={mode} delay_ms={delay_ms} uid={uid or '*'}")

    def release_hung(self) -> None:
        self.behaviour.release()

    def fail_tokens_page(self, page: int | None, times: int | None = None) -> None:
        """Answer HTTP 500 for the 1-based token list page ``page`` (None: stop failing)."""
        self.behaviour.fail_tokens_page = page
        self.behaviour.fail_tokens_page_times = times

    async def set_down(self, mode: DownMode | str) -> None:
        """``503``: answer 503; ``refuse``: close the listener; ``up``: serve again."""
        new = DownMode(mode)
        old = self.behaviour.down
        self.behaviour.down = new
        if new == DownMode.REFUSE and old != DownMode.REFUSE and self._site is not None:
            await self._site.stop()
            self._site = None
        elif new != DownMode.REFUSE and self._site is None and self._runner is not None:
            await self._listen()
        self._say(f"down mode={new}")

    # ------------------------------------------------------------------ tokens

    def add_token(
        self,
        uid: str,
        *,
        type: str = "RFID",
        whitelist: str = "ALLOWED",
        valid: bool = True,
        allowed: str | None = None,
        contract_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        token = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": uid,
            "type": type,
            "contract_id": contract_id or f"{self.country_code}-{self.party_id}-{uid}"[:36],
            "issuer": self.business_name,
            "valid": valid,
            "whitelist": whitelist,
            "last_updated": now_iso(),
            **extra,
        }
        return self.tokens.put(token, _check_allowed(allowed)).token

    def add_tokens(self, tokens: Iterable[Mapping[str, Any]]) -> int:
        n = 0
        for t in tokens:
            tok = dict(t)
            allowed = tok.pop("_allowed", None)
            self.tokens.put(tok, _check_allowed(allowed))
            n += 1
        return n

    def load_tokens(self, path: str | Path) -> int:
        return self.add_tokens(load_file(path, self.country_code, self.party_id))

    def generate_tokens(
        self,
        count: int,
        *,
        seed: int = 1,
        uid_pattern: str = "04{n:010X}",
        whitelist_mix: Mapping[str, int] | None = None,
        type: str = "RFID",
        invalid_every: int = 0,
    ) -> list[dict[str, Any]]:
        spec = self._spec(count, seed, uid_pattern, whitelist_mix, type, invalid_every)
        tokens = list(spec.generate())
        self.add_tokens(tokens)
        return tokens

    def serve_generated_tokens(
        self,
        count: int,
        *,
        seed: int = 1,
        uid_pattern: str = "04{n:010X}",
        whitelist_mix: Mapping[str, int] | None = None,
        type: str = "RFID",
        invalid_every: int = 0,
    ) -> TokenSpec:
        """Serve ``count`` generated tokens lazily as the Sender list (not in the table)."""
        self.generated = self._spec(count, seed, uid_pattern, whitelist_mix, type, invalid_every)
        return self.generated

    def _spec(
        self,
        count: int,
        seed: int,
        uid_pattern: str,
        whitelist_mix: Mapping[str, int] | None,
        type: str,
        invalid_every: int,
    ) -> TokenSpec:
        return TokenSpec(
            count=count,
            country_code=self.country_code,
            party_id=self.party_id,
            seed=seed,
            uid_pattern=uid_pattern,
            whitelist_mix=dict(whitelist_mix or {"ALLOWED": 1}),
            type=type,
            invalid_every=invalid_every,
            issuer=self.business_name,
        )

    def set_allowed(self, uid: str, allowed: str, type: str = "RFID") -> None:
        """How the real-time authorize answers for this token from now on."""
        rec = self.tokens.get(uid, type)
        if rec is None:
            raise KeyError(f"unknown token {uid!r}/{type}")
        rec.allowed = _check_allowed(allowed) or "ALLOWED"

    def token_page(
        self, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        if self.generated is not None:
            rng = self.generated.index_range(date_from, date_to)
            sub = rng[offset : offset + limit]
            return [self.generated.token(n) for n in sub], len(rng)
        rows = [r.token for r in self.tokens.records()]
        if date_from is not None or date_to is not None:
            rows = [t for t in rows if _in_window(t, date_from, date_to)]
        return rows[offset : offset + limit], len(rows)

    # ------------------------------------------------------------------ authorize

    def count_authorize(self, uid: str) -> None:
        key = uid.upper()
        self.authorize_counts[key] = self.authorize_counts.get(key, 0) + 1

    def new_reference(self) -> str:
        """``Ref-`` + 8 chars of mixed case, so case-folding bugs at the CPO show up."""
        chars = [self._rng.choice(_REF_ALPHABET) for _ in range(8)]
        chars[1] = self._rng.choice("abcdef")
        chars[3] = self._rng.choice("ABCDEF")
        return "Ref-" + "".join(chars)

    def authorize_answer(self, uid: str, type_: str, body: Any) -> dict[str, Any] | None:
        rec = self.tokens.get(uid, type_)
        if rec is None:
            self._say(f"authorize {uid} ({type_}) -> unknown")
            return None
        ref = self.new_reference()
        info: dict[str, Any] = {
            "allowed": rec.allowed,
            "token": rec.token,
            "authorization_reference": ref,
        }
        location = None
        if isinstance(body, dict) and body.get("location_id"):
            location = {"location_id": body["location_id"]}
            if body.get("evse_uids"):
                location["evse_uids"] = list(body["evse_uids"])
            if rec.allowed == "ALLOWED":
                info["location"] = location
        self.authorizations.append(AuthorizeRecord(rec.uid, rec.type, rec.allowed, ref, location))
        self._say(f"authorize {uid} ({type_}) -> {rec.allowed} {ref}")
        return info

    def references_for(self, uid: str) -> list[str]:
        return [
            a.authorization_reference for a in self.authorizations if a.uid.upper() == uid.upper()
        ]

    # ------------------------------------------------------------------ registration

    def issue_token_a(self) -> str:
        """A TOKEN_A for the CPO to register with us (``csms partners register``)."""
        token = new_credentials_token("emsp-a")
        self.token_as.add(token)
        return token

    async def register_with(self, versions_url: str, token_a: str) -> Peer:
        return await registration.register_with(self, versions_url, token_a)

    async def update_credentials(self) -> Peer:
        return await registration.update_credentials(self)

    async def unregister(self) -> OcpiReply:
        return await registration.unregister(self)

    # ------------------------------------------------------------------ outgoing calls

    def _routing(self) -> dict[str, str]:
        headers = {
            "OCPI-from-country-code": self.country_code,
            "OCPI-from-party-id": self.party_id,
        }
        if self.peer.country_code and self.peer.party_id:
            headers["OCPI-to-country-code"] = str(self.peer.country_code)
            headers["OCPI-to-party-id"] = str(self.peer.party_id)
        return headers

    def _peer_url(self, module: str, role: str) -> str:
        if not self.peer.registered:
            raise registration.RegistrationError(2000, "not registered with a peer")
        url = self.peer.endpoint(module, role)
        if url is None:
            raise registration.RegistrationError(3003, f"peer has no {module} {role} endpoint")
        return url

    async def call_peer(
        self, method: str, module: str, role: str, *segments: str, body: Any = None, query: str = ""
    ) -> OcpiReply:
        url = join_url(self._peer_url(module, role), *segments) + query
        return await self.client.call(
            method, url, token=self.peer.token_out, body=body, routing=self._routing()
        )

    def _token_record(self, uid: str, type: str) -> TokenRecord:
        rec = self.tokens.get(uid, type)
        if rec is None:
            raise KeyError(f"unknown token {uid!r}/{type}")
        return rec

    async def push_token(self, uid: str, type: str = "RFID") -> OcpiReply:
        """PUT one token of our table to the CPO's tokens RECEIVER."""
        tok = self._token_record(uid, type).token
        return await self.call_peer(
            "PUT", "tokens", "RECEIVER", self.country_code, self.party_id, tok["uid"],
            body=tok, query=f"?type={tok.get('type', 'RFID')}",
        )  # fmt: skip

    async def push_tokens(self, concurrency: int = 16) -> list[OcpiReply]:
        """PUT every token of the table; returns the replies in table order."""
        sem = asyncio.Semaphore(concurrency)

        async def one(rec: TokenRecord) -> OcpiReply:
            async with sem:
                return await self.push_token(rec.uid, rec.type)

        return list(await asyncio.gather(*(one(r) for r in self.tokens.records())))

    async def patch_token(
        self, uid: str, changes: Mapping[str, Any], type: str = "RFID"
    ) -> OcpiReply:
        """Apply ``changes`` locally (new last_updated) and PATCH them to the CPO."""
        rec = self._token_record(uid, type)
        body = {**changes, "last_updated": now_iso()}
        rec.token.update(body)
        if "valid" in changes:
            rec.allowed = "ALLOWED" if changes["valid"] else "BLOCKED"
        return await self.call_peer(
            "PATCH", "tokens", "RECEIVER", self.country_code, self.party_id, rec.uid,
            body=body, query=f"?type={rec.type}",
        )  # fmt: skip

    async def block_token(self, uid: str, type: str = "RFID") -> OcpiReply:
        return await self.patch_token(uid, {"valid": False}, type)

    async def get_token_at_cpo(self, uid: str, type: str = "RFID") -> OcpiReply:
        return await self.call_peer(
            "GET", "tokens", "RECEIVER", self.country_code, self.party_id, uid,
            query=f"?type={type}",
        )  # fmt: skip

    # ------------------------------------------------------------------ commands

    async def send_command(self, command: str, body: Mapping[str, Any]) -> CommandSent:
        ref = f"{command.lower()}-{next(self._cmd_seq)}-{self._rng.randrange(16**6):06x}"
        response_url = f"{self.base_url}{MODULE_BASE}/commands/{command}/{ref}"
        full = {"response_url": response_url, **body}
        answer = await self.call_peer("POST", "commands", "RECEIVER", command, body=full)
        sent = CommandSent(command, ref, response_url, full, answer)
        self.commands_sent.append(sent)
        self._say(f"command {command} {ref} -> HTTP {answer.http_status} {sent.result}")
        return sent

    def _command_token(self, uid: str | None, type: str) -> dict[str, Any]:
        if uid is not None:
            rec = self.tokens.get(uid, type)
            if rec is not None:
                return rec.token
        if uid is None:
            uid, type = f"app-{self._rng.randrange(16**8):08x}", "APP_USER"
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": uid,
            "type": type,
            "contract_id": f"{self.country_code}-{self.party_id}-{uid}"[:36],
            "issuer": self.business_name,
            "valid": True,
            "whitelist": "NEVER" if type in ("APP_USER", "AD_HOC_USER") else "ALLOWED",
            "last_updated": now_iso(),
        }

    async def start_session(
        self,
        location_id: str,
        evse_uid: str | None = None,
        uid: str | None = None,
        authorization_reference: str | None = None,
        *,
        connector_id: str | None = None,
        token_type: str = "RFID",
    ) -> CommandSent:
        body: dict[str, Any] = {
            "token": self._command_token(uid, token_type),
            "location_id": location_id,
        }
        if evse_uid is not None:
            body["evse_uid"] = evse_uid
        if connector_id is not None:
            body["connector_id"] = connector_id
        if authorization_reference is not None:
            body["authorization_reference"] = authorization_reference
        return await self.send_command("START_SESSION", body)

    async def stop_session(self, session_id: str) -> CommandSent:
        return await self.send_command("STOP_SESSION", {"session_id": session_id})

    async def reserve_now(
        self,
        location_id: str,
        reservation_id: str,
        expiry_date: str,
        uid: str | None = None,
        evse_uid: str | None = None,
        authorization_reference: str | None = None,
        token_type: str = "RFID",
    ) -> CommandSent:
        body: dict[str, Any] = {
            "token": self._command_token(uid, token_type),
            "expiry_date": expiry_date,
            "reservation_id": reservation_id,
            "location_id": location_id,
        }
        if evse_uid is not None:
            body["evse_uid"] = evse_uid
        if authorization_reference is not None:
            body["authorization_reference"] = authorization_reference
        return await self.send_command("RESERVE_NOW", body)

    async def cancel_reservation(self, reservation_id: str) -> CommandSent:
        return await self.send_command("CANCEL_RESERVATION", {"reservation_id": reservation_id})

    async def unlock_connector(
        self, location_id: str, evse_uid: str, connector_id: str
    ) -> CommandSent:
        return await self.send_command(
            "UNLOCK_CONNECTOR",
            {"location_id": location_id, "evse_uid": evse_uid, "connector_id": connector_id},
        )

    def summary(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "versions_url": self.versions_url,
            "party": f"{self.country_code}-{self.party_id}",
            "registered": self.peer.registered,
            "peer_versions_url": self.peer.versions_url,
            "tokens": len(self.tokens),
            "generated_tokens": self.generated.count if self.generated else 0,
            "requests": len(self.requests),
            "sessions": len(self.sessions),
            "cdrs": len(self.cdrs),
            "cdr_duplicates": sum(self.cdr_duplicates.values()),
            "locations": len(self.locations),
            "tariffs": len(self.tariffs),
            "command_results": len(self.command_results),
            "authorize_counts": dict(self.authorize_counts),
            "violations": list(self.violations),
            "behaviour": self.behaviour.describe(),
            "time": time.time(),
        }


def _bound_port(site: web.TCPSite) -> int:
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1])


def _check_allowed(value: str | None) -> str | None:
    if value is None:
        return None
    up = value.upper()
    if up not in ALLOWED_TYPES:
        raise ValueError(f"allowed must be one of {', '.join(ALLOWED_TYPES)}, got {value!r}")
    return up


def _in_window(
    token: Mapping[str, Any], date_from: datetime | None, date_to: datetime | None
) -> bool:
    try:
        moment = parse_time(str(token.get("last_updated", "")))
    except ValueError:
        return False
    return (date_from is None or moment >= date_from) and (date_to is None or moment < date_to)


def _short(body: Any) -> str:
    if isinstance(body, dict):
        keys = ("status", "kwh", "result", "authorization_reference", "total_energy", "valid")
        parts = [f"{k}={body[k]}" for k in keys if k in body]
        return " ".join(parts)
    return ""


__all__ = ["VERSION", "AuthorizeRecord", "CommandSent", "EmspSandbox"]
