"""PA-QA: accuracy by the position of the evidence in long speech.

The paper's segments of the relative position ``p`` of an evidence sentence in the passage:

    front [0, .25), front-middle [.25, .5), middle-late [.5, .75), late [.75, 1]

"an item with evidence in several segments counts once in each". ``middle-front`` is accepted
as an alias of ``front-middle`` (the published files use both spellings).

A segment that holds no item has no accuracy: it is NaN under the ``koala`` protocol (with its
``segment_count`` of 0), and 0.0 under ``published``, as the published output prints it.
Answers are read with the protocol's multiple-choice rules (:mod:`koala.scoring.choices`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from koala.constants import SEGMENT_BOUNDS, SEGMENTS
from koala.scoring._validate import check_probability, check_sequence
from koala.scoring.bootstrap import accuracy_interval, segment_intervals, subset_clusters
from koala.scoring.choices import score_choice_items, summarize_items
from koala.scoring.protocol import check_protocol

__all__ = ["SEGMENTS", "normalize_segment", "segment_accuracy", "segment_of"]

_ALIASES = {"middle-front": "front-middle"}


def segment_of(position: float) -> str:
    """The segment of a relative position in [0, 1] (0.25 is front-middle; 1.0 is late)."""
    p = check_probability(position, "position")
    return SEGMENTS[bisect.bisect_right(SEGMENT_BOUNDS, p)]


def normalize_segment(label: str) -> str:
    """Canonical segment name; raises ``ValueError`` for an unknown label."""
    if not isinstance(label, str):
        raise TypeError(f"segment label must be a string, got {type(label).__name__}")
    key = label.strip().lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key not in SEGMENTS:
        raise ValueError(
            f"unknown segment {label!r}; expected one of {[*SEGMENTS, 'middle-front']}"
        )
    return key


def _item_segments(
    i: int, positions: Sequence[Any] | None, segments: Sequence[Any] | None
) -> set[str]:
    if positions is not None:
        row = positions[i]
        if row is None or isinstance(row, str) or not isinstance(row, Sequence):
            raise TypeError(f"positions[{i}] must be a list of numbers in [0, 1], got {row!r}")
        try:
            return {segment_of(p) for p in row}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"positions[{i}]: {exc}") from None
    assert segments is not None
    row = segments[i]
    if isinstance(row, str):
        row = [row]
    if row is None or not isinstance(row, Sequence):
        raise TypeError(f"segments[{i}] must be a list of segment names, got {row!r}")
    try:
        return {normalize_segment(s) for s in row}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"segments[{i}]: {exc}") from None


def segment_accuracy(
    predictions: Sequence[Any],
    references: Sequence[str],
    positions: Sequence[Sequence[float]] | None = None,
    segments: Sequence[Sequence[str] | str] | None = None,
    choices: Sequence[Any] | None = None,
    labels: Any = None,
    fallback: str = "none",
    protocol: str = "koala",
    strict: bool = False,
    confidence: float | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Overall and per-segment accuracy of PA-QA answers.

    Give per item either ``positions`` (evidence positions in [0, 1]) or ``segments`` (labels).
    Returns the keys of :func:`koala.scoring.choices.choice_accuracy` (``accuracy``,
    ``correct``, ``total``, ``unparsed``, ``fallback_used``, ``invalid``, ``invalid_items``,
    ``invalid_gold``, ``protocol``), per segment ``segment_accuracy`` (an empty segment is NaN
    under ``koala``, 0.0 under ``published``), ``segment_count`` and ``segment_correct``,
    ``no_evidence`` (items in no segment, still in the overall figure) and ``spread`` = best
    minus worst accuracy over the non-empty segments. Items left out as invalid (``koala``)
    count in no segment.

    ``confidence`` (e.g. 0.95) adds seeded percentile bootstrap intervals (``n_resamples``,
    ``seed``): ``accuracy_ci`` (overall) and ``segment_accuracy_ci`` (per segment, each
    recomputed as correct / count of the segment's items in the resample; a resample in which a
    segment holds no item gives it no value and is counted as ``dropped``; an empty segment
    has a null interval). ``clusters``, one key per item (the passage: the questions of one
    passage share its audio), resamples passages instead of questions, once for the overall
    figure and all four segments; the intervals then name the unit ``"passage"``.
    """
    check_protocol(protocol)
    if (positions is None) == (segments is None):
        raise ValueError("pass exactly one of positions= or segments=")
    check_sequence(predictions, "predictions")
    given_name, given = (
        ("positions", positions) if positions is not None else ("segments", segments)
    )
    check_sequence(given, given_name)
    if len(given) != len(predictions):  # type: ignore[arg-type]
        raise ValueError(
            f"{given_name} has {len(given)} items but predictions has {len(predictions)}"  # type: ignore[arg-type]
        )
    items = score_choice_items(
        predictions, references, choices, labels, fallback, protocol=protocol, strict=strict
    )
    count = dict.fromkeys(SEGMENTS, 0)
    correct = dict.fromkeys(SEGMENTS, 0)
    no_evidence = 0
    counted: list[int] = []
    counted_segments: list[list[str]] = []
    for i, item in enumerate(items):
        segs = _item_segments(i, positions, segments)
        if not item.counted:
            continue
        counted.append(i)
        counted_segments.append(sorted(segs))
        if not segs:
            no_evidence += 1
        for s in segs:
            count[s] += 1
            correct[s] += item.correct
    empty = 0.0 if protocol == "published" else math.nan
    acc = {s: (correct[s] / count[s] if count[s] else empty) for s in SEGMENTS}
    filled = [acc[s] for s in SEGMENTS if count[s]]
    out = {
        **summarize_items(items, protocol),
        "segment_accuracy": acc,
        "segment_count": count,
        "segment_correct": correct,
        "no_evidence": no_evidence,
        "spread": (max(filled) - min(filled)) if filled else math.nan,
    }
    if confidence is not None:
        kept = subset_clusters(clusters, len(items), counted)
        name = None if clusters is None else "passage"
        is_correct = [items[k].correct for k in counted]
        opts = (kept, n_resamples, confidence, seed, name)
        out["accuracy_ci"] = accuracy_interval(is_correct, *opts).as_dict()
        per_segment = segment_intervals(is_correct, counted_segments, *opts, names=SEGMENTS)
        out["segment_accuracy_ci"] = {s: iv.as_dict() for s, iv in per_segment.items()}
    return out
