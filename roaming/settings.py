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
    public_base_url: str = "http://127.0.0.1:9200"
    country_code: str = "NL"
    party_id: str = "CPO"
    business_name: str = "Example CPO"
    business_website: str = ""
    http_timeout_s: float = 10.0
    connection_limit_per_partner: int = 512
    token_sync_interval_s: float = 86400.0
    token_sync_page_size: int = 1000
    page_limit: int = 1000

    def url(self, path: str) -> str:
        return self.public_base_url.rstrip("/") + path

    @property
    def versions_url(self) -> str:
        return self.url(VERSIONS_PATH)
