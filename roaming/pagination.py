"""Pagination of Sender GET lists (OCPI §1.8), shared by every module that serves one.

Why the Link is built from ``public_base_url``: partners must follow it verbatim, and
behind a proxy the request's own host is not what they can reach. The Link keeps every
original filter and always carries ``limit`` (some clients forget it otherwise).

Usage in a handler::

    page = page_params(request)                 # raises 2001 on a bad parameter
    total, items = await my_query(page)         # offset/limit/date_from/date_to applied
    return page_response(request, items, total, page)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from roaming.context import ctx_of
from roaming.envelope import InvalidParameters, ok
from roaming.models import ValidationError, datetime_str


@dataclass(frozen=True, slots=True)
class PageParams:
    offset: int
    limit: int
    date_from: str | None
    date_to: str | None
    page_limit: int


# The largest value SQLite's LIMIT/OFFSET (a signed 64-bit integer) can hold: a larger
# number is refused with 2001 here instead of overflowing in the store (HTTP 500).
MAX_PAGE_PARAM = 2**63 - 1


def _int_param(request: web.Request, name: str, default: int) -> int:
    """A non-negative decimal integer parameter; anything else is 2001 naming it.

    Only ASCII digits are accepted (``int()`` would also take ``+5``, ``1_0``, spaces
    and non-ASCII digits, none of which a partner means as an offset).
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidParameters(
            f"{name}: must be a non-negative integer, got {raw[:40]!r}"
        ) from None
    if len(raw) > 19 or int(raw) > MAX_PAGE_PARAM:
        raise InvalidParameters(f"{name}: must be at most {MAX_PAGE_PARAM}, got {raw[:40]}")
    return int(raw)


def page_params(
    request: web.Request, *, page_limit: int | None = None, require_date_from: bool = False
) -> PageParams:
    """Parse ``offset``/``limit``/``date_from``/``date_to``; ``limit`` capped at the page limit."""
    cap = page_limit or ctx_of(request).settings.page_limit
    offset = _int_param(request, "offset", 0)
    limit = min(_int_param(request, "limit", cap), cap)
    dates: dict[str, str | None] = {}
    for name in ("date_from", "date_to"):
        raw = request.query.get(name)
        if raw is None or raw == "":
            dates[name] = None
            continue
        try:
            dates[name] = datetime_str(raw, name)
        except ValidationError as exc:
            raise InvalidParameters(str(exc)) from None
    if require_date_from and dates["date_from"] is None:
        raise InvalidParameters("date_from: required for this list")
    return PageParams(offset, limit, dates["date_from"], dates["date_to"], cap)


def page_headers(
    request: web.Request, total: int, page: PageParams, returned: int
) -> dict[str, str]:
    headers = {"X-Total-Count": str(total), "X-Limit": str(page.page_limit)}
    next_offset = page.offset + returned
    if returned > 0 and next_offset < total:
        query = [(k, v) for k, v in request.query.items() if k not in ("offset", "limit")]
        query += [("offset", str(next_offset)), ("limit", str(page.limit))]
        base = ctx_of(request).settings.url(request.path)
        headers["Link"] = f'<{base}?{urlencode(query)}>; rel="next"'
    return headers


def page_response(
    request: web.Request, items: Sequence[Any], total: int, page: PageParams
) -> web.Response:
    """Envelope with ``items`` (already JSON-ready) plus Link / X-Total-Count / X-Limit."""
    resp = ok(list(items))
    resp.headers.update(page_headers(request, total, page, len(items)))
    return resp


PageFetch = Callable[[web.Request, "PageParams"], Awaitable[tuple[int, Sequence[Any]]]]


def add_sender_list(
    app: web.Application, path: str, fetch: PageFetch, *, require_date_from: bool = False
) -> None:
    """Route ``GET {path}`` (and ``{path}/``, which d2's pagination examples use) to a
    paginated Sender list: ``fetch(request, page) -> (total, items)`` is all a module
    supplies; parameters, the envelope and the Link / X-Total-Count / X-Limit headers
    are the same for every list."""

    async def sender_list(request: web.Request) -> web.Response:
        page = page_params(request, require_date_from=require_date_from)
        total, items = await fetch(request, page)
        return page_response(request, items, total, page)

    app.router.add_get(path, sender_list)
    app.router.add_get(path + "/", sender_list)
