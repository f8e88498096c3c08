"""Request and response bodies of the inbox API (never reused as bus events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from services.inbox.schemas.sentiment import MessageSentimentOut
from services.inbox.schemas.text import no_nul, printable
from services.inbox.schemas.workflow import ClaimOut, LabelRef
from shared.sentiment import SentimentLabel

T = TypeVar("T")


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(printable)
]


class Page(BaseModel, Generic[T]):
    """A page of results in a stable order.

    ``has_more`` says whether more items follow right now. ``next_cursor`` points just after the last
    item (it is the cursor you sent when the page is empty, null only for an empty first page): pass
    it as ``cursor`` to continue. On a conversation's messages, following it later shows the
    messages that arrived since with a later send time; a message that arrives late with an earlier
    send time takes its chronological place before the cursor, so refresh a conversation you show.
    """

    data: list[T]
    has_more: bool
    next_cursor: str | None


BotToken = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")]


class WebhookChannelCreate(BaseModel):
    """A webhook source: anything that can POST signed events."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    name: Name


class TelegramChannelCreate(BaseModel):
    """A Telegram bot. Its token is checked with ``getMe``, stored sealed, and never shown again."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["telegram"]
    bot_token: SecretStr = Field(description="The token @BotFather gave, like 123456:ABC-DEF...")
    mode: Literal["polling", "webhook"] = Field(
        "polling", description="polling: Piazza long-polls getUpdates; webhook: Telegram calls Piazza."
    )
    name: Name | None = None

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        TypeAdapter(BotToken).validate_python(value.get_secret_value())
        return value


Subreddit = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^(?:r/)?[A-Za-z0-9][A-Za-z0-9_]{1,20}$"),
    AfterValidator(lambda name: name.removeprefix("r/")),
]
_DEFAULT_AGENTS = ("python-requests", "python-httpx", "python-urllib", "curl", "mozilla", "prawcore")


def _descriptive_agent(value: str) -> str:
    if len(value) < 10 or value.lower().startswith(_DEFAULT_AGENTS):
        raise ValueError(
            "must describe your app, like 'linux:com.example.inbox:v1.0 (by /u/yourname)' "
            "(Reddit throttles generic user agents)"
        )
    return value


def _unique_subreddits(names: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


Subreddits = Annotated[list[Subreddit], Field(max_length=50), AfterValidator(_unique_subreddits)]


MarkRead = Literal["opened", "stored", "never"]
"""When Reddit inbox items are marked read on Reddit: when an agent opens their conversation in
Piazza, as soon as Piazza stored them, or never."""


class RedditChannelCreate(BaseModel):
    """A Reddit account (a brand account or a moderator): its inbox and the subreddits it follows.

    Give a script app's ``username`` and ``password``, or a ``refresh_token`` from the authorization
    code flow (``duration=permanent``). Credentials are checked with Reddit, stored sealed, and never
    shown again."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["reddit"]
    client_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    client_secret: SecretStr = Field(SecretStr(""), description="Empty for installed apps.")
    user_agent: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=256),
        AfterValidator(printable),
        AfterValidator(_descriptive_agent),
    ] = Field(description="<platform>:<app id>:<version> (by /u/<username>), as Reddit requires.")
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = (
        None
    )
    password: SecretStr | None = None
    refresh_token: SecretStr | None = None
    inbox: bool = Field(True, description="Follow the account's inbox: replies, mentions, private messages.")
    subreddits: Subreddits = Field(
        default_factory=list, description="Subreddits whose new posts and comments to follow."
    )
    backfill: int = Field(
        100, ge=0, le=1000, description="Recent items to import per source when it is added."
    )
    mark_read: MarkRead = Field(
        "opened",
        description="Mark inbox items read on Reddit when an agent opens them, once stored, or never.",
    )
    name: Name | None = None

    @model_validator(mode="after")
    def _one_grant(self) -> RedditChannelCreate:
        password = self.username is not None and self.password is not None
        if password == (self.refresh_token is not None):
            raise ValueError("give either username and password (a script app) or a refresh_token")
        return self


ChannelCreate = Annotated[
    WebhookChannelCreate | TelegramChannelCreate | RedditChannelCreate, Field(discriminator="type")
]
"""A channel account to register."""


