"""The ``csms`` CLI against a running System, run in-process (in a thread: it blocks)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from csms.cli import main
from csms.cli.calls import COMMANDS, build_payload
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN, admin_url, ocpp_url

# The server under test runs in this process and, with structlog unconfigured, prints its
# log lines to the same stdout the CLI writes to; they are not CLI output.
_LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


def _cli_output(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not _LOG_LINE.match(line))


class Cli:
    def __init__(self, app: System, capsys: pytest.CaptureFixture[str]) -> None:
        self.conn = ["--admin-url", admin_url(app), "--admin-token", ADMIN_TOKEN]
        self.capsys = capsys

    async def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        # connection flags go after the command path (argparse leaf options)
        code = await asyncio.to_thread(main, [*argv, *self.conn])
        out, err = self.capsys.readouterr()
        return code, _cli_output(out), err

    async def json(self, *argv: str) -> Any:
        code, out, err = await self.run(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(csms_app: System, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(csms_app, capsys)


async def test_chargers_add_list_show_remove(cli: Cli) -> None:
    code, out, _ = await cli.run("chargers", "add", "CP-A", "--password", "pw-0123456789abcdef")
    assert code == 0
    assert "CP-A added" in out
    await cli.run("chargers", "add", "CP-B")

    code, out, _ = await cli.run("chargers", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "CONNECTED", "REGISTRATION_STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["CP-A", "CP-B"]

    data = await cli.json("chargers", "list")
    assert [(c["id"], c["has_password"]) for c in data["chargers"]] == [
        ("CP-A", True),
        ("CP-B", False),
    ]

    code, out, _ = await cli.run("chargers", "show", "CP-B")
    assert code == 0
    assert "registration_status" in out and "Accepted" in out

    code, out, _ = await cli.run("chargers", "remove", "CP-A")
    assert code == 0
    assert [c["id"] for c in (await cli.json("chargers", "list"))["chargers"]] == ["CP-B"]


async def test_errors_exit_nonzero_with_the_api_message(cli: Cli) -> None:
    code, out, err = await cli.run("chargers", "remove", "NOPE")
    assert code == 1
    assert out == ""
    assert "no charger 'NOPE'" in err and "404" in err

    code, _, err = await cli.run("chargers", "add", "bad/id")
    assert code == 1
    assert "'id'" in err

    code, _, err = await cli.run("tokens", "add", "T1", "--expiry", "soon")
    assert code == 1
    assert "expiry_date" in err

    code, _, err = await cli.run("call", "CP-X", "Reset", "{broken")
    assert code == 2
    assert "invalid JSON" in err


async def test_wrong_token_and_unreachable_server(
    csms_app: System, capsys: pytest.CaptureFixture[str]
) -> None:
    url = admin_url(csms_app)
    code = await asyncio.to_thread(
        main, ["chargers", "list", "--admin-url", url, "--admin-token", "nope"]
    )
    assert code == 1
    assert "401" in capsys.readouterr().err

    code = await asyncio.to_thread(
        main, ["chargers", "list", "--admin-url", "http://127.0.0.1:9", "--admin-token", "x"]
    )
    assert code == 1
    assert "cannot reach the admin API" in capsys.readouterr().err


async def test_token_and_url_come_from_the_config_file(
    csms_app: System, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(
        f'[admin]\nhost = "0.0.0.0"\nport = {csms_app.admin_port}\ntoken = "{ADMIN_TOKEN}"\n'
    )
    code = await asyncio.to_thread(main, ["tokens", "list", "--config", str(cfg)])
    assert code == 0, capsys.readouterr().err
    assert "ID_TAG" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text("[admin]\nport = 'x'\n")
    code = await asyncio.to_thread(main, ["tokens", "list", "--config", str(bad)])
    assert code == 2
    assert "config error: admin.port" in capsys.readouterr().err


async def test_tokens_and_transactions(cli: Cli) -> None:
    code, out, _ = await cli.run(
        "tokens", "add", "TAGX", "--expiry", "2031-01-01T00:00:00Z", "--parent", "GRP"
    )
    assert code == 0
    code, out, _ = await cli.run("tokens", "block", "tagx")
    assert code == 0
    assert "Blocked" in out
    tokens = (await cli.json("tokens", "list"))["tokens"]
    assert tokens == [
        {
            **tokens[0],
            "id_tag": "TAGX",
            "status": "Blocked",
            "expiry_date": "2031-01-01T00:00:00Z",
            "parent_id_tag": "GRP",
        }
    ]
    assert (await cli.json("transactions", "list", "--active"))["transactions"] == []


async def test_call_commands_reach_the_simulator(csms_app: System, cli: Cli) -> None:
    await cli.run("chargers", "add", "SIMC")
    await cli.run("tokens", "add", "TAG9")
    async with SimulatedChargePoint.connect(
        ocpp_url(csms_app), "SIMC", heartbeat=False, step_delay_s=0.0
    ) as cp:
        await cp.boot()
        code, out, err = await cli.run(
            "remote-start", "SIMC", "--id-tag", "TAG9", "--connector", "1"
        )
        assert code == 0, err
        assert out.strip() == "SIMC RemoteStartTransaction: Accepted"
        await cp.wait_until(lambda: 1 in cp.transactions and cp.transactions[1].id is not None)
        tx_id = cp.transactions[1].id

        active = await cli.json("transactions", "list", "--active", "--charger", "SIMC")
        assert [t["id"] for t in active["transactions"]] == [tx_id]

        code, out, err = await cli.run("remote-stop", "SIMC", "--transaction", str(tx_id))
        assert code == 0, err
        assert ("RemoteStopTransaction", {"transactionId": tx_id}) in cp.received_calls

        answer = await cli.json("get-configuration", "SIMC", "--key", "HeartbeatInterval")
        assert [k["key"] for k in answer["configurationKey"]] == ["HeartbeatInterval"]

        await cli.run(
            "send-local-list",
            "SIMC",
            "--version",
            "4",
            "--update-type",
            "Full",
            "--id-tag",
            "A1",
            "--id-tag",
            "A2",
        )
        assert cp.local_list_version == 4
        assert sorted(cp.local_list) == ["A1", "A2"]

        code, out, err = await cli.run(
            "call",
            "SIMC",
            "ChangeConfiguration",
            '{"key": "MeterValueSampleInterval", "value": "15"}',
        )
        assert code == 0, err
        assert cp.received_calls[-1] == (
            "ChangeConfiguration",
            {"key": "MeterValueSampleInterval", "value": "15"},
        )

        code, _, err = await cli.run("reset", "NOT-THERE")
        assert code == 1
        assert "unknown_charger" in err


def _args(name: str, argv: list[str]) -> Any:
    from csms.cli import build_parser

    return build_parser().parse_args([name, "CP", *argv])


@pytest.mark.parametrize(
    ("name", "argv", "payload"),
    [
        ("reset", [], {"type": "Soft"}),
        (
            "change-availability",
            ["--connector", "0", "--type", "Inoperative"],
            {"connectorId": 0, "type": "Inoperative"},
        ),
        (
            "trigger-message",
            ["--message", "StatusNotification", "--connector", "1"],
            {"requestedMessage": "StatusNotification", "connectorId": 1},
        ),
        (
            "data-transfer",
            ["--vendor", "V", "--message-id", "M", "--data", "D"],
            {"vendorId": "V", "messageId": "M", "data": "D"},
        ),
        (
            "send-local-list",
            ["--version", "2", "--update-type", "Differential", "--remove", "OLD"],
            {
                "listVersion": 2,
                "updateType": "Differential",
                "localAuthorizationList": [{"idTag": "OLD"}],
            },
        ),
        (
            "reserve-now",
            [
                "--connector",
                "1",
                "--id-tag",
                "T",
                "--expiry",
                "2030-01-01T00:00:00Z",
                "--reservation-id",
                "5",
            ],
            {
                "connectorId": 1,
                "idTag": "T",
                "expiryDate": "2030-01-01T00:00:00Z",
                "reservationId": 5,
            },
        ),
        (
            "set-charging-profile",
            ["--connector", "1", "--profile-json", '{"chargingProfileId": 1}'],
            {"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1}},
        ),
        (
            "get-composite-schedule",
            ["--connector", "1", "--duration", "60", "--rate-unit", "W"],
            {"connectorId": 1, "duration": 60, "chargingRateUnit": "W"},
        ),
        (
            "update-firmware",
            [
                "--location",
                "http://x/f",
                "--retrieve-date",
                "2030-01-01T00:00:00Z",
                "--retries",
                "3",
            ],
            {"location": "http://x/f", "retrieveDate": "2030-01-01T00:00:00Z", "retries": 3},
        ),
        ("get-diagnostics", ["--location", "ftp://x/"], {"location": "ftp://x/"}),
        (
            "clear-charging-profile",
            ["--purpose", "TxProfile"],
            {"chargingProfilePurpose": "TxProfile"},
        ),
    ],
)
def test_flags_build_the_wire_payload(name: str, argv: list[str], payload: dict[str, Any]) -> None:
    cmd = next(c for c in COMMANDS if c.name == name)
    assert build_payload(cmd, _args(name, argv)) == payload


def test_profile_json_may_be_a_file(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('{"chargingProfileId": 3}')
    cmd = next(c for c in COMMANDS if c.name == "set-charging-profile")
    args = _args("set-charging-profile", ["--connector", "2", "--profile-json", str(f)])
    assert build_payload(cmd, args)["csChargingProfiles"] == {"chargingProfileId": 3}
