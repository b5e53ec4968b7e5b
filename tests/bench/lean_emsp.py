"""A lean eMSP for the remote-path benchmark: registers through the real credentials
handshake, pushes its tokens, then answers real-time authorize after a set delay.

Why not the eMSP sandbox for this run: the sandbox records every request and every
authorization (for its tests and control API), which at 1,000 authorizes a second
cost ~400-450 µs of CPU per call on the core it shares with the load generator and
put ~20 ms of its own tail on the eMSP's answer (the CSMS's client measured p99 72 ms
for a "50 ms" eMSP). This one keeps nothing per call, so the benchmark measures the
CSMS. It speaks only OCPI over HTTP, like the sandbox.

Run: ``python -m tests.bench.lean_emsp --register-with URL --token-a T --tokens CSV``.
Prints ``control API: http://.../control/state`` and ``pushed N tokens, M accepted``
(the same lines the benchmark waits for with the sandbox). Control:
``POST /control/behaviour {"mode": "normal"|"delay"|"hang", "delay_ms": 50, "nagle": false}``;
``POST /control/start_sessions {"location_id": L, "starts": [[evse_uid, uid], ...]}`` sends
one OCPI START_SESSION per pair (the command pre-authorization path of the benchmark)
and answers how the CSMS answered them; the CommandResults are accepted and counted.

``"nagle": true`` answers authorize like some eMSPs' web stacks do: the response head and
body in two writes with Nagle's algorithm on (TCP_NODELAY off), so the body waits for
the client's ACK of the head (a client in delayed-ACK mode holds it ~40 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import itertools
import secrets
import socket
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

VERSION = "2.2.1"
COUNTRY, PARTY = "NL", "EMS"
LAST_UPDATED = "2024-05-01T09:30:00Z"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def envelope(data: Any, code: int = 1000, message: str = "Success") -> bytes:
    return orjson.dumps(
        {"data": data, "status_code": code, "status_message": message, "timestamp": now_iso()}
    )


def token_header(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


class LeanEmsp:
    def __init__(self, tokens: dict[str, dict[str, Any]]) -> None:
        self.tokens = tokens  # uid (upper) -> OCPI Token object
        self.mode = "normal"
        self.delay_s = 0.0
        self.nagle = False  # head and body in two segments, Nagle on (see the docstring)
        self.base = ""
        self.hot_base = ""  # where authorize is served (_AuthorizeProtocol)
        self.connections = 0  # accepted by _AuthorizeProtocol (the CSMS's pool reuses them)
        self.refs = itertools.count(1)
        self.released = asyncio.Event()
        self.token_c = ""  # what the CSMS gave us in the handshake
        self.commands_url = ""  # the CSMS's commands RECEIVER endpoint
        self.command_results: dict[str, int] = {}  # CommandResult result -> count

    # ---------------------------------------------------------------- OCPI server

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ocpi/versions", self.versions)
        app.router.add_get(f"/ocpi/{VERSION}", self.details)
        app.router.add_post(f"/ocpi/{VERSION}/tokens/{{uid}}/authorize", self.authorize)
        app.router.add_get("/control/state", self.state)
        app.router.add_post("/control/behaviour", self.behaviour)
        app.router.add_post("/control/start_sessions", self.start_sessions)
        app.router.add_post(f"/ocpi/{VERSION}/commands/results/{{n}}", self.command_result)
        return app

    def _json(self, body: bytes, status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, content_type="application/json")

    async def versions(self, _: web.Request) -> web.Response:
        return self._json(envelope([{"version": VERSION, "url": f"{self.base}/ocpi/{VERSION}"}]))

    async def details(self, _: web.Request) -> web.Response:
        eps = [
            {"identifier": "credentials", "role": "SENDER", "url": f"{self.base}/ocpi/{VERSION}/credentials"},
            {"identifier": "tokens", "role": "SENDER", "url": f"{self.hot_base}/ocpi/{VERSION}/tokens"},
        ]  # fmt: skip
        return self._json(envelope({"version": VERSION, "endpoints": eps}))

    async def authorize(self, request: web.Request) -> web.Response:
        if self.mode == "delay":
            await asyncio.sleep(self.delay_s)
        elif self.mode == "hang":
            await self.released.wait()
        token = self.tokens.get(request.match_info["uid"].upper())
        if token is None:
            return self._json(envelope(None, 2004, "unknown token"), status=404)
        info = {
            "allowed": "ALLOWED" if token["valid"] else "NOT_ALLOWED",
            "token": token,
            "authorization_reference": f"Ref-{next(self.refs)}",
        }
        return self._json(envelope(info))

    async def state(self, _: web.Request) -> web.Response:
        state = {
            "mode": self.mode,
            "delay_ms": self.delay_s * 1000,
            "nagle": self.nagle,
            "connections": self.connections,
            "hot_base": self.hot_base,
            "command_results": self.command_results,
        }
        return self._json(orjson.dumps(state))

    async def behaviour(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.mode = str(body["mode"])
        self.delay_s = int(body.get("delay_ms", 0)) / 1000
        self.nagle = bool(body.get("nagle", False))
        if self.mode != "hang":
            self.released.set()
            self.released = asyncio.Event()
        return self._json(b"{}")

    async def start_sessions(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        location_id = str(body["location_id"])
        auth = {"Authorization": token_header(self.token_c), "Content-Type": "application/json"}
        answers: dict[str, int] = {}
        async with aiohttp.ClientSession() as http:
            for n, (evse_uid, uid) in enumerate(body["starts"]):
                token = self.tokens.get(str(uid).upper()) or token_object(str(uid), "ALLOWED")
                command = {
                    "response_url": f"{self.base}/ocpi/{VERSION}/commands/results/{n}",
                    "token": token,
                    "location_id": location_id,
                    "evse_uid": evse_uid,
                    "authorization_reference": f"Cmd-{n}",
                }
                url = f"{self.commands_url}/START_SESSION"
                async with http.post(url, data=orjson.dumps(command), headers=auth) as r:
                    answer = orjson.loads(await r.read())
                data = answer.get("data") or {}
                key = str(data.get("result") or answer.get("status_code"))
                if key != "ACCEPTED":
                    message = (data.get("message") or [{}])[0].get("text", "")
                    key = f"{key}: {message}" if message else key
                answers[key] = answers.get(key, 0) + 1
        return self._json(orjson.dumps(answers))

    async def command_result(self, request: web.Request) -> web.Response:
        result = str(orjson.loads(await request.read()).get("result"))
        self.command_results[result] = self.command_results.get(result, 0) + 1
        return self._json(envelope(None))

    # ---------------------------------------------------------------- handshake, push

    async def register_and_push(self, versions_url: str, token_a: str) -> tuple[int, int]:
        async with aiohttp.ClientSession() as http:

            async def get(url: str, token: str) -> Any:
                async with http.get(url, headers={"Authorization": token_header(token)}) as r:
                    return orjson.loads(await r.read())["data"]

            versions = await get(versions_url, token_a)
            details = await get(
                next(v["url"] for v in versions if v["version"] == VERSION), token_a
            )
            eps = {(e["identifier"], e.get("role")): e["url"] for e in details["endpoints"]}
            token_b = secrets.token_urlsafe(24)
            creds = {
                "token": token_b,
                "url": f"{self.base}/ocpi/versions",
                "roles": [
                    {
                        "role": "EMSP",
                        "party_id": PARTY,
                        "country_code": COUNTRY,
                        "business_details": {"name": "Bench lean eMSP"},
                    }
                ],
            }
            async with http.post(
                eps[("credentials", "SENDER")]
                if ("credentials", "SENDER") in eps
                else eps[("credentials", None)],
                data=orjson.dumps(creds),
                headers={
                    "Authorization": token_header(token_a),
                    "Content-Type": "application/json",
                },
            ) as r:
                answer = orjson.loads(await r.read())
                if answer.get("status_code") != 1000:
                    raise RuntimeError(f"registration refused: {answer}")
                token_c = answer["data"]["token"]
            self.token_c = token_c
            self.commands_url = eps.get(("commands", "RECEIVER"), "")
            receiver = eps[("tokens", "RECEIVER")]
            gate = asyncio.Semaphore(16)
            auth = {"Authorization": token_header(token_c), "Content-Type": "application/json"}

            async def push(tok: dict[str, Any]) -> bool:
                url = f"{receiver}/{COUNTRY}/{PARTY}/{tok['uid']}?type={tok['type']}"
                async with gate, http.put(url, data=orjson.dumps(tok), headers=auth) as r:
                    body = orjson.loads(await r.read())
                    return r.status in (200, 201) and body.get("status_code") == 1000

            ok = await asyncio.gather(*(push(t) for t in self.tokens.values()))
            return len(ok), sum(ok)


class _AuthorizeProtocol(asyncio.Protocol):
    """Real-time authorize over bare HTTP/1.1 keep-alive (the hot endpoint; aiohttp's
    server cost ~250 µs a request on the core the eMSP shares with the load generator).
    Requests are framed by Content-Length, as the CSMS sends them; anything else closes
    the connection."""

    def __init__(self, emsp: LeanEmsp) -> None:
        self.emsp = emsp
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.nagle = False  # what this connection's socket is set to

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.emsp.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            method, target, _ = head[0].split(" ", 2)
            path = target.split("?", 1)[0]
            parts = path.rstrip("/").split("/")
            if method != "POST" or len(parts) < 3 or parts[-1] != "authorize":
                self._send(404, envelope(None, 2000, "not here"))
                continue
            asyncio.get_running_loop().create_task(self._answer(parts[-2]))

    async def _answer(self, uid: str) -> None:
        e = self.emsp
        if e.mode == "delay":
            await asyncio.sleep(e.delay_s)
        elif e.mode == "hang":
            await e.released.wait()
        token = e.tokens.get(uid.upper())
        if token is None:
            self._send(404, envelope(None, 2004, "unknown token"))
            return
        info = {
            "allowed": "ALLOWED" if token["valid"] else "NOT_ALLOWED",
            "token": token,
            "authorization_reference": f"Ref-{next(e.refs)}",
        }
        self._send(200, envelope(info))

    def _send(self, status: int, body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = "OK" if status == 200 else "Not Found"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        if self.emsp.nagle != self.nagle:
            self.nagle = self.emsp.nagle
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0 if self.nagle else 1)
        if self.nagle:
            self.transport.write(head)
            self.transport.write(body)
        else:
            self.transport.write(head + body)


def load_tokens(path: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            uid = row["uid"]
            out[uid.upper()] = token_object(
                uid, row.get("whitelist") or "ALLOWED", row.get("type") or "RFID"
            )
    return out


def token_object(uid: str, whitelist: str, kind: str = "RFID") -> dict[str, Any]:
    return {
        "country_code": COUNTRY,
        "party_id": PARTY,
        "uid": uid,
        "type": kind,
        "contract_id": f"NL-EMS-C{abs(hash(uid)) % 10**8:08d}",
        "issuer": "Bench eMSP",
        "valid": True,
        "whitelist": whitelist,
        "last_updated": LAST_UPDATED,
    }


async def main(args: argparse.Namespace) -> None:
    emsp = LeanEmsp(load_tokens(args.tokens))
    runner = web.AppRunner(emsp.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emsp.base = f"http://127.0.0.1:{port}"
    hot = await asyncio.get_running_loop().create_server(
        lambda: _AuthorizeProtocol(emsp), "127.0.0.1", 0, backlog=4096
    )  # a burst of new CSMS connections must not overflow the backlog (1 s SYN retry)
    emsp.hot_base = f"http://127.0.0.1:{hot.sockets[0].getsockname()[1]}"
    print(f"control API: {emsp.base}/control/state", flush=True)
    pushed, accepted = await emsp.register_and_push(args.register_with, args.token_a)
    print(f"pushed {pushed} tokens, {accepted} accepted", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--register-with", required=True)
    p.add_argument("--token-a", required=True)
    p.add_argument("--tokens", required=True)
    args = p.parse_args()
    try:
        import uvloop

        uvloop.run(main(args))
    except KeyboardInterrupt:
        sys.exit(0)
