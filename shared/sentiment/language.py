"""Which language a message is in: py3langid's model (inside its wheel), narrowed to likely languages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import islice

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# Narrowing the model to the languages an Italian or international brand hears from makes short texts
# far less often read as a distant language; Spanish, French, German and Portuguese stay so that
# they are recognised as such rather than forced into English or Italian.
CANDIDATES: tuple[str, ...] = ("en", "it", "es", "fr", "de", "pt")
MIN_LETTERS = 3  # "ok", "hi", "👍" carry no evidence of a language
MAX_CHARS = 300  # the language of a long message is clear from its start, and the model costs per byte
LETTER = re.compile(r"[^\W\d_]")


class LanguageDetector:
    """Detects the language of short, informal texts, or says it cannot (``None``)."""

    def __init__(self, languages: Sequence[str] = CANDIDATES, min_confidence: float = 0.5) -> None:
        # Loading decompresses the model (one to three seconds): done once per process, by the analyzer.
        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(list(languages))
        self._min_confidence = min_confidence

    def detect(self, text: str) -> tuple[str | None, float]:
        """The ISO 639-1 code of ``text`` and the model's confidence; ``None`` below the threshold."""
        head = text[:MAX_CHARS]
        if sum(1 for _ in islice(LETTER.finditer(head), MIN_LETTERS)) < MIN_LETTERS:
            return None, 0.0
        language, confidence = self._identifier.classify(head)
        if confidence < self._min_confidence:
            return None, float(confidence)
        return str(language), float(confidence)
