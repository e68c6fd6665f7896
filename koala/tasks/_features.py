"""Shorthands for the ``datasets`` feature types the tasks' columns use."""

from __future__ import annotations

from typing import Any

import datasets

from koala.constants import SAMPLE_RATE

# datasets >= 4 has List; 3.x spells it Sequence (also accepted by 4/5, where it is deprecated)
_List: Any = getattr(datasets, "List", None) or datasets.Sequence


def string() -> datasets.Value:
    return datasets.Value("string")


def float64() -> datasets.Value:
    return datasets.Value("float64")


def int32() -> datasets.Value:
    return datasets.Value("int32")


def list_of(feature: Any) -> Any:
    return _List(feature)


def audio() -> datasets.Audio:
    return datasets.Audio(sampling_rate=SAMPLE_RATE)
