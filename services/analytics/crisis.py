"""Crisis detection over fixed time buckets: is this bucket anomalous, and what does it do to an incident.

Pure logic over plain counts. Per (workspace, channel) the caller keeps, per bucket, the inbound
messages, the negative ones and the matches of each watched keyword; it calls :func:`assess` with the
current bucket and the buckets before it, then :func:`step` to open, update or close an incident.

Histories hold every bucket of the baseline period, empty ones as zero: a median over the busy
buckets only would be a baseline of a busier channel than the real one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

AlertKind = Literal["volume", "negative_share", "keyword"]
Severity = Literal["none", "low", "medium", "high"]
Transition = Literal["opened", "updated", "closed", "unchanged", "none"]

# Scales the median absolute deviation to a standard deviation for normally distributed data.
MAD_SCALE = 1.4826
# Severity by how far past the threshold a bucket is, in units of (threshold - baseline).
_SEVERITY_STEPS: tuple[tuple[float, Severity], ...] = ((2.5, "high"), (1.5, "medium"), (1.0, "low"))


@dataclass(frozen=True, slots=True)
class Rules:
    """Thresholds of the detector; the defaults aim at no false alarm in a week of Poisson-like traffic.

    Volume and keyword counts alarm when all three hold: ``count >= min_count``;
    ``count > median + z * max(scaled MAD, sqrt(median), 1)``, a robust z-score whose spread never
    drops below Poisson noise (sqrt of the mean) nor below one message, so a flat or near-empty
    history is no hair trigger; and ``count >= volume_factor * median``, so that on a very busy
    channel, where sqrt(median) is small relative to the median, only a real multiple alarms.
    ``z`` is 6, not the textbook 3 to 5: the median of skewed, small counts runs below the mean
    (Poisson(5) often has median 4) and the Poisson tail is heavier than the normal one, so at z=5
    about one bucket in 6,000 of pure noise alarmed in the simulations of the tests.

    The negative share alarms when the bucket has ``total >= min_count`` messages, at least
    ``min_negative`` of them negative, a share at least ``negative_share_jump`` above the baseline
    share, and more negatives than binomial noise explains: the exact binomial chance of at least that
    many negatives among ``total`` at the baseline share must be below ``negative_p_value`` (the
    normal approximation alarms far too often when ``total * share`` is small). The baseline share
    is clamped into ``[share_floor, 1 - share_floor]`` for that test: a history without a single
    negative message still has some noise.
    """

    bucket_seconds: int = 300
    baseline_buckets: int = 288  # a day of 5-minute buckets
    min_count: int = 10  # a bucket below this never alarms (volume / keyword)
    # Fewer buckets of history is no baseline yet: a new channel's first busy bucket is not a crisis.
    min_history_buckets: int = 12
    z: float = 6.0
    volume_factor: float = 2.0
    negative_share_jump: float = 0.2
    min_negative: int = 5
    negative_p_value: float = 1e-5
    share_floor: float = 0.02
    calm_buckets: int = 3  # consecutive quiet buckets close an incident


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one bucket for one signal.

    ``observed`` is a count (volume, keyword) or a share (negative_share); ``baseline`` is what was
    expected (the median count or the baseline share) and ``threshold`` the value the bucket had to
    reach. ``excess`` is ``(observed - baseline) / (threshold - baseline)``: 1 at the threshold.
    """

    kind: AlertKind
    anomalous: bool
    observed: float
    baseline: float
    threshold: float
    severity: Severity
    excess: float = 0.0
    key: str = ""


@dataclass
class Incident:
    """An ongoing (``ended_at`` None) or closed anomaly of one signal of one channel."""

    kind: AlertKind
    key: str  # the keyword, or "" for volume and negative share
    started_at: datetime
    peak_at: datetime
    peak_value: float
    last_anomalous_at: datetime
    quiet_buckets: int = 0
    ended_at: datetime | None = None
    # The start of the current run of quiet buckets: becomes ended_at when the run closes the incident.
    quiet_since: datetime | None = None
    # The last bucket stepped: a bucket assessed again (it was still filling) is not a new quiet one.
    last_bucket_at: datetime | None = None


