"""Roaming's own view of its settings, so roaming never imports the CSMS config.

The wiring copies ``[ocpi]`` of the CSMS config into this; tests build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSIONS_PATH = "/ocpi/versions"
DETAILS_PATH = "/ocpi/2.2.1"
CREDENTIALS_PATH = "/ocpi/2.2.1/credentials"
TOKENS_PATH = "/ocpi/cpo/2.2.1/tokens"


@dataclass(frozen=True, slots=True)
class RoamingSettings:
    """Who we are and how we call partners, given by the host (the CSMS's ``[ocpi]``
    config, where the defaults and their validation live): no defaults here, so the two
    cannot drift apart."""

    public_base_url: str
    country_code: str
    party_id: str
    business_name: str
    business_website: str
    http_timeout_s: float
    connection_limit_per_partner: int
    token_sync_interval_s: float
    token_sync_page_size: int
    page_limit: int
    allow_private_partner_urls: bool

    def url(self, path: str) -> str:
        return self.public_base_url.rstrip("/") + path

    @property
    def versions_url(self) -> str:
        return self.url(VERSIONS_PATH)
