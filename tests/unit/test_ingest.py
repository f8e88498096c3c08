"""Planning a batch: the rows a batch of inbound events writes, before any SQL runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from services.inbox import ids
from services.inbox.ingest import IngestPlan, Rejected, plan_batch
from shared.events import Attachment, InboundEvent
from tests.unit.factories import T0, author, deleted, edited, new_channel, received

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 2, 9, 0, tzinfo=UTC)


def _plan(events: list[InboundEvent], channels: dict[UUID, UUID]) -> tuple[IngestPlan, list[Rejected]]:
    return plan_batch([(event, seq) for seq, event in enumerate(events, start=1)], channels, NOW)


def _one_channel() -> tuple[UUID, UUID, dict[UUID, UUID]]:
    channel, workspace = new_channel(), uuid4()
    return channel, workspace, {channel: workspace}


def test_the_workspace_comes_from_the_channel_not_the_event() -> None:
    channel, workspace, channels = _one_channel()
    intruder = received(channel, workspace=str(uuid4()), by=author("mallory"))

    plan, rejected = _plan([intruder, edited(channel, workspace="someone-else")], channels)

    assert rejected == []
    rows = [
        *plan.contacts.values(),
        *plan.identities.values(),
        *plan.conversations.values(),
        *(row for round_ in plan.message_rounds for row in round_),
    ]
    assert rows
    assert {row["workspace_id"] for row in rows} == {workspace}


def test_an_event_of_an_unknown_channel_is_rejected_and_the_rest_planned() -> None:
    channel, _, channels = _one_channel()
    stranger = new_channel()

    plan, rejected = _plan([received(channel), received(stranger), received(channel, message="m2")], channels)

    assert rejected == [Rejected(1, f"unknown channel {stranger}")]
    assert plan.message_count == 2
    assert stranger not in plan.channel_activity
    assert plan.channel_activity == {channel: NOW}


def test_events_for_one_message_land_in_successive_rounds_in_delivery_order() -> None:
    channel, _, channels = _one_channel()
    events: list[InboundEvent] = [
        received(channel, message="m1"),
        received(channel, message="m2"),
        edited(channel, message="m1", edited_at=T0 + timedelta(minutes=1)),
        deleted(channel, message="m1", deleted_at=T0 + timedelta(minutes=2)),
    ]

    plan, _ = _plan(events, channels)

    m1, m2 = ids.message_id(channel, "m1"), ids.message_id(channel, "m2")
    assert [[row["id"] for row in round_] for round_ in plan.message_rounds] == [[m1, m2], [m1], [m1]]
    assert [row["received_seq"] for row in plan.message_rounds[0]] == [1, 2]
    assert plan.message_rounds[1][0]["edited_at"] == T0 + timedelta(minutes=1)
    assert plan.message_rounds[2][0]["deleted_at"] == T0 + timedelta(minutes=2)
    assert plan.message_count == 4


def test_no_round_touches_a_message_twice() -> None:
    channel, _, channels = _one_channel()
    events: list[InboundEvent] = [received(channel, message=f"m{i % 3}") for i in range(9)]

    plan, _ = _plan(events, channels)

    assert len(plan.message_rounds) == 3
    for round_ in plan.message_rounds:
        assert len({row["id"] for row in round_}) == len(round_)


def test_messages_of_one_thread_fold_into_one_conversation_at_the_newest_send_time() -> None:
    channel, _, channels = _one_channel()
    events: list[InboundEvent] = [
        received(channel, message="m2", text="second", sent_at=T0 + timedelta(minutes=2)),
        received(channel, message="m3", text="newest", sent_at=T0 + timedelta(minutes=3)),
        received(channel, message="m1", text="oldest, delivered last", sent_at=T0 + timedelta(minutes=1)),
    ]

    plan, _ = _plan(events, channels)

    (conversation,) = plan.conversations.values()
    assert conversation["id"] == ids.conversation_id(channel, "t1")
    assert conversation["last_activity_at"] == T0 + timedelta(minutes=3)
    assert conversation["activity_confirmed"] is True


def test_each_thread_gets_its_own_conversation() -> None:
    channel, _, channels = _one_channel()

    plan, _ = _plan(
        [received(channel, message="a", thread="t1"), received(channel, message="b", thread="t2")], channels
    )

    assert set(plan.conversations) == {ids.conversation_id(channel, "t1"), ids.conversation_id(channel, "t2")}


@pytest.mark.parametrize("reverse", [False, True])
def test_the_title_of_the_newest_event_that_gave_one_is_kept_in_any_order(reverse: bool) -> None:
    channel, _, channels = _one_channel()
    events: list[InboundEvent] = [
        received(channel, message="a", title="Order #1", sent_at=T0),
        received(channel, message="b", title="Order #1 (shipped)", sent_at=T0 + timedelta(minutes=1)),
        received(channel, message="c", title=None, sent_at=T0 + timedelta(minutes=2)),
    ]

    plan, _ = _plan(events[::-1] if reverse else events, channels)

    (conversation,) = plan.conversations.values()
    assert (conversation["title"], conversation["title_at"]) == (
        "Order #1 (shipped)",
        T0 + timedelta(minutes=1),
    )


def test_an_edit_alone_makes_an_unconfirmed_conversation() -> None:
    channel, workspace, channels = _one_channel()
    edited_at = T0 + timedelta(hours=1)

    plan, _ = _plan([edited(channel, edited_at=edited_at)], channels)

    (conversation,) = plan.conversations.values()
    assert conversation["id"] == ids.conversation_id(channel, "t1")
    assert conversation["workspace_id"] == workspace
    assert conversation["last_activity_at"] == edited_at
    assert conversation["activity_confirmed"] is False


@pytest.mark.parametrize("create_first", [True, False])
def test_a_create_confirms_the_activity_time_whatever_the_order(create_first: bool) -> None:
    channel, _, channels = _one_channel()
    create, edit = received(channel, sent_at=T0), edited(channel, edited_at=T0 + timedelta(minutes=5))
    events: list[InboundEvent] = [create, edit] if create_first else [edit, create]

    plan, _ = _plan(events, channels)

    (conversation,) = plan.conversations.values()
    assert (conversation["last_activity_at"], conversation["activity_confirmed"]) == (T0, True)


def test_one_author_folds_into_one_identity_and_contact() -> None:
    channel, workspace, channels = _one_channel()
    events: list[InboundEvent] = [
        received(channel, message="a", by=author("alice", handle="@alice")),
        received(channel, message="b", by=author("alice", name="Alice Liddell")),
        received(channel, message="c", by=author("alice")),
    ]

    plan, _ = _plan(events, channels)

    (identity,) = plan.identities.values()
    (contact,) = plan.contacts.values()
    assert identity["id"] == ids.identity_id(workspace, "test", "alice")
    assert (identity["handle"], identity["display_name"]) == ("@alice", "Alice Liddell")
    assert identity["contact_id"] == contact["id"]
    assert contact["name"] == "@alice"  # a contact keeps the first name it was given
    assert {row["author_identity_id"] for round_ in plan.message_rounds for row in round_} == {identity["id"]}


@pytest.mark.parametrize("reverse", [False, True])
def test_an_identity_keeps_the_newest_handle_and_name_in_any_order(reverse: bool) -> None:
    channel, _, channels = _one_channel()
    events: list[InboundEvent] = [
        received(channel, message="a", by=author("zoe", handle="@zoe_old", name="Zoe"), sent_at=T0),
        received(channel, message="b", by=author("zoe", name="Zoë K."), sent_at=T0 + timedelta(days=1)),
        received(channel, message="c", by=author("zoe", handle="@zoe_k"), sent_at=T0 + timedelta(days=2)),
    ]

    plan, _ = _plan(events[::-1] if reverse else events, channels)

    (identity,) = plan.identities.values()
    assert (identity["handle"], identity["display_name"]) == ("@zoe_k", "Zoë K.")


def test_different_authors_get_different_identities() -> None:
    channel, _, channels = _one_channel()

    plan, _ = _plan(
        [
            received(channel, message="a", by=author("alice")),
            received(channel, message="b", by=author("bob")),
        ],
        channels,
    )

    assert len(plan.identities) == 2
    assert len(plan.contacts) == 2


def test_a_deletion_has_no_author() -> None:
    channel, _, channels = _one_channel()

    plan, _ = _plan([deleted(channel)], channels)

    assert plan.identities == {}
    assert plan.message_rounds[0][0]["author_identity_id"] is None


def test_identical_edits_have_the_same_revision_digest() -> None:
    channel, _, channels = _one_channel()
    photo = (Attachment(type="image", url="https://example.test/p.png"),)
    edit = edited(channel, text="fixed typo", attachments=photo)
    again = edited(channel, text="fixed typo", attachments=photo)  # a redelivery under a new event id

    plan, _ = _plan([edit, again], channels)

    first, second = plan.revisions
    assert first["digest"] == second["digest"]
    assert len(first["digest"]) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"text": "fixed typo!"},
        {"text": None},
        {"edited_at": T0 + timedelta(seconds=1)},
        {"attachments": (Attachment(type="image", url="https://example.test/p.png"),)},
    ],
)
def test_a_different_edit_has_a_different_revision_digest(change: dict[str, object]) -> None:
    channel, _, channels = _one_channel()
    base = edited(channel, text="fixed typo")
    other = edited(channel, **{"text": "fixed typo", **change})  # type: ignore[arg-type]

    plan, _ = _plan([base, other], channels)

    first, second = plan.revisions
    assert first["digest"] != second["digest"]


def test_the_plan_is_the_same_whoever_replays_it() -> None:
    channel, _, channels = _one_channel()
    events: list[InboundEvent] = [received(channel), edited(channel), deleted(channel, message="m9")]

    assert _plan(events, channels) == _plan(events, channels)
