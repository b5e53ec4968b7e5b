"""The store's stamps: ``now_millis`` formats the date once a second and must give the
same text as formatting the moment in full, across second and day boundaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csms import datetimes


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 7, 11, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 7, 11, 0, 0, 999_999, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 1_000, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC),
    ],
)
def test_now_millis_matches_millis_of_the_same_moment(
    moment: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datetimes, "utc_now", lambda: moment)
    assert datetimes.now_millis() == datetimes.millis(moment)
    assert datetimes.now_millis() == datetimes.millis(moment)  # the held second's text


def test_a_new_second_gets_its_own_text(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(
        [
            datetime(2026, 12, 7, 11, 0, 0, 999_000, tzinfo=UTC),
            datetime(2026, 12, 7, 11, 0, 1, 0, tzinfo=UTC),
        ]
    )
    monkeypatch.setattr(datetimes, "utc_now", lambda: next(clock))
    first, second = datetimes.now_millis(), datetimes.now_millis()
    assert first.endswith(".999Z") and second.endswith(".000Z")
    assert first[:19] != second[:19]
