"""An agent's correction of a customer message's sentiment (``docs/api.md``, Sentiment)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.inbox.dependencies import AgentDep, StateDep
from services.inbox.endpoints.shapes import conversation_out, message_out
from services.inbox.endpoints.workflow import IfMatch, expected_version, publish
from services.inbox.schemas import SentimentCorrectionOut
from services.inbox.schemas.sentiment import SentimentCorrection
from services.inbox.service import conversations as reading
from services.inbox.service import sentiment
from services.inbox.service.access import Principal
from services.inbox.state import InboxState
from shared.events import utcnow
from shared.sentiment import SentimentLabel

router = APIRouter(prefix="/v1/conversations", tags=["sentiment"])

_PATH = "/{conversation_id}/messages/{message_id}/sentiment"
_RESPONSES: dict[int | str, dict[str, str]] = {
    409: {"description": "The message is not a customer's (inbound) message: `sentiment_not_applicable`"},
    412: {"description": "If-Match named a version of the conversation that is no longer current"},
}


@router.put(_PATH, responses=_RESPONSES)
async def correct_sentiment(
    conversation_id: UUID,
    message_id: UUID,
    body: SentimentCorrection,
    principal: AgentDep,
    state: StateDep,
    response: Response,
    if_match: IfMatch = None,
) -> SentimentCorrectionOut:
    """Correct the sentiment of a customer message: the label wins over the analyzer's everywhere
    (the message, the conversation's sentiment and its filter, analytics). Audited and announced as
    ``conversation.sentiment_corrected``; the conversation's version moves only if its sentiment
    changed (the ``ETag`` is the new one)."""
    return await _apply(state, principal, conversation_id, message_id, body.label, if_match, response)


@router.delete(_PATH, responses=_RESPONSES)
async def remove_sentiment_correction(
    conversation_id: UUID,
    message_id: UUID,
    principal: AgentDep,
    state: StateDep,
    response: Response,
    if_match: IfMatch = None,
) -> SentimentCorrectionOut:
    """Remove the correction: the message has the analyzer's label again. Audited and announced like
    a correction (``corrected_label`` null); removing a correction that is not there changes nothing."""
    return await _apply(state, principal, conversation_id, message_id, None, if_match, response)


async def _apply(
    state: InboxState,
    principal: Principal,
    conversation_id: UUID,
    message_id: UUID,
    label: SentimentLabel | None,
    if_match: str | None,
    response: Response,
) -> SentimentCorrectionOut:
    async with state.transaction() as session:
        _, _, changed = await sentiment.correct(
            session, principal, conversation_id, message_id, label, expected_version(if_match), utcnow()
        )
    await publish(state, changed.outbox_ids)
    async with state.reading() as session:
        message = await reading.get_message(session, principal.workspace_id, message_id)
        conversation = await reading.get_conversation(
            session, principal.workspace_id, conversation_id, principal.user_id
        )
    response.headers["ETag"] = f'"{conversation.version}"'
    return SentimentCorrectionOut(message=message_out(message), conversation=conversation_out(conversation))
