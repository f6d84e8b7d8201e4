"""Validators for backend options: one private class behind a documented factory.

Every backend turns its ``options`` mapping into an attrs value; these validators reject a bad
value with a :class:`~voicepriv.errors.ConfigError` naming the backend, the option, what was
expected and the value received.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from typing import Any

import attrs

from voicepriv.errors import ConfigError


class _NumberOption:
    """Validator: a real number (never a bool) for which *accepts* holds."""

    def __init__(
        self, owner: str, expected: str, accepts: Callable[[float], bool], optional: bool
    ) -> None:
        self.owner = owner
        self.expected = expected
        self.accepts = accepts
        self.optional = optional

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or not self.accepts(value):
            raise ConfigError(
                f"{self.owner} option {attribute.name!r}: expected {self.expected}, got {value!r}"
            )


def check_options(owner: str, options: Mapping[str, Any], known: Set[str]) -> None:
    """Refuse option names *owner* (e.g. ``"whisper transcriber"``) does not know, all at once.

    :raises ConfigError: naming the unknown options and the known ones.
    """
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"{owner}: unknown option(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )


def number_option(
    owner: str, expected: str, accepts: Callable[[float], bool], *, optional: bool = False
) -> _NumberOption:
    """A validator for a numeric option of *owner* (e.g. ``"channels separator"``).

    :param expected: what the message says was expected, e.g. ``"a positive number"``.
    :param accepts: the check a number must pass (NaN fails every comparison, so it is refused).
    :param optional: ``None`` is also accepted.
    """
    return _NumberOption(owner, expected, accepts, optional)
