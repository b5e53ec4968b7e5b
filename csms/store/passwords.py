"""Charge point passwords (OCPP security profile 1, HTTP Basic): scrypt with a random salt.

Why a verified-cache: scrypt is deliberately slow (tens of ms), and a reconnect storm of
thousands of chargers would spend minutes of CPU re-deriving the same keys. After one
successful check we keep an HMAC of the presented password under a per-process random
key, so a repeat check is one HMAC and a constant-time compare; a changed stored hash
invalidates the entry.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_PROCESS_KEY = secrets.token_bytes(32)
_verified: dict[str, tuple[str, bytes]] = {}


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` (base64); never store or log the password itself."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, key_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, key = base64.b64decode(salt_b64), base64.b64decode(key_b64)
        derived = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(key)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, key)


async def check_password(charger_id: str, password: str, stored: str) -> bool:
    """:func:`verify_password` off the event loop, memoised per charger (see module doc)."""
    tag = hmac.new(_PROCESS_KEY, password.encode(), hashlib.sha256).digest()
    hit = _verified.get(charger_id)
    if hit is not None and hit[0] == stored:
        return hmac.compare_digest(hit[1], tag)
    ok = await asyncio.to_thread(verify_password, password, stored)
    if ok:
        _verified[charger_id] = (stored, tag)
    return ok
