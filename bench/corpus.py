"""A large, realistic conversation store for the listing benchmark, written fast with COPY.

One workspace (the benchmark's) gets ``Scale.conversations`` conversations holding
``Scale.messages`` messages over a few webhook channels, authored by contacts with one identity
each; a second workspace gets a tenth of that as noise. Message text draws words from a vocabulary
with a Zipf distribution (a few very common words, a long tail of rare ones), so full-text queries
have common and rare terms to look for. Conversations get statuses, assignees, teams, priorities
and labels; the benchmark user gets read state.

Rows are written with ``COPY`` (asyncpg ``copy_records_to_table``) in the shape the models declare,
every column named: :func:`_columns` refuses a row that misses a column the database cannot fill
itself. Secondary indexes of the big tables are dropped for the load and rebuilt after it (as
their definitions were), then the tables are analyzed. PostgreSQL only.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import Table, select
from sqlalchemy.engine import make_url

from services.inbox.models import (
    Base,
    Channel,
    Contact,
    Conversation,
    ConversationLabel,
    ConversationRead,
    Identity,
    Label,
    Message,
    Team,
    TeamMember,
    User,
    Workspace,
)
from services.inbox.repository import list_columns
from shared.db import create_engine, session_factory


def _words(text: str) -> list[str]:
    return text.split()


# The head of the distribution: function words first, then what customers write to a brand about.
COMMON_WORDS = _words("""
the to and a i you it is my for of in this that on with have be not me your was can we are but at
please order thanks hi hello just get when do so all no what there from how they will one if would
out about up time any help now had know like still been need did new as by an or them our us back
delivery refund package account payment card shipping received email price product problem issue
today tomorrow yesterday week days hours store app website login password code support team service
return exchange size colour color black white blue red green small large item items box parcel
tracking number address change cancel cancelled update status late delayed missing broken damaged
wrong charged twice invoice receipt discount coupon voucher sale offer stock available again soon
great love amazing awesome good bad terrible worst best happy unhappy disappointed frustrated
waiting answer reply message call phone chat agent manager complaint feedback review rating stars
shop online checkout cart basket subscription plan monthly yearly trial free premium upgrade
downgrade renew renewal expire expired battery screen charger cable headphones laptop phone tablet
shoes shirt jacket dress jeans bag watch ring gift birthday christmas weekend holiday morning night
""")


def _syllable_words(count: int, rng: random.Random) -> list[str]:
    """Made-up words for the long tail: pronounceable, distinct, never one of the common words."""
    onsets = _words("b c d f g h j k l m n p r s t v w z br cr dr fl gr kl pl pr sk st tr ch sh th")
    vowels = _words("a e i o u ai ea io ou")
    codas = ["", "", "n", "r", "s", "t", "l", "m", "x", "nd", "rk", "st"]
    seen = set(COMMON_WORDS)
    words: list[str] = []
    while len(words) < count:
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
            for _ in range(rng.choice((1, 2, 2, 2, 3)))
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


FIRST_NAMES = _words("""
Anna Marco Giulia Luca Sofia Matteo Emma Leo Mia Noah Olivia Liam Ava Lucas Chiara Paolo Elena Omar
Fatima Yuki Hana Ivan Olga Pierre Claire Hans Greta Diego Lucia Ahmed Aisha Ravi Priya Chen Wei
Mateo Valentina Jonas Freya Kofi Amara Sven Ingrid Tomas Zofia Nikos Eleni Arjun Maya
""")
LAST_NAMES = _words("""
Rossi Bianchi Smith Jones Garcia Muller Dubois Tanaka Kim Nguyen Silva Costa Novak Ivanova Haddad
Okafor Larsen Berg Kowalski Papadopoulos Sharma Patel Lopez Martin Weber Moreau Sato Park Chen Ali
""")
LABEL_NAMES = _words("""
bug billing feedback urgent vip refund-request shipping complaint praise question feature-request
churn-risk partner press influencer spam legal privacy outage returns sizing warranty wholesale
b2b loyalty survey escalated follow-up translation accessibility
""")


@dataclass(frozen=True)
class Scale:
    """How big the store is: the benchmark workspace's share (the noise workspace gets a tenth)."""

    conversations: int
    messages: int
    channels: int = 4
    agents: int = 20
    teams: int = 4
    labels: int = 30

    @property
    def contacts(self) -> int:
        return max(10, self.conversations // 2)


FULL = Scale(conversations=100_000, messages=1_000_000)


@dataclass
class Seeded:
    """What the benchmark needs to know about the store it drives."""

    workspace_id: uuid.UUID
    user_id: uuid.UUID
    channel_ids: list[uuid.UUID]
    agent_ids: list[uuid.UUID]
    label_ids: list[uuid.UUID]
    vocabulary: list[str]
    contact_names: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    index_seconds: float = 0.0


def _columns(table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    """The row as a tuple in ``table``'s column order; every column must be given (None for NULL)
    unless the database fills it (server default or autoincrement)."""
    unknown = set(row) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name}: no such columns {sorted(unknown)}")
    values = []
    for column in table.c:
        if column.name in row:
            values.append(row[column.name])
        elif column.server_default is None:
            raise ValueError(f"{table.name}: the seed gives no value for {column.name}")
    return tuple(values)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _names(table: Table, row: dict[str, Any]) -> list[str]:
    return [c.name for c in table.c if c.name in row]


class _Copier:
    """Streams rows of one table into COPY in chunks (bounded memory, the generator and the server
    working at the same time)."""

    def __init__(self, connection: asyncpg.Connection, table: Table, chunk: int = 20_000) -> None:
        self.connection, self.table, self.chunk = connection, table, chunk
        self.count = 0

    async def copy(self, rows: Iterator[dict[str, Any]]) -> None:
        buffer: list[tuple[Any, ...]] = []
        names: list[str] | None = None
        for row in rows:
            names = names or _names(self.table, row)
            buffer.append(_columns(self.table, row))
            if len(buffer) >= self.chunk:
                await self._flush(names, buffer)
                buffer = []
        if buffer and names:
            await self._flush(names, buffer)

    async def _flush(self, names: list[str], buffer: list[tuple[Any, ...]]) -> None:
        await self.connection.copy_records_to_table(self.table.name, records=buffer, columns=names)
        self.count += len(buffer)


@dataclass
class _Thread:
    """A conversation's skeleton: who, where, and when each of its messages was sent."""

    id: uuid.UUID
    channel: int
    contact: int
    times: list[datetime]
    inbound: list[bool]
    priority: str | None = None
    """Drawn with the conversation's row; its labels carry it too."""


class _Generator:
    """Deterministic rows of one workspace."""

    def __init__(
        self,
        rng: random.Random,
        workspace_id: uuid.UUID,
        scale: Scale,
        vocabulary: list[str],
        now: datetime,
        user_id: uuid.UUID | None = None,
    ) -> None:
        self.rng, self.workspace_id, self.scale, self.now = rng, workspace_id, scale, now
        self.vocabulary = vocabulary
        # Zipf with s = 1.05: the top word ~7 % of all words, rank 10,000 about once in 15,000 words.
        weights = [1.0 / (rank**1.05) for rank in range(1, len(vocabulary) + 1)]
        self.cum_weights = list(_accumulate(weights))
        self.channel_ids = [self.new_id() for _ in range(scale.channels)]
        self.agent_ids = [self.new_id() for _ in range(scale.agents)]
        # The benchmark user is one of the assignees, so ``assignee_id=me`` finds their share.
        self.assignees = self.agent_ids + ([user_id] if user_id else [])
        self.team_ids = [self.new_id() for _ in range(scale.teams)]
        self.label_ids = [self.new_id() for _ in range(scale.labels)]
        self.contact_ids = [self.new_id() for _ in range(scale.contacts)]
        self.identity_ids = [self.new_id() for _ in range(scale.contacts)]
        self.contact_names = [
            f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" for _ in range(scale.contacts)
        ]
        self.threads = self._threads()
        self.seq = 0

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def text(self, low: int = 4, high: int = 30) -> str:
        words = self.rng.choices(self.vocabulary, cum_weights=self.cum_weights, k=self.rng.randint(low, high))
        return " ".join(words).capitalize() + self.rng.choice(".!?.. ")

    def _threads(self) -> list[_Thread]:
        """Message counts per conversation with a long tail (most short, a few very long), summing to
        exactly ``messages``; activity over the last year, denser recently."""
        rng, scale = self.rng, self.scale
        weights = [min(rng.paretovariate(1.3), 400.0) for _ in range(scale.conversations)]
        spare = scale.messages - scale.conversations
        total = sum(weights)
        counts = [1 + int(spare * w / total) for w in weights]
        for index in rng.sample(range(scale.conversations), scale.messages - sum(counts)):
            counts[index] += 1
        threads = []
        per_channel = max(1, scale.contacts // scale.channels)
        for count in counts:
            channel = rng.randrange(scale.channels)
            contact = min(scale.contacts - 1, channel * per_channel + rng.randrange(per_channel))
            last = self.now - timedelta(days=365 * rng.random() ** 2, seconds=rng.randrange(86_400))
            times = [last]
            for _ in range(count - 1):
                times.append(times[-1] - timedelta(seconds=rng.expovariate(1 / 1800)))
            times.reverse()
            inbound = [True] + [rng.random() < 0.7 for _ in range(count - 1)]
            threads.append(_Thread(self.new_id(), channel, contact, times, inbound))
        return threads

    def workspace(self, name: str) -> Iterator[dict[str, Any]]:
        yield {"id": self.workspace_id, "name": name, "created_at": self.now - timedelta(days=400)}

    def channels(self) -> Iterator[dict[str, Any]]:
        for number, channel_id in enumerate(self.channel_ids):
            yield {
                "id": channel_id,
                "workspace_id": self.workspace_id,
                "type": "webhook",
                "name": f"source {number}",
                "status": "active",
                "config": "{}",
                "secrets": "[]",
                "created_at": self.now - timedelta(days=400),
                "updated_at": self.now - timedelta(days=400),
                "last_event_at": self.now,
            }

    def users(self) -> Iterator[dict[str, Any]]:
        for number, user_id in enumerate(self.agent_ids):
            yield {
                "id": user_id,
                "workspace_id": self.workspace_id,
                "name": f"Agent {number}",
                "email": f"agent{number}@{self.workspace_id.hex[:8]}.example",
                "role": "agent",
                "created_at": self.now - timedelta(days=400),
                "updated_at": self.now - timedelta(days=400),
                "deactivated_at": None,
            }

    def teams(self) -> Iterator[dict[str, Any]]:
        for number, team_id in enumerate(self.team_ids):
            at = self.now - timedelta(days=400)
            yield {
                "id": team_id,
                "workspace_id": self.workspace_id,
                "name": f"Team {number}",
                "created_at": at,
                "updated_at": at,
            }

    def team_members(self) -> Iterator[dict[str, Any]]:
        for number, user_id in enumerate(self.agent_ids):
            yield {"team_id": self.team_ids[number % len(self.team_ids)], "user_id": user_id}

    def labels(self) -> Iterator[dict[str, Any]]:
        at = self.now - timedelta(days=400)
        for number, label_id in enumerate(self.label_ids):
            yield {
                "id": label_id,
                "workspace_id": self.workspace_id,
                "name": LABEL_NAMES[number % len(LABEL_NAMES)]
                + ("" if number < len(LABEL_NAMES) else f"-{number}"),
                "color": f"#{self.rng.randrange(0x1000000):06x}",
                "description": None,
                "created_at": at,
                "updated_at": at,
            }

    def contacts(self) -> Iterator[dict[str, Any]]:
        at = self.now - timedelta(days=380)
        for contact_id, name in zip(self.contact_ids, self.contact_names, strict=True):
            yield {
                "id": contact_id,
                "workspace_id": self.workspace_id,
                "name": name,
                "email": None,
                "phone": None,
                "attributes": "{}",
                "merged_into_id": None,
                "merged_at": None,
                "created_at": at,
                "updated_at": at,
            }

    def identities(self) -> Iterator[dict[str, Any]]:
        at = self.now - timedelta(days=380)
        per_channel = max(1, self.scale.contacts // self.scale.channels)
        for number, (identity_id, contact_id) in enumerate(
            zip(self.identity_ids, self.contact_ids, strict=True)
        ):
            channel = self.channel_ids[min(number // per_channel, self.scale.channels - 1)]
            name = self.contact_names[number]
            yield {
                "id": identity_id,
                "workspace_id": self.workspace_id,
                "contact_id": contact_id,
                "namespace": f"webhook:{channel}",
                "external_id": f"user-{number}",
                "handle": name.lower().replace(" ", "_") + str(number),
                "handle_at": at,
                "display_name": name,
                "display_name_at": at,
                "created_at": at,
                "updated_at": at,
            }

    def conversations(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for number, thread in enumerate(self.threads):
            status = rng.choices(("open", "pending", "snoozed", "resolved"), (30, 10, 5, 55))[0]
            last_inbound = max(
                (t for t, i in zip(thread.times, thread.inbound, strict=True) if i), default=None
            )
            first_out = next((t for t, i in zip(thread.times, thread.inbound, strict=True) if not i), None)
            resolved = status == "resolved"
            title = self.text(3, 8) if rng.random() < 0.3 else None
            # Drawn in the order the row had them, so the corpus stays the same.
            snoozed = self.now + timedelta(days=rng.randint(1, 30)) if status == "snoozed" else None
            assignee = rng.choice(self.assignees) if rng.random() < 0.6 else None
            team = rng.choice(self.team_ids) if rng.random() < 0.5 else None
            thread.priority = rng.choices((None, "low", "normal", "high", "urgent"), (50, 15, 20, 10, 5))[0]
            yield {
                "id": thread.id,
                "workspace_id": self.workspace_id,
                "channel_id": self.channel_ids[thread.channel],
                "external_id": f"thread-{number}",
                "title": title,
                "title_at": thread.times[0] if title else None,
                "title_seq": None,
                "status": status,
                "status_changed_at": thread.times[-1],
                "snoozed_until": snoozed,
                "assignee_id": assignee,
                "team_id": team,
                "priority": thread.priority,
                "last_activity_at": thread.times[-1],
                "activity_confirmed": True,
                "last_inbound_at": last_inbound,
                "first_response_at": first_out,
                "first_resolved_at": thread.times[-1] if resolved else None,
                "resolved_at": thread.times[-1] if resolved else None,
                "claimed_by_id": None,
                "claim_expires_at": None,
                # Derived once the messages and labels are in (``list_columns``).
                "last_message_preview": None,
                "labels_json": "[]",
                "sentiment": rng.choices(("negative", "neutral", "positive", None), (20, 45, 25, 10))[0],
                "version": rng.randint(1, 6),
                "created_at": thread.times[0],
                "updated_at": thread.times[-1],
            }

    def conversation_labels(self) -> Iterator[dict[str, Any]]:
        """Labels on 40 % of the conversations, one to three each, the first labels of the catalogue
        used most."""
        rng = self.rng
        label_weights = [1.0 / rank for rank in range(1, len(self.label_ids) + 1)]
        for thread in self.threads:
            if rng.random() < 0.4:
                for label_id in set(rng.choices(self.label_ids, label_weights, k=rng.randint(1, 3))):
                    yield {
                        "conversation_id": thread.id,
                        "label_id": label_id,
                        "last_activity_at": thread.times[-1],
                        "priority": thread.priority,
                    }

    def messages(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for thread in self.threads:
            channel_id = self.channel_ids[thread.channel]
            author = self.identity_ids[thread.contact]
            for number, (at, inbound) in enumerate(zip(thread.times, thread.inbound, strict=True)):
                self.seq += 1
                attachment = rng.random() < 0.05
                deleted = rng.random() < 0.005
                yield {
                    "id": self.new_id(),
                    "workspace_id": self.workspace_id,
                    "channel_id": channel_id,
                    "conversation_id": thread.id,
                    "external_id": f"{thread.id.hex[:12]}-{number}",
                    "direction": "inbound" if inbound else "outbound",
                    "author_identity_id": author if inbound else None,
                    "text": None if attachment and rng.random() < 0.5 else self.text(),
                    "attachments": '[{"type": "photo", "file_id": "f", "size": 1000, "mime_type": "image/jpeg"}]'
                    if attachment
                    else "[]",
                    "reply_to_external_id": None,
                    "sent_at": at,
                    "occurred_at": at,
                    "received_seq": self.seq,
                    "text_version_at": at,
                    "original_saved": False,
                    "original_text": None,
                    "original_attachments": None,
                    "edited_at": None,
                    "deleted_at": at + timedelta(minutes=5) if deleted else None,
                    "meta": "{}",
                    "delivery_status": None if inbound else "sent",
                    "delivery_error": None,
                    "sent_by_token_id": None,
                    "sent_by_user_id": None if inbound else rng.choice(self.agent_ids),
                    **self.sentiment(inbound),
                    "created_at": at,
                    "updated_at": at,
                }

    def sentiment(self, inbound: bool) -> dict[str, Any]:
        """A customer message's score, as the analyzer leaves it (replies carry none)."""
        label = self.rng.choice(("negative", "neutral", "positive")) if inbound else None
        return {
            "sentiment": label,
            "sentiment_score": {"negative": -0.5, "neutral": 0.0, "positive": 0.5}.get(label or ""),
            "language": "en" if inbound else None,
            "sentiment_correction": None,
            "sentiment_corrected_by": None,
            "sentiment_corrected_at": None,
        }

    def reads(self, user_id: uuid.UUID) -> Iterator[dict[str, Any]]:
        """The user has opened 70 % of the conversations: most up to date, some partly."""
        rng = self.rng
        for thread in self.threads:
            if rng.random() < 0.7:
                upto = thread.times[-1] if rng.random() < 0.8 else rng.choice(thread.times)
                yield {
                    "user_id": user_id,
                    "conversation_id": thread.id,
                    "read_up_to": upto,
                    "updated_at": upto,
                }


def _accumulate(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def asyncpg_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


BIG_TABLES = (
    "messages",
    "conversations",
    "conversation_labels",
    "conversation_reads",
    "identities",
    "contacts",
)


async def _drop_secondary_indexes(connection: asyncpg.Connection) -> list[str]:
    """Drop the big tables' indexes that back no constraint; returns their definitions."""
    rows = await connection.fetch(
        """
        SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = current_schema() AND t.relname = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        """,
        list(BIG_TABLES),
    )
    for row in rows:
        await connection.execute(f'DROP INDEX "{row["name"]}"')
    return [row["definition"] for row in rows]


async def _derive_list_columns(database_url: str) -> None:
    """Previews and labels onto every conversation, by the code that keeps them (what ingest and
    the workflow would have written, had the rows come through them)."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            conversation_ids = list((await session.scalars(select(Conversation.id))).all())
            labelled = (await session.scalars(select(ConversationLabel.conversation_id).distinct())).all()
            await list_columns.refresh_previews(session, conversation_ids)
            await list_columns.refresh_labels(session, set(labelled))
    finally:
        await engine.dispose()


async def seed(
    database_url: str, workspace_id: uuid.UUID, user_id: uuid.UUID, scale: Scale, *, seed: int = 20261124
) -> Seeded:
    """Fill the benchmark workspace (which exists, with the benchmark user) and a noise workspace."""
    started = time.perf_counter()
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    vocabulary = COMMON_WORDS + _syllable_words(20_000, rng)
    main = _Generator(rng, workspace_id, scale, vocabulary, now, user_id)
    noise_scale = Scale(
        conversations=max(10, scale.conversations // 10),
        messages=max(10, scale.messages // 10),
        channels=2,
        agents=5,
        teams=2,
        labels=10,
    )
    noise = _Generator(rng, uuid.UUID(int=rng.getrandbits(128), version=4), noise_scale, vocabulary, now)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    counts: dict[str, int] = {}
    try:
        await connection.execute("SET maintenance_work_mem = '512MB'")
        # Foreign keys are checked row by row during COPY; the generator keeps them by construction,
        # so skip the checks where the role may (a superuser), and pay them where it may not.
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await connection.execute("SET session_replication_role = replica")
        async with connection.transaction():
            indexes = await _drop_secondary_indexes(connection)
            for generator, name in ((noise, "noise"), (main, None)):
                plan: list[tuple[Table, Iterator[dict[str, Any]]]] = [
                    (_table(Channel), generator.channels()),
                    (_table(User), generator.users()),
                    (_table(Team), generator.teams()),
                    (_table(TeamMember), generator.team_members()),
                    (_table(Label), generator.labels()),
                    (_table(Contact), generator.contacts()),
                    (_table(Identity), generator.identities()),
                    (_table(Conversation), generator.conversations()),
                    (_table(ConversationLabel), generator.conversation_labels()),
                    (_table(Message), generator.messages()),
                ]
                if name is not None:
                    plan.insert(0, (_table(Workspace), generator.workspace(name)))
                else:
                    plan.append((_table(ConversationRead), generator.reads(user_id)))
                for table, rows in plan:
                    copier = _Copier(connection, table)
                    await copier.copy(rows)
                    counts[table.name] = counts.get(table.name, 0) + copier.count
            loaded = time.perf_counter()
            for definition in indexes:
                await connection.execute(definition)
        index_seconds = time.perf_counter() - loaded
        await connection.execute("RESET session_replication_role")
    finally:
        await connection.close()
    await _derive_list_columns(database_url)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return Seeded(
        workspace_id=workspace_id,
        user_id=user_id,
        channel_ids=main.channel_ids,
        agent_ids=main.agent_ids,
        label_ids=main.label_ids,
        vocabulary=vocabulary,
        contact_names=main.contact_names,
        rows=counts,
        seconds=time.perf_counter() - started,
        index_seconds=index_seconds,
    )
