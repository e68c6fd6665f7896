"""Bootstrap intervals (koala.scoring.bootstrap): coverage by simulation, hand-worked cases,
and the ``confidence`` option of every scorer and evaluate module."""

import json
import math
import re
import time

import evaluate
import numpy as np
import pytest
from conftest import ROOT
from openai_server import Reply, ScriptedServer, completion

from koala.scoring import bootstrap as bootstrap_module
from koala.scoring.bootstrap import (
    MIN_UNITS,
    Interval,
    accuracy_interval,
    bleu_interval,
    bootstrap,
    cer_interval,
    mean_interval,
    ratio_interval,
    segment_intervals,
)
from koala.scoring.cer import corpus_cer
from koala.scoring.choices import choice_accuracy
from koala.scoring.judge import judge_scores
from koala.scoring.scf import speech_context_faithfulness
from koala.scoring.segments import SEGMENTS, segment_accuracy
from koala.scoring.translation import corpus_bleu, translation_scores

METRICS = ROOT / "metrics"
KEYS = {"low", "high", "confidence", "method", "n_resamples", "seed", "cluster", "n_clusters"}


def contains(ci, value, no_variation=False):
    """``value`` lies in the interval; with ``no_variation`` an interval the bootstrap could not
    give because every resample is ``value`` counts too."""
    if ci["low"] is None and no_variation:
        return ci.get("note", "").startswith(f"no variation: every resample gives {value:g},")
    return ci["low"] - 1e-12 <= value <= ci["high"] + 1e-12


@pytest.fixture
def few_units(monkeypatch):
    """Hand-worked cases with 1-4 resampling units, few enough to work out the resamples by
    hand. A report gives no interval for so few units (``MIN_UNITS``; tested on its own in
    ``test_too_few_units_give_no_interval``): here the rule is lifted to see the arithmetic."""
    monkeypatch.setattr(bootstrap_module, "MIN_UNITS", 1)


# ----------------------------------------------------------------------------------------------
# coverage by simulation


def test_accuracy_interval_covers_the_true_rate_95_percent_of_the_time():
    true_rate, n, reps = 0.3, 200, 400
    covered = 0
    for rep in range(reps):
        correct = np.random.default_rng(1000 + rep).random(n) < true_rate
        iv = accuracy_interval(correct, n_resamples=500, seed=rep)
        covered += iv.low <= true_rate <= iv.high
    assert 372 <= covered <= 388, covered


def test_cluster_bootstrap_covers_where_the_row_bootstrap_under_covers():
    # 30 passages of 10 questions; each passage has its own rate drawn from Beta(2, 2) (mean
    # 0.5, intra-cluster correlation 1/5): the rows are not independent.
    n_clusters, size, reps, true_rate = 30, 10, 400, 0.5
    clusters = np.repeat(np.arange(n_clusters), size).tolist()
    rows = by_cluster = 0
    for rep in range(reps):
        rng = np.random.default_rng(5000 + rep)
        rate = np.repeat(rng.beta(2.0, 2.0, n_clusters), size)
        correct = rng.random(n_clusters * size) < rate
        row = accuracy_interval(correct, n_resamples=500, seed=rep)
        clu = accuracy_interval(correct, clusters, n_resamples=500, seed=rep)
        rows += row.low <= true_rate <= row.high
        by_cluster += clu.low <= true_rate <= clu.high
    assert rows < 0.85 * reps, rows  # too narrow: about 3/4 coverage
    assert by_cluster >= 0.9 * reps, by_cluster


# ----------------------------------------------------------------------------------------------
# hand-worked cases


def test_an_interval_without_variation_is_not_presented_as_certain():
    """Every item right used to give [1.0, 1.0]: a zero-width interval although the sample only
    shows no variation. Now the bounds are NaN (None in JSON) and the note says why."""
    for iv, value in [
        (accuracy_interval([True] * 12), "1"),
        (accuracy_interval([False] * 7), "0"),
        (mean_interval([3.5] * 9), "3.5"),
        # every utterance has 1 edit per 2 reference characters: every resample is 0.5
        (cer_interval([1, 2, 3, 1, 2, 3], [2, 4, 6, 2, 4, 6]), "0.5"),
        (bootstrap(lambda idx: 7.0, 5), "7"),
    ]:
        assert math.isnan(iv.low) and math.isnan(iv.high) and iv.dropped == 0
        assert (
            iv.note
            == f"no variation: every resample gives {value}, so the bootstrap cannot bound it"
        )
        d = iv.as_dict()
        assert d["low"] is None and d["high"] is None and d["note"] == iv.note


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_too_few_units_give_no_interval(n):
    """With n <= 4 units the resamples take at most C(2n - 1, n) <= 35 values and the 95 %
    percentile interval is about the range of the sample; n = 1 always gave a point."""
    right = [True, False] * 3
    iv = accuracy_interval(right[:n])
    assert math.isnan(iv.low) and math.isnan(iv.high)
    assert iv.note == (
        f"{n} item{'' if n == 1 else 's'}: too few for a bootstrap interval "
        f"(at least {MIN_UNITS} needed)"
    )
    # the unit named is the one resampled
    by_passage = accuracy_interval(
        right, clusters=[k % n for k in range(6)], cluster_name="passage"
    )
    assert by_passage.n_clusters == n and by_passage.note.startswith(f"{n} passage")
    assert MIN_UNITS == 5 and not math.isnan(accuracy_interval([*right[:5], True]).low)


