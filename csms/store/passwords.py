"""Charge point passwords (OCPP security profile 1, HTTP Basic): scrypt with a random salt.

Why a verified-cache: scrypt is deliberately slow (tens of ms) and memory-hard (16 MB a
check), and a reconnect storm of thousands of chargers would spend minutes of CPU
re-deriving the same keys. After one successful check we keep an HMAC of the presented
password under a per-process random key (never the password itself), per charger, so
a repeat check is one HMAC and a constant-time compare, and a *different* password for
that charger is known wrong without scrypt either; a changed stored hash invalidates
the entry. The cache holds one entry per charger that authenticated, so it is bounded
by the registry.

Why one dedicated thread for scrypt: each check allocates 16 MB, and the C allocator
keeps such blocks in a per-thread arena after they are freed; checks spread over the
default pool's threads left one retained arena each (memory that never came back after
a burst of wrong passwords). One thread bounds that to one check's worth, and bounds
the CPU that password checks take from the server's other work to one core.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_N, _R, _P, _DKLEN = 2**14, 8, 1, 32

Verify = Callable[[str, str], bool]


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


class PasswordChecker:
    """Checks presented passwords against stored hashes: from the verified-cache when it
    can tell, else with ``verify`` (scrypt) in one dedicated thread (see module doc).
    ``verify`` is injectable so tests can count the real checks."""

    def __init__(self, verify: Verify | None = None) -> None:
        self.verify = verify
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._executor: ThreadPoolExecutor | None = None

    def _tag(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    def known(self, charger_id: str, password: str, stored: str) -> bool | None:
        """True/False when the cache decides (a password verified before for this stored
        hash, or a different one); None when only :meth:`check` can tell."""
        hit = self._verified.get(charger_id)
        if hit is None or hit[0] != stored:
            return None
        return hmac.compare_digest(hit[1], self._tag(password))

    async def check(self, charger_id: str, password: str, stored: str) -> bool:
        """The cache's answer, else ``verify`` off the event loop (remembered when right)."""
        known = self.known(charger_id, password, stored)
        if known is not None:
            return known
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password")
        loop = asyncio.get_running_loop()
        verify = self.verify or verify_password  # looked up now: tests may count the calls
        ok = await loop.run_in_executor(self._executor, verify, password, stored)
        if ok:
            self._verified[charger_id] = (stored, self._tag(password))
        return ok

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
