"""Paired tests for comparing two systems on the same items.

* :func:`mcnemar_exact`: the exact McNemar test of two accuracies, a two-sided binomial test
  on the discordant pairs (``b`` items right for A only, ``c`` right for B only; under the null
  each discordant pair falls either way with probability 1/2).
* :func:`paired_bootstrap`: the difference of any two metrics with a percentile interval and a
  two-sided bootstrap p-value, both systems recomputed on the *same* resampled items (or
  clusters) each time (:mod:`koala.scoring.bootstrap`).
* :func:`holm`: Holm's step-down adjustment of several p-values (family-wise error control).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from koala.scoring.bootstrap import (
    _check_options,
    _empty,
    _name,
    _percentile,
    _resampled_statistics,
)

__all__ = ["holm", "mcnemar_exact", "paired_bootstrap"]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the binomial test of ``min(b, c)`` successes in
    ``b + c`` trials at p = 0.5, ``min(1, 2 * P(X <= min(b, c)))``; 1.0 when ``b + c == 0``."""
    for name, v in (("b", b), ("c", c)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name} must be a count >= 0, got {v!r}")
    n, k = int(b) + int(c), min(int(b), int(c))
    if n == 0:
        return 1.0
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)
    return float(min(Fraction(1), 2 * tail))


def paired_bootstrap(
    statistic_a: Callable[[np.ndarray], float],
    statistic_b: Callable[[np.ndarray], float],
    n_items: int,
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
) -> dict[str, Any]:
    """Paired bootstrap of the difference ``a - b`` of two metrics on the same items.

    ``statistic_a`` / ``statistic_b`` recompute each system's metric on item indices (as in
    :func:`koala.scoring.bootstrap.bootstrap`); both get the same indices on every resample.
    Returns ``difference`` (a - b on all items), ``interval`` (an
    :class:`~koala.scoring.bootstrap.Interval` of the difference; NaN resamples dropped) and
    ``p_value``: two-sided, ``min(1, 2 * min(share of differences <= 0, share >= 0))`` over
    the resamples with a value (NaN when the interval is NaN).
    """
    _check_options(n_resamples, confidence)
    name = _name(clusters, cluster_name)
    if n_items == 0:
        return {
            "difference": math.nan,
            "interval": _empty(n_resamples, confidence, seed, name),
            "p_value": math.nan,
        }
    everything = np.arange(n_items)
    difference = float(statistic_a(everything)) - float(statistic_b(everything))

    def diff(idx: np.ndarray) -> float:
        return float(statistic_a(idx)) - float(statistic_b(idx))

    samples, n_clusters = _resampled_statistics(diff, n_items, clusters, n_resamples, seed)
    d = samples[:, 0]
    interval = _percentile(d, confidence, n_resamples, seed, name, n_clusters)
    finite = d[~np.isnan(d)]
    if math.isnan(interval.low):
        p = math.nan
    else:
        p = min(1.0, 2.0 * min(float(np.mean(finite <= 0)), float(np.mean(finite >= 0))))
    return {"difference": difference, "interval": interval, "p_value": p}


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values, in the input's order: sorted ascending, the i-th smallest
    (i = 0..m-1) becomes ``max over j <= i of min(1, (m - j) * p_(j))`` (monotone, capped at 1).
    NaN p-values stay NaN and do not count in ``m``."""
    keys = [k for k, p in p_values.items() if not math.isnan(float(p))]
    for k in keys:
        if not 0.0 <= float(p_values[k]) <= 1.0:
            raise ValueError(f"p-value of {k!r} is outside [0, 1]: {p_values[k]!r}")
    ordered = sorted(keys, key=lambda k: float(p_values[k]))
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for j, k in enumerate(ordered):
        running = max(running, min(1.0, (m - j) * float(p_values[k])))
        adjusted[k] = running
    return {k: adjusted.get(k, math.nan) for k in p_values}
