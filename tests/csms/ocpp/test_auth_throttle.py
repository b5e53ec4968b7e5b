"""Password guessing at the OCPP handshake is throttled before it costs an scrypt.

Failed HTTP Basic attempts are counted per charge point id and per source address
([security] keys); past a limit the handshake is answered 429 with Retry-After and the
password is not checked at all. A charger whose password was verified before still
connects (the verified-cache decides without scrypt), and the tables stay bounded.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from csms.ocpp16.throttle import AuthThrottle, FailureWindow, ThrottleLimits
from csms.store import passwords
from csms.store.chargers import ChargerRepo
from csms.store.db import Database
from tests.csms.ocpp.conftest import Connect, StartServer


@pytest.fixture
def scrypt_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every real password check (scrypt) the server runs, by the password presented."""
    runs: list[str] = []
    real = passwords.verify_password

    def counting(password: str, stored: str) -> bool:
        runs.append(password)
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return runs


async def attempt(port: int, cp_id: str, password: str) -> tuple[int, str | None]:
    """One handshake; (HTTP status, Retry-After) of a refusal, (101, None) when connected."""
    token = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
    try:
        ws = await connect(
            f"ws://127.0.0.1:{port}/ocpp/{cp_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
            open_timeout=5,
        )
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.headers.get("Retry-After")
    await ws.close()
    return 101, None


async def test_a_burst_of_wrong_passwords_is_throttled_without_scrypt(
    db: Database, start_server: StartServer, scrypt_runs: list[str]
) -> None:
    await ChargerRepo(db).add("SECURE1", password="right-one")
    await ChargerRepo(db).add("SECURE2", password="other-right")
    srv = await start_server(
        security={"auth_failures_per_charger": 5, "auth_failures_per_address": 100}
    )
    assert await attempt(srv.port, "SECURE1", "right-one") == (101, None)  # verified once
    assert scrypt_runs == ["right-one"]
    scrypt_runs.clear()

    statuses = [(await attempt(srv.port, "SECURE1", f"guess-{i}"))[0] for i in range(5)]
    # A different wrong password for a charger verified before is known wrong for free.
    assert statuses == [401] * 5 and scrypt_runs == []
    srv.passwords._verified.clear()  # as after a restart: every guess would need scrypt
    assert (await attempt(srv.port, "SECURE1", "guess-x"))[0] == 429
    statuses, retry = [], set()
    for i in range(30):
        status, retry_after = await attempt(srv.port, "SECURE1", f"again-{i}")
        statuses.append(status)
        retry.add(retry_after)
    assert statuses == [429] * 30
    assert all(r is not None and 1 <= int(r) <= 60 for r in retry)
    assert scrypt_runs == []  # not one password checked once the limit was hit

    # Another charger from the same address is not locked out by the guessing.
    assert await attempt(srv.port, "SECURE2", "other-right") == (101, None)
    assert scrypt_runs == ["other-right"]


async def test_a_verified_charger_connects_while_its_id_is_throttled(
    db: Database, start_server: StartServer, connect_cp: Connect, scrypt_runs: list[str]
) -> None:
    await ChargerRepo(db).add("SECURE1", password="right-one")
    srv = await start_server(security={"auth_failures_per_charger": 3})
    cp = await connect_cp(srv, "SECURE1", password="right-one")
    await cp.ws.close()
    srv.passwords._verified.clear()
    for i in range(3):
        assert (await attempt(srv.port, "SECURE1", f"guess-{i}"))[0] == 401
    assert (await attempt(srv.port, "SECURE1", "guess-3"))[0] == 429
    runs = len(scrypt_runs)
    # Not verified since the cache was cleared: the right password is throttled too...
    assert (await attempt(srv.port, "SECURE1", "right-one"))[0] == 429
    assert len(scrypt_runs) == runs
    # ...but once verified (e.g. before the guessing began), it always connects.
    srv.passwords._verified["SECURE1"] = (
        (await db.fetchone("SELECT password_hash FROM chargers WHERE id = 'SECURE1'"))[0],
        srv.passwords._tag("right-one"),
    )
    cp = await connect_cp(srv, "SECURE1", password="right-one")
    assert (await cp.boot())["status"] == "Accepted"
    assert len(scrypt_runs) == runs


