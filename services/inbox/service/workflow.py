"""The conversation workflow: status, snooze and reopen, assignment, team, priority, labels, notes,
claims and read state.

Rules (``docs/api.md`` states them for API users):

* Every change of status, assignee, team, priority or labels adds one to the conversation's
  ``version``; a write that names a version (``If-Match``) is refused when it is not the current one.
* ``status_changed_at`` is when the status last changed. Snoozing needs a time in the future; any
  other status clears it. A snoozed conversation opens again by itself at that time.
* A customer message sent after the status last changed takes a resolved, snoozed or pending
  conversation back to open (the ingest's upsert applies it, order-independently).
* ``first_response_at`` is the first agent reply to a customer; never moved afterwards, reopenings
  included. ``resolved_at`` is the current resolution (cleared when the conversation is reopened,
  set again when resolved again); ``first_resolved_at`` is the first one and is never moved.
* A claim is a lease: while it lasts, other agents' replies are refused unless they force them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import (
    ConversationNotFound,
    InvalidReference,
    NoUser,
    VersionMismatch,
)
from services.inbox.models import Conversation, Message
from services.inbox.repository import list_columns, users
from services.inbox.repository import outbound as outbound_repo
from services.inbox.repository import workflow as repo
from services.inbox.service import outbound
from services.inbox.service.access import Principal, Role
from services.inbox.service.events import announce, announce_conversation_change, audit, json_ready
from shared.events.domain import DomainChange

WORKFLOW_FIELDS = ("status", "snoozed_until", "assignee_id", "team_id", "priority")


@dataclass
class Changed:
    """What a workflow write did: the domain events it queued (publish them after the commit)."""

    outbox_ids: list[str] = field(default_factory=list)
    changed: bool = False


def check_version(conversation: Conversation, expected: int | None) -> None:
    """Refuse a write made against another version than the current one."""
    if expected is not None and expected != conversation.version:
        raise VersionMismatch(
            f"The conversation is at version {conversation.version}, not {expected}: "
            "fetch it again and reapply your change.",
            headers={"ETag": f'"{conversation.version}"'},
            errors=[{"current_version": conversation.version}],
        )


async def locked_conversation(
    session: AsyncSession, workspace_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation:
    conversation = await repo.conversation_for_update(session, workspace_id, conversation_id)
    if conversation is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    return conversation


async def _check_references(session: AsyncSession, workspace_id: uuid.UUID, wanted: dict[str, Any]) -> None:
    assignee = wanted.get("assignee_id")
    if assignee is not None:
        user = await users.get_user(session, workspace_id, assignee)
        if user is None or user.deactivated_at is not None or user.role == Role.VIEWER.value:
            raise InvalidReference(
                f"assignee {assignee} is not an active agent or admin of this workspace",
                errors=[{"loc": ["body", "assignee_id"], "msg": "not an active agent or admin"}],
            )
    team = wanted.get("team_id")
    if team is not None and await users.get_team(session, workspace_id, team) is None:
        raise InvalidReference(
            f"team {team} is not a team of this workspace",
            errors=[{"loc": ["body", "team_id"], "msg": "no such team"}],
        )
    labels = {*wanted.get("labels", ()), *wanted.get("add_labels", ()), *wanted.get("remove_labels", ())}
    if labels:
        known = {label.id for label in await users.labels_by_id(session, workspace_id, labels)}
        unknown = sorted(str(label) for label in labels - known)
        if unknown:
            raise InvalidReference(
                f"not labels of this workspace's catalogue: {', '.join(unknown)}",
                errors=[{"loc": ["body", "labels"], "msg": "unknown label", "ids": unknown}],
            )


def _set_status(
    conversation: Conversation, status: str, snoozed_until: datetime | None, now: datetime
) -> None:
    if status == "snoozed" and (snoozed_until is None or snoozed_until <= now):
        raise InvalidReference(
            "snoozed_until must be in the future",
            errors=[{"loc": ["body", "snoozed_until"], "msg": "must be in the future"}],
        )
    if status != conversation.status:
        conversation.status_changed_at = now
    if status == "resolved" and conversation.status != "resolved":
        conversation.resolved_at = now
        conversation.first_resolved_at = conversation.first_resolved_at or now
    elif status != "resolved":
        conversation.resolved_at = None
    conversation.status = status
    conversation.snoozed_until = snoozed_until if status == "snoozed" else None


async def apply_changes(
    session: AsyncSession,
    principal: Principal,
    conversation: Conversation,
    wanted: dict[str, Any],
    now: datetime,
    *,
    action: str = "conversation.update",
) -> Changed:
    """Apply workflow changes (only the keys present in ``wanted``) to a locked conversation; audit them
    and queue their domain events. References must have been checked with :func:`check_references`."""
    before = {name: getattr(conversation, name) for name in WORKFLOW_FIELDS}
    labels_before = await repo.label_ids(session, conversation.id)
    if "status" in wanted and wanted["status"] is not None:
        _set_status(conversation, wanted["status"], wanted.get("snoozed_until"), now)
    for name in ("assignee_id", "team_id", "priority"):
        if name in wanted:
            setattr(conversation, name, wanted[name])
    if conversation.priority != before["priority"]:
        await list_columns.order_labels(
            session, [(conversation.id, conversation.last_activity_at, conversation.priority)]
        )
    labels_after = set(labels_before)
    if wanted.get("labels") is not None:
        labels_after = set(wanted["labels"])
    labels_after = (labels_after | set(wanted.get("add_labels", ()))) - set(wanted.get("remove_labels", ()))
    await repo.change_labels(
        session, conversation.id, labels_after - labels_before, labels_before - labels_after
    )
    after = {name: getattr(conversation, name) for name in WORKFLOW_FIELDS}
    changes = {
        name: {"before": json_ready(before[name]), "after": json_ready(after[name])}
        for name in WORKFLOW_FIELDS
        if before[name] != after[name]
    }
    if labels_before != labels_after:
        changes["labels"] = {"before": json_ready(labels_before), "after": json_ready(labels_after)}
    if not changes:
        return Changed()
    outcome = Changed(changed=True)
    if changes.get("status", {}).get("after") == "resolved":
        outcome.outbox_ids += await read_on_platform(session, conversation.workspace_id, conversation.id, now)
    conversation.version += 1
    conversation.updated_at = now
    changes["version"] = {"before": conversation.version - 1, "after": conversation.version}
    await audit(
        session,
        principal,
        action=action,
        target_type="conversation",
        target_id=conversation.id,
        now=now,
        before={name: change["before"] for name, change in changes.items()},
        after={name: change["after"] for name, change in changes.items()},
    )
    outcome.outbox_ids += await announce_conversation_change(
        session, conversation, changes, now, actor_user_id=principal.user_id
    )
    return outcome


async def update_conversation(
    session: AsyncSession,
    principal: Principal,
    conversation_id: uuid.UUID,
    wanted: dict[str, Any],
    expected_version: int | None,
    now: datetime,
) -> tuple[Conversation, Changed]:
    """``PATCH`` a conversation: check the version and the references, then apply."""
    conversation = await locked_conversation(session, principal.workspace_id, conversation_id)
    check_version(conversation, expected_version)
    await _check_references(session, principal.workspace_id, wanted)
    return conversation, await apply_changes(session, principal, conversation, wanted, now)


async def check_references(session: AsyncSession, workspace_id: uuid.UUID, wanted: dict[str, Any]) -> None:
    """Refuse users, teams and labels that are not the workspace's (before a bulk action)."""
    await _check_references(session, workspace_id, wanted)


