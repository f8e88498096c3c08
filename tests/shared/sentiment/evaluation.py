"""The sentiment evaluation sets and the figures computed on them (shared by the tests and ``bench``).

``data/eval_<language>.tsv`` holds clear-cut messages of a brand's social inbox, one ``label<TAB>text``
a line, 162 per language, balanced. The first half (rows 1-81, 27 per label) is the tuning half: the
only errors looked at while building the analyzer. The second half is held out, to tell how far the
tuning carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.sentiment import SENTIMENT_LABELS, SentimentAnalyzer, SentimentLabel

DATA = Path(__file__).parent / "data"
LANGUAGES = ("en", "it")
TUNING_ROWS = 81


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message."""

    label: SentimentLabel
    text: str


@dataclass(frozen=True, slots=True)
class Scores:
    """How an analyzer's labels compare with the gold ones."""

    count: int
    accuracy: float
    macro_f1: float
    f1: dict[SentimentLabel, float]


def load(language: str, part: str = "all") -> list[Example]:
    """The examples of ``language``: ``part`` is "all", "tuning" or "held-out"."""
    examples: list[Example] = []
    for line in (DATA / f"eval_{language}.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        label, text = line.split("\t", 1)
        if label not in SENTIMENT_LABELS:
            raise ValueError(f"eval_{language}.tsv: unknown label {label!r}")
        examples.append(Example(label=label, text=text))
    if part == "tuning":
        return examples[:TUNING_ROWS]
    if part == "held-out":
        return examples[TUNING_ROWS:]
    return examples


def score(gold: Sequence[SentimentLabel], predicted: Sequence[SentimentLabel]) -> Scores:
    """Accuracy, per-label F1 and their unweighted mean (macro-F1)."""
    pairs = list(zip(gold, predicted, strict=True))
    f1: dict[SentimentLabel, float] = {}
    for label in SENTIMENT_LABELS:
        hits = sum(1 for g, p in pairs if g == label and p == label)
        wrong = sum(1 for g, p in pairs if g != label and p == label)
        missed = sum(1 for g, p in pairs if g == label and p != label)
        f1[label] = 2 * hits / (2 * hits + wrong + missed) if hits else 0.0
    return Scores(
        count=len(pairs),
        accuracy=sum(1 for g, p in pairs if g == p) / len(pairs) if pairs else 0.0,
        macro_f1=sum(f1.values()) / len(f1),
        f1=f1,
    )


def evaluate(analyzer: SentimentAnalyzer, examples: Sequence[Example]) -> Scores:
    """Scores of ``analyzer`` on ``examples``."""
    return score([e.label for e in examples], [analyzer.analyze(e.text).label for e in examples])
