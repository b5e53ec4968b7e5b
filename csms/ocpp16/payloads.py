"""Charger payloads (schema-valid, camelCase as on the wire) → the domain records the
store takes.

Why here: this adapter is the one place that knows OCPP 1.6's field names; the store
and the event consumers see :mod:`csms.domain` records only. Each conversion is one
small object per message, cheap beside the message's own store transaction.
"""

from __future__ import annotations

from typing import Any

from csms.domain.chargers import BootInfo, StatusReport
from csms.domain.transactions import MeterSample, TransactionStop

# What the store's integer columns hold (SQLite INTEGER: signed 64 bits). The 1.6 schemas
# say only "integer", so a charger may send more; see :func:`unstorable_integers`.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def unstorable_integers(p: Any) -> dict[str, str]:
    """Every integer in ``p`` beyond the signed 64-bit range, by path (a top-level field
    by its name: ``transactionId``; deeper ones as ``a.b[0].c``), as exact decimal text.

    Why decided here, at the edge: past this point every layer assumes a storable
    integer, and a value it cannot bind surfaced as an OverflowError deep in the store,
    answered InternalError. Every other action refuses such a value
    (PropertyConstraintViolation); a StopTransaction is kept with the text (see
    :func:`transaction_stop`).
    """
    out: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("", p)]
    while stack:
        path, value = stack.pop()
        if type(value) is int:
            if not INT64_MIN <= value <= INT64_MAX:
                out[path] = str(value)
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
    return out


def boot_info(p: dict[str, Any]) -> BootInfo:
    return BootInfo(
        vendor=p["chargePointVendor"],
        model=p["chargePointModel"],
        serial_number=p.get("chargePointSerialNumber"),
        charge_box_serial=p.get("chargeBoxSerialNumber"),
        firmware_version=p.get("firmwareVersion"),
        iccid=p.get("iccid"),
        imsi=p.get("imsi"),
        meter_type=p.get("meterType"),
        meter_serial=p.get("meterSerialNumber"),
        message=p,
    )


def status_report(p: dict[str, Any]) -> StatusReport:
    return StatusReport(
        connector_id=int(p["connectorId"]),
        status=p["status"],
        error_code=p["errorCode"],
        info=p.get("info"),
        vendor_id=p.get("vendorId"),
        vendor_error_code=p.get("vendorErrorCode"),
        status_timestamp=p.get("timestamp"),
    )


def transaction_stop(p: dict[str, Any]) -> TransactionStop:
    """The stop; an integer no column holds (:func:`unstorable_integers`, which the
    caller keeps beside it as text) stands as 0: no transaction has id 0 (ids count
    from 1), so a stop naming an unstorable id is an orphan."""
    raw = unstorable_integers(p)
    return TransactionStop(
        transaction_id=0 if "transactionId" in raw else int(p["transactionId"]),
        meter_stop=0 if "meterStop" in raw else int(p["meterStop"]),
        timestamp=p["timestamp"],
        reason=p.get("reason"),
        id_tag=p.get("idTag"),
        transaction_data=p.get("transactionData"),
    )


def samples_of(meter_value: list[dict[str, Any]]) -> list[MeterSample]:
    """Flatten a ``meterValue`` array into samples, one per sampled value."""
    out = []
    for mv in meter_value:
        ts = mv["timestamp"]
        for sv in mv["sampledValue"]:
            out.append(
                MeterSample(
                    ts,
                    sv["value"],
                    sv.get("context"),
                    sv.get("format"),
                    sv.get("measurand"),
                    sv.get("phase"),
                    sv.get("location"),
                    sv.get("unit"),
                )
            )
    return out
