"""Command-line backend options: one reading for every command."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicepriv._cli._options import option_value, parse_options
from voicepriv.errors import ConfigError

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(KEYS, SCALARS, max_size=3)


@given(options=st.dictionaries(KEYS, VALUES, max_size=5))
def test_json_values_round_trip(options: dict[str, Any]) -> None:
    pairs = [f"{key}={json.dumps(value)}" for key, value in options.items()]
    assert parse_options(pairs, flag="--option") == options


@given(text=st.text(max_size=30))
def test_any_value_text_is_read_or_refused_with_a_config_error(text: str) -> None:
    try:
        value = option_value(text)
    except ConfigError as exc:
        assert text.strip()[:1] in ("{", "[") and "--option" in str(exc)
    else:
        if isinstance(value, float) and math.isnan(value):
            return
        assert value is None or isinstance(value, (bool, int, float, str, list, dict))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("1_000", 1000),
        ("0.5", 0.5),
        ("true", True),
        ("True", True),
        ("null", None),
        ('"0042"', "0042"),
        ("alias/voicepriv", "alias/voicepriv"),
        ('{"source": "/models/x"}', {"source": "/models/x"}),
    ],
)
def test_values_read_as_documented(text: str, value: Any) -> None:
    assert option_value(text) == value


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["colour"], "--key-option: expected KEY=VALUE, got 'colour'"),
        (["=1"], "expected KEY=VALUE"),
        (['source={"a": 1'], "--key-option source: '{\"a\": 1' is not valid JSON"),
    ],
)
def test_bad_items_name_the_flag(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("{", r"\{")):
        parse_options(pairs, flag="--key-option")


def test_a_key_given_twice_keeps_the_last_value() -> None:
    assert parse_options(["a=1", " a = 2 "], flag="--option") == {"a": 2}
