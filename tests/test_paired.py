"""Paired tests (koala.scoring.paired): exact McNemar, paired bootstrap, Holm."""

import math

import numpy as np
import pytest

from koala.scoring.paired import holm, mcnemar_exact, paired_bootstrap


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),  # no discordant pair
        (1, 0, 1.0),  # 2 x 1/2, capped
        (3, 0, 0.25),  # 2 x (1/2)**3
        (0, 3, 0.25),  # symmetric
        (5, 5, 1.0),
        (10, 2, 2 * (1 + 12 + 66) / 2**12),  # 2 x P(X <= 2), X ~ Bin(12, 1/2)
        (1, 7, 2 * (1 + 8) / 2**8),
    ],
)
def test_mcnemar_exact_hand_worked(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_exact_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(1, 4), (10, 2), (17, 30), (40, 25), (300, 260), (0, 9), (123, 123)]:
        expected = stats.binomtest(min(b, c), b + c, 0.5).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_rejects_bad_counts():
    with pytest.raises(ValueError, match="count"):
        mcnemar_exact(-1, 2)
    with pytest.raises(ValueError, match="count"):
        mcnemar_exact(1.5, 2)


def test_paired_bootstrap_uses_the_same_items_for_both():
    # B is A shifted down by 0.1 on every subset: paired, every resampled difference is 0.1
    # exactly (drawn separately, the two means would vary independently).
    x = np.random.default_rng(0).random(50)
    res = paired_bootstrap(lambda i: x[i].mean(), lambda i: x[i].mean() - 0.1, len(x), seed=1)
    assert res["difference"] == pytest.approx(0.1)
    iv = res["interval"]
    assert iv.low == pytest.approx(0.1) and iv.high == pytest.approx(0.1)
    assert res["p_value"] == 0.0  # no resampled difference <= 0


def test_paired_bootstrap_of_equal_systems():
    x = np.array([1, 0, 1, 1, 0], dtype=float)
    res = paired_bootstrap(lambda i: x[i].mean(), lambda i: x[i].mean(), len(x))
    assert res["difference"] == 0.0
    assert res["interval"].low == 0.0 and res["interval"].high == 0.0
    assert res["p_value"] == 1.0  # every difference is both <= 0 and >= 0: 2 x 1, capped


def test_paired_bootstrap_p_value_and_clusters():
    # A right on items 0-2, B wrong everywhere: a resample has difference <= 0 only when it
    # draws item 3 four times: (1/4)**4 = 0.4 % of them, so p is about 2 x 0.004
    xa, xb = np.array([1.0, 1, 1, 0]), np.zeros(4)
    res = paired_bootstrap(
        lambda i: xa[i].mean(), lambda i: xb[i].mean(), 4, n_resamples=4000, seed=2
    )
    assert res["difference"] == 0.75
    assert 0.0 < res["p_value"] < 0.03
    assert res["interval"].high == 1.0 and res["interval"].low <= 0.5
    # one cluster holding all items: every resample is the whole set
    whole = paired_bootstrap(
        lambda i: xa[i].mean(), lambda i: xb[i].mean(), 4, clusters=["p"] * 4, confidence=0.9
    )
    iv = whole["interval"]
    assert (iv.low, iv.high, iv.n_clusters, iv.cluster, iv.confidence) == (
        0.75,
        0.75,
        1,
        "cluster",
        0.9,
    )


def test_paired_bootstrap_undefined_difference():
    res = paired_bootstrap(lambda i: math.nan, lambda i: 0.0, 5)
    assert math.isnan(res["p_value"]) and res["interval"].as_dict()["low"] is None
    assert res["interval"].dropped == 1000


def test_holm_hand_worked():
    # sorted: a .01 (x4 = .04), c .03 (x3 = .09), b .04 (x2 = .08 -> .09, monotone), d .5 (x1)
    out = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert list(out) == ["a", "b", "c", "d"]
    assert out == pytest.approx({"a": 0.04, "b": 0.09, "c": 0.09, "d": 0.5})
    assert holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}  # 2 x .6 capped at 1
    assert holm({"only": 0.02}) == {"only": 0.02}
    assert holm({}) == {}


def test_holm_leaves_nan_out_of_the_family():
    out = holm({"a": 0.01, "b": math.nan, "c": 0.02})
    assert out["a"] == pytest.approx(0.02) and out["c"] == pytest.approx(0.02)
    assert math.isnan(out["b"])
    with pytest.raises(ValueError, match="outside"):
        holm({"a": 1.5})
