"""Crisis detection: spikes alarm, everyday noise does not, and an incident opens and closes once."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.buckets import bucket_of
from services.analytics.crisis import (
    AlertKind,
    Assessment,
    Incident,
    Rules,
    Transition,
    assess,
    robust_baseline,
    step,
)

pytestmark = pytest.mark.unit

RULES = Rules()
WEEK = 7 * 24 * 12  # 5-minute buckets
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _poisson(rng: random.Random, rate: float) -> int:
    # Knuth's method: exact, and fast enough for the rates of a 5-minute bucket.
    limit, draws, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        draws += 1
        product *= rng.random()
    return draws


def _binomial(rng: random.Random, trials: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(trials))


def _noise(seed: int, rates: Sequence[float]) -> list[int]:
    rng = random.Random(seed)
    return [_poisson(rng, rate) for rate in rates]


def _daily_cycle(low: float, high: float, buckets: int = WEEK) -> list[float]:
    per_day = 24 * 12
    return [low + (high - low) * (1 + math.sin(2 * math.pi * i / per_day)) / 2 for i in range(buckets)]


def _alarms(kind: AlertKind, series: Sequence[float]) -> list[int]:
    """Replays the series bucket by bucket against its trailing history; the buckets that alarmed."""
    return [
        i
        for i in range(len(series))
        if assess(kind, series[i], series[max(0, i - RULES.baseline_buckets) : i], RULES).anomalous
    ]


def _share_alarms(totals: Sequence[int], negatives: Sequence[int]) -> list[int]:
    alarms = []
    for i in range(len(totals)):
        start = max(0, i - RULES.baseline_buckets)
        shares = [negatives[j] / totals[j] if totals[j] else 0.0 for j in range(start, i)]
        verdict = assess(
            "negative_share", negatives[i], shares, RULES, total=totals[i], history_totals=totals[start:i]
        )
        if verdict.anomalous:
            alarms.append(i)
    return alarms


# --- robust baseline and buckets -------------------------------------------------------------------


def test_robust_baseline_of_degenerate_histories() -> None:
    assert robust_baseline([]) == (0.0, 0.0)
    assert robust_baseline([0, 0, 0, 0]) == (0.0, 0.0)
    assert robust_baseline([7]) == (7.0, 0.0)


def test_robust_baseline_ignores_an_outlier() -> None:
    median, spread = robust_baseline([1, 2, 3, 4, 1000])

    assert median == 3.0
    assert spread == pytest.approx(1.4826)


def test_bucket_start_aligns_to_the_epoch_in_utc() -> None:
    rome = timezone(timedelta(hours=1))

    assert bucket_of(datetime(2026, 3, 2, 10, 7, 42, tzinfo=rome), 300) == datetime(
        2026, 3, 2, 9, 5, tzinfo=UTC
    )
    assert bucket_of(datetime(2026, 3, 2, 9, 5, tzinfo=UTC), 300) == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)


def test_bucket_start_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        bucket_of(datetime(2026, 3, 2, 9, 5), 300)  # noqa: DTZ001 - the naive value is the point


@given(
    st.datetimes(
        # Hypothesis bounds are naive by contract; the drawn values get the time zones below.
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]
        ),
    ),
    st.sampled_from([60, 300, 900, 3600, 86400]),
)
def test_bucket_start_holds_the_moment_and_is_aligned(moment: datetime, seconds: int) -> None:
    start = bucket_of(moment, seconds)

    assert start.tzinfo is UTC
    assert start <= moment < start + timedelta(seconds=seconds)
    assert (start - datetime(1970, 1, 1, tzinfo=UTC)) % timedelta(seconds=seconds) == timedelta(0)
    assert bucket_of(start, seconds) == start


# --- spikes alarm ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [5.0, 20.0, 50.0])
def test_volume_five_times_the_usual_alarms(rate: float) -> None:
    history = _noise(1, [rate] * RULES.baseline_buckets)

    verdict = assess("volume", 5 * rate, history, RULES)

    assert verdict.anomalous
    assert verdict.severity != "none"
    assert verdict.observed == 5 * rate
    assert verdict.baseline == pytest.approx(rate, rel=0.25)
    assert verdict.threshold < 5 * rate


def test_a_keyword_burst_from_nothing_alarms() -> None:
    history = _noise(2, [0.1] * RULES.baseline_buckets)

    verdict = assess("keyword", 25, history, RULES, key="recall")

    assert verdict.anomalous
    assert verdict.key == "recall"
    assert verdict.threshold == RULES.min_count


def test_a_jump_of_the_negative_share_alarms() -> None:
    rng = random.Random(3)
    totals = [_poisson(rng, 40) for _ in range(RULES.baseline_buckets)]
    shares = [_binomial(rng, total, 0.1) / total if total else 0.0 for total in totals]

    verdict = assess("negative_share", 24, shares, RULES, total=40, history_totals=totals)

    assert verdict.anomalous
    assert verdict.observed == pytest.approx(0.6)
    assert verdict.baseline == pytest.approx(0.1, abs=0.03)


def test_a_negative_share_only_from_shares_uses_their_median() -> None:
    shares = [0.1] * RULES.baseline_buckets

    assert assess("negative_share", 24, shares, RULES, total=40).anomalous
    assert not assess("negative_share", 8, shares, RULES, total=40).anomalous


def test_severity_grows_with_the_excess() -> None:
    history = [20.0] * RULES.baseline_buckets

    levels = [assess("volume", count, history, RULES).severity for count in (10, 50, 65, 120)]

    assert levels == ["none", "low", "medium", "high"]


def test_a_spike_replayed_bucket_by_bucket_opens_one_incident_and_closes_it() -> None:
    series: list[float] = list(_noise(4, [20.0] * (RULES.baseline_buckets + 30)))
    spike = range(RULES.baseline_buckets, RULES.baseline_buckets + 6)
    for i, factor in zip(spike, (4, 5, 6, 5, 4, 4), strict=True):
        series[i] = 20 * factor

    incident: Incident | None = None
    transitions: list[Transition] = []
    for i in range(len(series)):
        verdict = assess("volume", series[i], series[max(0, i - RULES.baseline_buckets) : i], RULES)
        incident, transition = step(incident, verdict, T0 + timedelta(minutes=5 * i), RULES)
        transitions.append(transition)

    assert transitions.count("opened") == 1
    assert transitions.count("closed") == 1
    assert transitions.count("updated") == 2  # the spike peaks twice: x5 then x6
    assert transitions.index("opened") == spike[0]
    assert transitions.index("closed") == spike[-1] + RULES.calm_buckets
    assert incident is None


# --- noise stays quiet -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.5, 5.0, 50.0])
def test_a_week_of_poisson_noise_never_alarms(rate: float) -> None:
    for seed in range(2):
        assert _alarms("volume", _noise(seed, [rate] * WEEK)) == []


@pytest.mark.parametrize(("low", "high"), [(2.0, 40.0), (5.0, 95.0), (0.2, 10.0)])
def test_a_week_of_daily_cycles_never_alarms(low: float, high: float) -> None:
    assert _alarms("volume", _noise(11, _daily_cycle(low, high))) == []


@pytest.mark.parametrize("rate", [0.05, 0.5, 2.0])
def test_a_week_of_keyword_chatter_never_alarms(rate: float) -> None:
    assert _alarms("keyword", _noise(12, [rate] * WEEK)) == []


@pytest.mark.parametrize(("rate", "share"), [(5.0, 0.15), (20.0, 0.05), (20.0, 0.4), (100.0, 0.15)])
def test_a_week_of_ordinary_negative_share_never_alarms(rate: float, share: float) -> None:
    rng = random.Random(13)
    totals = [_poisson(rng, rate) for _ in range(WEEK)]
    negatives = [_binomial(rng, total, share) for total in totals]

    assert _share_alarms(totals, negatives) == []


def test_small_counts_over_a_zero_baseline_stay_quiet() -> None:
    zeros = [0.0] * RULES.baseline_buckets

    assert not assess("keyword", RULES.min_count - 1, zeros, RULES).anomalous
    assert assess("keyword", RULES.min_count, zeros, RULES).anomalous


def test_a_small_rise_on_a_busy_channel_stays_quiet() -> None:
    # 1,300 against ~1,000 is statistically clear but not a crisis: the volume factor holds it back.
    history = _noise(5, [1000.0] * RULES.baseline_buckets)

    verdict = assess("volume", 1300, history, RULES)

    assert not verdict.anomalous
    assert verdict.threshold == pytest.approx(2 * verdict.baseline)


def test_a_short_history_is_no_baseline_yet() -> None:
    assert not assess("volume", 500, [], RULES).anomalous
    assert not assess("volume", 500, [10.0] * (RULES.min_history_buckets - 1), RULES).anomalous
    assert assess("volume", 500, [10.0] * RULES.min_history_buckets, RULES).anomalous


def test_a_negative_share_needs_enough_messages_and_negatives() -> None:
    calm = [0.0] * RULES.baseline_buckets

    assert not assess("negative_share", 4, calm, RULES, total=10).anomalous  # min_negative
    assert not assess("negative_share", 6, calm, RULES, total=6).anomalous  # total < min_count
    assert assess("negative_share", 6, calm, RULES, total=10).anomalous


def test_a_negative_share_assessment_refuses_inconsistent_input() -> None:
    with pytest.raises(ValueError, match="one entry per history bucket"):
        assess("negative_share", 5, [0.1, 0.2], RULES, total=10, history_totals=[10])
    with pytest.raises(ValueError, match="total"):
        assess("negative_share", 5, [0.1, 0.2], RULES)


# --- incident lifecycle ----------------------------------------------------------------------------


def _verdict(value: float, *, anomalous: bool) -> Assessment:
    return Assessment("volume", anomalous, value, 10.0, 40.0, "low" if anomalous else "none")


def _at(bucket: int) -> datetime:
    return T0 + timedelta(seconds=RULES.bucket_seconds * bucket)


def test_the_incident_lifecycle() -> None:
    script: list[tuple[float, bool, Transition]] = [
        (10, False, "none"),
        (50, True, "opened"),
        (45, True, "unchanged"),  # still anomalous, below the peak: no repeated alert
        (80, True, "updated"),  # a new peak
        (12, False, "unchanged"),
        (11, False, "unchanged"),
        (60, True, "unchanged"),  # back before calm: the quiet run starts over
        (12, False, "unchanged"),
        (11, False, "unchanged"),
        (10, False, "closed"),
        (10, False, "none"),
        (70, True, "opened"),  # later: a new incident
    ]
    incident: Incident | None = None
    seen: list[Transition] = []
    closed: Incident | None = None
    for bucket, (value, anomalous, _) in enumerate(script):
        incident, transition = step(incident, _verdict(value, anomalous=anomalous), _at(bucket), RULES)
        seen.append(transition)
        if transition == "closed":
            closed = incident

    assert seen == [expected for _, _, expected in script]
    assert closed is not None
    assert closed.started_at == _at(1)
    assert (closed.peak_at, closed.peak_value) == (_at(3), 80)
    assert closed.last_anomalous_at == _at(6)
    assert closed.ended_at == _at(7)  # the first bucket of the closing quiet run
    assert incident is not None
    assert (incident.started_at, incident.peak_value, incident.ended_at) == (_at(11), 70, None)


def test_a_bucket_stepped_again_counts_once_and_older_buckets_are_ignored() -> None:
    incident, _ = step(None, _verdict(50, anomalous=True), _at(0), RULES)
    for _ in range(5):  # the same bucket, assessed again while it fills
        incident, transition = step(incident, _verdict(10, anomalous=False), _at(1), RULES)
        assert transition == "unchanged"
    assert incident is not None
    assert incident.quiet_buckets == 1

    stale, transition = step(incident, _verdict(99, anomalous=True), _at(0), RULES)
    assert (stale, transition) == (incident, "unchanged")


def test_step_never_mutates_its_input() -> None:
    incident, _ = step(None, _verdict(50, anomalous=True), _at(0), RULES)
    assert incident is not None
    before = replace(incident)

    step(incident, _verdict(80, anomalous=True), _at(1), RULES)
    step(incident, _verdict(10, anomalous=False), _at(1), RULES)

    assert incident == before


def test_a_closed_incident_passed_back_is_no_open_incident() -> None:
    closed = Incident("volume", "", _at(0), _at(0), 50, _at(0), 3, ended_at=_at(1))

    assert step(closed, _verdict(10, anomalous=False), _at(5), RULES) == (None, "none")
    reopened, transition = step(closed, _verdict(60, anomalous=True), _at(5), RULES)
    assert transition == "opened"
    assert reopened is not None
    assert reopened.started_at == _at(5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(10, 100)), max_size=60), st.integers(1, 5))
def test_incidents_alternate_open_and_closed(buckets: list[tuple[bool, int]], calm: int) -> None:
    rules = Rules(calm_buckets=calm)
    incident: Incident | None = None
    open_now = False
    quiet_run = 0
    for i, (anomalous, value) in enumerate(buckets):
        incident, transition = step(incident, _verdict(value, anomalous=anomalous), _at(i), rules)
        quiet_run = 0 if anomalous else quiet_run + 1
        if transition == "opened":
            assert not open_now
            open_now = True
        elif transition == "closed":
            assert open_now
            assert quiet_run == calm
            open_now = False
        elif transition == "updated":
            assert open_now
            assert anomalous
        elif transition == "none":
            assert not open_now
            assert not anomalous
        assert (incident is not None and incident.ended_at is None) == open_now
