"""The default sentiment analyzer: what an agent reading the inbox would notice, and its evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sentiment import SENTIMENT_LABELS, Sentiment, SentimentAnalyzer, load_analyzer
from shared.sentiment.lexicon import LexiconAnalyzer
from tests.shared.sentiment import evaluation

pytestmark = pytest.mark.unit

MIN_MACRO_F1 = 0.75


class ConstantAnalyzer:
    """A custom analyzer, as an installation would name one in PIAZZA_SENTIMENT_ANALYZER."""

    def analyze(self, text: str) -> Sentiment:
        return Sentiment(label="positive", score=1.0, language="xx")


class NotAnAnalyzer:
    pass


@pytest.fixture(scope="module")
def analyzer() -> LexiconAnalyzer:
    loaded = load_analyzer()
    assert isinstance(loaded, LexiconAnalyzer)
    return loaded


def consistent(sentiment: Sentiment) -> bool:
    """A score in range whose sign agrees with the label."""
    if not -1.0 <= sentiment.score <= 1.0 or sentiment.label not in SENTIMENT_LABELS:
        return False
    if sentiment.label == "positive":
        return sentiment.score > 0
    if sentiment.label == "negative":
        return sentiment.score < 0
    return abs(sentiment.score) < 0.5


@pytest.mark.parametrize(
    ("affirmed", "negated"),
    [
        ("The new app is good", "The new app is not good"),
        ("I love the new design", "I don't love the new design"),
        ("La nuova app è buona", "La nuova app non è buona"),
        ("Il servizio è stato ottimo", "Il servizio non è stato per niente ottimo"),
    ],
)
def test_negation_turns_praise_into_a_complaint(
    analyzer: LexiconAnalyzer, affirmed: str, negated: str
) -> None:
    assert analyzer.analyze(affirmed).label == "positive"
    assert analyzer.analyze(negated).label == "negative"


@pytest.mark.parametrize("text", ["not bad at all", "non è male", "nothing wrong with it", "nessun problema"])
def test_a_negated_complaint_reads_as_praise(analyzer: LexiconAnalyzer, text: str) -> None:
    assert analyzer.analyze(text).label == "positive"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("The app works on my phone", "neutral"),
        ("The app doesn't work on my phone", "negative"),
        ("L'app non funziona sul mio telefono", "negative"),
        ("Nobody answered my email", "negative"),
        ("Nessuno ha risposto alla mia mail", "negative"),
        ("Il pacco non è ancora arrivato", "negative"),
        ("No, it works now, thank you", "positive"),
    ],
)
def test_a_service_not_doing_its_job_is_a_complaint(analyzer: LexiconAnalyzer, text: str, label: str) -> None:
    assert analyzer.analyze(text).label == label


@pytest.mark.parametrize(
    ("text", "label"),
    [("😍😍", "positive"), ("👍", "positive"), ("❤️", "positive"), ("😡", "negative"), ("👎👎", "negative")],
)
def test_emoji_alone_carry_sentiment_but_no_language(
    analyzer: LexiconAnalyzer, text: str, label: str
) -> None:
    sentiment = analyzer.analyze(text)
    assert sentiment.label == label
    assert sentiment.language is None


def test_emoji_add_to_the_words(analyzer: LexiconAnalyzer) -> None:
    assert analyzer.analyze("Ordine arrivato oggi 😍").label == "positive"
    assert analyzer.analyze("My order arrived today 😡").label == "negative"


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \r\n"])
def test_nothing_to_read_is_neutral_with_no_language(analyzer: LexiconAnalyzer, text: str) -> None:
    assert analyzer.analyze(text) == Sentiment(label="neutral", score=0.0, language=None)


def test_caps_and_exclamation_marks_make_it_stronger(analyzer: LexiconAnalyzer) -> None:
    calm = analyzer.analyze("great service").score
    loud = analyzer.analyze("GREAT service!!!").score
    assert 0 < calm < loud
    assert analyzer.analyze("pessimo servizio!!!").score < analyzer.analyze("pessimo servizio").score < 0


@pytest.mark.parametrize(
    "text",
    [
        "The food was good but the service was terrible",
        "Il cibo era buono ma il servizio pessimo",
    ],
)
def test_what_follows_but_decides(analyzer: LexiconAnalyzer, text: str) -> None:
    assert analyzer.analyze(text).label == "negative"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Thank you for the quick answer, everything is fine now", "en"),
        ("When will the new collection be available in your stores?", "en"),
        ("Grazie per la risposta veloce, adesso è tutto a posto", "it"),
        ("Quando sarà disponibile la nuova collezione nei vostri negozi?", "it"),
        ("ok", None),
        ("🙂🙂🙂", None),
    ],
)
def test_language_of_obvious_texts(analyzer: LexiconAnalyzer, text: str, language: str | None) -> None:
    assert analyzer.analyze(text).language == language


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x07\x1b[31m",
        "a\x00b\x7fc\x9fd",
        "x" * 10_000,
        "great " * 2_000,
        "non " * 3_000,
        "🙂" * 10_000,
        "!!!???...",
        "\ud800 lone surrogate",
        "😍\u200d\u200d\ufe0f🏻",
        "https://example.com/a?b=c#d",
        "日本語のテキストです",
        "Привет, как дела?",
        "#### ---- **** '' `` \u2019\u2019",
        "l' dell' po' perche'",
    ],
)
def test_odd_input_never_raises(analyzer: LexiconAnalyzer, text: str) -> None:
    # analyze() would swallow an error and answer neutral; _analyze shows there is none to swallow.
    assert consistent(analyzer._analyze(text))
    assert consistent(analyzer.analyze(text))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400))
def test_any_text_gets_a_consistent_sentiment(text: str) -> None:
    analyzer = load_analyzer()
    assert isinstance(analyzer, LexiconAnalyzer)
    assert consistent(analyzer._analyze(text))


def test_a_custom_analyzer_is_loaded_by_its_path() -> None:
    custom: SentimentAnalyzer = load_analyzer("tests.shared.sentiment.test_sentiment:ConstantAnalyzer")
    assert custom.analyze("anything") == Sentiment(label="positive", score=1.0, language="xx")


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("shared.sentiment.lexicon", ValueError, "module:attribute"),
        (":LexiconAnalyzer", ValueError, "module:attribute"),
        ("shared.sentiment.nowhere:Analyzer", ModuleNotFoundError, "shared.sentiment.nowhere"),
        ("shared.sentiment.lexicon:Missing", AttributeError, "Missing"),
        ("tests.shared.sentiment.test_sentiment:NotAnAnalyzer", TypeError, "analyze"),
    ],
)
def test_a_bad_analyzer_path_fails_clearly(path: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_analyzer(path)


@pytest.mark.parametrize("language", evaluation.LANGUAGES)
def test_evaluation_set_is_balanced(language: str) -> None:
    for part in ("tuning", "held-out"):
        labels = [example.label for example in evaluation.load(language, part)]
        assert {labels.count(label) for label in SENTIMENT_LABELS} == {len(labels) // 3}
    assert len(evaluation.load(language)) >= 150


@pytest.mark.parametrize("language", evaluation.LANGUAGES)
def test_macro_f1_on_the_evaluation_set(analyzer: LexiconAnalyzer, language: str) -> None:
    examples = evaluation.load(language)
    scores = evaluation.evaluate(analyzer, examples)
    held_out = evaluation.evaluate(analyzer, evaluation.load(language, "held-out"))
    assert scores.macro_f1 >= MIN_MACRO_F1, scores
    assert held_out.macro_f1 >= MIN_MACRO_F1, held_out
    assert all(analyzer.analyze(example.text).language == language for example in examples[:20])


def test_scores_helper() -> None:
    scores = evaluation.score(
        ["positive", "positive", "negative", "neutral"], ["positive", "neutral", "negative", "neutral"]
    )
    assert scores.accuracy == 0.75
    assert scores.f1 == {"negative": 1.0, "neutral": 2 / 3, "positive": 2 / 3}
    assert scores.macro_f1 == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)
