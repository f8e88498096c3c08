"""Flood control for sendMessage: token buckets per chat, per group and per bot (platforms.md §1.8).

Telegram does not publish exact buckets; these are the FAQ's numbers ("1 message per second per chat
with short bursts, about 30 per second overall, 20 per minute per group"), all configurable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimits:
    """Budgets for sendMessage. ``None`` switches a budget off."""

    per_chat_per_second: float | None = 1.0
    per_chat_burst: int = 3
    global_per_second: float | None = 30.0
    global_burst: int = 30
    per_group_per_minute: int | None = 20

    @classmethod
    def unlimited(cls) -> RateLimits:
        return cls(per_chat_per_second=None, global_per_second=None, per_group_per_minute=None)


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    updated: float

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 when one is available now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


@dataclass
class SendLimiter:
    limits: RateLimits
    _global: TokenBucket | None = None
    _chats: dict[int, TokenBucket] = field(default_factory=dict)
    _groups: dict[int, TokenBucket] = field(default_factory=dict)

    def admit(self, chat_id: int, *, is_group: bool, now: float) -> int | None:
        """Take a token from every bucket that applies, or return the ``retry_after`` seconds (taking none)."""
        buckets = self._buckets(chat_id, is_group=is_group, now=now)
        wait = max((bucket.wait(now) for bucket in buckets), default=0.0)
        if wait > 0:
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.take()
        return None

    def _buckets(self, chat_id: int, *, is_group: bool, now: float) -> list[TokenBucket]:
        limits = self.limits
        buckets: list[TokenBucket] = []
        if limits.global_per_second is not None:
            if self._global is None:
                self._global = _full(limits.global_per_second, limits.global_burst, now)
            buckets.append(self._global)
        if limits.per_chat_per_second is not None:
            rate = limits.per_chat_per_second
            buckets.append(self._chats.setdefault(chat_id, _full(rate, limits.per_chat_burst, now)))
        if is_group and limits.per_group_per_minute is not None:
            per_minute = limits.per_group_per_minute
            buckets.append(self._groups.setdefault(chat_id, _full(per_minute / 60, per_minute, now)))
        return buckets


def _full(rate: float, capacity: int, now: float) -> TokenBucket:
    return TokenBucket(rate=rate, capacity=float(capacity), tokens=float(capacity), updated=now)


def max_in_window(times: Iterable[float], window: float) -> int:
    """The largest number of ``times`` that fall inside any half-open interval of ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
