"""Credentials tokens: header parsing, hashing, generation, constant-time comparison.

Why hashes: a token a partner presents to us is a password; the store keeps only its
sha256 (tokens are 256-bit random values or partner-generated high-entropy strings,
so an unsalted fast hash is enough), and a leaked database does not let anyone call us.
Tokens *we* send (token_out) must be kept in clear: we have to present them.

Why both header forms: OCPI 2.2.1 says ``Token <base64(token)>``; 2.1.1/2.2 peers send the
raw token. We try the raw text first, then a strict base64 decode (trailing newline
stripped: the spec's own examples encode one). Which form matched is reported so the
caller can remember it per partner.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass

RAW = "raw"
BASE64 = "base64"


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """One way to read the header: the token text and the encoding that produced it."""

    token: str
    encoding: str

    @property
    def hash(self) -> str:
        return hash_token(self.token)


def candidates(header: str | None) -> list[PresentedToken]:
    """Every token the ``Authorization`` header could carry, raw reading first."""
    if not header:
        return []
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "token":
        return []
    value = rest.strip()
    if not value:
        return []
    out = [PresentedToken(value, RAW)]
    decoded = decode_base64(value)
    if decoded is not None and decoded != value:
        out.append(PresentedToken(decoded, BASE64))
    return out


_MEMO_MAX = 1024
_memo: dict[str, tuple[tuple[PresentedToken, str], ...]] = {}


def hashed_candidates(header: str | None) -> tuple[tuple[PresentedToken, str], ...]:
    """:func:`candidates` with each one's hash, memoised by header text.

    Why: an eMSP sends the same header on every request, and the base64 decode plus
    sha256 cost a few microseconds per request. Only the header-to-hash mapping is
    memoised (a pure function, never stale); which partner a hash belongs to is
    decided by the store on every request. Bounded: it is cleared when full, so
    headers that match nobody cannot grow it.
    """
    if not header:
        return ()
    hit = _memo.get(header)
    if hit is not None:
        return hit
    out = tuple((c, hash_token(c.token)) for c in candidates(header))
    if len(_memo) >= _MEMO_MAX:
        _memo.clear()
    _memo[header] = out
    return out


def decode_base64(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
        text = raw.decode("utf-8").rstrip()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not text or not text.isascii() or not text.isprintable() or " " in text:
        return None
    return text


def header_value(token: str, encoding: str) -> str:
    """The ``Authorization`` header we send with ``token`` in the partner's encoding."""
    if encoding == RAW:
        return f"Token {token}"
    return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_token() -> str:
    """A fresh credentials token: 43 characters of ``[A-Za-z0-9_-]`` (256 bits)."""
    return secrets.token_urlsafe(32)
