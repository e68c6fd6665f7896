"""Input checks shared by the scoring functions: each error names the argument and index."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def check_sequence(value: Any, name: str, *, allow_empty: bool = False) -> None:
    """``value`` must be a list-like of items (not a string, not None) and, unless allowed, not
    empty."""
    if value is None:
        raise ValueError(f"{name} is None; pass a list")
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    if not allow_empty and len(value) == 0:
        raise ValueError(f"{name} is empty; nothing to score")


def check_strings(values: Sequence[Any], name: str) -> None:
    """Every item of ``values`` must be a ``str``."""
    for i, v in enumerate(values):
        if v is None:
            raise ValueError(f"{name}[{i}] is None; expected a string (use '' for no answer)")
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}] must be a string, got {type(v).__name__}: {v!r}")


def check_same_length(*named: tuple[str, Sequence[Any]]) -> None:
    """All sequences must have the length of the first."""
    first_name, first = named[0]
    for name, seq in named[1:]:
        if len(seq) != len(first):
            raise ValueError(
                f"{name} has {len(seq)} items but {first_name} has {len(first)}; "
                "they must pair up one to one"
            )


def check_pairs(
    predictions: Sequence[Any],
    references: Sequence[Any],
    names: tuple[str, str] = ("predictions", "references"),
) -> None:
    """The usual predictions/references check: lists of strings of equal, non-zero length."""
    check_sequence(predictions, names[0])
    check_sequence(references, names[1])
    check_same_length((names[0], predictions), (names[1], references))
    check_strings(predictions, names[0])
    check_strings(references, names[1])


def check_probability(value: Any, name: str) -> float:
    """A finite float in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} = {value!r} is outside [0, 1]")
    return v
