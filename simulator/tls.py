"""TLS for ``wss://`` CSMS URLs: trust a given CA (``--ca-file``) besides the system's.

Why an option: a test or depot CSMS (security profile 2) often has a certificate from a
private CA; the simulator must verify it against that CA rather than not at all.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any


@functools.lru_cache(maxsize=8)
def client_context(ca_file: str | None) -> ssl.SSLContext | None:
    """A verifying client context trusting ``ca_file`` (None: the defaults apply)."""
    if not ca_file:
        return None
    return ssl.create_default_context(cafile=ca_file)


def tls_kwargs(url: str, context: ssl.SSLContext | None) -> dict[str, Any]:
    """``websockets.connect`` keywords: a wss URL verifies with ``context`` (or the system's
    CAs); a ws URL takes none."""
    if not url.startswith("wss:"):
        return {}
    return {"ssl": context if context is not None else True}
