"""``csms-emsp``: run the eMSP sandbox as a server, or steer a running one.

``serve`` prints one line per thing it receives (sessions, CDRs, authorizations...),
so a person can watch a roaming flow; ``control`` talks to the control listener.
Exit codes: 0 ok, 1 the request failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import aiohttp

from simulator.emsp.behaviour import AuthorizeMode, DownMode
from simulator.emsp.registration import RegistrationError
from simulator.emsp.sandbox import EmspSandbox
from simulator.emsp.tokens import TokenFileError, parse_mix
from simulator.usage import add_version, apply_formatter, pipe_safe


def _out(line: str) -> None:
    print(line, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csms-emsp", description="OCPI 2.2.1 eMSP sandbox")
    add_version(p, "csms-emsp")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the sandbox until interrupted")
    s.add_argument("--host", default="127.0.0.1", help="listen address")
    s.add_argument("--port", type=int, default=9300, help="OCPI port (0: any free port)")
    s.add_argument("--control-port", type=int, default=9301, help="control API port")
    s.add_argument("--country-code", default="NL", help="our OCPI country_code")
    s.add_argument("--party-id", default="EMS", help="our OCPI party_id")
    s.add_argument("--name", default="eMSP Sandbox", help="business_details.name")
    s.add_argument("--page-limit", type=int, default=1000, help="tokens list X-Limit")
    s.add_argument("--tokens", help="token file (.json list or .csv with a uid column)")
    s.add_argument("--generate", type=int, default=0, help="generate N tokens into the table")
    s.add_argument("--lazy-tokens", type=int, default=0, help="serve N generated tokens lazily")
    s.add_argument("--seed", type=int, default=1, help="seed for generated tokens")
    s.add_argument("--uid-pattern", default="04{n:010X}", help="format with {n} and {r}")
    s.add_argument("--whitelist-mix", default="ALLOWED=1", help="e.g. ALWAYS=50,NEVER=50")
    s.add_argument("--register-with", metavar="VERSIONS_URL", help="CPO versions URL")
    s.add_argument("--token-a", help="TOKEN_A from `csms partners invite`")
    s.add_argument("--issue-token-a", action="store_true", help="print a TOKEN_A for the CPO")
    s.add_argument("--push-tokens", action="store_true", help="PUT all tokens after registering")
    s.add_argument("--quiet", action="store_true", help="do not print received objects")

    c = sub.add_parser("control", help="steer a running sandbox")
    c.add_argument("--url", default="http://127.0.0.1:9301", help="control listener URL")
    csub = c.add_subparsers(dest="action", required=True)
    csub.add_parser("state")
    b = csub.add_parser("behaviour", help="authorize behaviour")
    b.add_argument("mode", choices=[m.value for m in AuthorizeMode])
    b.add_argument("--delay-ms", type=int, default=0, help="answer delay (mode delay)")
    b.add_argument("--uid", help="only for this token uid")
    csub.add_parser("release", help="let hung authorize requests answer")
    d = csub.add_parser("down", help="outage switch")
    d.add_argument("mode", choices=[m.value for m in DownMode])
    f = csub.add_parser("fail-page", help="tokens list page K answers HTTP 500")
    f.add_argument("page", type=int, help="1-based page number; 0 to stop failing")
    f.add_argument("--times", type=int, help="fail this many times (default: until told)")
    a = csub.add_parser("allowed", help="set a token's authorize verdict")
    a.add_argument("uid")
    a.add_argument("allowed", choices=["ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED"])
    t = csub.add_parser("add-token")
    t.add_argument("uid")
    t.add_argument("--whitelist", default="ALLOWED", help="OCPI whitelist type")
    t.add_argument("--invalid", action="store_true", help="valid: false")
    bl = csub.add_parser("block", help="block a token and PATCH it to the CPO")
    bl.add_argument("uid")
    csub.add_parser("push-tokens")
    csub.add_parser("token-a", help="issue a TOKEN_A")
    r = csub.add_parser("register", help="register with a CPO (sandbox as Initiator)")
    r.add_argument("versions_url")
    r.add_argument("token_a")
    ss = csub.add_parser("start-session")
    ss.add_argument("location_id")
    ss.add_argument("evse_uid")
    ss.add_argument("uid")
    ss.add_argument("--ref", help="authorization_reference")
    st = csub.add_parser("stop-session")
    st.add_argument("session_id")
    sh = csub.add_parser("show", help="print a table")
    sh.add_argument(
        "table",
        choices=[
            "requests", "sessions", "cdrs", "locations", "tariffs", "command-results",
            "authorizations", "tokens",
        ],
    )  # fmt: skip
    sh.add_argument("--limit", type=int, default=50, help="at most this many rows")
    apply_formatter(p)
    return p


async def serve(args: argparse.Namespace) -> int:
    sb = EmspSandbox(
        host=args.host,
        port=args.port,
        control_port=args.control_port,
        country_code=args.country_code,
        party_id=args.party_id,
        business_name=args.name,
        page_limit=args.page_limit,
        printer=None if args.quiet else _out,
    )
    try:
        if args.tokens:
            _out(f"loaded {sb.load_tokens(args.tokens)} tokens from {args.tokens}")
        mix = parse_mix(args.whitelist_mix)
        if args.generate:
            sb.generate_tokens(
                args.generate, seed=args.seed, uid_pattern=args.uid_pattern, whitelist_mix=mix
            )
            _out(f"generated {args.generate} tokens (seed {args.seed})")
        if args.lazy_tokens:
            sb.serve_generated_tokens(
                args.lazy_tokens, seed=args.seed, uid_pattern=args.uid_pattern, whitelist_mix=mix
            )
    except (TokenFileError, ValueError) as exc:
        print(f"csms-emsp: {exc}", file=sys.stderr)
        return 2
    await sb.open()
    _out(f"eMSP sandbox {sb.country_code}-{sb.party_id} versions URL: {sb.versions_url}")
    _out(f"control API: {sb.control_url}/control/state")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover - windows
            pass
    try:
        if args.issue_token_a:
            _out(f"TOKEN_A: {sb.issue_token_a()}")
        if args.register_with:
            if not args.token_a:
                print("csms-emsp: --register-with needs --token-a", file=sys.stderr)
                return 2
            await sb.register_with(args.register_with, args.token_a)
            _out(f"registered with {args.register_with}")
            if args.push_tokens:
                replies = await sb.push_tokens()
                _out(f"pushed {len(replies)} tokens, {sum(r.ok for r in replies)} accepted")
        await stop.wait()
    except RegistrationError as exc:
        print(f"csms-emsp: registration failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await sb.close()
    return 0


def _control_request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    a = args.action
    if a == "state":
        return "GET", "/control/state", None
    if a == "behaviour":
        body: dict[str, Any] = {"mode": args.mode, "delay_ms": args.delay_ms}
        if args.uid:
            body["uid"] = args.uid
        return "POST", "/control/behaviour", body
    if a in ("release", "push-tokens", "token-a"):
        return "POST", f"/control/{a}", {}
    if a == "down":
        return "POST", "/control/down", {"mode": args.mode}
    if a == "fail-page":
        return "POST", "/control/fail-page", {"page": args.page or None, "times": args.times}
    if a == "allowed":
        return "POST", f"/control/tokens/{args.uid}/allowed", {"allowed": args.allowed}
    if a == "add-token":
        return "POST", "/control/tokens", {
            "uid": args.uid, "whitelist": args.whitelist, "valid": not args.invalid,
        }  # fmt: skip
    if a == "block":
        return "POST", f"/control/tokens/{args.uid}/block", {}
    if a == "register":
        return "POST", "/control/register", {
            "versions_url": args.versions_url, "token_a": args.token_a,
        }  # fmt: skip
    if a == "start-session":
        return "POST", "/control/commands/START_SESSION", {
            "location_id": args.location_id, "evse_uid": args.evse_uid, "uid": args.uid,
            "authorization_reference": args.ref,
        }  # fmt: skip
    if a == "stop-session":
        return "POST", "/control/commands/STOP_SESSION", {"session_id": args.session_id}
    return "GET", f"/control/{args.table}?limit={args.limit}", None


async def control(args: argparse.Namespace) -> int:
    method, path, body = _control_request(args)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
            http.request(method, args.url.rstrip("/") + path, json=body) as resp,
        ):
            text = await resp.text()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"csms-emsp: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(json.loads(text), indent=2))
    except ValueError:
        print(text)
    return 0 if status < 400 else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runner = serve if args.cmd == "serve" else control

    def run() -> int:
        try:
            return asyncio.run(runner(args))
        except KeyboardInterrupt:
            return 0

    return pipe_safe(run)


if __name__ == "__main__":
    sys.exit(main())
