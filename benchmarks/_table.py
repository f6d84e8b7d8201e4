"""A plain-text table for the benchmarks' results (shared by the scripts in this folder)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: (title, key, alignment and width, number format) of one column.
Column = tuple[str, str, str, str]


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> None:
    """Print a header, a rule and one line per row (``-`` where a row lacks a column's key)."""
    header = " ".join(f"{title:{align}}" for title, _, align, _ in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            " ".join(
                f"{row[key]:{align}{fmt}}" if key in row else f"{'-':{align}}"
                for _, key, align, fmt in columns
            )
        )