def test_cer_interval_is_recomputed_from_sums_not_averaged(few_units):
    # A: 1 edit over 1 character (CER 1.0); B: 0 edits over 9 (CER 0). The resamples are
    # AA (1/4 of them) -> 2/2 = 1.0, BB (1/4) -> 0/18 = 0.0 and AB (1/2) -> 1/10 = 0.1.
    # The middle 20 % of the resamples (40th-60th percentile) all are AB: 0.1. A mean of
    # per-utterance CERs would give 0.5 there.
    iv = cer_interval([1, 0], [1, 9], confidence=0.2, n_resamples=2000)
    assert iv.low == pytest.approx(0.1) and iv.high == pytest.approx(0.1)
    wide = cer_interval([1, 0], [1, 9], confidence=0.99, n_resamples=2000)
    assert wide.low == 0.0 and wide.high == 1.0


def test_cer_interval_empty_references_follow_the_cer_rule(few_units):
    # an empty reference adds the hypothesis length to the edits and nothing to the length;
    # a resample with no reference character is 1 with edits, 0 without (koala)
    assert "every resample gives 1," in cer_interval([3], [0]).note
    assert "every resample gives 0," in cer_interval([0], [0]).note
    # (2 insertions, empty ref) + (1 edit over 4): resamples 1.0 (both empty), 3/4, 2/8
    iv = cer_interval([2, 1], [0, 4], confidence=0.2, n_resamples=2000)
    assert iv.low == pytest.approx(0.75) and iv.high == pytest.approx(0.75)


def test_bleu_interval_from_summed_statistics(few_units):
    perfect = [4, 3, 2, 1, 4, 3, 2, 1, 4, 4]  # counts, totals, sys_len, ref_len
    iv = bleu_interval(np.array([perfect] * 5))
    assert "every resample gives 100," in iv.note
    # B matches 2 unigrams of 4 and nothing longer. Corpus A+B: precisions 6/8, 3/6, 2/4,
    # 1/2, no brevity penalty -> 100 * (0.75 * 0.5**3) ** (1/4); the middle resamples are AB
    poor = [2, 0, 0, 0, 4, 3, 2, 1, 4, 4]
    mid = bleu_interval(np.array([perfect, poor]), confidence=0.2, n_resamples=2000)
    assert mid.low == pytest.approx(100 * (0.75 * 0.5**3) ** 0.25)
    assert mid.high == pytest.approx(mid.low)


def test_ratio_interval_recounts_the_denominator_and_drops_nan_resamples():
    # one text-correct item of 10, which follows the speech: every resample that draws it
    # gives 1/1 (or k/k); the others have no denominator (NaN): (9/10)**10 = 35 % of them.
    num = [True] + [True] * 9  # the numerator counts only with the denominator
    den = [True] + [False] * 9
    iv = ratio_interval(num, den, n_resamples=2000)
    assert "every resample gives 1," in iv.note  # every resample with a value: 1/1, k/k
    assert 0.30 * 2000 < iv.dropped < 0.40 * 2000
    assert iv.as_dict()["dropped"] == iv.dropped
    # no denominator at all: undefined
    none = ratio_interval([True, False], [False, False])
    assert math.isnan(none.low) and math.isnan(none.high) and none.dropped == 1000
    assert none.as_dict()["low"] is None and none.as_dict()["high"] is None


def test_more_than_half_nan_resamples_give_a_nan_interval():
    # NaN unless item 0 is drawn at least twice: P(0 or 1 draws of 10) = 0.349 + 0.387 > 1/2
    iv = bootstrap(lambda idx: 1.0 if (idx == 0).sum() >= 2 else math.nan, 10)
    assert math.isnan(iv.low) and math.isnan(iv.high)
    assert iv.dropped > 500


