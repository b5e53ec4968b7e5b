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

# Every integer field of a charge-point-initiated 1.6 request (all at the top level).
INTEGER_FIELDS: dict[str, tuple[str, ...]] = {
    "StartTransaction": ("connectorId", "meterStart", "reservationId"),
    "StopTransaction": ("transactionId", "meterStop"),
    "MeterValues": ("connectorId", "transactionId"),
    "StatusNotification": ("connectorId",),
}


def unstorable_integers(action: str, p: dict[str, Any]) -> dict[str, str]:
    """The integer fields of ``p`` beyond the signed 64-bit range, as exact decimal text.

    Why decided here, at the edge: past this point every layer assumes a storable
    integer, and a value it cannot bind surfaced as an OverflowError deep in the store,
    answered InternalError. Every other action refuses such a value
    (PropertyConstraintViolation); a StopTransaction is kept with the text (see
    :func:`transaction_stop`).
    """
    names = INTEGER_FIELDS.get(action)
    if names is None:
        return {}
    out = {}
    for name in names:
        value = p.get(name)
        if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            out[name] = str(value)
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
    raw = unstorable_integers("StopTransaction", p)
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
