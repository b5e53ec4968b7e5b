"""The authorizer the OCPP server calls, and the parts around it, assembled without roaming.

Why a record of parts and not just the authorizer: the admin API flushes and reads the
decision log, refreshes the own-card set after ``csms tokens add``, and OCPI commands
pre-authorize through the roaming service; each of them receives exactly the part it
needs from the composition root (:mod:`csms.system`), typed, instead of fishing it out
of a registry.

Without OCPI the operator's own cards (the ``id_tags`` table) decide everything; with
OCPI, :func:`csms.ocpi.authorization.build_roaming_authorization` puts the roaming service
behind the own cards and fills the roaming fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from csms.authz.ports import Authorizer, Preauthorizer
from csms.config import Config
from csms.local_authz import LocalTokenAuthorizer
from csms.store.authorizations import AuthorizationLog
from csms.store.db import Database

Closer = Callable[[], Awaitable[None]]


class OwnCardSet(Protocol):
    """What the admin API needs after a write to ``id_tags``: the in-memory set follows."""

    async def refresh(self) -> None: ...


@dataclass
class Authorization:
    """The decision parts of one running CSMS.

    ``authorizer`` answers Authorize/Start/Stop; ``decisions`` is the decision log behind
    ``/api/authorizations``; ``own_cards`` is refreshed by the admin API after a write to
    ``id_tags`` (None when nothing holds them in memory); ``service`` and ``token_cache``
    exist with roaming only (commands pre-authorize through ``service``).
    """

    authorizer: Authorizer
    decisions: AuthorizationLog
    own_cards: OwnCardSet | None = None
    service: Preauthorizer | None = None
    token_cache: object | None = None
    closers: list[Closer] = field(default_factory=list)

    async def close(self) -> None:
        """Stop background work (token learning, cache listeners), newest first.

        The decision log is closed by whoever opened it (the composition root), after
        this: its last batch must include decisions made while this was closing.
        """
        for closer in reversed(self.closers):
            await closer()


def build_local_authorization(config: Config, db: Database) -> Authorization:
    """The local ``id_tags`` table as the only authorizer (OCPI disabled).

    Its decisions go to the same decision log and ``/api/authorizations`` as the roaming
    service's: one row and one ``authorization_decided`` event per decision.
    """
    decisions = AuthorizationLog(db)
    decisions.start()
    local = LocalTokenAuthorizer(db, config.authz.id_tag_expiry_s, sink=decisions)
    return Authorization(authorizer=local, decisions=decisions)
