"""The admin API's own operations: operating, chargers, calls, own cards, transactions,
decisions. Add a route here (or in :mod:`csms.admin.openapi.roaming` for roaming's)."""

from __future__ import annotations

from csms.admin.openapi.schema import (
    AUDIT_ENTRY,
    BOOL,
    CHARGER,
    CHARGER_ID,
    ID_TAG,
    INT,
    NODE,
    OBJECT,
    PASSWORD,
    STR,
    TRANSACTION,
    Json,
    limit,
    list_of,
    obj,
    op,
    record,
)

CORE: dict[tuple[str, str], Json] = {
    # --- operating
    ("GET", "/api/health"): op(
        "Liveness: the process answers",
        "operations",
        public=True,
        response=record("status", status={"const": "ok"}),
    ),
    ("GET", "/api/ready"): op(
        "Readiness: store reachable, OCPP listener up, OCPI listener up when enabled, "
        "cluster bus listening (PostgreSQL)",
        "operations",
        public=True,
        errors=(503,),
        response=record(
            "status",
            "checks",
            status={"enum": ["ready", "not_ready"]},
            checks={"type": "object", "additionalProperties": BOOL},
        ),
    ),
    ("GET", "/metrics"): op(
        "Prometheus metrics (text format); auth per [metrics]: open on a loopback admin "
        "address without metrics.token, else a bearer token (see docs/admin.md)",
        "operations",
        text=True,
        optional_auth=True,
    ),
    ("GET", "/api/openapi.json"): op("This description", "operations"),
    ("GET", "/api/audit"): op(
        "The audit trail of admin writes, newest first",
        "operations",
        query={
            "limit": limit(100),
            "actor": (STR, "only this actor (token:<id> or a dashboard session)"),
            "before": (INT, "entries with a smaller id (paging back)"),
        },
        errors=(400,),
        response=list_of("entries", AUDIT_ENTRY),
    ),
    ("GET", "/api/nodes"): op(
        "The CSMS nodes sharing this store: lease, liveness and how many chargers each "
        "holds (on SQLite, this node alone)",
        "operations",
        query={"chargers": (BOOL, "true: also list each node's charger ids")},
        errors=(400,),
        response=list_of("nodes", NODE),
    ),
    # --- chargers
    ("GET", "/api/chargers"): op(
        "Registered chargers with connection and connector status",
        "chargers",
        response=list_of("chargers", CHARGER),
    ),
    ("POST", "/api/chargers"): op(
        "Register a charger (password: security profile 1; omit for none); with site "
        "(roaming) also its Location and EVSEs",
        "chargers",
        body=obj(("id",), id=CHARGER_ID, password=PASSWORD, site=OBJECT),
        ok=201,
        errors=(400, 409),
    ),
    ("GET", "/api/chargers/{charger_id}"): op(
        "One charger with connectors and active transactions", "chargers", errors=(404,)
    ),
    ("DELETE", "/api/chargers/{charger_id}"): op(
        "Remove a charger (its open connection is closed)", "chargers", errors=(404,)
    ),
    ("POST", "/api/chargers/{charger_id}/registration"): op(
        "Set the registration status (Accepted, Pending, Rejected)",
        "chargers",
        body=obj(("status",), status={"enum": ["Accepted", "Pending", "Rejected"]}),
        errors=(400, 404),
    ),
    ("POST", "/api/chargers/{charger_id}/calls/{action}"): op(
        "Send a CSMS-initiated OCPP call; the body is the OCPP payload (camelCase)",
        "calls",
        query={"timeout": ({"type": "number"}, "seconds to wait for the charger")},
        body=OBJECT,
        body_required=False,
        errors=(400, 404, 409, 502, 504),
    ),
    ("GET", "/api/actions"): op("The OCPP actions the calls route accepts", "calls"),
    # --- security profiles and the OCPP 1.6 security extensions
    ("GET", "/api/security-events"): op(
        "SecurityEventNotifications, newest first",
        "security",
        query={
            "charger_id": (STR, "only from this charger"),
            "critical": (BOOL, "only critical events"),
            "limit": limit(100),
        },
        errors=(400,),
    ),
    ("GET", "/api/chargers/{charger_id}/security"): op(
        "A charger's security profile, CA install, signed certificates, security calls "
        "and notifications",
        "security",
        query={"limit": limit(100)},
        errors=(400, 404),
    ),
    ("POST", "/api/chargers/{charger_id}/security-profile"): op(
        "Raise the charger's security profile (ChangeConfiguration SecurityProfile, in the "
        "upgrade order), or with registry_only record what it was set to locally",
        "security",
        body=obj(
            ("profile",),
            profile={"enum": [0, 1, 2, 3]},
            registry_only=BOOL,
        ),
        errors=(400, 404, 409, 502, 504),
    ),
    # --- Local Authorization Lists
    ("GET", "/api/local-lists"): op(
        "Every charger's Local Authorization List state", "local lists"
    ),
    ("GET", "/api/local-lists/{charger_id}"): op(
        "One charger's list state and its entries", "local lists", errors=(404,)
    ),
    ("POST", "/api/local-lists/{charger_id}/sync"): op(
        "Send the charger a Full list now", "local lists", ok=202, errors=(404, 409)
    ),
    ("POST", "/api/local-lists/{charger_id}/mode"): op(
        "Set the charger's list mode",
        "local lists",
        body=obj(("mode",), mode={"enum": ["auto", "on", "off"]}),
        errors=(400, 404),
    ),
    # --- tokens (own cards)
    ("GET", "/api/tokens"): op("The operator's own cards (id_tags)", "tokens"),
    ("POST", "/api/tokens"): op(
        "Add or update an own card",
        "tokens",
        body=obj(
            ("id_tag",),
            id_tag=ID_TAG,
            status={"enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
            expiry_date={"type": "string", "format": "date-time"},
            parent_id_tag=ID_TAG,
        ),
        ok=201,
        also=(200,),  # 200: an existing card updated
        errors=(400,),
    ),
    ("GET", "/api/tokens/{id_tag}"): op("One own card", "tokens", errors=(404,)),
    ("POST", "/api/tokens/{id_tag}/block"): op("Block an own card", "tokens", errors=(404,)),
    # --- transactions and decisions
    ("GET", "/api/transactions"): op(
        "Transactions, newest first",
        "transactions",
        query={
            "limit": limit(100),
            "active": (BOOL, "only running (true) or finished (false)"),
            "charger_id": (STR, "only at this charger"),
        },
        errors=(400,),
        response=list_of("transactions", TRANSACTION),
    ),
    ("GET", "/api/transactions/{transaction_id}"): op(
        "One transaction with its meter value summary", "transactions", errors=(400, 404)
    ),
    ("GET", "/api/authorizations"): op(
        "The authorization decision log, newest first",
        "authorizations",
        query={
            "limit": limit(50),
            "charger_id": (STR, "only at this charger"),
            "uid": (STR, "only this token uid"),
            "source": (STR, "cache, remote, fallback, local, reused, command"),
            "status": (STR, "idTagInfo status"),
        },
        errors=(400,),
        response=list_of("authorizations", OBJECT),
    ),
}
