"""``response_routing``: the routing headers of our answers, from the request's."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from roaming.app import response_routing

OURS = ("NL", "CPO")
PARTNER = ("NL", "EMS")


@pytest.mark.parametrize(
    ("request_headers", "partner", "expected"),
    [
        # peer to peer: no headers in the request
        ({}, PARTNER, ("NL", "CPO", "NL", "EMS")),
        # routed: swapped (header names are case-insensitive)
        (
            {"ocpi-from-country-code": "BE", "OCPI-From-Party-Id": "XYZ",
             "OCPI-to-country-code": "NL", "OCPI-to-party-id": "CP2"},
            PARTNER,
            ("NL", "CP2", "BE", "XYZ"),
        ),
        # open routing: no TO in the request, so FROM is ours
        ({"OCPI-from-country-code": "BE", "OCPI-from-party-id": "XYZ"}, PARTNER,
         ("NL", "CPO", "BE", "XYZ")),
        # half a pair is no pair
        ({"OCPI-from-country-code": "BE", "OCPI-to-party-id": "CP2"}, PARTNER,
         ("NL", "CPO", "NL", "EMS")),
        # caller unknown and silent: no TO at all
        ({}, None, ("NL", "CPO", None, None)),
    ],
)  # fmt: skip
def test_response_routing(
    request_headers: dict[str, str],
    partner: tuple[str, str] | None,
    expected: tuple[str | None, ...],
) -> None:
    out = response_routing(CIMultiDict(request_headers), OURS, partner)
    names = ("OCPI-from-country-code", "OCPI-from-party-id", "OCPI-to-country-code",
             "OCPI-to-party-id")  # fmt: skip
    assert tuple(out.get(n) for n in names) == expected
    assert set(out) <= set(names)
