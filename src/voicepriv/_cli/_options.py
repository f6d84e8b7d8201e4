"""``KEY=VALUE`` backend options given on the command line, read the same way by every command.

``voicepriv isolate --option``, ``voicepriv enroll --option``, ``voicepriv ingest
--separator-option`` / ``--adapter-option``, ``voicepriv vault init --key-provider-option`` and
``voicepriv audit verify --key-option`` all use :func:`parse_options`, so an option written
into ``vault.toml`` by ``vault init`` reaches the key provider with the same type when
``audit verify`` is given it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from voicepriv.errors import ConfigError

_BOOLEANS = {"true": True, "false": False}


def option_value(text: str, *, flag: str = "--option") -> Any:
    """One value: JSON when it parses, else an int, a float, ``True``/``False``, or the text.

    ``5``, ``0.5``, ``true``, ``null``, ``"0042"`` (quoted: stays text) and ``{"a": 1}`` are
    JSON; ``1_000`` is an int, ``True`` a boolean, anything else text.

    :raises ConfigError: the value starts like a JSON object or list but does not parse; the
        message names *flag*.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if text[:1] in ("{", "["):
            raise ConfigError(f"{flag}: {text!r} is not valid JSON ({exc.msg})") from None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return _BOOLEANS.get(text.lower(), text)


def parse_options(pairs: Sequence[str], *, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` items of a repeatable *flag* as backend options (see :func:`option_value`).

    Keys and values are stripped of surrounding blanks; a key given twice keeps its last value.

    :raises ConfigError: an item without ``=`` or a key, or a bad value; the message names
        *flag* and the item.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ConfigError(f"{flag}: expected KEY=VALUE, got {pair!r}")
        options[key] = option_value(text, flag=f"{flag} {key}")
    return options
