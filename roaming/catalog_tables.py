"""The way back from stored OCPI objects to the catalogue's tables, and TOML out.

Why: the locations file is the import/export format of what operators manage through the
admin API, and an admin update names only the fields it changes. Both need the stored
object as the table :mod:`roaming.catalog` parses, so that every write, whatever its
source, is validated by the one parser: an update is ``parse(merge(table(stored), patch))``
and an export is ``dump(table(stored))``, which parses back to identical objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tomli_w

from roaming.tariffs import tariff_from_json, toml_table

_LOCATION_ORDER = (
    "id", "name", "publish", "address", "city", "postal_code", "state", "country",
    "latitude", "longitude", "time_zone", "parking_type", "facilities", "charging_when_closed",
)  # fmt: skip
_CONNECTOR_KEYS = (
    "standard", "format", "power_type", "max_voltage", "max_amperage", "max_electric_power",
    "tariff_ids", "terms_and_conditions",
)  # fmt: skip


def location_table(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[[locations]]`` table (without evses) of a stored static Location body."""
    flat = {k: v for k, v in body.items() if k != "coordinates"}
    coords = body.get("coordinates") or {}
    flat["latitude"] = coords.get("latitude")
    flat["longitude"] = coords.get("longitude")
    return {k: flat[k] for k in _LOCATION_ORDER if flat.get(k) is not None}


def evse_table(
    body: Mapping[str, Any], charger_id: str | None, connector_id: int | None
) -> dict[str, Any]:
    """The ``[[locations.evses]]`` table of a stored EVSE body and its OCPP mapping."""
    out: dict[str, Any] = {"uid": body["uid"]}
    if body.get("evse_id"):
        out["evse_id"] = body["evse_id"]
    if charger_id:
        out["charger_id"] = charger_id
        out["connector_id"] = connector_id
    connector = body["connectors"][0]
    if str(connector.get("id", "1")) != "1":
        out["ocpi_connector_id"] = connector["id"]
    if body.get("capabilities"):
        out["capabilities"] = list(body["capabilities"])
    for key in _CONNECTOR_KEYS:
        if connector.get(key) is not None:
            out[key] = connector[key]
    for key in ("floor_level", "physical_reference"):
        if body.get(key):
            out[key] = body[key]
    return out


def tariff_table(tariff: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[[tariffs]]`` table of a stored tariff (elements with restrictions included);
    ValidationError when it uses what the file cannot say (step sizes, price bounds...)."""
    return toml_table(tariff_from_json(dict(tariff)))


def merge(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """An update: ``patch`` keys replace, a ``None`` value removes the key."""
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def dump_catalog(
    locations: Sequence[Mapping[str, Any]], tariffs: Sequence[Mapping[str, Any]]
) -> str:
    """A locations file with ``[[tariffs]]`` then ``[[locations]]`` (evses nested)."""
    doc: dict[str, Any] = {}
    if tariffs:
        doc["tariffs"] = list(tariffs)
    if locations:
        doc["locations"] = list(locations)
    return tomli_w.dumps(doc)
