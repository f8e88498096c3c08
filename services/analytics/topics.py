"""Hot topics: the terms a message contributes, and which of them are rising against a baseline.

Pure logic over text and counts. The caller counts, per period, in how many messages each term of
:func:`message_terms` appears (a term counts once per message), and asks :func:`trending` which terms
of the current window stand out against the period before it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

import emoji
import stopwordsiso

TermKind = Literal["word", "phrase", "hashtag", "emoji"]

# Stop-word lists used when a message's language is unknown (their union) or has no list of its own.
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "it")
# One long message (a pasted log, a copypasta) must not flood the counts.
MAX_TERMS_PER_MESSAGE = 64
# Bounds the work per message; topics live in the first screens of text anyway.
MAX_TEXT_CHARS = 10_000
# Longer "words" are hashes, tokens or base64, never a topic.
MAX_WORD_CHARS = 40

# Smoothing of shares, in messages at the coarser of the two periods' resolutions (see trending()).
SMOOTHING = 0.5
# A term must at least grow by half against the baseline to be called rising.
MIN_LIFT = 1.5
# A word is dropped when a trending phrase holding it covers this share of the word's messages.
PHRASE_COVER = 0.8

_URL = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# @mentions, and Reddit's u/name (r/name stays: a subreddit can be a topic).
_MENTION = re.compile(r"(?<![\w@])@\w+|(?<![\w/])/?u/\w+")
# A hashtag needs a letter: "#1" is a rank, not a tag.
_HASHTAG = re.compile(r"(?<![\w#&])#(\w*[^\W\d_]\w*)")
# Clause punctuation ends a phrase: "battery. Drain" is no "battery drain".
_BREAK = re.compile(r"[.!?;:,()\[\]{}<>\"“”«»|/\\\n\t…]+")
# Typographic apostrophes (U+2019) are read as plain ones.
_CURLY_APOSTROPHE = "\u2019"
_WORD = re.compile(r"[^\W_]+(?:[-'\u2019][^\W_]+)*")
_SKIN_TONES = dict.fromkeys(range(0x1F3FB, 0x1F400))
# Replaces what is removed from the text so that no phrase spans it.
_GAP = "\n"


@dataclass(frozen=True, slots=True)
class Trend:
    """A term rising in the window: its message counts in the window and in the baseline."""

    term: str
    kind: TermKind
    count: int
    baseline_count: int
    score: float


def message_terms(text: str, language: str | None) -> list[str]:
    """The distinct terms one message contributes: hashtags, emoji, words, then two-word phrases.

    Words are lowercased, stop words of ``language`` (an ISO 639-1 code, region suffixes ignored)
    removed; a phrase is two adjacent kept words within one clause. At most
    :data:`MAX_TERMS_PER_MESSAGE` terms, in that order of kinds, each by first appearance.
    """
    stops = _stop_words(language)
    text = unicodedata.normalize("NFC", text[:MAX_TEXT_CHARS])
    text = _URL.sub(_GAP, text)
    text = _MENTION.sub(_GAP, text)

    emojis: list[str] = []

    def take_emoji(found: str, _data: dict[str, str]) -> str:
        canonical = _canonical_emoji(found)
        if canonical:
            emojis.append(canonical)
        return _GAP

    # Emoji go before hashtags and words: keycaps like "#️⃣" and "1️⃣" would read as either. Scanning
    # is most of the cost per message, and ASCII text cannot hold an emoji.
    if not text.isascii():
        text = emoji.replace_emoji(text, replace=take_emoji)

    hashtags: list[str] = []

    def take_hashtag(found: re.Match[str]) -> str:
        hashtags.append("#" + found.group(1).lower())
        return _GAP

    text = _HASHTAG.sub(take_hashtag, text)

    words: list[str] = []
    phrases: list[str] = []
    for clause in _BREAK.split(text.lower()):
        previous: str | None = None
        for word in _clause_words(clause, stops):
            if word is not None:
                words.append(word)
                # "battery battery" is emphasis, not a phrase.
                if previous is not None and previous != word:
                    phrases.append(f"{previous} {word}")
            previous = word

    distinct = dict.fromkeys([*hashtags, *emojis, *words, *phrases])
    return list(distinct)[:MAX_TERMS_PER_MESSAGE]


def term_kind(term: str) -> TermKind:
    """Whether ``term`` (as :func:`message_terms` writes it) is a word, phrase, hashtag or emoji."""
    if emoji.purely_emoji(term) and term:
        return "emoji"
    if term.startswith("#") and len(term) > 1:
        return "hashtag"
    if " " in term:
        return "phrase"
    return "word"


def trending(
    window: Mapping[str, int],
    baseline: Mapping[str, int],
    *,
    window_messages: int,
    baseline_messages: int,
    min_count: int = 3,
    limit: int = 20,
) -> list[Trend]:
    """The terms whose share of messages rose most in ``window`` against ``baseline``, best first.

    ``window``/``baseline`` map a term to the number of messages holding it; ``*_messages`` are
    the number of messages of each period. A term needs ``count >= min_count`` and a share at least
    :data:`MIN_LIFT` times its baseline share.

    Score: ``lift * ln(1 + count)`` where ``lift = ln((share + e) / (baseline_share + e))`` and
    ``e = SMOOTHING / min(window_messages, baseline_messages)``. The smoothing is half a message at
    the coarser period's resolution: a term absent from the baseline gets a finite lift that grows
    with its count (so new terms can trend) but cannot claim more precision than the shorter period
    has; the support factor ranks a rise seen in many messages above the same rise in a few. A term
    frequent everywhere has a lift near zero and does not trend at all.

    With no baseline messages every term counts as new, so the ranking falls back to support.

    Overlaps, so "battery", "drain" and "battery drain" do not show as three trends: a word is dropped
    when a trending phrase holding it appears in at least :data:`PHRASE_COVER` of the word's
    messages (the word is then mostly that phrase); and a phrase is dropped when a better-ranked kept
    phrase shares a word with it and both counts are within that same ratio (one templated sentence,
    not two topics). Order: score desc, count desc, term asc.
    """
    if window_messages <= 0 or limit <= 0:
        return []
    resolution = min(window_messages, baseline_messages) if baseline_messages > 0 else window_messages
    epsilon = SMOOTHING / resolution
    min_lift = math.log(MIN_LIFT)

    candidates: list[Trend] = []
    for term, count in window.items():
        if count < max(min_count, 1):
            continue
        baseline_count = baseline.get(term, 0) if baseline_messages > 0 else 0
        share = min(count, window_messages) / window_messages
        baseline_share = (
            min(baseline_count, baseline_messages) / baseline_messages if baseline_messages else 0.0
        )
        lift = math.log((share + epsilon) / (baseline_share + epsilon))
        if lift < min_lift:
            continue
        score = lift * math.log1p(count)
        candidates.append(Trend(term, term_kind(term), count, baseline_count, score))

    candidates.sort(key=lambda trend: (-trend.score, -trend.count, trend.term))
    return _without_overlaps(candidates)[:limit]


def _without_overlaps(ranked: list[Trend]) -> list[Trend]:
    phrases = [trend for trend in ranked if trend.kind == "phrase"]
    kept: list[Trend] = []
    kept_phrases: list[tuple[Trend, set[str]]] = []
    for trend in ranked:
        if trend.kind == "word":
            if any(
                trend.term in phrase.term.split(" ") and phrase.count >= PHRASE_COVER * trend.count
                for phrase in phrases
            ):
                continue
        elif trend.kind == "phrase":
            tokens = set(trend.term.split(" "))
            if any(
                tokens & other_tokens and _close(trend.count, other.count)
                for other, other_tokens in kept_phrases
            ):
                continue
            kept_phrases.append((trend, tokens))
        kept.append(trend)
    return kept


def _close(first: int, second: int) -> bool:
    return min(first, second) >= PHRASE_COVER * max(first, second)


def _clause_words(clause: str, stops: frozenset[str]) -> Iterable[str | None]:
    """The clause's word tokens in order, None for a stop word or dropped token (it breaks phrases)."""
    for token in _WORD.findall(clause):
        token = token.replace(_CURLY_APOSTROPHE, "'")
        if token in stops:
            yield None
            continue
        # Elisions and possessives ("dell'app", "customer's") carry a stop word on one side.
        for piece in token.split("'"):
            yield piece if _is_word(piece, stops) else None


def _is_word(piece: str, stops: frozenset[str]) -> bool:
    return (
        1 < len(piece) <= MAX_WORD_CHARS
        and piece not in stops
        and not all(char.isdigit() or char == "-" for char in piece)
    )


def _canonical_emoji(found: str) -> str | None:
    """One spelling per emoji: skin tones folded away, then the fully qualified form.

    Skin tones are folded so "👍🏽" and "👍" count as one reaction; the variation selector is
    restored or added so "❤" and "❤️" do too. A lone modifier (not an emoji by itself) gives None.
    """
    base = found.translate(_SKIN_TONES)
    if not base:
        return None
    name = emoji.demojize(base)
    if name.startswith(":") and name.endswith(":") and name.count(":") == 2:
        return emoji.emojize(name)
    return base


@cache
def _stop_words(language: str | None) -> frozenset[str]:
    code = (language or "").lower().replace("_", "-").split("-")[0]
    codes = (code,) if code and stopwordsiso.has_lang(code) else SUPPORTED_LANGUAGES
    words = stopwordsiso.stopwords(codes)
    return frozenset(
        unicodedata.normalize("NFC", word.lower()).replace(_CURLY_APOSTROPHE, "'") for word in words
    )
