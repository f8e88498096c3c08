"""The analytics and sentiment benchmarks' harnesses work end to end at a tiny scale (no timing
asserted: figures are measured by ``make bench``, never by the suite)."""

from __future__ import annotations

import pytest

from bench import analytics, sentiment


@pytest.mark.db
async def test_the_analytics_benchmark_measures_ingest_and_every_kpi_query() -> None:
    report = await analytics.measure(3_000, 300, lambda _line: None)
    assert report.ingest_seconds > 0
    assert report.raw_seconds > 0
    assert len(report.latencies) == 9
    assert all(len(times) == 10 for times in report.latencies.values())
    text = analytics.render(report, "### Analytics")
    assert "| summary, 30 days |" in text
    assert "events/s" in text


@pytest.mark.unit
def test_the_sentiment_benchmark_reports_both_languages() -> None:
    text = sentiment.section(quick=True)
    for language in ("| en | all |", "| it | all |", "| en | held-out |", "| it | held-out |"):
        assert language in text