def test_mean_interval_leaves_unrated_items_out(few_units):
    iv = mean_interval([8.0, None, math.nan, 8.0])
    # every resample with a rated item has the mean 8 (an unrated item counted as 0 would vary)
    assert "every resample gives 8," in iv.note
    # both rated items missing from a resample: (1/2)**4 of the draws
    assert 0 < iv.dropped < 150
    iv = mean_interval([8.0, None, 6.0, math.nan], confidence=0.2, n_resamples=2000)
    # the middle of the resamples: one 8 and one 6 drawn as often -> 7
    assert iv.low == pytest.approx(7.0) and iv.high == pytest.approx(7.0)


def test_seeded_and_deterministic():
    correct = [True, False, True, True, False, True, False, True, True, True]
    a = accuracy_interval(correct, seed=3)
    assert a == accuracy_interval(correct, seed=3)
    assert a != accuracy_interval(correct, seed=4)
    assert (a.seed, a.n_resamples, a.confidence, a.method) == (
        3,
        1000,
        0.95,
        "percentile bootstrap",
    )
    # the generic bootstrap draws the same resamples as the ready-made interval
    x = np.array(correct, dtype=float)
    assert bootstrap(lambda idx: x[idx].mean(), len(x), seed=3) == a


def test_clusters_are_drawn_whole():
    seen = []

    def stat(idx):
        seen.append(idx.copy())
        return float(len(idx))

    iv = bootstrap(stat, 5, clusters=["a", "a", "b", "c", "c"], n_resamples=200, cluster_name="p")
    assert (iv.cluster, iv.n_clusters) == ("p", 3)
    for idx in seen:
        counts = np.bincount(idx, minlength=5)
        assert counts[0] == counts[1] and counts[3] == counts[4]
        assert counts[0] + counts[2] + counts[3] == 3  # three cluster draws: a, b or c
    assert accuracy_interval([True, False]).cluster == "item"
    assert accuracy_interval([True, False], clusters=[1, 2]).cluster == "cluster"
    with pytest.raises(ValueError, match="clusters has 2 keys for 3 items"):
        accuracy_interval([True, False, True], clusters=[1, 2])


def test_segment_intervals_count_an_item_in_each_of_its_segments(few_units):
    # item 0 (right) has evidence in front and late, item 1 (wrong) in front only
    out = segment_intervals([True, False], [["front", "late"], ["front"]], n_resamples=2000)
    assert list(out) == ["front", "late"]
    assert "every resample gives 1," in out["late"].note  # only item 0 is late
    assert 0.2 * 2000 < out["late"].dropped < 0.3 * 2000  # item 0 not drawn: 1/4
    assert out["front"].low == 0.0 and out["front"].high == 1.0
    # one passage: every resample is the whole passage, for all segments at once
    same = segment_intervals([True, False], [["front", "late"], ["front"]], clusters=["p", "p"])
    assert "every resample gives 0.5," in same["front"].note
    assert same["front"].n_clusters == 1 and same["late"].dropped == 0
    named = segment_intervals([True], [["late"]], names=SEGMENTS)
    assert list(named) == list(SEGMENTS) and math.isnan(named["front"].low)


def test_as_dict_is_json_ready():
    d = accuracy_interval([True, False, True] * 2, seed=1).as_dict()
    assert set(d) == KEYS | {"dropped"}
    assert json.loads(json.dumps(d)) == d
    few = accuracy_interval([True, False, True], seed=1).as_dict()
    assert set(few) == KEYS | {"dropped", "note"} and json.loads(json.dumps(few)) == few
    assert isinstance(Interval(1.0, 2.0, 0.9, "percentile bootstrap", 10, 0, None, 2), Interval)


