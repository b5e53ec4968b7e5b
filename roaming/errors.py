"""What can go wrong when we call a partner, as typed errors that carry their data.

Why a ``kind`` on every error: callers decide on it (the authorization fallback, the
outbox's retry rules, registration messages), and a decision must never depend on the
wording of a message. The kind is set where the error is raised, from what actually
happened (an exception type, an HTTP status, an OCPI status code), and the class tree
follows the kinds, so ``except PartnerRejected`` and ``exc.kind is ErrorKind.REFUSED``
never disagree about a definite answer.

Error tree (every error carries ``message``, ``kind``, ``partner`` and ``url``)::

    RoamingError
    ├── PartnerUnreachable    no definite answer; the partner's view is unknown
    │                         kind TIMEOUT       no answer within the deadline
    │                         kind CONNECTION    refused, reset, closed early, not HTTP
    │                         kind SERVER_ERROR  HTTP 5xx, or a hub's 4002/4003
    ├── PartnerRejected       a definite non-success answer: HTTP 3xx/4xx (a 401 is a
    │   │                     configuration error, never "unreachable"), OCPI
    │   │                     2xxx/3xxx/4000/4001; kind REFUSED; carries ``http_status``
    │   │                     and ``status_code`` (None without an envelope)
    │   └── PartnerNotCallable  kind NO_ENDPOINT: raised before any request (no token to
    │                         call with, or no endpoint for the module); ``http_status``
    │                         0. A rejection because nothing will succeed until the
    │                         configuration changes, so retrying callers stop alike.
    └── InvalidResponse       kind MALFORMED: an answer that is not JSON, not an OCPI
                              envelope, or not the expected object: a broken partner,
                              not a verdict
"""

from __future__ import annotations

import enum


class ErrorKind(enum.StrEnum):
    """Why a call to a partner failed; only REFUSED is a definite answer of the partner."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER_ERROR = "server_error"
    MALFORMED = "malformed"
    NO_ENDPOINT = "no_endpoint"
    REFUSED = "refused"


class RoamingError(Exception):
    """A call to a partner that did not succeed; ``kind`` says why."""

    def __init__(self, message: str, *, kind: ErrorKind, partner: str = "", url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.partner = partner
        self.url = url


class PartnerUnreachable(RoamingError):
    """No definite answer: the partner's view is unknown (fallback rules apply)."""


class PartnerRejected(RoamingError):
    """A definite non-success answer of the partner (or a hub on its behalf)."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        status_code: int | None,
        partner: str = "",
        url: str = "",
        kind: ErrorKind = ErrorKind.REFUSED,
    ) -> None:
        super().__init__(message, kind=kind, partner=partner, url=url)
        self.http_status = http_status
        self.status_code = status_code


class PartnerNotCallable(PartnerRejected):
    """We cannot call the partner at all; no request was sent."""

    def __init__(self, message: str, *, partner: str = "", url: str = "") -> None:
        super().__init__(
            message,
            http_status=0,
            status_code=None,
            partner=partner,
            url=url,
            kind=ErrorKind.NO_ENDPOINT,
        )


class InvalidResponse(RoamingError):
    """The partner answered, but not in OCPI: treat as a broken partner, not as a verdict."""

    def __init__(self, message: str, *, partner: str = "", url: str = "") -> None:
        super().__init__(message, kind=ErrorKind.MALFORMED, partner=partner, url=url)