async def bulk_update(
    session: AsyncSession,
    principal: Principal,
    conversation_ids: list[uuid.UUID],
    wanted: dict[str, Any],
    now: datetime,
    *,
    action: str = "conversation.bulk_update",
) -> tuple[int, list[uuid.UUID], Changed]:
    """Apply the same changes to many conversations; returns how many changed, the ids not found, and
    the queued events."""
    await _check_references(session, principal.workspace_id, wanted)
    found = await repo.conversations_for_update(session, principal.workspace_id, conversation_ids)
    missing = sorted(set(conversation_ids) - {c.id for c in found})
    total = Changed()
    updated = 0
    for conversation in found:
        outcome = await apply_changes(session, principal, conversation, wanted, now, action=action)
        updated += outcome.changed
        total.outbox_ids += outcome.outbox_ids
    total.changed = updated > 0
    return updated, missing, total


def require_user(principal: Principal) -> uuid.UUID:
    if principal.user_id is None:
        raise NoUser("This needs a user's token: an integration token has no user to act as.")
    return principal.user_id


async def add_note(
    session: AsyncSession, principal: Principal, conversation_id: uuid.UUID, text: str, now: datetime
) -> tuple[Message, str]:
    """A private note on the conversation (never sent anywhere); returns it and its event's outbox id."""
    conversation = await locked_conversation(session, principal.workspace_id, conversation_id)
    note_id = uuid.uuid4()
    note = Message(
        id=note_id,
        workspace_id=conversation.workspace_id,
        channel_id=conversation.channel_id,
        conversation_id=conversation.id,
        external_id=f"note:{note_id}",
        direction="note",
        author_identity_id=None,
        text=text,
        attachments=[],
        reply_to_external_id=None,
        sent_at=now,
        occurred_at=now,
        received_seq=0,
        text_version_at=now,
        original_saved=False,
        edited_at=None,
        deleted_at=None,
        meta={},
        delivery_status=None,
        sent_by_token_id=principal.token_id,
        sent_by_user_id=principal.user_id,
        created_at=now,
        updated_at=now,
    )
    await outbound_repo.add_message(session, note)
    entry = await announce(
        session,
        conversation.workspace_id,
        "conversation.note_added",
        DomainChange(
            conversation_id=conversation.id,
            message_id=note_id,
            actor_user_id=principal.user_id,
            data={"id": str(note_id), "text": text, "author_user_id": json_ready(principal.user_id)},
        ),
        now,
    )
    return note, entry


async def read_on_platform(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    conversation_id: uuid.UUID,
    now: datetime,
    up_to: datetime | None = None,
) -> list[str]:
    """Resolving or reading a conversation counts as opening it: items still unread on the platform
    are marked read there when the channel asks for that (Reddit's ``mark_read: opened``)."""
    ids = await repo.inbound_message_ids(session, conversation_id, up_to)
    entry = await outbound.request_read(
        session, workspace_id=workspace_id, conversation_id=conversation_id, message_ids=ids, now=now
    )
    return [entry] if entry else []


async def wake_snoozed(session: AsyncSession, now: datetime) -> list[str]:
    """Open the snoozed conversations whose time has come; returns the outbox ids of their events."""
    entries = []
    for conversation_id, workspace_id, channel_id, version in await repo.due_snoozes(session, now):
        if await repo.wake(session, conversation_id, version, now):
            entries.append(
                await announce(
                    session,
                    workspace_id,
                    "conversation.updated",
                    DomainChange(
                        conversation_id=conversation_id,
                        changes={
                            "status": {"before": "snoozed", "after": "open"},
                            "version": {"before": version, "after": version + 1},
                        },
                        data={"reason": "snooze_expired", "channel_id": str(channel_id)},
                    ),
                    now,
                )
            )
    return entries