async def test_guessing_many_ids_from_one_address_is_throttled(
    db: Database, start_server: StartServer, scrypt_runs: list[str]
) -> None:
    for i in range(12):
        await ChargerRepo(db).add(f"SEC{i}", password=f"pw-{i}")
    srv = await start_server(
        security={"auth_failures_per_charger": 100, "auth_failures_per_address": 4}
    )
    statuses = [(await attempt(srv.port, f"SEC{i}", "wrong"))[0] for i in range(12)]
    assert statuses == [401] * 4 + [429] * 8
    assert len(scrypt_runs) == 4


async def test_the_throttle_tables_stay_bounded(
    db: Database, start_server: StartServer, scrypt_runs: list[str]
) -> None:
    for i in range(16):
        await ChargerRepo(db).add(f"SEC{i}", password=f"pw-{i}")
    srv = await start_server(
        security={
            "auth_failures_per_charger": 2,
            "auth_failures_per_address": 1000,
            "auth_throttle_entries": 8,
        }
    )
    for i in range(16):
        assert (await attempt(srv.port, f"SEC{i}", "wrong"))[0] == 401
    assert srv.throttle is not None
    assert len(srv.throttle.chargers) == 8 and len(srv.throttle.addresses) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_count_within_the_window_and_then_start_over() -> None:
    clock = Clock()
    throttle = AuthThrottle(ThrottleLimits(3, 10, 60.0, 100), clock)
    for _ in range(3):
        assert throttle.retry_after("CP1", "10.0.0.1") is None
        throttle.failed("CP1", "10.0.0.1")
    assert throttle.retry_after("CP1", "10.0.0.1") == 60.0
    assert throttle.retry_after("CP1", "10.0.0.2") == 60.0  # the id is limited anywhere
    assert throttle.retry_after("CP2", "10.0.0.1") is None  # the address is not yet
    clock.now += 45
    assert throttle.retry_after("CP1", "10.0.0.1") == 15.0
    clock.now += 15
    assert throttle.retry_after("CP1", "10.0.0.1") is None
    assert len(throttle.chargers) == 0  # expired entries are dropped when seen


def test_success_forgets_the_id_but_not_the_address() -> None:
    clock = Clock()
    throttle = AuthThrottle(ThrottleLimits(2, 2, 60.0, 100), clock)
    throttle.failed("CP1", "10.0.0.1")
    throttle.failed("CP1", "10.0.0.1")
    throttle.succeeded("CP1")
    assert throttle.retry_after("CP1", "10.0.0.9") is None
    assert throttle.retry_after("CP9", "10.0.0.1") == 60.0


def test_a_window_forgets_the_least_recent_keys_first() -> None:
    window = FailureWindow(limit=1, window_s=60.0, max_entries=3)
    for key in "abcd":
        window.failed(key, 0.0)
    window.failed("b", 1.0)
    window.failed("e", 1.0)
    assert len(window) == 3
    assert window.retry_after("a", 2.0) is None and window.retry_after("c", 2.0) is None
    assert window.retry_after("b", 2.0) is not None


async def test_concurrent_guesses_cannot_slip_past_the_limit_while_scrypt_runs(
    db: Database, start_server: StartServer, scrypt_runs: list[str]
) -> None:
    await ChargerRepo(db).add("SECURE1", password="right-one")
    srv = await start_server(
        security={"auth_failures_per_charger": 3, "auth_failures_per_address": 100}
    )
    statuses = await asyncio.gather(
        *(attempt(srv.port, "SECURE1", f"guess-{i}") for i in range(20))
    )
    assert sorted(s for s, _ in statuses) == [401] * 3 + [429] * 17
    assert len(scrypt_runs) == 3


def test_a_success_takes_back_the_failure_counted_ahead() -> None:
    clock = Clock()
    throttle = AuthThrottle(ThrottleLimits(5, 2, 60.0, 100), clock)
    throttle.failed("CP1", "10.0.0.1")  # counted ahead of a check...
    throttle.retract("10.0.0.1")  # ...that succeeded
    throttle.succeeded("CP1")
    throttle.failed("CP2", "10.0.0.1")
    assert throttle.retry_after("CP3", "10.0.0.1") is None  # one failure, not two
