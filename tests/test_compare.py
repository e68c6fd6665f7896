"""``koala-bench compare``: paired differences, exact McNemar, Holm, and refusing runs that
were not made on the same items."""

from __future__ import annotations

import math

import pytest
from test_score_honest import make_run, record

from koala.compare import compare_runs
from koala.compare import main as compare_main

REF = {"choices": ["가", "나"], "choice_labels": ["A", "B"], "answer": "A"}


def mc_run(path, model, right: list[bool], config="sqa_click", data_sha=None):
    recs = []
    for k, ok in enumerate(right):
        r = record(config, f"q{k:02d}", "(A)" if ok else "(B)", task="sqa", ref=REF)
        r["model"] = model
        if data_sha is not None:
            r["data_sha"] = data_sha(k)
        recs.append(r)
    return recs


def write(path, recs):
    return make_run(path, recs)


def test_accuracy_difference_mcnemar_and_holm(tmp_path):
    a_right = [True] * 8 + [False] * 2
    b_right = [True, True, True, False, False, False, False, False, False, True]
    # discordant: A right, B wrong on q03-q07 (5); A wrong, B right on q09 (1)
    a = write(tmp_path / "a", mc_run(tmp_path, "ma", a_right))
    b = write(tmp_path / "b", mc_run(tmp_path, "mb", b_right))
    res = compare_runs(a, b, n_resamples=400)
    e = res["configs"]["sqa_click"]
    assert (e["a"], e["b"], e["difference"]) == pytest.approx((0.8, 0.4, 0.4))
    assert e["discordant"] == {"a_right_b_wrong": 5, "a_wrong_b_right": 1}
    # exact McNemar: 2 x P(X <= 1), X ~ Binomial(6, 1/2) = 2 x 7/64
    assert e["p_value"] == pytest.approx(14 / 64)
    assert e["test"] == "exact McNemar" and e["p_holm"] == pytest.approx(14 / 64)
    assert e["interval"]["low"] <= 0.4 <= e["interval"]["high"]
    assert res["a"]["model"] == "ma" and res["b"]["model"] == "mb"


def test_runs_on_other_items_or_other_data_are_refused(tmp_path, capsys):
    a = write(tmp_path / "a", mc_run(tmp_path, "ma", [True] * 4))
    fewer = write(tmp_path / "b", mc_run(tmp_path, "mb", [True] * 3))
    e = compare_runs(a, fewer, n_resamples=100)["configs"]["sqa_click"]
    assert "refused" in e and "q03" in e["refused"] and "difference" not in e
    a2 = write(tmp_path / "a2", mc_run(tmp_path, "ma", [True] * 4, data_sha=lambda k: f"d{k}"))
    other = write(
        tmp_path / "b2",
        mc_run(tmp_path, "mb", [True] * 4, data_sha=lambda k: "x" if k == 2 else f"d{k}"),
    )
    e = compare_runs(a2, other, n_resamples=100)["configs"]["sqa_click"]
    assert "refused" in e and "q02/speech" in e["refused"]
    assert compare_main([str(a2), str(other), "--n-resamples", "50"]) == 3
    assert "the data differ" in capsys.readouterr().out


def test_cer_is_compared_as_a_corpus_ratio(tmp_path):
    ref = {"text": "가나다라"}

    def asr(path, model, hyps):
        recs = []
        for k, h in enumerate(hyps):
            r = record("asr_zeroth", f"a{k}", h, task="asr", ref=ref)
            r["model"] = model
            recs.append(r)
        return write(path, recs)

    a = asr(tmp_path / "a", "ma", ["가나다라", "가나다", "가나다라"])  # 1 edit of 12
    b = asr(tmp_path / "b", "mb", ["가나", "가나", "가나다라"])  # 4 edits of 12
    e = compare_runs(a, b, n_resamples=200)["configs"]["asr_zeroth"]
    assert (e["a"], e["b"]) == pytest.approx((1 / 12, 4 / 12))
    assert e["difference"] == pytest.approx(-3 / 12) and e["test"] == "paired bootstrap"
    assert not math.isnan(e["p_value"])
