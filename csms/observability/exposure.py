"""Start-up warnings for listeners that face the network without TLS.

Why only warnings: a charger on the depot network must reach ``server.host``, and OCPI
often sits behind a TLS-terminating proxy, so plain listeners on a public address can
be right; but an operator should never run that way without knowing. Pure: the checks
read the config only, so they are tested without sockets.
"""

from __future__ import annotations

from csms.config import Config, is_loopback


def exposure_warnings(config: Config) -> list[tuple[str, str]]:
    """(key, message) for each listener on a non-loopback address without TLS."""
    out: list[tuple[str, str]] = []
    s = config.server
    if not is_loopback(s.host) and not s.tls_cert:
        out.append(
            (
                "server.host",
                f"OCPP listens on {s.host or '*'}:{s.port} without TLS: charger passwords "
                "and idTags cross the network in clear; set server.tls_cert/tls_key "
                "(security profile 2) or listen on 127.0.0.1 behind a TLS proxy",
            )
        )
    o = config.ocpi
    if o.enabled and not is_loopback(o.host) and not o.public_base_url.startswith("https://"):
        out.append(
            (
                "ocpi.host",
                f"OCPI listens on {o.host or '*'}:{o.port} and ocpi.public_base_url is not "
                "https: partner tokens cross the network in clear; serve it behind a TLS "
                "proxy and set ocpi.public_base_url to its https:// URL",
            )
        )
    return out
