"""Streams, durable consumers and KV buckets, declared once, created idempotently at start-up.

An optional prefix (``PIAZZA_BUS_PREFIX``) namespaces every stream, subject, consumer and bucket, so
two installations (or two tests) can share one NATS account without seeing each other's traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from shared.logging import get_logger

log = get_logger(__name__)

_DAY = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream: its name, the subjects it captures and how long it keeps them."""

    name: str
    subjects: tuple[str, ...]
    description: str
    max_age: float = 7 * _DAY
    duplicate_window: float = 600.0


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """A durable pull consumer and its delivery policy.

    ``ack_wait`` bounds how long a fetched batch may go without word before JetStream redelivers it
    (a consumer retrying a batch in place keeps it alive). ``max_deliver`` is how many deliveries a
    message may get without ever being settled before the consumer dead-letters it; JetStream itself
    redelivers without limit, so nothing expires unseen. Transient failures are retried in place,
    pausing ``retry_first`` seconds, doubling up to ``retry_max``.
    """

    durable: str
    stream: str
    filter_subject: str
    description: str
    max_deliver: int = 8
    ack_wait: float = 30.0
    max_ack_pending: int = 20_000
    retry_first: float = 0.5
    retry_max: float = 30.0


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A JetStream key-value bucket; ``ttl`` (seconds) makes entries lapse unless rewritten."""

    name: str
    description: str
    history: int = 1
    ttl: float | None = None


INBOUND = StreamSpec(
    "INBOUND",
    ("inbound.>",),
    "Normalised inbound platform events: inbound.<platform>.<channel_id>",
)
COMMANDS = StreamSpec(
    "COMMANDS",
    ("command.>",),
    "Imperative requests to act on a platform (send a reply, moderate): command.<kind>.<channel_id>",
)
OUTCOMES = StreamSpec(
    "OUTCOMES",
    ("outcome.>",),
    "What became of a command (sent, failed): outcome.<kind>.<channel_id>",
)
DOMAIN = StreamSpec(
    "DOMAIN",
    ("domain.>",),
    "Facts about the conversation store (message stored, conversation changed): domain.<type>",
    # Analytics rebuilds its tables by replaying this stream (`piazza analytics rebuild`): keep more
    # than a year, so year-on-year figures survive a rebuild.
    max_age=400 * _DAY,
)
DEAD_LETTERS = StreamSpec(
    "DEADLETTERS",
    ("deadletter.>",),
    "Messages a consumer gave up on, with the reason in headers: deadletter.<consumer>",
    max_age=30 * _DAY,
)
STREAMS: tuple[StreamSpec, ...] = (INBOUND, COMMANDS, OUTCOMES, DOMAIN, DEAD_LETTERS)

INBOX_INBOUND = ConsumerSpec(
    "inbox-inbound",
    INBOUND.name,
    "inbound.>",
    "The inbox stores inbound events as contacts, conversations and messages",
)
INBOX_OUTCOMES = ConsumerSpec(
    "inbox-outcomes",
    OUTCOMES.name,
    "outcome.>",
    "The inbox records what became of replies and moderation actions",
)
REPLY_COMMANDS = ConsumerSpec(
    "reply-commands",
    COMMANDS.name,
    "command.>",
    "The reply service sends replies and moderation actions to the platforms",
    # A send paced by rate limits (and Telegram's retry_after) may take a while: keep it alive longer.
    ack_wait=60.0,
)
WEBHOOKS_DOMAIN = ConsumerSpec(
    "webhooks-domain",
    DOMAIN.name,
    "domain.>",
    "Outgoing webhooks: each domain event becomes a delivery per matching subscription",
)
ANALYTICS_DOMAIN = ConsumerSpec(
    "analytics-domain",
    DOMAIN.name,
    "domain.>",
    "Analytics: messages, status and label changes, sentiment corrections into facts and rollups",
)
CONSUMERS: tuple[ConsumerSpec, ...] = (
    INBOX_INBOUND,
    INBOX_OUTCOMES,
    REPLY_COMMANDS,
    WEBHOOKS_DOMAIN,
    ANALYTICS_DOMAIN,
)

CHANNELS_BUCKET = BucketSpec("channels", "Channel accounts as connectors need them (secrets sealed)")
CHANNEL_HEALTH_BUCKET = BucketSpec("channel-health", "How each connector last saw each channel")
TELEGRAM_ALIASES_BUCKET = BucketSpec(
    "telegram-aliases", "Canonical ids of migrated chats and comment threads"
)
TELEGRAM_OFFSETS_BUCKET = BucketSpec("telegram-offsets", "Next getUpdates offset per polled bot")
TELEGRAM_LEASES_BUCKET = BucketSpec("telegram-leases", "Which connector replica polls which bot", ttl=15.0)
REDDIT_CURSORS_BUCKET = BucketSpec(
    "reddit-cursors", "Per Reddit source: the next poll's anchor and the items published; edit watch list"
)
REDDIT_LEASES_BUCKET = BucketSpec(
    "reddit-leases", "Which connector replica polls which Reddit account", ttl=15.0
)
SEND_ATTEMPTS_BUCKET = BucketSpec(
    "send-attempts", "What the reply service did with each command: sending, or its outcome", ttl=7 * _DAY
)
PRESENCE_BUCKET = BucketSpec(
    "presence",
    "Who is viewing or typing in which conversation: <workspace>.<conversation>.<user>",
    # Entries carry their own, shorter expiry; the bucket's age limit only sweeps what is left.
    ttl=300.0,
)
BUCKETS: tuple[BucketSpec, ...] = (
    CHANNELS_BUCKET,
    CHANNEL_HEALTH_BUCKET,
    TELEGRAM_ALIASES_BUCKET,
    TELEGRAM_OFFSETS_BUCKET,
    TELEGRAM_LEASES_BUCKET,
    REDDIT_CURSORS_BUCKET,
    REDDIT_LEASES_BUCKET,
    SEND_ATTEMPTS_BUCKET,
    PRESENCE_BUCKET,
)

DEAD_LETTER_REASON = "Piazza-Dead-Letter-Reason"
DEAD_LETTER_SUBJECT = "Piazza-Original-Subject"
DEAD_LETTER_SEQUENCE = "Piazza-Original-Sequence"
DEAD_LETTER_DELIVERIES = "Piazza-Deliveries"


@dataclass(frozen=True, slots=True)
class BusNames:
    """Maps declared names to the ones on the server, applying the installation's prefix."""

    prefix: str = ""

    def stream(self, name: str) -> str:
        """Server-side stream name."""
        return f"{self.prefix.upper()}_{name}" if self.prefix else name

    def subject(self, subject: str) -> str:
        """Server-side subject."""
        return f"{self.prefix}.{subject}" if self.prefix else subject

    def unprefixed(self, subject: str) -> str:
        """The declared subject of a server-side one."""
        return subject[len(self.prefix) + 1 :] if self.prefix else subject

    def consumer(self, durable: str) -> str:
        """Server-side durable consumer name."""
        return f"{self.prefix}-{durable}" if self.prefix else durable

    def bucket(self, name: str) -> str:
        """Server-side KV bucket name."""
        return f"{self.prefix}-{name}" if self.prefix else name

    def dead_letter_subject(self, durable: str) -> str:
        """Where a consumer's dead letters go."""
        return self.subject(f"deadletter.{durable}")


