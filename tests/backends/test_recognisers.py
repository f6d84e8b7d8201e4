"""Tests of the ``"patterns"`` PII recogniser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voicepriv.backends.recognisers import PatternRecogniser, luhn_valid
from voicepriv.interfaces import Word
from voicepriv.plugins import get_plugin_manager

_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _words(text: str) -> list[Word]:
    return [Word(text=t, start=i * 0.5, end=i * 0.5 + 0.4) for i, t in enumerate(text.split())]


def _kinds(text: str) -> list[tuple[str, int, int]]:
    return [(s.kind, s.first, s.last) for s in PatternRecogniser().recognise(_words(text))]


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError(body)


def test_luhn_known_numbers() -> None:
    assert luhn_valid("4532015112830366")
    assert not luhn_valid("4532015112830367")
    assert not luhn_valid("45x2")


def test_card_spoken_as_words_maps_to_word_indices_and_times() -> None:
    text = (
        "my card is four five three two zero one five one one "
        "two eight three oh three six six thanks"
    )
    spans = PatternRecogniser().recognise(_words(text))
    assert [(s.kind, s.first, s.last) for s in spans] == [("card", 3, 18)]
    assert spans[0].start == 1.5 and spans[0].end == 18 * 0.5 + 0.4


def test_card_in_digit_groups_and_failing_luhn_is_still_flagged() -> None:
    assert _kinds("number 4532 0151 1283 0367 ok") == [("card", 1, 4)]


def test_cvv_after_cue_only() -> None:
    assert _kinds("the security code is seven three one") == [("cvv", 4, 6)]
    assert _kinds("CVV 1234") == [("cvv", 1, 1)]
    assert _kinds("I have seven three one apples") == []


def test_phone_cpr_email_iban() -> None:
    assert _kinds("call me on 20 30 40 50") == [("phone", 3, 6)]
    assert _kinds("my cpr is 010190-1234") == [("cpr", 3, 3)]
    assert _kinds("write to jane.doe@example.com please") == [("email", 2, 2)]
    assert _kinds("it is jane at example dot com ok") == [("email", 2, 6)]
    # the digits after the country code also form a 14-digit run: both spans are kept
    assert ("iban", 1, 5) in _kinds("iban DK50 0040 0440 1162 43 thanks")
    assert "iban" not in {k for k, _f, _l in _kinds("iban DK51 0040 0440 1162 43")}


def test_registered_through_plugins() -> None:
    manager = get_plugin_manager()
    recogniser = manager.hook.voicepriv_recogniser(name="patterns", options={})
    assert isinstance(recogniser, PatternRecogniser)


@given(st.text(alphabet="0123456789", min_size=15, max_size=15))
def test_any_luhn_valid_card_read_as_words_is_found(body: str) -> None:
    number = _luhn_complete(body)
    spoken = " ".join(_NAMES[int(d)] for d in number)
    assert _kinds(f"the card is {spoken} thank you") == [("card", 3, 18)]


@given(st.lists(st.sampled_from(["hello", "card", "at", "dot", "number", "is", "the", "code"])))
def test_text_without_digits_has_no_number_spans(tokens: list[str]) -> None:
    kinds = {kind for kind, _first, _last in _kinds(" ".join(tokens) or "x")}
    assert not kinds & {"card", "cvv", "phone", "cpr"}
