"""The OCPP listener's TLS: its context, and the per-charger security profile check.

Why per charger and not per listener: a fleet upgrades one charger at a time, so profile
2 chargers (TLS and HTTP Basic) and profile 3 chargers (TLS client certificate) share one
listener. The TLS layer only verifies that a client certificate, when one is presented,
chains to ``security_profile.client_ca_file`` (``CERT_OPTIONAL``, or ``CERT_REQUIRED``
with ``client_cert_required``); the handshake then decides per charger with
:func:`profile_refusal`, a pure function of what the registry says and what the
connection presented.

Rules: any presented certificate must name the charge point id of the URL as its subject
CN (a charger cannot connect under another's identity); a charger registered for profile
3 needs a verified certificate; profiles 2 and 3 need a TLS connection.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from csms.config import Config


@dataclass(frozen=True, slots=True)
class Presented:
    """What the connection offered: TLS or not, and the verified client certificate's CN
    (None when no certificate was presented) and serial (hex)."""

    tls: bool
    cn: str | None = None
    serial: str | None = None


def profile_refusal(charger_id: str, profile: int | None, presented: Presented) -> str | None:
    """Why this connection may not be ``charger_id`` (a 403 reason), or None when it may."""
    if presented.cn is not None and presented.cn != charger_id:
        return (
            f"client certificate subject CN {presented.cn!r} is not the charge point id "
            f"{charger_id!r}"
        )
    if profile is not None and profile >= 2 and not presented.tls:
        return f"security profile {profile} requires a TLS (wss://) connection"
    if profile == 3 and presented.cn is None:
        return "security profile 3 requires a valid client certificate"
    return None


def presented_by(transport: Any) -> Presented:
    """Read :class:`Presented` from an asyncio transport (``ssl_object`` extra info).

    ``getpeercert()`` returns the certificate only once the TLS layer verified it against
    the client CA bundle; an unverified one never gets this far (the TLS handshake fails).
    """
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return Presented(tls=False)
    cert = ssl_object.getpeercert()
    if not cert:
        return Presented(tls=True)
    cn = None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                cn = value
    return Presented(tls=True, cn=cn, serial=cert.get("serialNumber"))


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The listener's context: the server certificate, and the client CA bundle when set."""
    if not config.server.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.server.tls_cert, config.server.tls_key)
    sp = config.security_profile
    if sp.client_ca_file:
        ctx.load_verify_locations(cafile=sp.client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED if sp.client_cert_required else ssl.CERT_OPTIONAL
    return ctx