async def ensure_topology(
    js: JetStreamContext, names: BusNames, *, replicas: int = 1, ack_wait: float | None = None
) -> None:
    """Create or update every stream, durable consumer and bucket; safe to call from every process.

    ``ack_wait`` overrides every consumer's (it is installation-wide: give every process the same).
    """
    for spec in STREAMS:
        config = StreamConfig(
            name=names.stream(spec.name),
            description=spec.description,
            subjects=[names.subject(s) for s in spec.subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=spec.max_age,
            duplicate_window=spec.duplicate_window,
            num_replicas=replicas,
        )
        try:
            await js.stream_info(config.name)  # type: ignore[arg-type]
        except NotFoundError:
            await js.add_stream(config)
            log.info("bus.stream.created", stream=config.name)
        else:
            await js.update_stream(config)
    for consumer in CONSUMERS:
        await js.add_consumer(
            names.stream(consumer.stream), consumer_config(consumer, names, ack_wait=ack_wait)
        )
    for bucket in BUCKETS:
        name = names.bucket(bucket.name)
        try:
            info = await js.stream_info(f"KV_{name}")
        except NotFoundError:
            await js.create_key_value(
                KeyValueConfig(
                    bucket=name,
                    description=bucket.description,
                    history=bucket.history,
                    ttl=bucket.ttl,
                    storage=StorageType.FILE,
                    replicas=replicas,
                )
            )
            continue
        if info.config.num_replicas != replicas:
            # A bucket is a stream underneath: raise or lower its copies in place.
            await js.update_stream(replace(info.config, num_replicas=replicas))


def consumer_config(spec: ConsumerSpec, names: BusNames, *, ack_wait: float | None = None) -> ConsumerConfig:
    """The server configuration of a durable consumer."""
    durable = names.consumer(spec.durable)
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        description=spec.description,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait or spec.ack_wait,
        max_deliver=-1,  # the consumer dead-letters at spec.max_deliver itself, so nothing expires unseen
        max_ack_pending=spec.max_ack_pending,
        filter_subject=names.subject(spec.filter_subject),
    )
