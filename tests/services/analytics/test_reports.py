"""Weekly and monthly reports: the HTML carries its charts and figures, the CSV's rows are the
period's conversations, and scheduled delivery writes files and announces the report once."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.analytics.config import AnalyticsSettings
from services.analytics.facts import Fact, MessageSeen, StatusChanged
from services.analytics.hours import zone
from services.analytics.models import ConversationFact, ReportRun, WorkspaceSettings
from services.analytics.service import reports
from services.analytics.service.ingest import store_facts
from shared.bus.client import Bus
from shared.db import session_factory
from shared.events import utcnow
from tests.support import make_tenant

WEEK = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def _week_of_traffic(workspace: uuid.UUID, seed: int = 5) -> list[Fact]:
    """Twenty conversations over the week (and two the week before), answered and some resolved."""
    rng = random.Random(seed)
    channel, agent = uuid.uuid4(), uuid.uuid4()
    facts: list[Fact] = []
    for n in range(22):
        conversation = uuid.uuid4()
        opened = (WEEK - timedelta(days=2) if n < 2 else WEEK) + timedelta(
            hours=rng.uniform(0, 40 if n < 2 else 150)
        )
        for k in range(rng.randint(1, 3)):
            label = rng.choice(["negative", "neutral", "positive"])
            facts.append(
                MessageSeen(
                    id=uuid.uuid4(),
                    workspace_id=workspace,
                    channel_id=channel,
                    conversation_id=conversation,
                    direction="inbound",
                    author_key=f"author-{n}",
                    occurred_at=opened + timedelta(minutes=k),
                    sentiment=label,
                    sentiment_score={"negative": -0.5, "neutral": 0.0, "positive": 0.5}[label],
                    language="en",
                    text=rng.choice(["battery drains fast", "love the new app", "refund please #help"]),
                )
            )
        if n % 3:
            facts.append(
                MessageSeen(
                    id=uuid.uuid4(),
                    workspace_id=workspace,
                    channel_id=channel,
                    conversation_id=conversation,
                    direction="outbound",
                    author_key=str(agent),
                    occurred_at=opened + timedelta(minutes=rng.randint(5, 300)),
                    text="on it",
                )
            )
        if n % 2:
            facts.append(
                StatusChanged(
                    event_id=uuid.uuid4().hex,
                    workspace_id=workspace,
                    conversation_id=conversation,
                    channel_id=channel,
                    occurred_at=opened + timedelta(hours=6),
                    before="open",
                    after="resolved",
                    actor_user_id=agent,
                )
            )
    return facts


async def _seed(engine: AsyncEngine, workspace: uuid.UUID) -> None:
    async with session_factory(engine)() as session, session.begin():
        await store_facts(session, _week_of_traffic(workspace), bucket_seconds=300)


@pytest.mark.e2e
async def test_the_weekly_report_as_html_and_as_csv(
    api: httpx.AsyncClient, analytics: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await make_tenant(engine)
    await _seed(engine, tenant.workspace_id)

    page = await analytics.get("/v1/reports/weekly", params={"start": "2026-11-04"}, headers=tenant.auth)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.count("<svg") >= 4
    for title in ("Volume", "Response", "Sentiment", "topics"):
        assert title.lower() in html.lower()
    assert "2 Nov 2026" in html

    exported = await analytics.get(
        "/v1/reports/weekly", params={"start": "2026-11-04", "format": "csv"}, headers=tenant.auth
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    async with session_factory(engine)() as session:
        stored = {
            c.id: c
            for c in (
                await session.execute(
                    select(ConversationFact).where(
                        ConversationFact.workspace_id == tenant.workspace_id,
                        ConversationFact.opened_at >= WEEK,
                        ConversationFact.opened_at < WEEK + timedelta(days=7),
                    )
                )
            ).scalars()
        }
    assert len(rows) == len(stored) == 20
    for row in rows:
        conversation = stored[uuid.UUID(row["conversation_id"])]
        assert int(row["inbound_messages"]) == conversation.inbound_messages
        assert int(row["outbound_messages"]) == conversation.outbound_messages
        if conversation.first_response_seconds is None:
            assert row["first_response_seconds"] == ""
        else:
            assert float(row["first_response_seconds"]) == pytest.approx(conversation.first_response_seconds)
        assert (row["resolved_at"] != "") == (conversation.resolved_at is not None)
        assert row["first_sentiment"] == (conversation.first_sentiment or "")
        assert row["sentiment"] == (conversation.last_sentiment or "")

    monthly = await analytics.get("/v1/reports/monthly", params={"start": "2026-11-20"}, headers=tenant.auth)
    assert monthly.status_code == 200
    bad = await analytics.get("/v1/reports/weekly", params={"start": "yesterday"}, headers=tenant.auth)
    assert bad.status_code in (400, 422)
    other = await make_tenant(engine)
    empty = await analytics.get(
        "/v1/reports/weekly", params={"start": "2026-11-04", "format": "csv"}, headers=other.auth
    )
    assert len(list(csv.DictReader(io.StringIO(empty.text)))) == 0


@pytest.fixture
async def bus(nats_url: str, bus_prefix: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="tests", prefix=bus_prefix)
    yield bus
    await bus.close()


@pytest.mark.db
@pytest.mark.bus
async def test_scheduled_reports_are_written_and_announced_once(
    engine: AsyncEngine, bus: Bus, settings_kwargs: dict[str, object], tmp_path: Path
) -> None:
    settings = AnalyticsSettings(**settings_kwargs, report_folder=tmp_path / "reports")  # type: ignore[arg-type]
    workspace = uuid.uuid4()
    await _seed(engine, workspace)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(
            WorkspaceSettings(
                workspace_id=workspace,
                timezone="UTC",
                working_hours={},
                watched_keywords=[],
                report_schedule={"kinds": ["weekly"], "folder": True, "webhook": True},
                updated_at=WEEK - timedelta(days=1),  # scheduled before the week it reports
            )
        )
        # A schedule saved after the week ended starts with the next one (no report of the past).
        late = uuid.uuid4()
        session.add(
            WorkspaceSettings(
                workspace_id=late,
                timezone="UTC",
                working_hours={},
                watched_keywords=[],
                report_schedule={"kinds": ["weekly"], "folder": True},
                updated_at=utcnow(),
            )
        )
    announced: list[dict[str, object]] = []

    async def collect(msg: object) -> None:
        announced.append(orjson.loads(msg.data))  # type: ignore[attr-defined]

    subscription = await bus.nc.subscribe(
        bus.names.subject(f"domain.{workspace}.report.generated"), cb=collect
    )
    following_week = WEEK + timedelta(days=8, hours=3)
    delivered = await reports.deliver_due(sessions, bus, settings, following_week)
    assert delivered >= 1
    folder = tmp_path / "reports" / str(workspace)
    html = (folder / "weekly-2026-11-02.html").read_text()
    assert "<svg" in html
    assert len((folder / "weekly-2026-11-02.csv").read_text().splitlines()) == 21  # header + 20
    # Again (another replica, or the next check): nothing more.
    assert await reports.deliver_due(sessions, bus, settings, following_week + timedelta(minutes=5)) == 0
    await bus.nc.flush()
    for _ in range(100):
        if announced:
            break
        await bus.nc.flush()
    assert len(announced) == 1
    assert announced[0]["payload"]["data"]["kind"] == "weekly"  # type: ignore[index]
    async with sessions() as session:
        runs = list(
            (await session.execute(select(ReportRun).where(ReportRun.workspace_id == workspace))).scalars()
        )
    assert [(r.kind, r.status) for r in runs] == [("weekly", "delivered")]
    assert not (tmp_path / "reports" / str(late)).exists()
    await subscription.unsubscribe()


@pytest.mark.unit
def test_periods_follow_the_local_calendar() -> None:
    rome = zone("Europe/Rome")
    start, end = reports.period_bounds("weekly", date(2026, 11, 4), rome)
    assert start == datetime(2026, 11, 1, 23, tzinfo=UTC)
    assert end - start == timedelta(days=7)
    start, end = reports.period_bounds("monthly", date(2026, 3, 15), rome)
    assert (start, end) == (datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC))
    last = reports.last_complete("weekly", datetime(2026, 11, 4, 12, tzinfo=UTC), rome)
    assert last[0] == datetime(2026, 10, 25, 23, tzinfo=UTC)