class ChannelUpdate(BaseModel):
    """Changes to a channel account; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    mode: Literal["polling", "webhook"] | None = Field(None, description="Telegram only: how updates arrive.")
    subreddits: Subreddits | None = Field(
        None, description="Reddit only: the subreddits to follow (added ones have their history imported)."
    )
    password: SecretStr | None = Field(
        None, description="Reddit only: the account's new password (script apps), checked with Reddit."
    )
    refresh_token: SecretStr | None = Field(
        None, description="Reddit only: a new refresh token for the same account, checked with Reddit."
    )
    client_secret: SecretStr | None = Field(None, description="Reddit only: the app's new secret.")
    mark_read: MarkRead | None = Field(None, description="Reddit only: when inbox items are marked read.")

    @property
    def new_credentials(self) -> bool:
        """Whether the update replaces Reddit credentials."""
        return any(v is not None for v in (self.password, self.refresh_token, self.client_secret))


class ChannelProblemOut(BaseModel):
    """The last problem a connector reported."""

    code: str
    message: str
    component: str
    at: datetime


class BackfillOut(BaseModel):
    """How far importing a source's recent history got."""

    source: str
    imported: int
    target: int
    done: bool


class ChannelHealthOut(BaseModel):
    """``ok`` (events flow, or the connector reaches the platform), ``idle`` (nothing yet) or ``error``
    (a problem newer than the last event)."""

    status: Literal["ok", "idle", "error"]
    last_event_at: datetime | None = Field(
        description="When the store last received an event of this channel."
    )
    connected: bool | None = Field(
        None, description="Whether the connector reaches the platform (polled bots)."
    )
    last_update_at: datetime | None = Field(None, description="When the connector last received an update.")
    backlog: int | None = Field(None, description="Updates waiting at the platform, when it says.")
    last_error: ChannelProblemOut | None
    warnings: list[ChannelProblemOut] = Field(
        default_factory=list,
        description="Lasting limits, e.g. private messages unavailable to a Reddit account.",
    )
    throttled_until: datetime | None = Field(
        None, description="Set while the platform asks Piazza to slow down."
    )
    backfill: list[BackfillOut] = Field(default_factory=list, description="History imports, per source.")


class ChannelOut(BaseModel):
    """A channel account."""

    id: UUID
    type: str
    name: str
    status: str
    mode: str | None = Field(None, description="Telegram: polling or webhook.")
    account: str | None = Field(
        None, description="The platform account, e.g. the bot's @username or the Reddit u/username."
    )
    subreddits: list[str] | None = Field(None, description="Reddit: the subreddits followed.")
    mark_read: str | None = Field(None, description="Reddit: when inbox items are marked read on Reddit.")
    webhook_url: str | None = Field(
        description="Where the platform or source must send events, if it sends them."
    )
    created_at: datetime
    updated_at: datetime
    health: ChannelHealthOut


class ChannelWithSecret(ChannelOut):
    """A channel with its signing secret, shown only when the secret is created (webhook sources)."""

    signing_secret: str | None = Field(
        description="Standard Webhooks secret (whsec_...) of a webhook source. Store it now: it is shown once."
    )


class ConversationOut(BaseModel):
    """A conversation: one thread on one channel account, and where the team stands with it."""

    id: UUID
    channel_id: UUID
    external_id: str = Field(description="The platform's id of the thread.")
    title: str | None
    status: str = Field(description="open, pending, snoozed (until snoozed_until) or resolved.")
    snoozed_until: datetime | None
    status_changed_at: datetime | None
    assignee_id: UUID | None
    team_id: UUID | None
    priority: str | None = Field(description="low, normal, high, urgent, or null.")
    labels: list[LabelRef]
    claim: ClaimOut | None = Field(description="An agent working on it now (replies by others get 409).")
    unread_count: int | None = Field(
        description="Customer messages sent after the caller's read mark; 0 once the caller has read up "
        "to the newest one, as `unread=true` has it (null for a token without a user)."
    )
    last_activity_at: datetime = Field(description="Send time of the newest message; orders the list.")
    last_inbound_at: datetime | None = Field(description="Send time of the newest customer message.")
    last_message_preview: str | None = Field(
        description="The newest message that is not deleted: its text (shortened) or its media type."
    )
    first_response_at: datetime | None = Field(description="The first agent reply; kept through reopenings.")
    resolved_at: datetime | None = Field(description="The current resolution; cleared when reopened.")
    first_resolved_at: datetime | None = Field(description="The first resolution; kept through reopenings.")
    sentiment: SentimentLabel | None = Field(
        description="The sentiment of the newest customer message that has one (an agent's correction "
        "wins); null until one is scored."
    )
    version: int = Field(
        description="Changes when the workflow state changes (status, assignment, team, priority, labels), "
        "by an agent or by a reopening, and when a correction changes the sentiment; send it back in "
        "If-Match."
    )
    created_at: datetime
    updated_at: datetime = Field(description="When an event last touched the conversation or its messages.")


