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
    return TransactionStop(
        transaction_id=int(p["transactionId"]),
        meter_stop=int(p["meterStop"]),
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
