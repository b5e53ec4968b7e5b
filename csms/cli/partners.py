"""``csms partners ...`` and ``csms tokens sync``: OCPI partner management via the admin API.

Why through the admin API: the handshake needs the running OCPI server (the partner
calls us back during it), and rotation must swap the tokens the live server accepts.
"""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import (
    add_command,
    client_from_args,
    print_fields,
    print_json,
    print_table,
    quote,
)


def register(subparsers: Any) -> None:
    partners = subparsers.add_parser(
        "partners", help="OCPI roaming partners", description="OCPI roaming partners"
    )
    sub = partners.add_subparsers(dest="partners_command", metavar="ACTION")
    sub.required = True

    p = add_command(
        sub, "invite", _invite, "issue a TOKEN_A for a partner who will register with us"
    )
    p.add_argument("--country-code", required=True, help="partner country code, e.g. NL")
    p.add_argument("--party-id", required=True, help="partner party id, e.g. EMS")

    p = add_command(
        sub, "register", _register, "register with a partner (we initiate, with their TOKEN_A)"
    )
    p.add_argument("--versions-url", required=True, help="the partner's OCPI versions URL")
    p.add_argument("--token-a", required=True, help="the TOKEN_A the partner gave us")

    add_command(sub, "list", _list, "list partners and their last token sync")

    p = add_command(sub, "show", _show, "partner details, token counts and token sync runs")
    p.add_argument("key", help="partner key COUNTRY-PARTY, e.g. NL-EMS")

    p = add_command(
        sub, "rotate", _rotate, "credentials PUT to the partner: fresh tokens both ways"
    )
    p.add_argument("key")

    p = add_command(
        sub, "unregister", _unregister, "unregister the partner (its tokens stop working at once)"
    )
    p.add_argument("key")

    tsub = _tokens_actions(subparsers)
    p = add_command(tsub, "sync", _sync, "pull the token list of one partner (or all)")
    p.add_argument("partner", nargs="?", default=None, help="partner key (default: every partner)")
    p.add_argument(
        "--incremental", action="store_true", help="only changes since the last complete run"
    )
    p.add_argument("--wait", action="store_true", help="wait for the run(s) and print the results")


def _tokens_actions(subparsers: Any) -> Any:
    """The ``tokens`` command's actions: ``csms.cli.tokens`` owns the group (local id
    tags); ``sync`` joins it. Created here when that module is not loaded."""
    group = subparsers.choices.get("tokens")
    if group is None:
        group = subparsers.add_parser("tokens", help="tokens", description="tokens")
        tsub = group.add_subparsers(dest="tokens_command", metavar="ACTION")
        tsub.required = True
        return tsub
    for action in group._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("the tokens command has no actions")  # pragma: no cover


def _out(args: argparse.Namespace, data: Any) -> None:
    if args.json:
        print_json(data)
    elif isinstance(data, dict):
        print_fields(data)
    else:
        print_json(data)


def _invite(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(
        "/api/partners/invite", {"country_code": args.country_code, "party_id": args.party_id}
    )
    if args.json:
        print_json(data)
    else:
        print(f"partner:      {data['key']}")
        print(f"token_a:      {data['token_a']}")
        print(f"versions_url: {data['versions_url']}")
        print("Send both to the partner over a secure channel; the token is shown only once.")
    return 0


def _register(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(
        "/api/partners/register", {"versions_url": args.versions_url, "token_a": args.token_a}
    )
    _out(
        args,
        {k: data[k] for k in ("key", "status", "version", "versions_url")}
        if not args.json
        else data,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = client_from_args(args).get("/api/partners")
    if args.json:
        print_json(rows)
        return 0
    table = []
    for r in rows:
        last = r.get("last_sync") or {}
        table.append(
            {
                "key": r["key"],
                "status": r["status"],
                "initiated_by": r["initiated_by"],
                "version": r.get("version") or "",
                "last_sync": f"{last.get('status', '')} {last.get('tokens_seen', '')}".strip(),
            }
        )
    print_table(table, ["key", "status", "initiated_by", "version", "last_sync"])
    return 0


def _show(args: argparse.Namespace) -> int:
    data = client_from_args(args).get(f"/api/partners/{quote(args.key)}")
    if args.json:
        print_json(data)
        return 0
    runs = data.pop("sync_runs", [])
    data.pop("roles", None)
    data["endpoints"] = ", ".join(
        f"{e['identifier']}:{e['role']}" for e in data.get("endpoints", [])
    )
    print_fields(data)
    if runs:
        print("\ntoken sync runs:")
        print_table(
            runs,
            [
                "id",
                "kind",
                "status",
                "started_at",
                "finished_at",
                "pages",
                "tokens_seen",
                "tokens_invalid",
                "tokens_removed",
                "error",
            ],
        )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(f"/api/partners/{quote(args.key)}/rotate")
    _out(args, {k: data[k] for k in ("key", "status", "updated_at")} if not args.json else data)
    return 0


def _unregister(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(f"/api/partners/{quote(args.key)}/unregister")
    if args.json:
        print_json(data)
    else:
        print(f"{data['partner']['key']}: {data['partner']['status']}")
        if data.get("remote_error"):
            print(f"warning: the partner was not told: {data['remote_error']}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    body = {"partner": args.partner, "incremental": args.incremental, "wait": args.wait}
    data = client_from_args(args).post("/api/tokens/sync", body)
    if args.json:
        print_json(data)
    elif "started" in data:
        print(
            "started: "
            + (", ".join(data["started"]) or "(no registered partner with a token list)")
        )
    else:
        print_table(
            data["runs"],
            ["partner", "kind", "status", "pages", "tokens_seen", "tokens_removed", "error"],
        )
    failed = any(r.get("status") == "failed" for r in data.get("runs", []))
    return 1 if failed else 0
