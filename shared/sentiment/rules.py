"""What the scorer knows about a language: its lexicon, phrases, negators, intensifiers and contrast words.

English starts from VADER as the ``vaderSentiment`` wheel ships it (``vader_lexicon.txt`` and the
negation, booster and idiom lists of its module), extended by ``data/en.tsv``; Italian is
``data/it.tsv``; emoji valences (``data/emoji.tsv``) are shared by every language. Everything is read
from installed files when the analyzer is built: nothing is downloaded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources

from vaderSentiment import vaderSentiment as vader

# VADER's empirically derived constants (Hutto & Gilbert, 2014), reused so both languages score alike.
BOOSTER_STEP: float = vader.B_INCR
CAPS_INCREMENT: float = vader.C_INCR
NEGATION_SCALAR: float = vader.N_SCALAR

DATA = resources.files("shared.sentiment") / "data"

# A word with inner apostrophes or hyphens ("doesn't", "dell'app", "top-notch") or any other single
# non-space character (emoji, punctuation); a trailing apostrophe ("po'", "perche'") is dropped.
TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*|[^\w\s]", re.UNICODE)
APOSTROPHES = ("\u2019", "\u2018", "\u02bc", "`")  # typographic and keyboard variants of "'"
# Accented Latin letters folded to their base letter, so "perché", "perche'" and "perche" meet.
ACCENTS = str.maketrans(
    {
        chr(code): base
        for code in range(0xC0, 0x250)
        if (base := unicodedata.normalize("NFKD", chr(code))[0]).isascii() and base.isalpha()
    }
)


@dataclass(frozen=True, slots=True)
class LanguageRules:
    """One language's word lists, keyed by folded lower-case tokens.

    ``boosters`` hold valence increments (already multiplied by VADER's step); ``expected`` holds
    words that carry sentiment only when negated ("doesn't work"), with their affirmed valence.
    """

    code: str | None
    lexicon: dict[str, float]
    phrases: dict[tuple[str, ...], float]
    expected: dict[str, float]
    negators: frozenset[str]
    boosters: dict[str, float]
    contrast: frozenset[str]
    split_elisions: bool = False
    fold_accents: bool = False
    negation_suffix: str | None = None
    phrase_starts: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        # Most words start no phrase: checking this set first spares building tuples for every word.
        object.__setattr__(self, "phrase_starts", frozenset(words[0] for words in self.phrases))

    def fold(self, token: str) -> str:
        """The lookup key of a token from :meth:`tokens`: lower case, accents folded if the language does."""
        key = token.lower()
        return key.translate(ACCENTS) if self.fold_accents and not key.isascii() else key

    def tokens(self, text: str) -> list[str]:
        """Raw tokens of ``text``, case kept for the ALL CAPS rule, punctuation kept as clause boundaries.

        Emoticons (":)", "<3") stay whole; a hyphenated word the lexicon lacks ("super-fast") and, where
        the language elides, an elision ("dell'app") are split into their words.
        """
        out: list[str] = []
        for variant in APOSTROPHES:
            if variant in text:
                text = text.replace(variant, "'")
        for chunk in text.split():
            if not chunk.isalnum() and chunk.lower() in self.lexicon:
                out.append(chunk)
                continue
            for word in TOKEN.findall(chunk):
                if "-" in word and self.fold(word) not in self.lexicon:
                    out.extend(part for part in word.split("-") if part)
                elif "'" in word and self.split_elisions:
                    out.extend(part for part in word.split("'") if part)
                else:
                    out.append(word)
        return out


def _rows(name: str) -> Iterator[tuple[str, str, float | None]]:
    """(kind, entry, value) rows of a data file; comments and blank lines skipped."""
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, entry, *rest = line.split("\t")
        yield kind, entry, float(rest[0]) if rest else None


def _adjective_forms(lemma: str, valence: float) -> Iterator[tuple[str, float]]:
    """Gender and number forms, -issimo superlatives and the -mente adverb of an Italian adjective."""
    # A superlative reads like two boosters (VADER's step is 0.293); capped below VADER's extreme of 4.
    strong = max(-3.6, min(3.6, valence + 0.6 * (1 if valence > 0 else -1 if valence < 0 else 0)))
    if lemma.endswith("o"):
        stem = lemma[:-1]
        plural = stem if stem.endswith("i") else stem + "i"
        yield from ((form, valence) for form in (lemma, stem + "a", plural, stem + "e"))
        if stem.endswith(("c", "g")):
            yield from ((form, valence) for form in (stem + "hi", stem + "he"))
        superlative = stem + "h" if stem.endswith(("c", "g")) else stem.removesuffix("i")
        yield stem + "amente", valence
    elif lemma.endswith("e"):
        stem = lemma[:-1]
        yield from ((form, valence) for form in (lemma, stem + "i"))
        superlative = stem
        adverb = stem if stem.endswith(("l", "r")) and stem[-2:-1] in set("aeiou") else lemma
        yield adverb + "mente", valence
    elif lemma.endswith("a"):  # -ista, -ita: one singular, two plurals, no superlative
        stem = lemma[:-1]
        yield from ((form, valence) for form in (lemma, stem + "i", stem + "e"))
        return
    else:
        yield lemma, valence
        return
    for ending in ("issimo", "issima", "issimi", "issime"):
        yield superlative + ending, strong


def _noun_forms(lemma: str) -> Iterator[str]:
    """An Italian noun and its plural (words ending in an accent or consonant do not change)."""
    yield lemma
    if lemma.endswith("io"):
        yield lemma[:-1]
    elif lemma.endswith(("ca", "ga")):
        yield lemma[:-1] + "he"
    elif lemma.endswith("a"):
        yield lemma[:-1] + "e"
    elif lemma.endswith(("o", "e")):
        yield lemma[:-1] + "i"


def _emoji() -> dict[str, float]:
    """Emoji valences from ``data/emoji.tsv`` (emoji<TAB>valence)."""
    table: dict[str, float] = {}
    for line in (DATA / "emoji.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            emoji, valence = line.split("\t")
            table[emoji] = float(valence)
    return table


def _build(base: LanguageRules, name: str) -> LanguageRules:
    """``base`` extended by a data file: generated forms first, explicit entries override them."""
    generated: dict[str, float] = {}
    explicit: dict[str, float] = {}
    phrases = dict(base.phrases)
    expected = dict(base.expected)
    negators = set(base.negators)
    boosters = dict(base.boosters)
    contrast = set(base.contrast)
    for kind, entry, value in _rows(name):
        key = base.fold(entry)
        if kind == "neg":
            negators.add(key)
        elif kind == "but":
            contrast.add(key)
        elif kind == "boost" and value is not None:
            boosters[key] = value * BOOSTER_STEP
        elif kind == "expect" and value is not None:
            expected[key] = value
        elif kind == "adj" and value is not None:
            generated.update((base.fold(form), valence) for form, valence in _adjective_forms(entry, value))
        elif kind == "noun" and value is not None:
            generated.update((base.fold(form), value) for form in _noun_forms(entry))
        elif kind == "word" and value is not None:
            words = tuple(base.fold(token) for token in base.tokens(entry))
            if len(words) > 1:
                phrases[words] = value
            else:
                explicit[key] = value
        else:
            raise ValueError(f"sentiment data {name}: unknown row {kind!r} {entry!r}")
    lexicon = {**base.lexicon, **generated, **explicit}
    for word in expected:
        lexicon.pop(word, None)
    return LanguageRules(
        code=base.code,
        lexicon=lexicon,
        phrases=phrases,
        expected=expected,
        negators=frozenset(negators),
        boosters=boosters,
        contrast=frozenset(contrast),
        split_elisions=base.split_elisions,
        fold_accents=base.fold_accents,
        negation_suffix=base.negation_suffix,
    )


def _vader_lexicon() -> dict[str, float]:
    """VADER's word and emoticon valences as its wheel ships them, keys lower-cased (VADER looks up lower case)."""
    text = (resources.files("vaderSentiment") / "vader_lexicon.txt").read_text(encoding="utf-8")
    lexicon: dict[str, float] = {}
    for line in text.splitlines():
        entry, _, rest = line.partition("\t")
        if entry and rest and " " not in entry:
            lexicon.setdefault(entry.lower(), float(rest.split("\t", 1)[0]))
    return lexicon


def universal() -> LanguageRules:
    """For text of no known language: emoji and VADER's emoticons (":)", "<3"), which need no words."""
    emoticons = {key: value for key, value in _vader_lexicon().items() if not any(c.isalpha() for c in key)}
    return LanguageRules(
        code=None,
        lexicon={**emoticons, **_emoji()},
        phrases={},
        expected={},
        negators=frozenset(),
        boosters={},
        contrast=frozenset(),
    )


def english() -> LanguageRules:
    """VADER's English lexicon, negators, boosters and idioms, extended by ``data/en.tsv``."""
    base = LanguageRules(
        code="en",
        lexicon={**_vader_lexicon(), **_emoji()},
        phrases={tuple(idiom.split()): value for idiom, value in vader.SPECIAL_CASES.items()},
        expected={},
        negators=frozenset(word.lower() for word in vader.NEGATE),
        boosters={
            word: value for word, value in vader.BOOSTER_DICT.items() if " " not in word and "-" not in word
        },
        contrast=frozenset({"but"}),
        negation_suffix="n't",
    )
    return _build(base, "en.tsv")


def italian() -> LanguageRules:
    """The curated Italian lexicon of ``data/it.tsv`` with the shared emoji and emoticons."""
    base = LanguageRules(
        code="it",
        lexicon=dict(universal().lexicon),
        phrases={},
        expected={},
        negators=frozenset(),
        boosters={},
        contrast=frozenset(),
        split_elisions=True,
        fold_accents=True,
    )
    return _build(base, "it.tsv")
