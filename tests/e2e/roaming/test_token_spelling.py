"""The token uid in Sessions, CDRs and the authorize URL is spelt as the eMSP spells it.

uids match case-insensitively, but an eMSP may key its own records by the exact string;
the charger's spelling (here upper case) is used only when nothing else is known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.roaming.conftest import World

EMSP_UID = "0a1b2c3d"
CHARGER_UID = "0A1B2C3D"


async def _charge(w: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """One charge presented by the charger as CHARGER_UID; the Session PUT and the CDR."""
    emsp = w.emsp
    async with w.charger() as cp:
        auth = await cp.authorize(CHARGER_UID)
        assert auth["idTagInfo"]["status"] == "Accepted"
        start = await cp.start_transaction(1, CHARGER_UID, meter_start=0, meter_loop=False)
        assert start["idTagInfo"]["status"] == "Accepted"
        await cp.stop_transaction(1, meter_stop=2000, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
    [put] = [e[2] for e in emsp.session_events if e[0] == "PUT"]
    [cdr] = list(emsp.cdrs.values())
    return put, cdr


def _authorize_paths(w: World) -> list[str]:
    return [r.path for r in w.emsp.requests if r.path.endswith("/authorize")]


async def test_a_pushed_token_keeps_the_emsp_spelling_in_session_and_cdr(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w:
        w.emsp.add_token(EMSP_UID, whitelist="ALWAYS")
        await w.emsp.push_tokens()
        put, cdr = await _charge(w)
        assert put["cdr_token"]["uid"] == EMSP_UID
        assert cdr["cdr_token"]["uid"] == EMSP_UID
        assert _authorize_paths(w) == []  # ALWAYS: decided from the pushed token


async def test_real_time_authorize_of_a_known_token_asks_with_the_emsp_spelling(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w:
        w.emsp.add_token(EMSP_UID, whitelist="NEVER")  # pushed, but real time only
        await w.emsp.push_tokens()
        put, cdr = await _charge(w)
        paths = _authorize_paths(w)
        assert paths and all(f"/{EMSP_UID}/authorize" in p for p in paths), paths
        assert put["cdr_token"]["uid"] == EMSP_UID
        assert cdr["cdr_token"]["uid"] == EMSP_UID


async def test_an_unknown_token_is_asked_as_the_charger_spelt_it_and_billed_as_answered(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w:
        w.emsp.add_token(EMSP_UID, whitelist="NEVER")  # the eMSP's only: never pushed to us
        put, cdr = await _charge(w)
        paths = _authorize_paths(w)
        assert paths and all(f"/{CHARGER_UID}/authorize" in p for p in paths), paths
        assert put["cdr_token"]["uid"] == EMSP_UID  # the answer's token
        assert cdr["cdr_token"]["uid"] == EMSP_UID
