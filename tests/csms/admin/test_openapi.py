"""The OpenAPI description stays true: every route of the running admin app (OCPI on, so
roaming's and the OCPI admin routes are mounted) is described, every described route
exists, the document is valid OpenAPI 3.1, and real answers use described statuses."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from csms.admin.openapi import OPERATIONS, document
from csms.system import System
from tests.support.csms import admin_session, running_csms

ROOT = Path(__file__).resolve().parents[3]


def _registered(app: System) -> set[tuple[str, str]]:
    assert app.admin_app is not None
    out = set()
    for route in app.admin_app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":  # HEAD comes with every GET
            continue
        path = resource.canonical
        if path.startswith("/api/") or path == "/metrics":
            out.add((route.method, path))
    return out


async def test_every_route_is_described_and_every_description_is_a_route(tmp_path: Path) -> None:
    async with running_csms(tmp_path, ocpi={"enabled": True}) as app:
        registered = _registered(app)
    described = set(OPERATIONS)
    missing = sorted(registered - described)
    assert not missing, (
        "admin routes without an OpenAPI description; add each to CORE in "
        "csms/admin/openapi/core.py or ROAMING in csms/admin/openapi/roaming.py (and to "
        "the route list in docs/admin.md): " + ", ".join(f"{m} {p}" for m, p in missing)
    )
    stale = sorted(described - registered)
    assert not stale, "described in csms/admin/openapi/ but not served: " + ", ".join(
        f"{m} {p}" for m, p in stale
    )


async def test_the_served_document_is_valid_openapi_3_1(tmp_path: Path) -> None:
    async with running_csms(tmp_path) as app, admin_session(app) as http:
        resp = await http.get("/api/openapi.json")
        assert resp.status == 200
        doc = await resp.json()
    assert doc == document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


async def test_real_answers_use_described_statuses(tmp_path: Path) -> None:
    """Every GET without path parameters, with and without the token."""
    doc = document()
    async with running_csms(tmp_path, ocpi={"enabled": True}) as app:
        async with admin_session(app) as http:
            for path, item in doc["paths"].items():
                if "{" in path or "get" not in item:
                    continue
                resp = await http.get(path)
                assert str(resp.status) in item["get"]["responses"], (path, resp.status)
        async with admin_session(app, token=None) as anonymous:
            resp = await anonymous.get("/api/chargers")
            assert resp.status == 401
            assert "401" in doc["paths"]["/api/chargers"]["get"]["responses"]
            assert (await anonymous.get("/api/health")).status == 200


def test_docs_admin_lists_every_described_route() -> None:
    text = (ROOT / "docs" / "admin.md").read_text()
    routes = text.split("## Every route", 1)[1].split("\n## ", 1)[0]
    for method, path in OPERATIONS:
        assert f"`{method} {path}`" in routes, f"{method} {path}"
