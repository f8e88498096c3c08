"""Small sentiment analyzers for tests, named in settings as ``tests.services.inbox.analyzers:<Name>``."""

from __future__ import annotations

from shared.sentiment import Sentiment

NEGATIVE = ("terrible", "hate", "awful", "broken")
POSITIVE = ("love", "great", "thanks", "wonderful")


class KeywordAnalyzer:
    """negative when a text has a negative word, else positive when a positive one, else neutral."""

    def analyze(self, text: str) -> Sentiment:
        words = text.lower()
        if any(word in words for word in NEGATIVE):
            return Sentiment("negative", -0.75, "en")
        if any(word in words for word in POSITIVE):
            return Sentiment("positive", 0.5, "en")
        return Sentiment("neutral", 0.0, None)


class FlakyAnalyzer(KeywordAnalyzer):
    """Fails on texts that say "boom", and reads "weird" as a label the store does not know."""

    def analyze(self, text: str) -> Sentiment:
        if "boom" in text:
            raise RuntimeError("the analyzer blew up")
        if "weird" in text:
            return Sentiment("ecstatic", 2.0, "en")  # type: ignore[arg-type]
        return super().analyze(text)
