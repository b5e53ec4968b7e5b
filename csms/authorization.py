"""The authorizer the OCPP server calls, and the parts around it, assembled without roaming.

Why a record of parts and not just the authorizer: the admin API flushes and reads the
decision log and tells the service after a write to ``id_tags``, and OCPI commands
pre-authorize through the service; each of them receives exactly the part it needs from
the composition root (:mod:`csms.system`), typed, instead of fishing it out of a
registry.

Without OCPI the operator's own cards (the ``id_tags`` table, read per decision) decide
everything; with OCPI, :func:`csms.ocpi.authorization.build_roaming_authorization`
builds one service with the own cards held in memory first, then roaming.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from csms.authz.own_cards import own_cards_authorizer
from csms.authz.ports import Authorizer
from csms.authz.service import AuthorizationService
from csms.config import Config
from csms.store.authorizations import AuthorizationLog
from csms.store.db import Database

Closer = Callable[[], Awaitable[None]]


@dataclass
class Authorization:
    """The decision parts of one running CSMS.

    ``service`` decides (own cards, commands, roaming); ``authorizer`` is what the OCPP
    server asks, the service unless a test replaced it; ``decisions`` is the decision log
    behind ``/api/authorizations``; ``token_cache`` exists with roaming only.
    """

    service: AuthorizationService
    authorizer: Authorizer
    decisions: AuthorizationLog
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
    service = own_cards_authorizer(db, config.authz.id_tag_expiry_s, sink=decisions)
    return Authorization(service=service, authorizer=service, decisions=decisions)
