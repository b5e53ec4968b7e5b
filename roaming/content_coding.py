"""Request bodies sent with ``Content-Encoding``: which codings we take and how they decode.

Why not aiohttp's own decoding: it runs inside the HTTP parser, so a body that claims
``gzip`` but is plain JSON made the parser fail mid-request; the handler saw an
exception (answered HTTP 500) and the kept-alive connection was dropped. The OCPI
server turns that decoding off (``auto_decompress=False``) and a middleware decodes here
instead, after the whole raw body is read, where a failure is an ordinary refusal:

* ``identity``, ``gzip`` (``x-gzip``) and ``deflate`` (zlib, or raw deflate as some
  clients send it) are decoded, in the reverse order of the header's list;
* any other coding (``br``, ``zstd``, ``compress``, unknown names) is HTTP 415 with OCPI
  2001 naming the coding, before the body is read;
* a body that does not decode as the coding it claims is HTTP 400 with OCPI 2001, like a
  body that is not JSON;
* the decoded size is bounded (the server's body limit): a small compressed body cannot
  make us hold more than that (HTTP 413 with OCPI 2001).

Pure functions; the middleware is in :mod:`roaming.app`.
"""

from __future__ import annotations

import zlib

SUPPORTED = frozenset({"identity", "gzip", "x-gzip", "deflate"})
MAX_CODINGS = 4


class UnsupportedCoding(ValueError):
    """A coding we do not decode (HTTP 415)."""


class UndecodableBody(ValueError):
    """The body is not what its coding claims (HTTP 400)."""


class DecodedTooLarge(ValueError):
    """The decoded body exceeds the limit (HTTP 413)."""


def codings(header: str) -> list[str]:
    """The codings of a ``Content-Encoding`` value, in the order they were applied;
    raises :class:`UnsupportedCoding` for one we do not decode."""
    names = [c.strip().lower() for c in header.split(",") if c.strip()]
    if len(names) > MAX_CODINGS:
        raise UnsupportedCoding(f"more than {MAX_CODINGS} content codings")
    for name in names:
        if name not in SUPPORTED:
            raise UnsupportedCoding(
                f"Content-Encoding {name[:40]!r} is not supported (gzip, deflate, identity)"
            )
    return [n for n in names if n != "identity"]


def _inflate(data: bytes, wbits: int, limit: int, name: str) -> bytes:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise UndecodableBody(f"request body is not valid {name} data: {exc}") from None
    if len(out) > limit:
        raise DecodedTooLarge(f"decoded request body is larger than {limit} bytes")
    if not d.eof:
        raise UndecodableBody(f"request body is not valid {name} data: truncated stream")
    if d.unused_data.strip():
        raise UndecodableBody(f"request body is not valid {name} data: data after the stream")
    return out


def decode(body: bytes, applied: list[str], limit: int) -> bytes:
    """``body`` with ``applied`` codings undone (last applied first), at most ``limit``
    bytes at every step."""
    for name in reversed(applied):
        if not body:
            continue  # an empty body stays empty whatever it claims
        if name in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit, "gzip")
        elif body[0] & 0x0F == 8:  # deflate: zlib header (RFC 1950) ...
            body = _inflate(body, zlib.MAX_WBITS, limit, "deflate")
        else:  # ... or raw deflate, which some clients send as "deflate"
            body = _inflate(body, -zlib.MAX_WBITS, limit, "deflate")
    return body
