"""Property-based fuzzing of the OCPP 1.6J frame path, over a real socket to a real server.

Payloads are generated from the 1.6 JSON schemas shipped in the ``ocpp`` package (every
charger-initiated action), then made hostile: integers at and far beyond 64 bits,
timestamps at the edges of the calendar, arbitrary text; besides those, frames of every
wrong shape. The properties: every CALL is answered, with a CALLRESULT or a CALLERROR
that is not InternalError (reserved for our own bugs), and the connection and the
server stay up (each example ends with a probe CALL answered on the same socket).

Example counts: ``HYPOTHESIS_PROFILE=ci`` (the default, inside ``make test``) keeps the
suite fast; ``make fuzz`` runs ``HYPOTHESIS_PROFILE=fuzz``, which tries many more.
Nothing is written to disk (no example database): a failure prints its minimal example.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from websockets.sync.client import ClientConnection, connect

from csms.ocpp16.actions import ALL_OCPP16, CHARGER_INITIATED
from csms.system import System
from tests.support.csms import ocpp_url, running_csms

# Examples per test by profile; set on these tests only (loading a hypothesis profile
# would change every other property-based test in the same run).
EXAMPLES = {"ci": 80, "fuzz": 2000}.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 80)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ACTIONS = sorted(CHARGER_INITIATED)
_SCHEMAS = importlib.resources.files("ocpp") / "v16" / "schemas"


def request_schema(action: str) -> dict[str, Any]:
    return orjson.loads((_SCHEMAS / f"{action}.json").read_bytes())  # type: ignore[no-any-return]


# Every integer property of each request schema (all at the top level in 1.6).
INTEGER_FIELDS = {
    action: tuple(
        name
        for name, prop in request_schema(action).get("properties", {}).items()
        if prop.get("type") == "integer"
    )
    for action in ACTIONS
}
VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    action: from_schema(request_schema(action)) for action in ACTIONS
}
HOSTILE_INTS = st.one_of(
    st.sampled_from(
        [
            *(0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1),
            *(2**64 - 1, 2**64, 10**30, -(10**30), 10**400, -(10**400)),
        ]
    ),
    st.integers(),
)
HOSTILE_TIMES = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "0001-01-01T00:00:00-14:00",
            "9999-12-31T23:59:59+14:00",
            "9999-12-31T23:59:59.999999999Z",
            "0001-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:60Z",
            "2024-06-01T12:00:00+23:59",
            "2024-06-01T12:00:00.123456789012-00:00",
        ]
    ),
    from_schema({"type": "string", "format": "date-time"}),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | HOSTILE_INTS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


@st.composite
def hostile_call(draw: st.DrawFn) -> tuple[str, Any]:
    """A schema-valid payload of one action, then some of its fields made hostile."""
    action = draw(st.sampled_from(ACTIONS))
    payload = draw(VALID[action])
    for name in INTEGER_FIELDS.get(action, ()):
        if draw(st.booleans()):
            payload[name] = draw(HOSTILE_INTS)
    if "timestamp" in payload and draw(st.booleans()):
        payload["timestamp"] = draw(HOSTILE_TIMES)
    for key in ("meterValue", "transactionData"):
        for value in payload.get(key) or []:
            if draw(st.booleans()):
                value["timestamp"] = draw(HOSTILE_TIMES)
    if "idTag" in payload and draw(st.booleans()):
        payload["idTag"] = draw(st.text(min_size=1, max_size=20))
    return action, payload


@st.composite
def wrong_call(draw: st.DrawFn) -> tuple[str, Any]:
    """A CALL of any action (known or not, either direction) with any JSON as payload."""
    action = draw(st.sampled_from(sorted(ALL_OCPP16)) | st.text(max_size=30))
    return action, draw(JSON)


WRONG_FRAMES = st.one_of(
    st.text(max_size=200),  # not JSON, or JSON of the wrong shape
    st.builds(json.dumps, JSON),
    st.builds(json.dumps, st.lists(JSON, max_size=6)),
    st.builds(lambda uid, rest: json.dumps([3, uid, *rest]), st.text(max_size=10), st.lists(JSON)),
    st.builds(lambda uid, rest: json.dumps([4, uid, *rest]), st.text(max_size=10), st.lists(JSON)),
    st.binary(max_size=200),  # a binary frame, as some firmwares send
)


class ServerThread:
    """The real CSMS on its own event loop in a thread, so that hypothesis (synchronous)
    can drive it over a real socket with a blocking client."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: System | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="csms-under-fuzz", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by the fixture
            self.error = exc
            self.ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        server = {"unknown_chargers": "accept", "ping_interval_s": 0}
        async with running_csms(self.tmp_path, server=server, log={"level": "warning"}) as app:
            self.app = app
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> System:
        self.thread.start()
        assert self.ready.wait(30), "the CSMS did not start"
        if self.error is not None:
            raise self.error
        assert self.app is not None
        return self.app

    def __exit__(self, *_: object) -> None:
        assert self.loop is not None and self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


