"""Roaming's SQL, one repository per table family, over the shared SQL database.

Why a package of small stores: each module holds the SQL of its own tables and nothing
else, so a PostgreSQL adapter is one new package beside this one. :class:`RoamingStore`
only builds the three stores every OCPI request and the authorizer share (partners,
tokens, token sync runs) over one database, wiring the token listeners between them;
callers use the specific store (``store.partners``, ``store.tokens``,
``store.token_syncs``).
"""

from __future__ import annotations

from roaming.ports import SqlDatabase
from roaming.store.listeners import TokenListener, TokenListeners
from roaming.store.partners import PartnerStore
from roaming.store.token_syncs import TokenSyncStore
from roaming.store.tokens import TokenStore


class RoamingStore:
    """The partner, token and token-sync stores over one database."""

    def __init__(self, db: SqlDatabase) -> None:
        self.partners = PartnerStore(db)
        self.tokens = TokenStore(db, TokenListeners())
        self.token_syncs = TokenSyncStore(db, self.tokens)


__all__ = ["PartnerStore", "RoamingStore", "TokenListener", "TokenStore", "TokenSyncStore"]
