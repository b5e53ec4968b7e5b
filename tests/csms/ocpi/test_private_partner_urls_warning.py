"""A start-up warning when partner URLs on private addresses are allowed on a reachable server."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from csms.config import OcpiConfig
from csms.ocpi.runtime import warn_private_partner_urls
from tests.support.csms import make_config


def test_code_default_is_off() -> None:
    assert OcpiConfig().allow_private_partner_urls is False


def test_warns_only_when_on_and_listening_beyond_loopback(tmp_path: Path) -> None:
    cases = [
        ({"host": "0.0.0.0", "allow_private_partner_urls": True}, True),
        ({"host": "192.0.2.10", "allow_private_partner_urls": True}, True),
        ({"host": "127.0.0.1", "allow_private_partner_urls": True}, False),
        ({"host": "::1", "allow_private_partner_urls": True}, False),
        ({"host": "localhost", "allow_private_partner_urls": True}, False),
        ({"host": "0.0.0.0", "allow_private_partner_urls": False}, False),
    ]
    for ocpi, warned in cases:
        config = make_config(tmp_path, ocpi=ocpi)
        with capture_logs() as logs:
            assert warn_private_partner_urls(config) is warned, ocpi
        events = [e for e in logs if e["event"] == "ocpi.private_partner_urls_allowed"]
        assert len(events) == (1 if warned else 0), ocpi
        if warned:
            assert events[0]["log_level"] == "warning"


def test_shipped_config_turns_it_on_for_one_machine_setups() -> None:
    text = (Path(__file__).parents[3] / "config.toml").read_text()
    assert "\nallow_private_partner_urls = true" in text
