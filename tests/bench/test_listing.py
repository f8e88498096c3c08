"""The conversation-list benchmark's harness works end to end at a tiny scale (no timing asserted)."""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime

import pytest

from bench import corpus, listing
from bench.corpus import Scale
from services.inbox.models import Conversation, Message


@pytest.mark.unit
def test_the_corpus_has_exactly_the_messages_asked_for_with_common_and_rare_words() -> None:
    rng = random.Random(7)
    vocabulary = corpus.COMMON_WORDS + corpus._syllable_words(2_000, rng)
    generator = corpus._Generator(
        rng, uuid.uuid4(), Scale(conversations=300, messages=4_000), vocabulary, datetime.now(UTC)
    )

    messages = list(generator.messages())

    assert len(list(generator.conversations())) == 300
    assert len(messages) == 4_000
    words = [w.strip(".!? ").lower() for m in messages if m["text"] for w in m["text"].split()]
    assert words.count("the") > 100 * max(1, words.count(vocabulary[1_500]))


@pytest.mark.unit
def test_a_seed_row_must_name_every_column_the_database_cannot_fill() -> None:
    row = next(
        corpus._Generator(
            random.Random(1), uuid.uuid4(), Scale(10, 20), corpus.COMMON_WORDS, datetime.now(UTC)
        ).conversations()
    )
    table = Conversation.__table__

    assert len(corpus._columns(table, row)) == len(table.c)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no value for status"):
        corpus._columns(table, {k: v for k, v in row.items() if k != "status"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no such columns"):
        corpus._columns(Message.__table__, {**row, "colour": "red"})  # type: ignore[arg-type]


def _postgres() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    return url if url and url.startswith("postgres") else None


@pytest.mark.e2e
# bench/stack.py leaves its processes' log files for the garbage collector to close.
@pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <_io.FileIO name='.*\.log':pytest.PytestUnraisableExceptionWarning"
)
@pytest.mark.skipif(_postgres() is None, reason="the listing benchmark needs PostgreSQL (TEST_DATABASE_URL)")
async def test_the_listing_benchmark_runs_every_scenario_against_piazza_and_the_raw_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", _postgres() or "")
    scale = Scale(conversations=200, messages=2_000)

    report = await listing.measure(scale, duration=0.5, warmup=0.2, progress=lambda _: None)

    assert report.seeded.rows["conversations"] == 200 + 20  # and the noise workspace's tenth
    assert report.seeded.rows["messages"] == 2_000 + 200
    assert [m.result.errors for m in report.raw] == [0, 0]
    assert all(m.result.ok > 0 for m in report.raw)
    titles = [m.title for m in report.piazza]
    assert titles == [s.title for s in listing.scenarios(report.seeded)]
    for measured in report.piazza:
        assert measured.result.errors == 0, (measured.title, measured.result.first_error)
        assert measured.result.ok > 0
        assert measured.sql_ms is not None
        assert measured.sql_ms > 0
    for measured in [*report.raw, *report.piazza]:
        # The server under test answered every request, so it used CPU. The database's share is
        # None when its processes cannot be seen from here (CI may run PostgreSQL outside this PID
        # namespace); CPU time is counted in 10 ms ticks, too coarse to require it of so short a run.
        assert measured.cores is not None
        assert measured.cores.server > 0
        assert measured.cores.load > 0
        assert measured.cores.database is None or measured.cores.database >= 0
    section = listing.render(report, "### heading")
    assert all(title in section for title in titles)
    assert "ratio to raw" in section
    assert "CPU per request: server / database" in section


def test_cpu_per_request_is_not_available_when_the_database_cannot_be_seen() -> None:
    result = listing.ReadResult(ok=500, seconds=1.0)
    seen = listing.Measured("raw", result, cores=listing.Cores(server=0.5, database=0.1, load=0.2))
    unseen = listing.Measured("raw", result, cores=listing.Cores(server=0.5, database=None, load=0.2))

    assert listing._per_request(seen) == "1.00 / 0.20 ms"
    assert listing._per_request(unseen) == "1.00 / n/a ms"
    assert str(unseen.cores) == "0.50 / n/a / 0.20"
