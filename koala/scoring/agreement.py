"""How well two raters agree on the same items: exact agreement, mean absolute difference,
Pearson and Spearman correlation, and Cohen's quadratic-weighted kappa (used by the SIF judge's
``--judge-agreement``; pure numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from koala.scoring._validate import check_same_length

__all__ = ["rating_agreement"]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return None if denom == 0 else float(dx @ dy) / denom


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given the mean of the ranks they span."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def rating_agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """How well two judges' ratings of the same items agree (``a[i]`` and ``b[i]`` rate item
    ``i``): ``n``, ``exact_agreement`` (share of items rated the same), ``mean_abs_diff``,
    ``pearson``, ``spearman`` (Pearson's r of the ranks, ties ranked by their mean rank) and
    ``kappa_quadratic``, Cohen's weighted kappa with quadratic weights (Cohen 1968):

        kappa_w = 1 - sum_ij w_ij o_ij / sum_ij w_ij e_ij,  w_ij = (x_i - x_j)^2

    with ``o`` the observed joint distribution of the two ratings and ``e`` the one expected
    if the judges rated independently with their own marginals. The weights are the squared
    difference of the rating values, so ``kappa_w = 1 - mean((a - b)^2) / E[(A - B)^2]`` with
    A, B drawn independently from the two marginals, which is ``var(a) + var(b) +
    (mean(a) - mean(b))^2``. (scikit-learn's ``cohen_kappa_score(weights="quadratic")``
    weights by the rank among the labels that occur: the same for consecutive integer
    ratings.) A figure that is undefined (no items; a judge that gives one rating only, for
    the correlations; both judges giving the same one rating, for kappa) is ``None``."""
    check_same_length(("a", a), ("b", b))
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(x)
    if n == 0:
        keys = ("exact_agreement", "mean_abs_diff", "pearson", "spearman", "kappa_quadratic")
        return {"n": 0, **dict.fromkeys(keys)}
    observed = float(np.mean((x - y) ** 2))
    expected = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return {
        "n": n,
        "exact_agreement": float(np.mean(x == y)),
        "mean_abs_diff": float(np.mean(np.abs(x - y))),
        "pearson": _pearson(x, y),
        "spearman": _pearson(_ranks(x), _ranks(y)),
        "kappa_quadratic": None if expected == 0 else 1.0 - observed / expected,
    }
