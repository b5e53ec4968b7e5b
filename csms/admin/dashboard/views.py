"""Pure view models of the dashboard pages: records in, plain dicts out, no I/O.

Why pure: what an operator sees (masked idTags, energy so far, the eMSP error rate,
which actions a charger page offers) is decided here and tested without a server; the
handlers in :mod:`csms.admin.dashboard.pages` only fetch and render.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from csms.domain.chargers import Charger
from csms.domain.transactions import TransactionRecord
from csms.logs import mask
from csms.store.dashboard import DecisionCount

from .ports import FINISHED_OUTBOX_STATUSES, Delivery


@dataclass(frozen=True, slots=True)
class Field:
    """One input of an action form; ``kind`` tells the page script how to encode it."""

    name: str
    label: str
    kind: str = "str"  # str | int | list (comma-separated strings)
    required: bool = False
    choices: tuple[str, ...] = ()
    value: str = ""


@dataclass(frozen=True, slots=True)
class ActionForm:
    action: str
    title: str
    fields: tuple[Field, ...]


# The charger page's actions: each posts its fields as the OCPP payload to the admin
# API's ``/api/chargers/{id}/calls/{action}`` (schema checks and the gateway live there).
ACTION_FORMS: tuple[ActionForm, ...] = (
    ActionForm(
        "RemoteStartTransaction",
        "Remote start",
        (
            Field("idTag", "idTag", required=True),
            Field("connectorId", "Connector", "int", value="1"),
        ),
    ),
    ActionForm(
        "RemoteStopTransaction",
        "Remote stop",
        (Field("transactionId", "Transaction id", "int", required=True),),
    ),
    ActionForm("Reset", "Reset", (Field("type", "Type", choices=("Soft", "Hard")),)),
    ActionForm(
        "UnlockConnector", "Unlock", (Field("connectorId", "Connector", "int", required=True),)
    ),
    ActionForm(
        "TriggerMessage",
        "Trigger message",
        (
            Field(
                "requestedMessage",
                "Message",
                choices=(
                    "StatusNotification",
                    "Heartbeat",
                    "BootNotification",
                    "MeterValues",
                    "FirmwareStatusNotification",
                    "DiagnosticsStatusNotification",
                ),
            ),
            Field("connectorId", "Connector (optional)", "int"),
        ),
    ),
    ActionForm(
        "ChangeConfiguration",
        "Change configuration",
        (Field("key", "Key", required=True), Field("value", "Value", required=True)),
    ),
    ActionForm(
        "GetConfiguration",
        "Get configuration",
        (Field("key", "Keys (comma-separated, empty: all)", "list"),),
    ),
)


def energy_wh(txn: TransactionRecord, reading: tuple[str, str | None] | None) -> float | None:
    """Energy charged: ``meter_stop - meter_start`` once stopped, else the newest register
    reading minus ``meter_start`` (None when nothing was read yet)."""
    if txn.meter_stop is not None:
        return float(txn.meter_stop - txn.meter_start)
    if reading is None:
        return None
    value, unit = reading
    try:
        wh = float(value) * (1000.0 if unit == "kWh" else 1.0)
    except ValueError:
        return None
    return max(0.0, wh - txn.meter_start)


def kwh(wh: float | None) -> str:
    return "–" if wh is None else f"{wh / 1000:.3f} kWh"


def transaction_row(
    txn: TransactionRecord,
    reading: tuple[str, str | None] | None,
    delivery: Delivery | None,
) -> dict[str, Any]:
    energy = energy_wh(txn, reading)
    return {
        "id": txn.id,
        "active": txn.active,
        "charger_id": txn.charger_id,
        "connector_id": txn.connector_id,
        "id_tag": mask(txn.id_tag),
        "start": txn.start_timestamp,
        "stop": txn.stop_timestamp,
        "stop_reason": txn.stop_reason,
        "energy_wh": energy,
        "energy": kwh(energy),
        "partner": txn.partner_id,
        "authorization_reference": txn.authorization_reference,
        "session": _session_state(delivery),
        "cdr": _cdr_state(delivery),
    }


def _session_state(delivery: Delivery | None) -> str | None:
    if delivery is None or delivery.session_id is None:
        return None
    state = f"{delivery.session_status or '?'} · {delivery.session_delivery or 'not queued'}"
    return (
        state if not delivery.session_waiting_for else f"{state} · {delivery.session_waiting_for}"
    )


def _cdr_state(delivery: Delivery | None) -> str | None:
    """The CDR's delivery; a CDR held until a location is known has no CDR row yet, only
    its held push."""
    if delivery is None:
        return None
    if delivery.cdr_delivery is not None:
        return delivery.cdr_delivery
    return "not queued" if delivery.cdr_id is not None else None


def charger_row(
    charger: Charger,
    connected: bool,
    connectors: Sequence[Mapping[str, Any]],
    node: str | None = None,
) -> dict[str, Any]:
    return {
        "id": charger.id,
        "connected": connected,
        "node": node,
        "registration_status": charger.registration_status,
        "vendor": charger.vendor,
        "model": charger.model,
        "firmware": charger.firmware_version,
        "last_heartbeat": charger.last_heartbeat_at,
        "last_boot": charger.last_boot_at,
        "connectors": [
            {
                "id": c["connector_id"],
                "status": c["status"],
                "error_code": c["error_code"],
                "since": c["status_timestamp"] or c["received_at"],
            }
            for c in connectors
        ],
    }


@dataclass(frozen=True, slots=True)
class DecisionSummary:
    """The last hour of decisions: per source, and the eMSP error rate."""

    by_source: dict[str, dict[str, int]]  # source -> status -> count
    total: int
    emsp_queries: int  # decisions that needed the eMSP: remote answers and fallbacks
    emsp_failures: int  # of those, the eMSP did not answer (the fallback rule decided)

    @property
    def emsp_error_rate(self) -> float | None:
        return None if not self.emsp_queries else self.emsp_failures / self.emsp_queries


def summarize_decisions(counts: Iterable[DecisionCount]) -> DecisionSummary:
    by_source: dict[str, dict[str, int]] = {}
    total = remote = fallback = 0
    for c in counts:
        by_source.setdefault(c.source, {})[c.status] = c.count
        total += c.count
        if c.source == "remote":
            remote += c.count
        elif c.source == "fallback":
            fallback += c.count
    return DecisionSummary(by_source, total, remote + fallback, fallback)


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def backlog(counts: Mapping[str, int]) -> int:
    """Outbox messages still waiting (any status but the finished ones)."""
    return sum(n for s, n in counts.items() if s not in FINISHED_OUTBOX_STATUSES)


def decision_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One decision log row for display: the token masked, latency rounded."""
    return {
        "id": row["id"],
        "decided_at": row["decided_at"],
        "charger_id": row["charger_id"],
        "connector_id": row["connector_id"],
        "trigger": row["trigger"],
        "uid": mask(row["uid"]),
        "partner": row["partner_id"],
        "source": row["source"],
        "status": row["status"],
        "reference": row["authorization_reference"],
        "latency_ms": f"{float(row['latency_ms']):.1f}",
        "reason": row["reason"],
    }
