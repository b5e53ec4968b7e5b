"""The OCPI client's error kinds onto authorization outcomes: one row per kind.

Why a table over every kind: the fallback rule depends on this mapping alone, and a
definite answer of the eMSP (REFUSED) must never be read as "unreachable".
"""

from __future__ import annotations

import pytest

from csms.authz.model import RemoteRefused, Unreachable, UnreachableKind
from csms.ocpi.authorization import outcome_of_error
from roaming.errors import (
    ErrorKind,
    InvalidResponse,
    PartnerNotCallable,
    PartnerRejected,
    PartnerUnreachable,
    RoamingError,
)

UNREACHABLE = {
    ErrorKind.TIMEOUT: UnreachableKind.TIMEOUT,
    ErrorKind.CONNECTION: UnreachableKind.CONNECTION,
    ErrorKind.SERVER_ERROR: UnreachableKind.SERVER_ERROR,
    ErrorKind.MALFORMED: UnreachableKind.MALFORMED,
    ErrorKind.NO_ENDPOINT: UnreachableKind.NO_ENDPOINT,
}


def example(kind: ErrorKind) -> RoamingError:
    """The error the client raises for ``kind`` (the class goes with the kind)."""
    if kind is ErrorKind.REFUSED:
        return PartnerRejected("POST answered HTTP 401", http_status=401, status_code=None)
    if kind is ErrorKind.NO_ENDPOINT:
        return PartnerNotCallable("partner has no tokens SENDER endpoint")
    if kind is ErrorKind.MALFORMED:
        return InvalidResponse("POST answered HTTP 200 without an OCPI envelope")
    return PartnerUnreachable(f"{kind} happened", kind=kind)


def test_every_kind_has_a_row() -> None:
    assert set(UNREACHABLE) | {ErrorKind.REFUSED} == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_outcome_of_each_kind(kind: ErrorKind) -> None:
    exc = example(kind)
    outcome = outcome_of_error("NL-EMS", exc)
    if kind is ErrorKind.REFUSED:
        assert outcome == RemoteRefused("NL-EMS", exc.message)
    else:
        assert outcome == Unreachable("NL-EMS", UNREACHABLE[kind], exc.message)


@pytest.mark.parametrize(
    ("http_status", "status_code"),
    [(401, 2000), (403, None), (404, None), (200, 2002), (200, 3001)],
)
def test_a_definite_answer_is_never_unreachable(http_status: int, status_code: int | None) -> None:
    exc = PartnerRejected(
        "POST answered HTTP 500 (timed out: hub reports)",  # wording must not matter
        http_status=http_status,
        status_code=status_code,
    )
    assert isinstance(outcome_of_error("NL-EMS", exc), RemoteRefused)


def test_the_message_does_not_decide_the_kind() -> None:
    exc = PartnerUnreachable("POST failed: HTTP 500 timed out", kind=ErrorKind.CONNECTION)
    outcome = outcome_of_error("NL-EMS", exc)
    assert isinstance(outcome, Unreachable) and outcome.kind is UnreachableKind.CONNECTION