def robust_baseline(history: Sequence[float]) -> tuple[float, float]:
    """The median of ``history`` and its median absolute deviation scaled to a standard deviation.

    An empty history gives ``(0.0, 0.0)``; the callers' floors keep a zero spread from alarming.
    """
    if not history:
        return 0.0, 0.0
    median = float(statistics.median(history))
    mad = float(statistics.median(abs(value - median) for value in history))
    return median, MAD_SCALE * mad


def assess(
    kind: AlertKind,
    current: float,
    history: Sequence[float],
    rules: Rules,
    *,
    total: float | None = None,
    history_totals: Sequence[float] | None = None,
    key: str = "",
) -> Assessment:
    """Whether the current bucket of one signal is anomalous against its history.

    ``volume`` and ``keyword``: ``current`` and ``history`` are counts per bucket. ``negative_share``:
    ``current`` is the bucket's negative messages and ``total`` all its messages; ``history`` holds the
    earlier buckets' negative shares, and ``history_totals`` (same length) their message counts, when
    known, so the baseline is the share over all the baseline's messages instead of the median share
    (which a stream of near-empty buckets drags to 0 or 1). Only the last ``baseline_buckets`` count.
    """
    skipped = max(len(history) - rules.baseline_buckets, 0) if rules.baseline_buckets > 0 else 0
    recent = history[skipped:]
    if kind == "negative_share":
        if total is None:
            raise ValueError("a negative_share assessment needs the bucket's total")
        totals = None
        if history_totals is not None:
            if len(history_totals) != len(history):
                raise ValueError("history_totals must have one entry per history bucket")
            totals = history_totals[skipped:]
        return _assess_share(current, total, recent, totals, rules)
    return _assess_count(kind, current, recent, rules, key)


def step(
    incident: Incident | None, assessment: Assessment, bucket_start: datetime, rules: Rules
) -> tuple[Incident | None, Transition]:
    """Advance the incident of one signal by one assessed bucket; the input is never mutated.

    The returned incident is the state to keep, whatever the transition (an ``unchanged`` one may
    still have moved its quiet count or last anomalous bucket).

    - anomalous, no open incident: a new one, ``opened``;
    - anomalous, open incident: ``updated`` when the bucket is a new peak, else ``unchanged`` (an
      alert is not repeated while the incident lasts); any quiet run is forgotten;
    - quiet, open incident: after ``calm_buckets`` consecutive quiet buckets it is ``closed``, with
      ``ended_at`` the start of the first quiet bucket of that run (when the anomaly was last gone);
      before that ``unchanged``;
    - quiet, no open incident: ``(None, "none")``.

    A bucket stepped again (assessed while still filling) counts once as quiet; an older bucket than
    the last stepped one is ignored.
    """
    if incident is not None and incident.ended_at is not None:
        incident = None
    if incident is None:
        if not assessment.anomalous:
            return None, "none"
        opened = Incident(
            kind=assessment.kind,
            key=assessment.key,
            started_at=bucket_start,
            peak_at=bucket_start,
            peak_value=assessment.observed,
            last_anomalous_at=bucket_start,
            last_bucket_at=bucket_start,
        )
        return opened, "opened"

    if incident.last_bucket_at is not None and bucket_start < incident.last_bucket_at:
        return incident, "unchanged"

    if assessment.anomalous:
        ongoing = replace(
            incident,
            last_anomalous_at=bucket_start,
            quiet_buckets=0,
            quiet_since=None,
            last_bucket_at=bucket_start,
        )
        if assessment.observed > incident.peak_value:
            return replace(ongoing, peak_at=bucket_start, peak_value=assessment.observed), "updated"
        return ongoing, "unchanged"

    if incident.quiet_since is not None and bucket_start == incident.last_bucket_at:
        return incident, "unchanged"
    quiet_since = incident.quiet_since or bucket_start
    quiet = replace(
        incident,
        quiet_buckets=incident.quiet_buckets + 1,
        quiet_since=quiet_since,
        last_bucket_at=bucket_start,
    )
    if quiet.quiet_buckets >= rules.calm_buckets:
        return replace(quiet, ended_at=quiet_since), "closed"
    return quiet, "unchanged"


