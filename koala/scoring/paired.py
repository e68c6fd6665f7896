"""Paired tests for comparing two systems on the same items.

* :func:`paired_comparison`: what ``koala-bench compare`` reports for one config. Each system's
  metric is a function of additive per-item columns (correct and 1 for accuracy; edits and
  reference length for CER; the sacreBLEU statistics for BLEU; ...), so every resample and
  every permutation recomputes the metric as it is defined from summed columns. It gives the
  difference A - B, a paired percentile bootstrap interval of it (both systems on the *same*
  resampled units) and the p-value of the task's paired test:

  - ``"mcnemar"``: the exact McNemar test (:func:`mcnemar_exact`), for a right/wrong outcome
    where the unit is the item;
  - ``"permutation"``: a paired permutation (approximate randomisation) test over the units:
    under the null hypothesis that A and B are exchangeable within each unit, A's and B's
    columns are swapped within a random subset of the units and the difference recomputed.
    Two-sided p = share of swaps whose |difference| is at least the observed one. With K units
    and 2^K <= ``n_resamples`` every one of the 2^K swaps is enumerated (exact p, at least
    2/2^K); otherwise ``n_resamples`` random swaps give p = (k + 1) / (R + 1), never 0 (Phipson
    and Smyth 2010). Where the units are items with right/wrong outcomes the exact test is
    McNemar's; where they are clusters (PA-QA passages, ST talks) it is its clustered form,
    which keeps its level when the items of a unit are correlated.

* :func:`mcnemar_exact`: the exact McNemar test of two accuracies, a two-sided binomial test
  on the discordant pairs (``b`` items right for A only, ``c`` right for B only; under the null
  each discordant pair falls either way with probability 1/2).
* :func:`paired_bootstrap`: the difference of any two metrics given as functions of item
  indices, with a percentile interval and a two-sided bootstrap p-value.
* :func:`holm`: Holm's step-down adjustment of several p-values (family-wise error control).

No p-value here is ever 0: a bootstrap or permutation p-value counts the observed data among
the resamples ((k + 1) / (R + 1)), so with R = 1000 the smallest is 1/1001 (shown as such, not
as 0, which no finite resampling can show).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from koala.scoring.bootstrap import (
    _check_options,
    _cluster_index,
    _draw_counts,
    _empty,
    _name,
    _percentile,
    _resampled_statistics,
)

__all__ = ["TESTS", "holm", "mcnemar_exact", "paired_bootstrap", "paired_comparison"]

TESTS = ("mcnemar", "permutation")
_CHUNK = 256


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


def _bootstrap_p(d: np.ndarray) -> float:
    """Two-sided bootstrap p-value of resampled differences ``d`` (NaN dropped):
    ``min(1, 2 (min(#<=0, #>=0) + 1) / (R + 1))``; NaN when no resample has a value."""
    finite = d[~np.isnan(d)]
    if len(finite) == 0:
        return math.nan
    k = min(int((finite <= 0).sum()), int((finite >= 0).sum()))
    return min(1.0, 2.0 * (k + 1) / (len(finite) + 1))


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
    :class:`~koala.scoring.bootstrap.Interval` of the difference; NaN resamples dropped; no
    bounds, with a note, for fewer than 5 units or no variation) and ``p_value``: two-sided,
    ``min(1, 2 (min(#differences <= 0, # >= 0) + 1) / (R + 1))`` over the R resamples with a
    value (never 0; NaN when no resample has one).
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
    return {"difference": difference, "interval": interval, "p_value": _bootstrap_p(d)}


def _scores(score: Callable[[np.ndarray], np.ndarray], sums: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(score(sums), dtype=float).reshape(len(sums))


def _permutation_p(
    per_a: np.ndarray,
    per_b: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    observed: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, str, int]:
    """Two-sided paired permutation p-value over units (rows of the per-unit column sums
    ``per_a``, ``per_b``): exact over all 2^K swaps when 2^K <= ``n_resamples``, else
    ``n_resamples`` random swaps with (k + 1) / (R + 1). Returns p, how it was drawn, and
    the swaps whose difference was undefined (left out)."""
    k_units = len(per_a)
    total = per_a.sum(axis=0) + per_b.sum(axis=0)
    tol = 1e-9 * max(1.0, abs(observed))
    exact = k_units < 63 and 2**k_units <= n_resamples
    hits = valid = 0

    def count(swap: np.ndarray) -> None:
        nonlocal hits, valid
        sums_a = swap @ per_b + (1.0 - swap) @ per_a
        d = _scores(score, sums_a) - _scores(score, total - sums_a)
        ok = ~np.isnan(d)
        valid += int(ok.sum())
        hits += int((np.abs(d[ok]) >= abs(observed) - tol).sum())

    if exact:
        patterns = np.arange(2**k_units)
        for start in range(0, len(patterns), _CHUNK):
            chunk = patterns[start : start + _CHUNK]
            count(((chunk[:, None] >> np.arange(k_units)) & 1).astype(float))
        undefined = 2**k_units - valid
        p = hits / valid if valid else math.nan
        return p, f"exact: all {2**k_units} swaps", undefined
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        b = min(_CHUNK, n_resamples - done)
        count(rng.integers(0, 2, size=(b, k_units)).astype(float))
        done += b
    p = (hits + 1) / (valid + 1) if valid else math.nan
    return p, f"{n_resamples} random swaps, p = (k + 1) / (R + 1)", n_resamples - valid


def paired_comparison(
    columns_a: np.ndarray,
    columns_b: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    clusters: Sequence[Hashable] | None = None,
    *,
    test: str = "permutation",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
) -> dict[str, Any]:
    """Compare two systems measured on the same items (see the module docstring).

    ``columns_a``, ``columns_b``: one row per item of additive columns whose sums give the
    metric through ``score`` (``(m, k)`` sums -> ``m`` values; NaN where undefined).
    ``clusters``: one key per item, the unit resampled and swapped (default: the item).
    ``test``: ``"permutation"`` or ``"mcnemar"`` (column 0 is the 0/1 outcome and each unit
    is one item).

    Returns ``a``, ``b`` (the metric of each over all items), ``difference`` (a - b),
    ``interval`` (paired percentile bootstrap of the difference, an
    :class:`~koala.scoring.bootstrap.Interval`), ``p_value`` (the test's), ``p_bootstrap``
    (two-sided bootstrap p, for reference), ``test`` (how the p-value was obtained, in words),
    ``units`` (how many), ``undefined_swaps`` (permutation only) and, for ``mcnemar``,
    ``discordant`` (``a_right_b_wrong``, ``a_wrong_b_right``).
    """
    _check_options(n_resamples, confidence)
    if test not in TESTS:
        raise ValueError(f"test={test!r}: use one of {TESTS}")
    a = np.asarray(columns_a, dtype=float)
    b = np.asarray(columns_b, dtype=float)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"columns_a {a.shape} and columns_b {b.shape} must be (items, k) alike")
    name = _name(clusters, cluster_name)
    unit = name
    n_items = len(a)
    if n_items == 0:
        return {
            "a": math.nan,
            "b": math.nan,
            "difference": math.nan,
            "interval": _empty(n_resamples, confidence, seed, name),
            "p_value": math.nan,
            "p_bootstrap": math.nan,
            "test": "no item",
            "units": 0,
        }
    index, n_units = _cluster_index(clusters, n_items)
    per_a = np.zeros((n_units, a.shape[1]))
    per_b = np.zeros((n_units, b.shape[1]))
    np.add.at(per_a, index, a)
    np.add.at(per_b, index, b)
    va = float(_scores(score, a.sum(axis=0)[None, :])[0])
    vb = float(_scores(score, b.sum(axis=0)[None, :])[0])
    difference = va - vb
    # the paired bootstrap: the same draws of units for both systems
    diffs = []
    for counts in _draw_counts(n_units, n_resamples, seed):
        diffs.append(_scores(score, counts @ per_a) - _scores(score, counts @ per_b))
    d = np.concatenate(diffs)
    out: dict[str, Any] = {
        "a": va,
        "b": vb,
        "difference": difference,
        "interval": _percentile(d, confidence, n_resamples, seed, name, n_units),
        "p_bootstrap": _bootstrap_p(d),
        "units": n_units,
    }
    if test == "mcnemar":
        if n_units != n_items:
            raise ValueError("the exact McNemar test needs the item as its unit (no clusters)")
        right_a, right_b = a[:, 0] > 0, b[:, 0] > 0
        n10, n01 = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
        out["p_value"] = mcnemar_exact(n10, n01)
        out["discordant"] = {"a_right_b_wrong": n10, "a_wrong_b_right": n01}
        out["test"] = (
            "exact McNemar over items: two-sided binomial test of the discordant items "
            f"({n10} right for A only, {n01} for B only)"
        )
        return out
    if math.isnan(difference):
        out |= {"p_value": math.nan, "test": "paired permutation: the difference is undefined"}
        return out
    p, how, undefined = _permutation_p(per_a, per_b, score, difference, n_resamples, seed)
    out["p_value"] = p
    out["undefined_swaps"] = undefined
    out["test"] = (
        f"paired permutation over {n_units} {unit}s: A and B swapped within each {unit} "
        f"({how}); two-sided"
    )
    return out


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
