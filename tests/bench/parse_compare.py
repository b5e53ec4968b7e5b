"""Parsing and validating an OCPP CALL: what the CSMS does (orjson + fastjsonschema,
compiled from the ``ocpp`` package's schemas) against msgspec's typed decoding (parse and
validate in one pass), per frame, in one process.

Why: per-message parsing and validation is where a hand-written fast path would be
tempting; this measures the well-kept library first. msgspec is not a dependency of the
project: ``pip install msgspec`` to run this (``python -m tests.bench.parse_compare``).
Both sides check the same rules for these frames (types, required keys, idTag length 20,
the status and error code enumerations); msgspec's structs are written here for the two
actions measured only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec

from csms.ocpp16 import framing, schemas

AUTHORIZE = b'[2,"1234567","Authorize",{"idTag":"HIT00001"}]'
STATUS = (
    b'[2,"1234568","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
    b'"status":"Available","timestamp":"2026-12-07T10:00:00Z"}]'
)


class AuthorizeReq(msgspec.Struct, forbid_unknown_fields=True):
    idTag: Annotated[str, msgspec.Meta(max_length=20)]


ErrorCode = Literal[
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
    "InternalError", "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure",
    "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure",
    "UnderVoltage", "OverVoltage", "WeakSignal",
]  # fmt: skip
Status = Literal[
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
    "Reserved", "Unavailable", "Faulted",
]  # fmt: skip


class StatusReq(msgspec.Struct, forbid_unknown_fields=True):
    connectorId: int
    errorCode: ErrorCode
    status: Status
    info: str | None = None
    timestamp: str | None = None
    vendorId: str | None = None
    vendorErrorCode: str | None = None


def per_call_us(fn: Callable[[], object], n: int = 200_000) -> float:
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6


def current(raw: bytes) -> Callable[[], object]:
    def run() -> object:
        frame = framing.parse(raw)
        assert isinstance(frame, framing.Call)
        schemas.validate_request(frame.action, frame.payload)
        return frame

    return run


def typed(raw: bytes, payload_type: type) -> Callable[[], object]:
    # The action is only known after reading the frame: a generic decode of the envelope
    # (payload kept raw), then the typed decode of the payload, as a server must do.
    envelope = msgspec.json.Decoder(tuple[int, str, str, msgspec.Raw])
    decoders = {raw.split(b'"')[3].decode(): msgspec.json.Decoder(payload_type)}

    def run() -> object:
        _kind, _uid, action, body = envelope.decode(raw)
        return decoders[action].decode(body)

    return run


def main() -> None:
    rows = [("Authorize", AUTHORIZE, AuthorizeReq), ("StatusNotification", STATUS, StatusReq)]
    print(f"msgspec {msgspec.__version__}")
    print("| frame | orjson + fastjsonschema µs | msgspec typed µs | ratio |")
    print("|---|---:|---:|---:|")
    for name, raw, kind in rows:
        a = per_call_us(current(raw))
        b = per_call_us(typed(raw, kind))
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
