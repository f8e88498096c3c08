"""Contacts through the API: listing and search, profile edits, merging two and undoing it exactly."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.models import AuditEntry, Contact, Conversation, Identity, Message, OutboxEntry
from services.inbox.service.access import Role
from shared.db import session_factory
from tests.support import (
    Channel,
    Tenant,
    add_token,
    add_user,
    conversation_messages,
    make_channel,
    make_tenant,
    message_event,
    send_events,
    wait_for,
)

pytestmark = pytest.mark.e2e


async def _say(
    api: httpx.AsyncClient,
    tenant: Tenant,
    channel: Channel,
    thread: str,
    author: str,
    *,
    name: str | None = None,
    handle: str | None = None,
) -> dict[str, Any]:
    """Post one message from ``author`` and wait until it is stored; returns it as the API shows it."""
    event = message_event(thread=thread, author=author, text=f"{author} in {thread}")
    event["author"] = {"id": author, "name": name or author.title(), **({"handle": handle} if handle else {})}
    assert (await send_events(api, channel, event)).status_code == 202

    async def stored() -> dict[str, Any] | None:
        messages = await conversation_messages(api, tenant, channel.id, thread)
        return next((m for m in messages if m["external_id"] == event["id"]), None)

    return await wait_for(stored)


async def _get(api: httpx.AsyncClient, tenant: Tenant, path: str, **params: Any) -> Any:
    response = await api.get(path, params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()


async def _all_pages(api: httpx.AsyncClient, tenant: Tenant, path: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = await _get(api, tenant, path, **params, **({"cursor": cursor} if cursor else {}))
        items += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items


async def _rows(engine: AsyncEngine, contact_ids: list[str]) -> dict[str, Any]:
    """Both contacts' rows, their identities' rows, and the rows of the conversations they wrote in."""
    ids = [uuid.UUID(i) for i in contact_ids]
    async with session_factory(engine)() as session:
        contacts = (
            await session.execute(select(Contact.__table__).where(Contact.id.in_(ids)).order_by(Contact.id))
        ).all()
        identities = (
            await session.execute(
                select(Identity.__table__).where(Identity.contact_id.in_(ids)).order_by(Identity.id)
            )
        ).all()
        authored = select(Message.conversation_id).where(
            Message.author_identity_id.in_([row.id for row in identities])
        )
        conversations = (
            await session.execute(
                select(Conversation.__table__).where(Conversation.id.in_(authored)).order_by(Conversation.id)
            )
        ).all()
    return {
        "contacts": [dict(row._mapping) for row in contacts],
        "identities": [dict(row._mapping) for row in identities],
        "conversations": [dict(row._mapping) for row in conversations],
    }


async def _api_state(api: httpx.AsyncClient, tenant: Tenant, contact_ids: list[str]) -> dict[str, Any]:
    """Everything the API shows of these contacts: themselves, their conversations, the list."""
    state: dict[str, Any] = {}
    for contact_id in contact_ids:
        state[contact_id] = await _get(api, tenant, f"/v1/contacts/{contact_id}")
        state[f"{contact_id}/conversations"] = await _all_pages(
            api, tenant, f"/v1/contacts/{contact_id}/conversations"
        )
    state["list"] = await _all_pages(api, tenant, "/v1/contacts")
    return state


async def _audit(engine: AsyncEngine, workspace_id: uuid.UUID, action: str) -> list[AuditEntry]:
    async with session_factory(engine)() as session:
        query = (
            select(AuditEntry)
            .where(AuditEntry.workspace_id == workspace_id, AuditEntry.action == action)
            .order_by(AuditEntry.created_at)
        )
        return list((await session.scalars(query)).all())


async def _announced(engine: AsyncEngine, workspace_id: uuid.UUID, event_type: str) -> int:
    async with session_factory(engine)() as session:
        subject = f"domain.{workspace_id}.{event_type}"
        return len(
            (await session.scalars(select(OutboxEntry.id).where(OutboxEntry.subject == subject))).all()
        )


async def _patch(api: httpx.AsyncClient, tenant: Tenant, contact_id: str, body: dict[str, Any]) -> Any:
    response = await api.patch(f"/v1/contacts/{contact_id}", json=body, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()


async def _merge(api: httpx.AsyncClient, tenant: Tenant, target: str, source: str) -> Any:
    response = await api.post(
        f"/v1/contacts/{target}/merge", json={"source_contact_id": source}, headers=tenant.auth
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _undo(api: httpx.AsyncClient, tenant: Tenant, merge_id: str) -> httpx.Response:
    return await api.post(f"/v1/contacts/merges/{merge_id}/undo", headers=tenant.auth)


async def test_merge_then_undo_gives_back_exactly_the_previous_state(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    site, shop = await make_channel(api, tenant, "site"), await make_channel(api, tenant, "shop")
    on_site = await _say(api, tenant, site, "site-1", "marta", name="M")
    await _say(api, tenant, site, "site-2", "marta", name="M")
    on_shop = await _say(api, tenant, shop, "shop-1", "m.rossi", name="Marta Rossi", handle="@mrossi")
    target, source = on_site["author"]["contact_id"], on_shop["author"]["contact_id"]
    await _patch(
        api, tenant, target, {"name": None, "email": "marta@example.com", "attributes": {"plan": "pro"}}
    )
    await _patch(
        api,
        tenant,
        source,
        {"email": "old@example.com", "phone": "+39 06 123", "attributes": {"plan": "free", "city": "Rome"}},
    )
    before_api = await _api_state(api, tenant, [target, source])
    before_rows = await _rows(engine, [target, source])
    assert {c["id"] for c in before_api["list"]} == {target, source}

    merged = await _merge(api, tenant, target, source)

    merge = merged["merge"]
    assert (merge["target_contact_id"], merge["source_contact_id"]) == (target, source)
    assert merge["identity_ids"] == [on_shop["author"]["identity_id"]]
    assert merge["filled_fields"] == ["name", "phone", "attributes.city"]
    assert merge["undone_at"] is None
    now_target = merged["target"]
    assert (now_target["name"], now_target["email"], now_target["phone"]) == (
        "Marta Rossi",
        "marta@example.com",
        "+39 06 123",
    )
    assert now_target["attributes"] == {"plan": "pro", "city": "Rome"}
    assert [i["id"] for i in now_target["identities"]] == [
        on_site["author"]["identity_id"],
        on_shop["author"]["identity_id"],
    ]
    assert merged["source"]["merged_into_id"] == target
    assert merged["source"]["identities"] == []
    # The conversations moved with the identity; the source is hidden but still answers.
    moved = await _all_pages(api, tenant, f"/v1/contacts/{target}/conversations")
    assert sorted(c["external_id"] for c in moved) == ["shop-1", "site-1", "site-2"]
    assert await _all_pages(api, tenant, f"/v1/contacts/{source}/conversations") == []
    assert [c["id"] for c in await _all_pages(api, tenant, "/v1/contacts")] == [target]
    assert (await _get(api, tenant, f"/v1/contacts/{source}"))["merged_into_id"] == target
    [shop_message] = await conversation_messages(api, tenant, shop.id, "shop-1")
    assert shop_message["author"]["contact_id"] == target
    listed = await _get(api, tenant, f"/v1/contacts/{source}/merges")
    assert [m["id"] for m in listed["data"]] == [merge["id"]]
    assert (await _get(api, tenant, f"/v1/contacts/merges/{merge['id']}")) == merge

    undone = await _undo(api, tenant, merge["id"])
    assert undone.status_code == 200, undone.text
    assert undone.json()["merge"]["undone_at"] is not None

    assert await _api_state(api, tenant, [target, source]) == before_api
    assert await _rows(engine, [target, source]) == before_rows

    [merge_entry] = await _audit(engine, tenant.workspace_id, "contact.merge")
    assert merge_entry.target_id == target
    assert merge_entry.detail == {"merge_id": merge["id"], "identity_ids": merge["identity_ids"]}
    assert merge_entry.before is not None
    assert merge_entry.after is not None
    assert merge_entry.before["target"]["name"] is None
    assert merge_entry.after["target"]["name"] == "Marta Rossi"
    assert merge_entry.after["source"]["merged_into_id"] == target
    [undo_entry] = await _audit(engine, tenant.workspace_id, "contact.unmerge")
    assert undo_entry.before == merge_entry.after
    assert undo_entry.after == merge_entry.before
    listed_entries = await _get(api, tenant, "/v1/audit", target_id=target)
    assert [e["action"] for e in listed_entries["data"]][:2] == ["contact.unmerge", "contact.merge"]
    assert await _announced(engine, tenant.workspace_id, "contact.merged") == 1
    assert await _announced(engine, tenant.workspace_id, "contact.unmerged") == 1

    again = await _undo(api, tenant, merge["id"])
    assert again.status_code == 409
    assert again.json()["code"] == "contact_merge_already_undone"


async def test_a_merge_whose_target_was_merged_away_is_undone_after_that_one(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    a, b, x = [
        (await _say(api, tenant, channel, f"t-{who}", who))["author"]["contact_id"] for who in ("a", "b", "x")
    ]
    before_api = await _api_state(api, tenant, [a, b, x])
    before_rows = await _rows(engine, [a, b, x])
    first = (await _merge(api, tenant, a, b))["merge"]
    second = (await _merge(api, tenant, x, a))["merge"]
    assert len(second["identity_ids"]) == 2  # a's own and the one b brought

    refused = await _undo(api, tenant, first["id"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "contact_merge_target_merged"
    assert refused.json()["errors"] == [{"contact_id": a, "merged_into_id": x}]

    assert (await _undo(api, tenant, second["id"])).status_code == 200
    assert (await _undo(api, tenant, first["id"])).status_code == 200
    assert await _api_state(api, tenant, [a, b, x]) == before_api
    assert await _rows(engine, [a, b, x]) == before_rows


async def test_undo_keeps_what_was_edited_since_the_merge(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    target = (await _say(api, tenant, channel, "t-1", "one"))["author"]["contact_id"]
    source = (await _say(api, tenant, channel, "t-2", "two"))["author"]["contact_id"]
    await _patch(api, tenant, source, {"email": "two@example.com", "phone": "+1 555 0100"})
    merge = (await _merge(api, tenant, target, source))["merge"]
    await _patch(api, tenant, target, {"phone": "+1 555 0199"})

    undone = await _undo(api, tenant, merge["id"])

    assert undone.status_code == 200, undone.text
    restored = undone.json()["target"]
    assert restored["email"] is None  # filled by the merge, untouched since: taken back
    assert restored["phone"] == "+1 555 0199"  # edited since: kept
    assert undone.json()["source"]["merged_into_id"] is None


async def test_refused_merges(api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    a, b, c = [
        (await _say(api, tenant, channel, f"r-{who}", who))["author"]["contact_id"] for who in ("a", "b", "c")
    ]
    other = await make_tenant(engine)
    other_channel = await make_channel(api, other)
    foreign = (await _say(api, other, other_channel, "f", "f"))["author"]["contact_id"]

    async def merge(target: str, source: str) -> httpx.Response:
        return await api.post(
            f"/v1/contacts/{target}/merge", json={"source_contact_id": source}, headers=tenant.auth
        )

    itself = await merge(a, a)
    assert (itself.status_code, itself.json()["code"]) == (409, "contact_merge_refused")
    for target, source in ((a, foreign), (foreign, a)):
        response = await merge(target, source)
        assert (response.status_code, response.json()["code"]) == (404, "contact_not_found")
    await _merge(api, tenant, a, b)
    for target, source in ((c, b), (b, c)):
        response = await merge(target, source)
        assert (response.status_code, response.json()["code"]) == (409, "contact_merged"), response.text
        assert response.json()["errors"] == [{"contact_id": b, "merged_into_id": a}]
    edit = await api.patch(f"/v1/contacts/{b}", json={"name": "B"}, headers=tenant.auth)
    assert (edit.status_code, edit.json()["code"]) == (409, "contact_merged")
    bad = await api.post(f"/v1/contacts/{a}/merge", json={"source": b}, headers=tenant.auth)
    assert bad.status_code == 400
    missing = await _undo(api, tenant, str(uuid.uuid4()))
    assert (missing.status_code, missing.json()["code"]) == (404, "contact_merge_not_found")


async def test_new_messages_from_a_moved_identity_stay_on_the_merge_target(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    site, shop = await make_channel(api, tenant, "site"), await make_channel(api, tenant, "shop")
    target = (await _say(api, tenant, site, "site-1", "marta"))["author"]["contact_id"]
    moved = await _say(api, tenant, shop, "shop-1", "rossi", name="Renamed Later")
    source = moved["author"]["contact_id"]
    merge = (await _merge(api, tenant, target, source))["merge"]

    later = await _say(api, tenant, shop, "shop-2", "rossi", name="Marta R.", handle="@mr")
    again = await _say(api, tenant, shop, "shop-1", "rossi", name="Marta R.")

    for message in (later, again):
        assert message["author"]["identity_id"] == moved["author"]["identity_id"]
        assert message["author"]["contact_id"] == target
    contact = await _get(api, tenant, f"/v1/contacts/{target}")
    shop_identity = next(i for i in contact["identities"] if i["id"] == moved["author"]["identity_id"])
    assert (shop_identity["handle"], shop_identity["name"]) == ("@mr", "Marta R.")
    assert (await _get(api, tenant, f"/v1/contacts/{source}"))["merged_into_id"] == target
    assert source not in [c["id"] for c in await _all_pages(api, tenant, "/v1/contacts")]
    conversations = await _all_pages(api, tenant, f"/v1/contacts/{target}/conversations")
    assert [c["external_id"] for c in conversations] == ["shop-1", "shop-2", "site-1"]

    # Undone, the identity goes back with everything it wrote, the new conversation included.
    assert (await _undo(api, tenant, merge["id"])).status_code == 200
    back = await _all_pages(api, tenant, f"/v1/contacts/{source}/conversations")
    assert [c["external_id"] for c in back] == ["shop-1", "shop-2"]
    [message] = [
        m for m in await conversation_messages(api, tenant, shop.id, "shop-2") if m["id"] == later["id"]
    ]
    assert message["author"]["contact_id"] == source


async def test_list_search_filter_and_pages(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    site, shop = await make_channel(api, tenant, "site"), await make_channel(api, tenant, "shop")
    marta = (await _say(api, tenant, site, "s-1", "u1", name="Marta Rossi"))["author"]["contact_id"]
    luca = (await _say(api, tenant, site, "s-2", "u2", name="Luca", handle="@luca_100%"))["author"][
        "contact_id"
    ]
    anna = (await _say(api, tenant, shop, "p-1", "u3", name="Anna"))["author"]["contact_id"]
    await _patch(api, tenant, anna, {"email": "anna@example.org", "phone": "+44 20 7946"})

    async def found(**params: Any) -> set[str]:
        return {c["id"] for c in await _all_pages(api, tenant, "/v1/contacts", **params)}

    assert await found() == {marta, luca, anna}
    assert await found(q="ROSSI") == {marta}
    assert await found(q="luca_100%") == {luca}  # by handle, wildcards taken literally
    assert await found(q="100%x") == set()
    assert await found(q="example.org") == {anna}
    assert await found(q="7946") == {anna}
    assert await found(q="nobody") == set()
    assert await found(namespace=f"webhook:{site.id}") == {marta, luca}
    assert await found(namespace="webhook") == {marta, luca, anna}
    assert await found(namespace="telegram") == set()

    pages = [await _get(api, tenant, "/v1/contacts", limit=1)]
    while pages[-1]["has_more"]:
        pages.append(await _get(api, tenant, "/v1/contacts", limit=1, cursor=pages[-1]["next_cursor"]))
    assert [p["data"][0]["id"] for p in pages] == [anna, luca, marta]  # newest first
    bad = await api.get("/v1/contacts", params={"cursor": "nope"}, headers=tenant.auth)
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")

    await _merge(api, tenant, marta, anna)
    assert await found() == {marta, luca}
    assert await found(namespace=f"webhook:{shop.id}") == {marta}
    other = await make_tenant(engine)
    assert (await _get(api, other, "/v1/contacts"))["data"] == []


async def test_update_a_contact(api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    contact_id = (await _say(api, tenant, channel, "u", "someone", name="Some One"))["author"]["contact_id"]
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)

    first = await _patch(
        api, agent, contact_id, {"email": " some@example.com ", "attributes": {"plan": "pro", "seats": 3}}
    )
    assert (first["name"], first["email"], first["attributes"]) == (
        "Some One",
        "some@example.com",
        {"plan": "pro", "seats": 3},
    )
    second = await _patch(
        api, agent, contact_id, {"name": "Someone Else", "attributes": {"seats": None, "vip": True}}
    )
    assert second["attributes"] == {"plan": "pro", "vip": True}
    assert second["email"] == "some@example.com"
    assert second["updated_at"] > first["updated_at"]
    cleared = await _patch(api, agent, contact_id, {"email": None})
    assert cleared["email"] is None
    unchanged = await _patch(api, agent, contact_id, {"name": "Someone Else"})
    assert unchanged["updated_at"] == cleared["updated_at"]
    assert await _get(api, tenant, f"/v1/contacts/{contact_id}") == unchanged

    for body in (
        {"email": "not-an-email"},
        {"phone": "call me"},
        {"name": ""},
        {"attributes": {"bad key": 1}},
        {"attributes": "x"},
        {"merged_into_id": str(uuid.uuid4())},
    ):
        response = await api.patch(f"/v1/contacts/{contact_id}", json=body, headers=agent.auth)
        assert (response.status_code, response.json()["code"]) == (400, "validation_failed"), body

    entries = await _audit(engine, tenant.workspace_id, "contact.update")
    assert len(entries) == 3
    assert entries[0].actor_user_id == agent.user_id
    assert entries[0].before == {"email": None, "attributes": {}}
    assert entries[0].after == {"email": "some@example.com", "attributes": {"plan": "pro", "seats": 3}}
    assert await _announced(engine, tenant.workspace_id, "contact.updated") == 3


async def test_a_contacts_conversations_are_paged_newest_first(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    contact_id = ""
    for thread in ("c-1", "c-2", "c-3"):
        contact_id = (await _say(api, tenant, channel, thread, "talker"))["author"]["contact_id"]
    await _say(api, tenant, channel, "c-4", "somebody-else")
    first = await _get(api, tenant, f"/v1/contacts/{contact_id}/conversations", limit=2)
    assert [c["external_id"] for c in first["data"]] == ["c-3", "c-2"]
    assert first["has_more"]
    rest = await _get(
        api, tenant, f"/v1/contacts/{contact_id}/conversations", limit=2, cursor=first["next_cursor"]
    )
    assert [c["external_id"] for c in rest["data"]] == ["c-1"]
    assert not rest["has_more"]
    assert rest["data"][0]["last_message_preview"] == "talker in c-1"


async def test_viewers_read_and_cannot_write(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    a = (await _say(api, tenant, channel, "v-1", "a"))["author"]["contact_id"]
    b = (await _say(api, tenant, channel, "v-2", "b"))["author"]["contact_id"]
    merge_id = (await _merge(api, tenant, a, b))["merge"]["id"]
    viewers = [
        await add_user(engine, tenant.workspace_id, Role.VIEWER),
        Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.VIEWER)),
    ]
    for viewer in viewers:
        for path in (
            "/v1/contacts",
            f"/v1/contacts/{a}",
            f"/v1/contacts/{a}/conversations",
            f"/v1/contacts/{a}/merges",
            f"/v1/contacts/merges/{merge_id}",
        ):
            assert (await api.get(path, headers=viewer.auth)).status_code == 200, path
        for method, path, body in (
            ("PATCH", f"/v1/contacts/{a}", {"name": "x"}),
            ("POST", f"/v1/contacts/{a}/merge", {"source_contact_id": b}),
            ("POST", f"/v1/contacts/merges/{merge_id}/undo", None),
        ):
            response = await api.request(method, path, json=body, headers=viewer.auth)
            assert (response.status_code, response.json()["code"]) == (403, "forbidden"), path
    agent = Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.AGENT))
    assert (await _undo(api, agent, merge_id)).status_code == 200


async def test_another_workspace_reaches_no_contact(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    a = (await _say(api, tenant, channel, "i-1", "a"))["author"]["contact_id"]
    b = (await _say(api, tenant, channel, "i-2", "b"))["author"]["contact_id"]
    merge_id = (await _merge(api, tenant, a, b))["merge"]["id"]
    before = await _api_state(api, tenant, [a, b])
    other = await make_tenant(engine)
    own = (await _say(api, other, await make_channel(api, other), "mine", "c"))["author"]["contact_id"]
    for method, path, body in (
        ("GET", f"/v1/contacts/{a}", None),
        ("GET", f"/v1/contacts/{b}", None),
        ("PATCH", f"/v1/contacts/{a}", {"name": "stolen"}),
        ("GET", f"/v1/contacts/{a}/conversations", None),
        ("GET", f"/v1/contacts/{a}/merges", None),
        ("POST", f"/v1/contacts/{a}/merge", {"source_contact_id": own}),
        ("POST", f"/v1/contacts/{own}/merge", {"source_contact_id": a}),
        ("GET", f"/v1/contacts/merges/{merge_id}", None),
        ("POST", f"/v1/contacts/merges/{merge_id}/undo", None),
    ):
        response = await api.request(method, path, json=body, headers=other.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"].endswith("not_found")
    listed = await _all_pages(api, other, "/v1/contacts")
    assert [c["id"] for c in listed] == [own]
    assert await _api_state(api, tenant, [a, b]) == before