class AuthorOut(BaseModel):
    """Who wrote a message: the platform identity and the contact it belongs to."""

    identity_id: UUID
    contact_id: UUID
    namespace: str
    external_id: str
    handle: str | None
    name: str | None


ReplyText = Annotated[str, StringConstraints(min_length=1, max_length=32768), AfterValidator(no_nul)]


class ReplyCreate(BaseModel):
    """A reply to send into a conversation (split into several messages if the platform needs it)."""

    model_config = ConfigDict(extra="forbid")

    text: ReplyText
    reply_to_message_id: UUID | None = Field(None, description="Answer this message of the conversation.")
    private: bool = Field(
        False,
        description="Reddit: send a new private message to the author of reply_to_message_id instead of "
        "replying in the thread (it opens a conversation of its own once Reddit delivers it).",
    )
    force: bool = Field(False, description="Send even though another agent has claimed the conversation.")


class ModerationCreate(BaseModel):
    """A Reddit moderator action on a comment or post (the account must moderate its subreddit)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["remove", "approve", "lock", "unlock"]
    spam: bool = Field(False, description="remove only: remove as spam (trains the subreddit's filter).")


class DeliveryOut(BaseModel):
    """Where an outbound message stands: ``pending``, ``sent``, ``failed`` (with the reason) or
    ``unknown`` (the sender stopped mid-send: check the chat before sending again)."""

    status: Literal["pending", "sent", "failed", "unknown"]
    error: str | None


class BanCreate(BaseModel):
    """Ban an author of this conversation's group from it."""

    model_config = ConfigDict(extra="forbid")

    identity_id: UUID


class AuditEntryOut(BaseModel):
    """An agent's or admin's action and what came of it."""

    id: UUID
    action: str
    target_type: str
    target_id: str
    status: Literal["requested", "applied", "failed"]
    actor_token_id: UUID | None
    actor_user_id: UUID | None = Field(description="The user who acted (null for an integration token).")
    detail: dict[str, Any]
    before: dict[str, Any] | None = Field(description="What changed, as it was before.")
    after: dict[str, Any] | None = Field(description="What changed, as it is after.")
    created_at: datetime
    updated_at: datetime


class ReplyToOut(BaseModel):
    """The message this one answers; ``message_id`` is null until that message is stored."""

    external_id: str
    message_id: UUID | None


class MessageOut(BaseModel):
    """A message, with its current content."""

    id: UUID
    conversation_id: UUID
    channel_id: UUID
    external_id: str
    direction: str = Field(description="inbound, outbound (a reply), or note (private, never sent).")
    sent_by_user_id: UUID | None = Field(description="The agent who wrote a reply or a note.")
    author: AuthorOut | None
    text: str | None
    attachments: list[dict[str, Any]]
    reply_to: ReplyToOut | None
    reactions: dict[str, int] = Field(description="How many people reacted with each reaction.")
    delivery: DeliveryOut | None = Field(None, description="For messages sent from Piazza: where they stand.")
    meta: dict[str, Any] = Field(
        description="Platform details for rendering: entities (UTF-16 offsets), forwarded_from, media_group_id..."
    )
    sentiment: MessageSentimentOut | None = Field(
        None, description="Customer messages: how it feels (null until scored; never for replies and notes)."
    )
    sent_at: datetime | None
    edited_at: datetime | None
    deleted_at: datetime | None
    created_at: datetime


class SentimentCorrectionOut(BaseModel):
    """A message after its sentiment was corrected (or the correction removed), and its conversation
    (whose ``version`` moved if its sentiment changed)."""

    message: MessageOut
    conversation: ConversationOut


class RevisionOut(BaseModel):
    """One version of a message's content."""

    kind: Literal["created", "edited"]
    text: str | None
    attachments: list[dict[str, Any]]
    at: datetime | None


class MessageHistoryOut(BaseModel):
    """A message and every version of its content, oldest first."""

    message_id: UUID
    revisions: list[RevisionOut]


class IdentityOut(BaseModel):
    """A contact's handle on one platform."""

    id: UUID
    namespace: str
    external_id: str
    handle: str | None
    name: str | None
    created_at: datetime


class ContactOut(BaseModel):
    """A person and their identities."""

    id: UUID
    name: str | None
    identities: list[IdentityOut]
    created_at: datetime
    updated_at: datetime
