"""Outgoing webhooks: subscriptions, the deliveries owed to them, and what each attempt decides.

A domain event becomes one delivery per enabled subscription of its workspace whose filter takes its
type (and that existed when it happened). A delivery is attempted at once, then after each delay of
the retry schedule until an attempt gets a 2xx; after the last it has failed. A redelivery asked for
by hand makes one more attempt of a finished delivery, or brings a pending one's next attempt forward.
"""

from services.inbox.service.webhooks.dispatch import (
    AttemptResult,
    Claimed,
    claim_due,
    fan_out,
    record_attempt,
)
from services.inbox.service.webhooks.rules import (
    DELIVERY_STATUSES,
    EXCERPT_CHARS,
    DeliveryStatus,
    RetryPolicy,
    check_event_types,
    check_url,
    is_public_address,
    is_public_host,
    matches,
    private_urls_allowed,
    public_view,
    signature_header,
    signing_secrets,
)
from services.inbox.service.webhooks.subscriptions import (
    create_subscription,
    delete_subscription,
    get_delivery,
    get_subscription,
    list_deliveries,
    list_subscriptions,
    redeliver,
    rotate_secret,
    update_subscription,
)

__all__ = [
    "DELIVERY_STATUSES",
    "EXCERPT_CHARS",
    "AttemptResult",
    "Claimed",
    "DeliveryStatus",
    "RetryPolicy",
    "check_event_types",
    "check_url",
    "claim_due",
    "create_subscription",
    "delete_subscription",
    "fan_out",
    "get_delivery",
    "get_subscription",
    "is_public_address",
    "is_public_host",
    "list_deliveries",
    "list_subscriptions",
    "matches",
    "private_urls_allowed",
    "public_view",
    "record_attempt",
    "redeliver",
    "rotate_secret",
    "signature_header",
    "signing_secrets",
    "update_subscription",
]
