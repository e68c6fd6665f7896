"""Paired tests (koala.scoring.paired): exact McNemar, the paired permutation test over the
task's unit, paired bootstrap, Holm."""

import math

import numpy as np
import pytest

from koala.scoring.paired import holm, mcnemar_exact, paired_bootstrap, paired_comparison


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
    assert math.isnan(iv.low) and "every resample gives 0.1," in iv.note  # never [0.1, 0.1]
    # no resampled difference <= 0: p = 2 (0 + 1) / (1000 + 1), never 0
    assert res["p_value"] == pytest.approx(2 / 1001)


def test_paired_bootstrap_of_equal_systems():
    x = np.array([1, 0, 1, 1, 0], dtype=float)
    res = paired_bootstrap(lambda i: x[i].mean(), lambda i: x[i].mean(), len(x))
    assert res["difference"] == 0.0
    assert "no variation: every resample gives 0," in res["interval"].note
    assert res["p_value"] == 1.0  # every difference is both <= 0 and >= 0: capped at 1


def test_paired_bootstrap_p_value_and_clusters(monkeypatch):
    monkeypatch.setattr("koala.scoring.bootstrap.MIN_UNITS", 1)  # 4 items, worked by hand
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
    assert (iv.n_clusters, iv.cluster, iv.confidence) == (1, "cluster", 0.9)
    assert "every resample gives 0.75," in iv.note


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


# ------------------------------------------------------------------------ paired_comparison


def ratio(sums):
    return np.where(sums[:, 1] > 0, sums[:, 0] / np.where(sums[:, 1] > 0, sums[:, 1], 1), np.nan)


def acc_columns(right):
    r = np.asarray(right, dtype=float)
    return np.column_stack([r, np.ones(len(r))])


def test_the_permutation_test_over_items_is_the_exact_mcnemar_test():
    """With right/wrong outcomes and the item as unit, swapping A and B within items moves
    only the discordant items, each either way with probability 1/2: the exact two-sided
    permutation p (all 2^8 swaps) is McNemar's exact p, 2 x P(X <= 1), X ~ Bin(6, 1/2)."""
    a = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    b = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    for n in (8, 10):  # 2^8 = 256 <= 1000: enumerated; 2^10 = 1024 > 1000: drawn
        res = paired_comparison(acc_columns(a[:n]), acc_columns(b[:n]), ratio)
        m = paired_comparison(acc_columns(a[:n]), acc_columns(b[:n]), ratio, test="mcnemar")
        discordant = (5, 0) if n == 8 else (5, 1)
        keys = ("a_right_b_wrong", "a_wrong_b_right")
        assert m["discordant"] == dict(zip(keys, discordant, strict=True))
        assert m["p_value"] == pytest.approx(mcnemar_exact(*discordant))
        if n == 8:
            assert "exact: all 256 swaps" in res["test"]
            assert res["p_value"] == pytest.approx(mcnemar_exact(5, 0))  # 2/32
        else:
            assert "1000 random swaps" in res["test"]
            assert res["p_value"] == pytest.approx(14 / 64, abs=0.04)
    assert (res["a"], res["b"], res["difference"]) == pytest.approx((0.8, 0.4, 0.4))


@pytest.mark.parametrize(("n", "p"), [(1, 1.0), (2, 0.5), (3, 0.25)])
def test_one_to_three_items_give_no_zero_p_and_no_interval(n, p):
    """A right and B wrong on every one of n items. Before: bootstrap p = 0.0 and the
    interval [1.0, 1.0]. Now: the exact permutation p over the 2^n swaps (2 of them reach
    |difference| 1: none and all) and no interval, with the reason."""
    res = paired_comparison(acc_columns([1] * n), acc_columns([0] * n), ratio)
    assert res["p_value"] == pytest.approx(p) and res["p_value"] > 0
    assert res["p_bootstrap"] > 0
    iv = res["interval"]
    assert math.isnan(iv.low) and math.isnan(iv.high) and "too few" in iv.note
    # many items: the smallest p a drawn permutation test can give is 1/(R + 1), not 0
    many = paired_comparison(acc_columns([1] * 30), acc_columns([0] * 30), ratio)
    assert many["p_value"] == pytest.approx(1 / 1001)
    assert "no variation" in many["interval"].note  # every resample: A - B = 1


def test_every_item_right_in_both_is_no_certain_interval():
    res = paired_comparison(acc_columns([1] * 20), acc_columns([1] * 20), ratio)
    assert res["difference"] == 0.0 and res["p_value"] == 1.0
    assert math.isnan(res["interval"].low) and "no variation" in res["interval"].note


def test_passage_clusters_keep_the_level_where_mcnemar_over_questions_does_not():
    """A true null with correlated passages: per passage, A and B each get their own rate
    drawn from Beta(1, 1), and its 8 questions are right with that rate. A and B are
    exchangeable, so a test at 0.05 should reject about 5 % of 200 such data sets. McNemar over
    the questions treats the 320 questions as independent and rejects about a quarter of them;
    the permutation test over passages holds the level (measured: 0.25 vs 0.04 over 300)."""
    n_passages, size, reps = 40, 8, 200
    passages = np.repeat(np.arange(n_passages), size).tolist()
    mcnemar = clustered = 0
    for r in range(reps):
        rng = np.random.default_rng(r)
        rate_a = np.repeat(rng.beta(1.0, 1.0, n_passages), size)
        rate_b = np.repeat(rng.beta(1.0, 1.0, n_passages), size)
        a = acc_columns(rng.random(n_passages * size) < rate_a)
        b = acc_columns(rng.random(n_passages * size) < rate_b)
        m = paired_comparison(a, b, ratio, test="mcnemar", n_resamples=50, seed=r)
        c = paired_comparison(a, b, ratio, passages, cluster_name="passage", seed=r)
        mcnemar += m["p_value"] < 0.05
        clustered += c["p_value"] < 0.05
    assert mcnemar > 0.15 * reps, mcnemar
    assert clustered <= 0.08 * reps, clustered
    assert "over 40 passages" in c["test"]


def test_paired_comparison_recomputes_ratio_metrics_and_checks_its_input():
    # CER-like: edits / reference length of the drawn units, never a mean of ratios
    a = np.array([[1, 1], [0, 9]] * 3, dtype=float)
    b = np.array([[2, 1], [0, 9]] * 3, dtype=float)
    res = paired_comparison(a, b, ratio)
    assert (res["a"], res["b"]) == pytest.approx((3 / 30, 6 / 30))
    with pytest.raises(ValueError, match="test="):
        paired_comparison(a, b, ratio, test="t")
    with pytest.raises(ValueError, match="McNemar test needs the item"):
        paired_comparison(a, b, ratio, [0, 0, 1, 1, 2, 2], test="mcnemar")
    with pytest.raises(ValueError, match="n_resamples"):
        paired_comparison(a, b, ratio, n_resamples=0)
