"""Hot topics of a range: term counts from the hourly term rollup against the period before it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import topics
from services.analytics.models import MessageFact, TermCount
from services.analytics.repository import queries
from services.analytics.repository.queries import Scope

EXAMPLES = 3
_EXAMPLE_SCAN = 2000  # newest inbound messages of the range searched for examples


async def _term_counts(session: AsyncSession, scope: Scope) -> dict[str, int]:
    query = (
        select(TermCount.term, func.sum(TermCount.count))
        .where(
            TermCount.workspace_id == scope.workspace_id,
            TermCount.hour >= scope.since,
            TermCount.hour < scope.until,
        )
        .group_by(TermCount.term)
    )
    if scope.channels:
        query = query.where(TermCount.channel_id.in_(scope.channels))
    return {term: int(count) for term, count in (await session.execute(query)).all()}


async def hot_topics(
    session: AsyncSession, scope: Scope, *, baseline_days: int, min_count: int, limit: int
) -> list[dict[str, Any]]:
    """The rising terms of the scope, each with up to three recent example messages."""
    plain = Scope(scope.workspace_id, scope.since, scope.until, scope.channels)  # terms carry no labels
    baseline = Scope(
        scope.workspace_id, scope.since - timedelta(days=baseline_days), scope.since, scope.channels
    )
    window_counts = await _term_counts(session, plain)
    baseline_counts = await _term_counts(session, baseline)
    window_messages = (await queries.volumes(session, plain)).get(0, queries.Volumes()).inbound
    baseline_messages = (await queries.volumes(session, baseline)).get(0, queries.Volumes()).inbound
    trends = topics.trending(
        window_counts,
        baseline_counts,
        window_messages=window_messages,
        baseline_messages=baseline_messages,
        min_count=min_count,
        limit=limit,
    )
    examples = await _examples(session, plain, [t.term for t in trends])
    return [
        {
            "term": t.term,
            "kind": t.kind,
            "count": t.count,
            "baseline_count": t.baseline_count,
            "score": round(t.score, 4),
            "examples": examples.get(t.term, []),
        }
        for t in trends
    ]


async def _examples(session: AsyncSession, scope: Scope, terms: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Recent inbound messages that use each term (read the way the term was counted)."""
    if not terms:
        return {}
    query = (
        select(
            MessageFact.id,
            MessageFact.conversation_id,
            MessageFact.occurred_at,
            MessageFact.text,
            MessageFact.language,
        )
        .where(
            MessageFact.workspace_id == scope.workspace_id,
            MessageFact.occurred_at >= scope.since,
            MessageFact.occurred_at < scope.until,
            MessageFact.direction == "inbound",
            MessageFact.text.is_not(None),
        )
        .order_by(MessageFact.occurred_at.desc())
        .limit(_EXAMPLE_SCAN)
    )
    if scope.channels:
        query = query.where(MessageFact.channel_id.in_(scope.channels))
    wanted = set(terms)
    found: dict[str, list[dict[str, Any]]] = {}
    for message_id, conversation_id, occurred_at, text, language in (await session.execute(query)).all():
        for term in wanted.intersection(topics.message_terms(text or "", language)):
            chosen = found.setdefault(term, [])
            if len(chosen) < EXAMPLES:
                chosen.append(
                    {
                        "message_id": message_id,
                        "conversation_id": conversation_id,
                        "occurred_at": occurred_at,
                        "text": text,
                    }
                )
        if all(len(found.get(term, ())) >= EXAMPLES for term in wanted):
            break
    return found
