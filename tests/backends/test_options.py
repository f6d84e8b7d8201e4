"""Backend option validators: numbers only, checked, named in the error."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.backends._options import number_option
from voicepriv.errors import ConfigError


@attrs.frozen(kw_only=True)
class _Options:
    gain: float = attrs.field(
        default=1.0, validator=number_option("demo backend", "a positive number", lambda v: v > 0)
    )
    score: float | None = attrs.field(
        default=None,
        validator=number_option("demo backend", "a cosine", lambda v: -1 <= v <= 1, optional=True),
    )


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers())
def test_accepts_exactly_what_the_check_accepts(value: float) -> None:
    if value > 0:
        assert _Options(gain=value).gain == value
    else:
        with pytest.raises(ConfigError, match="demo backend option 'gain': expected a positive"):
            _Options(gain=value)


@pytest.mark.parametrize("bad", [True, "1", float("nan"), None])
def test_refuses_bools_strings_nan_and_none(bad: object) -> None:
    with pytest.raises(ConfigError, match=repr(bad).replace("(", r"\(")):
        _Options(gain=bad)  # type: ignore[arg-type]


def test_optional_accepts_none_only_when_declared() -> None:
    assert _Options(score=None).score is None
    with pytest.raises(ConfigError, match="'score': expected a cosine, got 2"):
        _Options(score=2)
