"""The API request budget per OAuth client id and its ``x-ratelimit-*`` headers (platforms.md §2.8).

Reddit counts requests per client id in fixed windows (600 s today) and reports the state on every
response: ``x-ratelimit-used`` (an integer), ``x-ratelimit-remaining`` (a float string such as
``"599.0"``) and ``x-ratelimit-reset`` (whole seconds until the window ends). Totals have varied (600,
1000, 10000), so clients must read the headers; the fake's total and window are configurable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateBudget:
    """``total`` requests per ``window`` seconds for each client id."""

    total: int = 600
    window: float = 600.0


@dataclass(frozen=True)
class Admission:
    """The budget's answer for one request, and the headers it puts on the response."""

    allowed: bool
    used: int
    remaining: float
    reset: float  # seconds until the window ends

    @property
    def reset_seconds(self) -> int:
        return max(0, math.ceil(self.reset))

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-remaining": f"{self.remaining:.1f}",
            "x-ratelimit-reset": str(self.reset_seconds),
        }


@dataclass
class _Window:
    start: float
    used: int = 0


@dataclass
class BudgetLedger:
    """Fixed windows per client id; the first window starts at the client's first request."""

    budget: RateBudget
    _windows: dict[str, _Window] = field(default_factory=dict)

    def admit(self, client_id: str, now: float) -> Admission:
        """Count one request, or refuse it (counting nothing) when the window's budget is spent."""
        window = self._windows.get(client_id)
        if window is None:
            window = self._windows[client_id] = _Window(now)
        elif now >= window.start + self.budget.window:
            elapsed = math.floor((now - window.start) / self.budget.window)
            window.start += elapsed * self.budget.window
            window.used = 0
        reset = window.start + self.budget.window - now
        if window.used >= self.budget.total:
            return Admission(False, window.used, 0.0, reset)
        window.used += 1
        return Admission(True, window.used, float(self.budget.total - window.used), reset)

    def used(self, client_id: str) -> int:
        window = self._windows.get(client_id)
        return 0 if window is None else window.used