def test_bad_options():
    with pytest.raises(ValueError, match="confidence"):
        accuracy_interval([True], confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        accuracy_interval([True], n_resamples=0)


def test_fast_enough_for_thousands_of_items():
    rng = np.random.default_rng(0)
    correct = rng.random(3000) < 0.6
    edits, lengths = rng.integers(0, 4, 3000), rng.integers(1, 30, 3000)
    accuracy_interval(correct[:10])  # warm up
    start = time.perf_counter()
    accuracy_interval(correct)
    cer_interval(edits, lengths)
    assert time.perf_counter() - start < 1.0


# ----------------------------------------------------------------------------------------------
# the scorers' confidence option

PREDS = ["(A)", "B", "(C)", "A", "D", "(B)", "C", "A"]
GOLDS = ["A", "B", "D", "A", "D", "C", "C", "B"]  # 5 of 8 right


def test_choice_accuracy_interval():
    plain = choice_accuracy(PREDS, GOLDS)
    assert "accuracy_ci" not in plain
    out = choice_accuracy(PREDS, GOLDS, confidence=0.9, n_resamples=500, seed=2)
    ci = out["accuracy_ci"]
    assert out["accuracy"] == 5 / 8 and contains(ci, 5 / 8) and ci["low"] < ci["high"]
    assert (ci["confidence"], ci["n_resamples"], ci["seed"], ci["n_clusters"]) == (0.9, 500, 2, 8)
    assert {k: v for k, v in out.items() if k != "accuracy_ci"} == plain


def test_choice_accuracy_interval_leaves_invalid_items_out():
    # the last reference names no choice: left out of the score and of the resampling
    out = choice_accuracy(["A", "A", "B"], ["A", "B", "Z"], confidence=0.95, clusters=[1, 1, 2])
    assert out["total"] == 2 and out["accuracy_ci"]["n_clusters"] == 1
    assert out["accuracy_ci"]["low"] is None and "1 cluster: too few" in out["accuracy_ci"]["note"]
    with pytest.raises(ValueError, match="clusters has 2 keys for 3 items"):
        choice_accuracy(["A", "A", "B"], ["A", "B", "Z"], confidence=0.95, clusters=[1, 1])


def test_corpus_cer_interval():
    preds, refs = ["오늘 날씨 좋네", "가나다", "안녕"], ["오늘 날씨가 좋다", "가나다", "안녕하세요"]
    preds, refs = preds * 2, refs * 2
    plain = corpus_cer(preds, refs)
    assert "cer_ci" not in plain.as_dict() and plain.interval is None
    res = corpus_cer(preds, refs, confidence=0.95, n_resamples=300, seed=1)
    d = res.as_dict()
    assert contains(d["cer_ci"], d["cer"]) and d["cer_ci"]["n_resamples"] == 300
    assert {k: v for k, v in d.items() if k != "cer_ci"} == plain.as_dict()


def test_scf_intervals():
    # the six items of test_scf_segments: SCF 2/4, parametric 1/4
    text_gold, cf_gold = ["1", "2", "1", "3", "4", "2"], ["3", "4", "2", "1", "1", "3"]
    text_pred, cf_pred = ["1", "2", "1", "3", "1", "4"], ["3", "2", "4", "1", "1", "3"]
    args = (cf_pred, cf_gold, text_pred, text_gold)
    assert "scf_ci" not in speech_context_faithfulness(*args, labels="numbers")
    out = speech_context_faithfulness(*args, labels="numbers", confidence=0.95, seed=5)
    assert contains(out["scf_ci"], 0.5) and contains(out["parametric_proportion_ci"], 0.25)
    assert out["scf_ci"]["n_clusters"] == 6 and out["scf_ci"]["cluster"] == "item"
    # resamples holding none of the 4 text-correct items have no SCF: (2/6)**6 of them
    assert out["scf_ci"]["dropped"] < 20
    none = speech_context_faithfulness(["1"], ["2"], ["2"], ["1"], labels="numbers", confidence=0.9)
    assert none["scf_ci"]["low"] is None and none["scf_ci"]["dropped"] == 1000


def test_segment_accuracy_intervals(few_units):
    preds, golds = ["A", "B", "C", "D"], ["A", "B", "A", "D"]
    positions = [[0.1, 0.9], [0.3], [0.6], [0.95]]
    assert "segment_accuracy_ci" not in segment_accuracy(preds, golds, positions)
    out = segment_accuracy(
        preds, golds, positions, confidence=0.95, clusters=["p1", "p1", "p2", "p2"]
    )
    assert contains(out["accuracy_ci"], 0.75)
    cis = out["segment_accuracy_ci"]
    assert list(cis) == list(SEGMENTS)
    for s in SEGMENTS:
        assert contains(cis[s], out["segment_accuracy"][s], no_variation=True)
        assert (cis[s]["cluster"], cis[s]["n_clusters"]) == ("passage", 2)
    # front-middle holds only item 1 (right): 1.0 whenever passage p1 is drawn
    assert "every resample gives 1," in cis["front-middle"]["note"]


def test_bleu_interval_option(few_units):
    preds = ["고양이 잔다", "오늘 날씨가 좋네요", "감사합니다", "커피 한 잔 주세요"]
    refs = ["고양이가 잔다", "오늘은 날씨가 아주 좋습니다", "정말 감사합니다", "커피 한 잔 부탁"]
    plain = corpus_bleu(preds, refs)
    assert plain.interval is None and "bleu_ci" not in plain.as_dict()
    res = corpus_bleu(preds, refs, confidence=0.95, seed=0, clusters=["t1", "t1", "t2", "t2"])
    ci = res.as_dict()["bleu_ci"]
    assert contains(ci, res.score) and (ci["cluster"], ci["n_clusters"]) == ("talk", 2)
    assert res.score == plain.score and res.n_bootstrap == 0
    # the older sacreBLEU-style interval is unchanged (0.95 when confidence is not given)
    old = corpus_bleu(preds, refs, n_bootstrap=50, seed=3)
    both = corpus_bleu(preds, refs, n_bootstrap=50, seed=3, confidence=0.95)
    assert (old.ci_low, old.ci_high, old.confidence) == (both.ci_low, both.ci_high, 0.95)
    out = translation_scores(preds, refs, metrics=["bleu", "meteor"], confidence=0.9)
    assert contains(out["bleu_ci"], out["bleu"]) and "meteor_ci" not in out


def _judge_script(body, n):
    text = next(m["content"] for m in body["messages"] if m["role"] == "user")
    tag = re.search(r"<R([\d.]+)>", text)
    return Reply(body=completion(f"Grade: [[{tag.group(1)}]]" if tag else "no rating"))


JUDGE_IN = ["질문 하나", "질문 둘", "질문 셋", "질문 넷"]
JUDGE_ANS = ["답 <R8>", "답 <R6>", "답 <R9>", "답 <R3>"]


def test_judge_score_interval_needs_no_extra_call(few_units):
    with ScriptedServer(_judge_script) as s:
        out = judge_scores(
            JUDGE_IN, JUDGE_ANS, base_url=s.url, model="m", progress=False, confidence=0.95
        )
        assert len(s.requests) == 4
    assert out["score"] == pytest.approx(65.0)  # 10 x (8 + 6 + 9 + 3) / 4
    ci = out["score_ci"]
    assert contains(ci, 65.0) and 30.0 <= ci["low"] and ci["high"] <= 90.0


# ----------------------------------------------------------------------------------------------
# the evaluate modules


def test_evaluate_modules_pass_the_interval_options(few_units):
    opts = {"confidence": 0.95, "n_resamples": 200, "seed": 4}
    acc = evaluate.load(str(METRICS / "choice_accuracy")).compute(
        predictions=PREDS, references=GOLDS, **opts
    )
    assert contains(acc["accuracy_ci"], acc["accuracy"]) and acc["accuracy_ci"]["seed"] == 4
    cer = evaluate.load(str(METRICS / "korean_cer")).compute(
        predictions=["오늘 날씨 좋네", "안녕"],
        references=["오늘 날씨가 좋다", "안녕하세요"],
        **opts,
    )
    assert contains(cer["cer_ci"], cer["cer"]) and cer["cer_ci"]["n_resamples"] == 200
    seg = evaluate.load(str(METRICS / "segment_accuracy")).compute(
        predictions=["A", "B", "C"],
        references=["A", "C", "C"],
        positions=[[0.1], [0.5], [0.9]],
        clusters=["p", "p", "q"],
        **opts,
    )
    assert contains(seg["accuracy_ci"], seg["accuracy"])
    assert contains(seg["segment_accuracy_ci"]["late"], 1.0, no_variation=True)
    scf = evaluate.load(str(METRICS / "scf")).compute(
        predictions=["3", "1", "2"],
        references=["3", "4", "4"],
        text_predictions=["1", "2", "3"],
        text_references=["1", "2", "3"],
        labels="numbers",
        **opts,
    )
    assert contains(scf["scf_ci"], scf["scf"])
    assert contains(scf["parametric_proportion_ci"], scf["parametric_proportion"], True)
    st = evaluate.load(str(METRICS / "korean_translation")).compute(
        predictions=["고양이 잔다", "감사합니다"],
        references=["고양이가 잔다", "정말 감사합니다"],
        metrics=["bleu"],
        **opts,
    )
    assert contains(st["bleu_ci"], st["bleu"])
    judge = evaluate.load(str(METRICS / "llm_judge"))
    with ScriptedServer(_judge_script) as s:
        sif = judge.compute(
            predictions=JUDGE_ANS,
            instructions=JUDGE_IN,
            base_url=s.url,
            model="m",
            progress=False,
            **opts,
        )
    assert contains(sif["score_ci"], sif["score"])
