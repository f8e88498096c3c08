"""VADER's scoring rules (Hutto & Gilbert, 2014) applied to any language's word lists.

Kept apart from ``vaderSentiment``'s own class because that class hard-wires English negators and
boosters as module globals; the rules here are VADER's (valence per word, ALL CAPS emphasis, boosters
decaying over three words, negation scaled by -0.74, "but" reweighting, "!" and "?" emphasis, the
compound normalisation), with three additions that matter in a support inbox: phrases of up to three
words, words that only count when negated ("doesn't work"), and negation that does not cross
punctuation ("No, it works now").
"""

from __future__ import annotations

import math

from shared.sentiment.rules import CAPS_INCREMENT, NEGATION_SCALAR, LanguageRules

CLAUSE_BREAKS = frozenset(",;.!?:")
WINDOW = 3  # VADER looks three words back for boosters and negators
BOOSTER_DECAY = (1.0, 0.95, 0.9)
ALPHA = 15.0  # VADER's normalisation constant: the raw sum that maps to about 0.8
EXCLAMATION_STEP = 0.292
MAX_EXCLAMATIONS = 4
QUESTION_STEP = 0.18
MAX_QUESTION_BONUS = 0.96


def _words(rules: LanguageRules, text: str) -> tuple[list[str], list[str], list[int]]:
    """Lookup keys, raw forms and clause numbers of the tokens that can matter.

    Punctuation ends a clause; other symbols the lexicon does not know (unknown emoji, variation
    selectors, skin tones, brackets) are dropped so they do not use up the three-word windows.
    """
    keys: list[str] = []
    raw: list[str] = []
    clauses: list[int] = []
    clause = 0
    for token in rules.tokens(text):
        if len(token) == 1 and not token.isalnum():
            if token in CLAUSE_BREAKS:
                clause += 1
                continue
            if token not in rules.lexicon:
                continue
        keys.append(rules.fold(token))
        raw.append(token)
        clauses.append(clause)
    return keys, raw, clauses


def coverage(rules: LanguageRules, text: str) -> int:
    """How many words of ``text`` this language's lists know: a vote when the language is uncertain."""
    keys, raw, _ = _words(rules, text)
    return sum(
        1
        for key, token in zip(keys, raw, strict=True)
        if token.isalpha()
        and (
            key in rules.lexicon
            or key in rules.expected
            or key in rules.negators
            or key in rules.boosters
            or key in rules.phrase_starts
        )
    )


def compound(rules: LanguageRules, text: str) -> float:
    """VADER's compound score of ``text`` in [-1, 1] under ``rules``."""
    keys, raw, clauses = _words(rules, text)
    count = len(keys)
    if not count:
        return 0.0
    shouting = [len(token) > 1 and token.isupper() for token in raw]
    # Caps only emphasise when some words are not in caps: a message all in caps is just loud.
    caps_differ = any(shouting) and not all(
        loud for loud, token in zip(shouting, raw, strict=True) if token.isalpha()
    )

    def negated(index: int) -> bool:
        for back in range(1, WINDOW + 1):
            before = index - back
            if before < 0 or clauses[before] != clauses[index]:
                return False
            key = keys[before]
            if key in rules.negators or (rules.negation_suffix is not None and rules.negation_suffix in key):
                return True
        return False

    def carries(index: int, clause: int) -> bool:
        if index >= count or clauses[index] != clause:
            return False
        key = keys[index]
        return key in rules.lexicon or key in rules.expected or key in rules.boosters

    sentiments = [0.0] * count
    index = 0
    while index < count:
        key, clause = keys[index], clauses[index]
        span, valence, negatable = 1, None, True
        if key in rules.phrase_starts:
            for size in (3, 2):
                end = index + size
                if end <= count and clauses[end - 1] == clause:
                    phrase = rules.phrases.get(tuple(keys[index:end]))
                    if phrase is not None:
                        # A phrase that opens with a negator ("nessun problema", "not ok") has it in its
                        # value; a negator before it is concord, not a second negation.
                        span, valence, negatable = size, phrase, key not in rules.negators
                        break
        if valence is None:
            # A booster before a sentiment word boosts it; on its own ("super!") it is a word.
            if key in rules.boosters and (key not in rules.lexicon or carries(index + 1, clause)):
                index += 1
                continue
            valence = rules.lexicon.get(key)
            if valence is None:
                affirmed = rules.expected.get(key)
                if affirmed is None or not negated(index):
                    index += 1
                    continue
                valence = affirmed
        if valence:
            sign = 1.0 if valence > 0 else -1.0
            if caps_differ and shouting[index]:
                valence += sign * CAPS_INCREMENT
            for back, decay in enumerate(BOOSTER_DECAY, start=1):
                before = index - back
                if before < 0 or clauses[before] != clause:
                    break
                boost = rules.boosters.get(keys[before])
                if boost is not None:
                    if caps_differ and shouting[before]:
                        boost += CAPS_INCREMENT
                    valence += sign * boost * decay
            if negatable and negated(index):
                valence *= NEGATION_SCALAR
            sentiments[index] = valence
        index += span

    for position, key in enumerate(keys):
        if key in rules.contrast:
            # VADER's "but" rule: what follows the first contrast word outweighs what precedes it.
            sentiments = [
                value * (0.5 if at < position else 1.5 if at > position else 1.0)
                for at, value in enumerate(sentiments)
            ]
            break

    total = math.fsum(sentiments)
    if total:
        emphasis = min(text.count("!"), MAX_EXCLAMATIONS) * EXCLAMATION_STEP
        questions = text.count("?")
        if questions > 1:
            emphasis += questions * QUESTION_STEP if questions <= 3 else MAX_QUESTION_BONUS
        total += emphasis if total > 0 else -emphasis
    score = total / math.sqrt(total * total + ALPHA)
    return max(-1.0, min(1.0, score))
