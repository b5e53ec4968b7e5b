"""The seams the authorization core is reached through and reaches out through."""

from __future__ import annotations

from typing import Protocol

from csms.authz.model import AuthRequest, Decision


class Authorizer(Protocol):
    """What the OCPP adapter calls for every Authorize and every StartTransaction idTag.

    Implementations must return within their own deadline and never raise for an
    unreachable backend: a fallback :class:`Decision` is an answer too.
    """

    async def authorize(self, request: AuthRequest) -> Decision: ...
