"""Hot topics: which terms a message contributes, and which terms rise against the period before."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.topics import (
    MAX_TERMS_PER_MESSAGE,
    Trend,
    message_terms,
    term_kind,
    trending,
)

pytestmark = pytest.mark.unit


# --- message_terms ---------------------------------------------------------------------------------


def test_english_stop_words_are_removed_and_content_words_kept() -> None:
    terms = message_terms("The battery is terrible and the screen is cracked", "en")

    assert {"battery", "terrible", "screen", "cracked"} <= set(terms)
    assert not {"the", "is", "and"} & set(terms)


def test_italian_stop_words_are_removed_and_content_words_kept() -> None:
    terms = message_terms("Il rimborso della spedizione non è arrivato, che ritardo", "it")

    assert {"rimborso", "spedizione", "ritardo"} <= set(terms)
    assert not {"il", "della", "non", "che", "è"} & set(terms)


def test_unknown_language_uses_english_and_italian_stop_words_together() -> None:
    terms = message_terms("the refund della spedizione", None)

    assert set(terms) == {"refund", "spedizione"}


def test_region_suffixes_of_language_codes_are_ignored() -> None:
    assert message_terms("the refund", "en-GB") == message_terms("the refund", "en") == ["refund"]


def test_accents_are_kept_and_composed_the_same_way() -> None:
    decomposed = "Qualità del cafe\u0301"  # e + combining acute: how some keyboards send "é"

    terms = message_terms(decomposed, "it")

    assert "qualità" in terms
    assert "café" in terms
    assert "cafe" not in terms


def test_elisions_and_possessives_keep_the_content_word() -> None:
    assert "app" in message_terms("Il problema dell'app", "it")
    assert "customer" in message_terms("The customer\u2019s order", "en")  # a typographic apostrophe
    assert not {"dell", "s"} & set(message_terms("dell'app customer's", None))


def test_hashtags_are_lowercased_kept_whole_and_kept_even_when_a_stop_word() -> None:
    terms = message_terms("Again #BatteryGate and #The #perché", "en")

    assert {"#batterygate", "#the", "#perché"} <= set(terms)
    assert "batterygate" not in terms


def test_a_number_sign_before_digits_is_no_hashtag() -> None:
    assert message_terms("We are #1 again", "en") == []


def test_emoji_are_terms_and_sequences_stay_whole() -> None:
    terms = message_terms("Love it 😍 🇮🇹 👨‍👩‍👧 👩‍💻 1️⃣", "en")

    assert {"😍", "🇮🇹", "👨‍👩‍👧", "👩‍💻", "1️⃣"} <= set(terms)
    # No part of a sequence leaks as a term of its own.
    assert not {"🇮", "🇹", "👨", "👩", "👧", "💻", "1"} & set(terms)


def test_skin_tones_and_presentation_variants_count_as_one_emoji() -> None:
    assert message_terms("👍🏽 👍🏿 👍", None) == ["👍"]
    assert message_terms("❤", None) == message_terms("❤️", None)


def test_bigrams_join_adjacent_content_words_only() -> None:
    terms = message_terms("The battery drain is awful. Battery life, drain fast", "en")

    assert "battery drain" in terms
    assert "battery life" in terms
    assert "drain fast" in terms
    # A stop word or clause punctuation between two words is no phrase.
    assert "drain awful" not in terms
    assert "life drain" not in terms
    assert "awful battery" not in terms


def test_urls_emails_and_mentions_are_dropped() -> None:
    terms = message_terms(
        "@support see https://example.com/battery-recall www.shop.it/ordine or mail help@example.org u/bob",
        "en",
    )

    assert not {"example", "com", "battery", "recall", "shop", "ordine", "support", "bob", "org"} & set(terms)


def test_digit_only_and_one_letter_words_are_dropped() -> None:
    terms = message_terms("refund 12345 x v2 4g", "en")

    assert "12345" not in terms
    assert "x" not in terms
    assert {"refund", "v2", "4g"} <= set(terms)


def test_each_term_counts_once_per_message() -> None:
    terms = message_terms("Battery BATTERY battery drain, battery drain #Fail #fail 😡😡", "en")

    assert sorted(terms) == sorted(["#fail", "😡", "battery", "drain", "battery drain"])


def test_terms_per_message_are_capped() -> None:
    text = " ".join(f"word{i}x" for i in range(500))

    terms = message_terms(text, "en")

    assert len(terms) == MAX_TERMS_PER_MESSAGE
    assert terms[0] == "word0x"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from([None, "en", "it", "fr", "xx"]))
def test_any_text_gives_distinct_well_formed_terms(text: str, language: str | None) -> None:
    terms = message_terms(text, language)

    assert len(terms) == len(set(terms)) <= MAX_TERMS_PER_MESSAGE
    for term in terms:
        assert term
        assert term == term.strip()
        if term_kind(term) != "emoji":
            assert term == term.lower()
            assert "http" not in term or term_kind(term) == "word"


def test_term_kind_names_each_kind() -> None:
    assert term_kind("battery") == "word"
    assert term_kind("battery drain") == "phrase"
    assert term_kind("#batterygate") == "hashtag"
    assert term_kind("👍") == "emoji"
    assert term_kind("🇮🇹") == "emoji"
    assert term_kind("#️⃣") == "emoji"


# --- trending --------------------------------------------------------------------------------------


def _counts(messages: Iterable[str], language: str = "en") -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    for text in messages:
        counts.update(message_terms(text, language))
        total += 1
    return counts, total


def _period(rng: random.Random, size: int, battery_share: float) -> list[str]:
    """Messages where "product" is always frequent and "battery drain" appears at a given share."""
    filler = ["shipping", "colour", "price", "order", "invoice", "store", "warranty", "manual"]
    messages = []
    for _ in range(size):
        words = ["the product"] if rng.random() < 0.5 else ["my order"]
        words.append(rng.choice(filler))
        if rng.random() < battery_share:
            words.append("battery drain")
        messages.append(" and ".join(words))
    return messages


def test_a_rising_term_ranks_above_a_term_frequent_everywhere() -> None:
    rng = random.Random(7)
    baseline, baseline_messages = _counts(_period(rng, 2000, battery_share=0.01))
    window, window_messages = _counts(_period(rng, 300, battery_share=0.2))

    trends = trending(window, baseline, window_messages=window_messages, baseline_messages=baseline_messages)
    terms = [trend.term for trend in trends]

    assert terms[0] == "battery drain"
    assert "product" not in terms or terms.index("product") > terms.index("battery drain")


def test_a_term_new_in_the_window_can_trend() -> None:
    trends = trending({"recall": 5}, {}, window_messages=100, baseline_messages=1000)

    assert trends == [Trend("recall", "word", 5, 0, trends[0].score)]
    assert trends[0].score > 0


def test_min_count_is_respected() -> None:
    window = {"recall": 2, "outage": 3}

    trends = trending(window, {}, window_messages=50, baseline_messages=500, min_count=3)

    assert [trend.term for trend in trends] == ["outage"]


def test_a_term_that_does_not_grow_does_not_trend() -> None:
    trends = trending({"product": 500}, {"product": 5000}, window_messages=1000, baseline_messages=10000)

    assert trends == []


def test_more_support_ranks_higher_for_the_same_lift() -> None:
    window = {"small": 10, "large": 1000}
    baseline = {"small": 10, "large": 1000}

    trends = trending(window, baseline, window_messages=10_000, baseline_messages=100_000)

    assert [trend.term for trend in trends] == ["large", "small"]


def test_words_of_a_trending_phrase_with_the_same_count_are_dropped() -> None:
    window = {"battery": 40, "drain": 38, "battery drain": 38, "#fail": 12}

    trends = trending(window, {}, window_messages=100, baseline_messages=1000)

    assert {trend.term for trend in trends} == {"battery drain", "#fail"}


def test_a_word_much_more_frequent_than_its_phrase_stays() -> None:
    window = {"battery": 100, "battery drain": 40, "drain": 41}

    trends = trending(window, {}, window_messages=300, baseline_messages=1000)

    assert {trend.term for trend in trends} == {"battery", "battery drain"}


def test_overlapping_phrases_of_one_templated_sentence_show_once() -> None:
    # "charger overheating badly" pasted 30 times: two phrases, one topic.
    window = {
        "charger overheating": 30,
        "overheating badly": 30,
        "charger": 30,
        "overheating": 30,
        "badly": 30,
    }

    trends = trending(window, {}, window_messages=100, baseline_messages=1000)

    assert [trend.term for trend in trends] == ["charger overheating"]


def test_ordering_is_deterministic_whatever_the_input_order() -> None:
    window = {f"term{i}": 5 for i in range(30)} | {"spike": 50}
    shuffled = list(window.items())
    random.Random(3).shuffle(shuffled)

    first = trending(window, {}, window_messages=200, baseline_messages=2000, limit=10)
    second = trending(dict(shuffled), {}, window_messages=200, baseline_messages=2000, limit=10)

    assert first == second
    assert [trend.term for trend in first] == ["spike", *sorted(f"term{i}" for i in range(30))[:9]]


def test_limit_and_empty_windows() -> None:
    window = {f"term{i}": 5 + i for i in range(30)}

    assert len(trending(window, {}, window_messages=100, baseline_messages=100, limit=5)) == 5
    assert trending(window, {}, window_messages=0, baseline_messages=100) == []
    assert trending({}, {"x": 3}, window_messages=10, baseline_messages=10) == []


def test_without_a_baseline_everything_is_new_and_support_ranks() -> None:
    trends = trending({"a1": 3, "b2": 9, "c3": 5}, {}, window_messages=20, baseline_messages=0)

    assert [trend.term for trend in trends] == ["b2", "c3", "a1"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["aa", "bb", "cc", "aa bb", "bb cc", "#dd", "😀"]), st.integers(0, 60)),
    st.dictionaries(st.sampled_from(["aa", "bb", "cc", "aa bb", "bb cc", "#dd", "😀"]), st.integers(0, 600)),
    st.integers(1, 60),
    st.integers(0, 600),
    st.integers(1, 5),
    st.integers(1, 5),
)
def test_trending_output_is_ranked_bounded_and_above_min_count(
    window: dict[str, int],
    baseline: dict[str, int],
    window_messages: int,
    baseline_messages: int,
    min_count: int,
    limit: int,
) -> None:
    trends = trending(
        window,
        baseline,
        window_messages=window_messages,
        baseline_messages=baseline_messages,
        min_count=min_count,
        limit=limit,
    )

    assert len(trends) <= limit
    assert trends == sorted(trends, key=lambda trend: (-trend.score, -trend.count, trend.term))
    for trend in trends:
        assert trend.count >= min_count
        assert trend.score > 0
        assert trend.kind == term_kind(trend.term)
