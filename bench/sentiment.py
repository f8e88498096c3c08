"""Sentiment: how well and how fast the default analyzer reads the evaluation sets.

Quality is measured on ``tests/shared/sentiment/data/eval_{en,it}.tsv`` (clear-cut inbox messages,
balanced over negative, neutral and positive): accuracy, macro-F1 and per-label F1 for the whole set,
its tuning half (the only errors looked at while building the analyzer) and its held-out half.
Speed is ``analyze`` on the same messages, one after another in this process, after one warm-up pass:
messages per second over all passes and the per-message p50 and p99. ``python -m bench.sentiment``
prints the section.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.sentiment import SENTIMENT_LABELS, SentimentAnalyzer
from shared.sentiment.lexicon import LexiconAnalyzer
from tests.shared.sentiment import evaluation

PARTS = ("all", "tuning", "held-out")


@dataclass(frozen=True)
class SentimentReport:
    """Figures of one run."""

    scores: dict[tuple[str, str], evaluation.Scores]  # (language, part) -> scores
    build_seconds: float
    messages: int
    seconds: float
    per_message: list[float]

    @property
    def rate(self) -> float:
        """Messages analysed per second."""
        return self.messages / self.seconds if self.seconds else 0.0


def measure(rounds: int = 30) -> SentimentReport:
    """Builds the default analyzer, scores both evaluation sets and times ``analyze`` on them."""
    started = time.perf_counter()
    analyzer: SentimentAnalyzer = LexiconAnalyzer()
    build_seconds = time.perf_counter() - started
    scores = {
        (language, part): evaluation.evaluate(analyzer, evaluation.load(language, part))
        for language in evaluation.LANGUAGES
        for part in PARTS
    }
    texts = [example.text for language in evaluation.LANGUAGES for example in evaluation.load(language)]
    per_message: list[float] = []
    clock = time.perf_counter
    total = 0.0
    for _ in range(rounds):
        for text in texts:
            before = clock()
            analyzer.analyze(text)
            elapsed = clock() - before
            per_message.append(elapsed)
            total += elapsed
    return SentimentReport(
        scores=scores,
        build_seconds=build_seconds,
        messages=len(per_message),
        seconds=total,
        per_message=per_message,
    )


def render(report: SentimentReport, header: str) -> str:
    """The markdown section of one run."""
    lines = [
        header,
        "",
        "| language | part | messages | accuracy | macro-F1 | "
        + " | ".join(f"F1 {label}" for label in SENTIMENT_LABELS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(SENTIMENT_LABELS),
    ]
    for (language, part), scores in report.scores.items():
        per_label = " | ".join(f"{scores.f1[label]:.3f}" for label in SENTIMENT_LABELS)
        lines.append(
            f"| {language} | {part} | {scores.count} | {scores.accuracy:.3f} | {scores.macro_f1:.3f} | {per_label} |"
        )
    ordered = sorted(report.per_message)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    lines += [
        "",
        "| analyze, one process | messages/s | p50 µs | p99 µs | analyzer built in |",
        "|---|---|---|---|---|",
        f"| {report.messages:,} messages (the evaluation sets, mean {_mean_length():.0f} characters) "
        f"| {report.rate:,.0f} | {p50 * 1e6:,.0f} | {p99 * 1e6:,.0f} | {report.build_seconds:.1f} s |",
    ]
    return "\n".join(lines) + "\n"


def _mean_length() -> float:
    texts = [example.text for language in evaluation.LANGUAGES for example in evaluation.load(language)]
    return sum(len(text) for text in texts) / len(texts)


def section(quick: bool = False) -> str:
    """Measures and renders the sentiment section (``quick``: fewer timing rounds)."""
    report = measure(rounds=5 if quick else 30)
    return render(report, f"### Sentiment — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    print(section())