def _assess_count(
    kind: AlertKind, current: float, history: Sequence[float], rules: Rules, key: str
) -> Assessment:
    median, spread = robust_baseline(history)
    noise_floor = max(spread, math.sqrt(median), 1.0)
    z_line = median + rules.z * noise_floor
    factor_line = rules.volume_factor * median
    threshold = max(float(rules.min_count), z_line, factor_line)
    anomalous = (
        len(history) >= rules.min_history_buckets
        and current >= rules.min_count
        and current > z_line
        and current >= factor_line
    )
    return _verdict(kind, anomalous, current, median, threshold, key)


def _assess_share(
    negatives: float,
    total: float,
    history: Sequence[float],
    history_totals: Sequence[float] | None,
    rules: Rules,
) -> Assessment:
    if history_totals is not None and sum(history_totals) > 0:
        weighted = sum(share * weight for share, weight in zip(history, history_totals, strict=True))
        baseline = weighted / sum(history_totals)
    else:
        baseline = robust_baseline(history)[0]
    share = negatives / total if total > 0 else 0.0
    p = min(max(baseline, rules.share_floor), 1.0 - rules.share_floor)
    trials = round(total)
    noise_line = _binomial_critical(trials, p, rules.negative_p_value) / trials if trials > 0 else math.inf
    jump_line = baseline + rules.negative_share_jump
    threshold = max(noise_line, jump_line)
    anomalous = (
        len(history) >= rules.min_history_buckets
        and total >= rules.min_count
        and negatives >= rules.min_negative
        and share >= noise_line
        and share >= jump_line
    )
    return _verdict("negative_share", anomalous, share, baseline, threshold, "")


def _binomial_critical(trials: int, p: float, p_value: float) -> int:
    """The fewest successes out of ``trials`` whose upper-tail chance at ``p`` is at most ``p_value``.

    Walks the probability mass up from the mode (so the cost is about the spread, not ``trials``)
    and returns ``trials + 1`` when even all successes are not that unlikely.
    """
    mode = min(math.floor((trials + 1) * p), trials)
    log_mass = (
        math.lgamma(trials + 1)
        - math.lgamma(mode + 1)
        - math.lgamma(trials - mode + 1)
        + mode * math.log(p)
        + (trials - mode) * math.log1p(-p)
    )
    masses = [math.exp(log_mass)]
    odds = p / (1.0 - p)
    successes = mode
    # Past this the remaining mass cannot change which count is critical.
    while successes < trials and masses[-1] > p_value * 1e-6:
        masses.append(masses[-1] * (trials - successes) / (successes + 1) * odds)
        successes += 1
    tail = 0.0
    critical = trials + 1
    for offset in range(len(masses) - 1, -1, -1):
        tail += masses[offset]
        if tail > p_value:
            break
        critical = mode + offset
    return critical


def _verdict(
    kind: AlertKind, anomalous: bool, observed: float, baseline: float, threshold: float, key: str
) -> Assessment:
    gap = threshold - baseline
    excess = (observed - baseline) / gap if gap > 0 and math.isfinite(gap) else 0.0
    severity: Severity = "none"
    if anomalous:
        severity = next((level for step_, level in _SEVERITY_STEPS if excess >= step_), "low")
    return Assessment(kind, anomalous, observed, baseline, threshold, severity, excess, key)
