"""The ``"patterns"`` PII recogniser: card numbers, CVV codes, phone numbers, e-mail, CPR, IBAN.

Pure Python, no dependencies. It reads a transcript (:class:`~voicepriv.interfaces.Word`) the way
a speech recogniser writes it: numbers may come as digits (``"4532"``, ``"4532-0151"``) or as
spoken words (``"four five three two"``, ``"oh"`` for zero), e-mail addresses as
``"jane at example dot com"``. Every finding is a :class:`~voicepriv.interfaces.PiiSpan` over
word indices ``[first, last]`` with the words' time span.

Privacy first: a run of 13-19 digits read out is flagged as a card number even when the Luhn
check fails (a misheard digit must not leak the other fifteen); :func:`luhn_valid` is exported
for callers that want to tell real card numbers apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from voicepriv.errors import ConfigError
from voicepriv.interfaces import PiiSpan, Word
from voicepriv.plugins import hookimpl

__all__ = [
    "PATTERNS",
    "PatternRecogniser",
    "luhn_valid",
    "voicepriv_backend_names",
    "voicepriv_recogniser",
]

#: Name of the pattern recogniser.
PATTERNS = "patterns"

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_TLDS = frozenset({"com", "org", "net", "dk", "io", "co", "uk", "de", "eu", "edu", "gov", "se"})
_CVV_CUES = ("cvv", "cvc", "cv2")
_STRIP = ".,;:!?\"'()[]"
_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")


def luhn_valid(digits: str) -> bool:
    """Whether the digit string *digits* passes the Luhn checksum (``False`` if not all digits)."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _norm(text: str) -> str:
    return text.strip().strip(_STRIP).lower()


def _digits_of(text: str) -> str | None:
    """Digits a word stands for (``"four"`` -> ``"4"``, ``"45-01"`` -> ``"4501"``), else None."""
    word = _norm(text)
    if word in _DIGIT_WORDS:
        return _DIGIT_WORDS[word]
    compact = word.replace("-", "").replace("+", "")
    return compact if compact.isdigit() else None


def _valid_cpr(digits: str) -> bool:
    day, month = int(digits[0:2]), int(digits[2:4])
    return 1 <= day <= 31 and 1 <= month <= 12


def _iban_valid(text: str) -> bool:
    if not _IBAN.match(text):
        return False
    rearranged = text[4:] + text[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


@attrs.frozen(kw_only=True)
class PatternRecogniser:
    """Finds card numbers, CVV codes, phone numbers, e-mail, Danish CPR numbers and IBANs."""

    @property
    def name(self) -> str:
        """``"patterns"``."""
        return PATTERNS

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PatternRecogniser:
        """Build from backend options (none are accepted)."""
        if options:
            raise ConfigError(f"patterns recogniser: takes no options, got {sorted(options)}")
        return cls()

    def recognise(self, words: Sequence[Word]) -> tuple[PiiSpan, ...]:
        """Spans of personal data among *words*, sorted by first word."""
        found: list[tuple[str, int, int]] = []
        found.extend(self._numbers(words))
        found.extend(self._emails(words))
        found.extend(self._ibans(words))
        spans = {
            (kind, first, last): PiiSpan(
                kind=kind,
                first=first,
                last=last,
                start=words[first].start,
                end=words[last].end,
            )
            for kind, first, last in found
        }
        return tuple(sorted(spans.values(), key=lambda s: (s.first, s.last, s.kind)))

    def _numbers(self, words: Sequence[Word]) -> list[tuple[str, int, int]]:
        found: list[tuple[str, int, int]] = []
        index = 0
        while index < len(words):
            if _digits_of(words[index].text) is None:
                index += 1
                continue
            first = index
            digits = ""
            while index < len(words) and (part := _digits_of(words[index].text)) is not None:
                digits += part
                index += 1
            last = index - 1
            kind = self._number_kind(words, first, digits)
            if kind is not None:
                found.append((kind, first, last))
        return found

    @staticmethod
    def _number_kind(words: Sequence[Word], first: int, digits: str) -> str | None:
        count = len(digits)
        if count >= 13:
            return "card"
        if count == 10 and _valid_cpr(digits):
            return "cpr"
        if 8 <= count <= 12:
            return "phone"
        if count in (3, 4):
            cue = " ".join(_norm(w.text) for w in words[max(0, first - 4) : first])
            if "security code" in cue or any(c in cue.split() for c in _CVV_CUES):
                return "cvv"
        return None

    @staticmethod
    def _emails(words: Sequence[Word]) -> list[tuple[str, int, int]]:
        found: list[tuple[str, int, int]] = []
        for index, word in enumerate(words):
            if _EMAIL.match(word.text.strip().rstrip(_STRIP)):
                found.append(("email", index, index))
        norm = [_norm(w.text) for w in words]
        for at in range(1, len(norm) - 3):
            if norm[at] != "at" or not norm[at - 1].replace(".", "").isalnum():
                continue
            for dot in range(at + 2, min(at + 6, len(norm) - 1)):
                if norm[dot] == "dot" and norm[dot + 1] in _TLDS:
                    found.append(("email", at - 1, dot + 1))
                    break
        return found

    @staticmethod
    def _ibans(words: Sequence[Word]) -> list[tuple[str, int, int]]:
        found: list[tuple[str, int, int]] = []
        compact = [re.sub(r"[^A-Za-z0-9]", "", w.text).upper() for w in words]
        for first in range(len(words)):
            if not re.match(r"^[A-Z]{2}\d{2}", compact[first]):
                continue
            text = ""
            for last in range(first, min(first + 9, len(words))):
                text += compact[last]
                if _iban_valid(text):
                    found.append(("iban", first, last))
                    break
        return found


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["patterns"]`` for kind ``"recogniser"``, nothing otherwise."""
    return [PATTERNS] if kind == "recogniser" else []


@hookimpl
def voicepriv_recogniser(name: str, options: Mapping[str, Any]) -> PatternRecogniser | None:
    """The ``"patterns"`` recogniser, else ``None``."""
    return PatternRecogniser.from_options(options) if name == PATTERNS else None
