"""The charger's own facts for costing: status history → "not drawing" intervals, and
power/current readings as totals over phases."""

from datetime import UTC, datetime

from csms.domain.transactions import MeterSample
from csms.ocpi.charger_events import instant_samples, not_drawing
from roaming.costing import Sample

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-01-01T{hhmm}:00+00:00")


def test_suspended_and_finishing_during_the_transaction_are_not_drawing():
    history = [
        ("2026-01-01T09:50:00Z", "Finishing"),  # the previous charge's, before the start
        ("2026-01-01T10:00:05Z", "Charging"),
        ("2026-01-01T10:20:00Z", "SuspendedEV"),
        ("2026-01-01T10:30:00Z", "SuspendedEVSE"),  # still not drawing: one interval
        ("2026-01-01T10:40:00Z", "Charging"),
        ("2026-01-01T10:58:00Z", "Finishing"),  # open until the stop
        ("garbage", "Charging"),  # unusable time: placed at our clock, after the stop
    ]
    got = not_drawing(history, at("10:00"), at("11:00"), NOW)
    assert got == [(at("10:20"), at("10:40")), (at("10:58"), NOW)]


def test_power_is_the_all_phase_value_or_the_sum_of_phases_counted_once():
    t1, t2, t3 = "2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z"
    power = "Power.Active.Import"
    samples = [
        MeterSample(t1, "3.7", measurand=power, phase="L1", unit="kW"),
        MeterSample(t1, "3.7", measurand=power, phase="L2", unit="kW"),
        MeterSample(t1, "3.7", measurand=power, phase="L3", unit="kW"),
        MeterSample(t1, "3.7", measurand=power, phase="L1", unit="kW"),  # in transactionData too
        MeterSample(t2, "11000", measurand=power, unit="W"),
        MeterSample(t2, "3600", measurand=power, phase="L1-N", unit="W"),  # all-phase wins
        MeterSample(t3, "0", measurand=power),
        MeterSample(t3, "16", measurand="Current.Import"),  # another measurand
        MeterSample(t3, "x", measurand=power, phase="L2"),  # not a number: skipped
    ]
    assert instant_samples(samples, power, NOW) == [
        Sample(at("10:00"), 11100.0),
        Sample(at("10:01"), 11000.0),
        Sample(at("10:02"), 0.0),
    ]