@pytest.fixture(scope="module")
def csms_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with ServerThread(tmp_path_factory.mktemp("fuzz")) as app:
        yield app
        assert app.ocpp is not None
        assert app.ocpp.internal_errors == 0, "an InternalError was answered"


_ids = itertools.count()


class Charger:
    """A blocking OCPP-J client on one socket."""

    def __init__(self, app: System, cp_id: str) -> None:
        self.app = app
        self.ws: ClientConnection = connect(
            f"{ocpp_url(app)}/{cp_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            open_timeout=10,
            max_size=None,
            # No keepalive: its pings draw from the global ``random`` in the client's
            # thread while hypothesis generates, which hypothesis reports as misuse.
            ping_interval=None,
        ).__enter__()

    def send(self, frame: str | bytes) -> None:
        self.ws.send(frame)

    def until_answered(self, wanted: set[str]) -> dict[str, list[Any]]:
        """Read until every unique id in ``wanted`` is answered; every frame read on the
        way must be a CALLRESULT or a CALLERROR other than InternalError."""
        got: dict[str, list[Any]] = {}
        for _ in range(1000):  # bounded: each answer is one frame
            if wanted <= got.keys():
                return got
            frame = json.loads(self.ws.recv(timeout=10))
            assert isinstance(frame, list) and frame[0] in (3, 4), frame
            if frame[0] == 4:
                assert frame[2] != "InternalError", frame
            got[frame[1]] = frame
        raise AssertionError("too many frames without the answers wanted")

    def alive_after(self, uid: str | None = None) -> None:
        """The connection is still up and read in order: a probe CALL (an action no
        charger may send, answered at once without touching the store) is answered
        NotSupported, and so is ``uid`` (before or after it)."""
        probe = f"probe-{next(_ids)}"
        self.send(json.dumps([2, probe, "Reset", {"type": "Soft"}]))
        got = self.until_answered({probe} | ({uid} if uid else set()))
        assert got[probe][:3] == [4, probe, "NotSupported"], got[probe]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def charger(csms_app: System) -> Iterator[Charger]:
    cp = Charger(csms_app, "FUZZ1")
    yield cp
    cp.close()


def check_call(cp: Charger, action: str, payload: Any) -> None:
    uid = f"c-{next(_ids)}"
    try:
        text = json.dumps([2, uid, action, payload], allow_nan=False)
    except (TypeError, ValueError):  # nothing a charger could send
        return
    cp.send(text)
    cp.alive_after(uid)
    assert cp.app.ocpp is not None and cp.app.ocpp.internal_errors == 0


@FUZZ
@given(hostile_call())
def test_schema_generated_calls_with_hostile_values_are_answered(
    charger: Charger, call: tuple[str, Any]
) -> None:
    check_call(charger, *call)


@FUZZ
@given(wrong_call())
def test_calls_of_any_action_with_any_payload_are_answered(
    charger: Charger, call: tuple[str, Any]
) -> None:
    check_call(charger, *call)


@FUZZ
@given(WRONG_FRAMES)
def test_frames_of_any_shape_never_break_the_connection(
    charger: Charger, frame: str | bytes
) -> None:
    charger.send(frame)
    charger.alive_after()
    assert charger.app.ocpp is not None and charger.app.ocpp.internal_errors == 0
