"""The operations mounted with ``ocpi.enabled``: partners, token sync, locations,
tariffs, the outbox."""

from __future__ import annotations

from csms.admin.openapi.schema import BOOL, OBJECT, STR, Json, obj, op, record

ROAMING: dict[tuple[str, str], Json] = {
    # --- roaming (mounted with ocpi.enabled)
    ("GET", "/api/partners"): op(
        "OCPI partners with their last token sync",
        "roaming",
        response={"type": "array", "items": OBJECT},
    ),
    ("POST", "/api/partners/invite"): op(
        "Invite an eMSP: returns a TOKEN_A and our versions URL",
        "roaming",
        body=obj(
            ("country_code", "party_id"),
            country_code={"type": "string", "pattern": "^[A-Za-z]{2}$"},
            party_id={"type": "string", "pattern": "^[A-Za-z0-9]{3}$"},
        ),
        ok=201,
        errors=(400, 409),
    ),
    ("POST", "/api/partners/register"): op(
        "Register with an eMSP from its versions URL and TOKEN_A",
        "roaming",
        body=obj(("versions_url", "token_a"), versions_url=STR, token_a=STR),
        ok=201,
        errors=(400, 502),
    ),
    ("GET", "/api/partners/{key}"): op(
        "One partner: endpoints, token counts, sync runs", "roaming", errors=(404,)
    ),
    ("POST", "/api/partners/{key}/rotate"): op(
        "Rotate our credentials token with the partner", "roaming", errors=(404, 502)
    ),
    ("POST", "/api/partners/{key}/unregister"): op(
        "Unregister a partner", "roaming", errors=(404,)
    ),
    ("POST", "/api/tokens/sync"): op(
        "Run a token sync (all partners, or one); wait for the result or not",
        "roaming",
        body=obj(partner=STR, incremental=BOOL, wait=BOOL),
        body_required=False,
        ok=202,  # started; with wait: true, 200 and the runs
        also=(200,),
        errors=(400, 404, 409),
    ),
    ("GET", "/api/locations"): op("Published OCPI locations", "locations"),
    ("GET", "/api/locations/unmapped"): op(
        "Connectors chargers reported that no EVSE maps", "locations"
    ),
    ("GET", "/api/locations/{location_id}"): op("One location", "locations", errors=(404,)),
    ("POST", "/api/locations/reload"): op(
        "Reload the locations file (ocpi_cpo.locations_file)", "locations", errors=(400,)
    ),
    ("GET", "/api/tariffs"): op("Published tariffs", "locations"),
    ("POST", "/api/locations"): op(
        "Create a Location (optionally with evses)",
        "locations",
        body=OBJECT,
        ok=201,
        errors=(400, 409),
    ),
    ("PATCH", "/api/locations/{location_id}"): op(
        "Change a Location's fields (publish, address, ...; null clears one)",
        "locations",
        body=OBJECT,
        errors=(400, 404),
    ),
    ("POST", "/api/locations/{location_id}/evses"): op(
        "Add an EVSE to a Location", "locations", body=OBJECT, ok=201, errors=(400, 404, 409)
    ),
    ("PATCH", "/api/locations/{location_id}/evses/{evse_uid}"): op(
        "Change an EVSE: map (charger_id + connector_id), unmap (both null), tariff_ids, ...",
        "locations",
        body=OBJECT,
        errors=(400, 404, 409),
    ),
    ("DELETE", "/api/locations/{location_id}/evses/{evse_uid}"): op(
        "Mark an EVSE REMOVED", "locations", errors=(404,)
    ),
    ("POST", "/api/tariffs"): op(
        "Create a tariff (simple shape)",
        "locations",
        body=record("id", id={"type": "string", "minLength": 1}),
        ok=201,
        errors=(400, 409),
    ),
    ("PUT", "/api/tariffs/{tariff_id}"): op(
        "Create or replace a tariff (simple shape)", "locations", body=OBJECT, errors=(400,)
    ),
    ("POST", "/api/locations/import"): op(
        "Upsert the Locations and tariffs of a locations file's text (retires nothing)",
        "locations",
        body=record("toml", toml=STR),
        errors=(400,),
    ),
    ("GET", "/api/locations/export"): op(
        "Every Location and tariff as a locations file's text",
        "locations",
        response=record("toml", toml=STR),
    ),
    ("GET", "/api/outbox"): op(
        "OCPI pushes waiting (or all with all=true) and counts by status",
        "outbox",
        query={"all": (BOOL, "include delivered and finished messages")},
        errors=(400,),
    ),
    ("POST", "/api/outbox/{message_id}/retry"): op(
        "Retry a dead or rejected push", "outbox", errors=(400, 409)
    ),
    ("POST", "/api/outbox/{message_id}/drop"): op("Give up on a push", "outbox", errors=(400, 409)),
}
