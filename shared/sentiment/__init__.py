"""Sentiment of a message: negative, neutral or positive, with a score, by a pluggable analyzer.

The analyzer is named by a ``module:attribute`` path (``PIAZZA_INBOX_SENTIMENT_ANALYZER``); the attribute is
a class or factory taking no arguments and returning an object with ``analyze(text) -> Sentiment``.
Scoring happens once, when the inbox stores a message; everything downstream (the conversation list's
filter, analytics, reports) reads that score, or the agent's correction of it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

SentimentLabel = Literal["negative", "neutral", "positive"]
SENTIMENT_LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")
DEFAULT_ANALYZER = "shared.sentiment.lexicon:LexiconAnalyzer"


@dataclass(frozen=True, slots=True)
class Sentiment:
    """How a text feels: its label, a score in [-1, 1] and the language it was read as (or None)."""

    label: SentimentLabel
    score: float
    language: str | None = None


class SentimentAnalyzer(Protocol):
    """Scores texts; must be cheap (it runs in the ingest path) and never raise on odd input."""

    def analyze(self, text: str) -> Sentiment:
        """The sentiment of ``text`` (neutral with score 0 when there is nothing to read)."""
        ...


@cache
def load_analyzer(path: str = DEFAULT_ANALYZER) -> SentimentAnalyzer:
    """Build the analyzer named by ``module:attribute`` once per process."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"sentiment analyzer {path!r} is not of the form 'module:attribute'")
    factory = getattr(importlib.import_module(module_name), attribute)
    analyzer = factory()
    if not callable(getattr(analyzer, "analyze", None)):
        raise TypeError(f"sentiment analyzer {path!r} has no analyze(text) method")
    return analyzer  # type: ignore[no-any-return]
