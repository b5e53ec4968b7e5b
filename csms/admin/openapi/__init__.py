"""The OpenAPI 3.1 description of the admin API, served at ``GET /api/openapi.json``.

Why a table of operations here and not docstrings scattered over handlers: the admin API
is mounted from several packages (this one, roaming's partner routes, the OCPI admin
routes), and one table is what keeps every route described. ``tests/csms/admin/
test_openapi.py`` compares :data:`OPERATIONS` with the router of a running app (OCPI
on), both ways: a new route without an entry here fails that test with the route
named, and so does an entry for a route that no longer exists.
``tests/csms/admin/test_openapi_fuzz.py`` runs schemathesis against a real ``csms serve``
with this document: no 5xx, and every answer's status, content type and (where given)
schema as described.

Adding a route: add ``("METHOD", "/api/path/{param}"): op(...)`` to ``CORE`` in
:mod:`csms.admin.openapi.core` (or ``ROAMING`` in :mod:`csms.admin.openapi.roaming`)
(path parameters are taken from the path; say the query parameters and the body).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from csms.admin.http import json_response
from csms.admin.openapi.core import CORE
from csms.admin.openapi.roaming import ROAMING
from csms.admin.openapi.schema import ERROR, INT, INT_PATH_PARAMS, STR, Json

VERSION = "1.0.0"

OPERATIONS: dict[tuple[str, str], Json] = {**CORE, **ROAMING}


def _path_params(path: str) -> list[Json]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": INT if n in INT_PATH_PARAMS else STR,
        }
        for n in names
    ]


def document(operations: Mapping[tuple[str, str], Json] = OPERATIONS) -> Json:
    """The whole OpenAPI 3.1 document."""
    paths: Json = {}
    for (method, path), operation in sorted(operations.items()):
        item = paths.setdefault(path, {})
        params = _path_params(path)
        if params:
            item["parameters"] = params
        op_id = method.lower() + "".join(
            p.strip("{}").replace("_", " ").title().replace(" ", "").replace(".", "")
            for p in path.split("/")
            if p
        )
        item[method.lower()] = {"operationId": op_id, **operation}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "csms admin API",
            "version": VERSION,
            "description": "Administer a running CSMS; reference: docs/admin.md. Every "
            "route but /api/health and /api/ready needs Authorization: Bearer <admin.token>; "
            "/metrics follows [metrics].",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


routes = web.RouteTableDef()


@routes.get("/api/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document())
