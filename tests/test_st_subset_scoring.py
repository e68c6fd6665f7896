"""Issue 9: ``koala-bench score`` runs the ST metrics once per variant. A union config's subsets
get figures aggregated from the per-sentence work of the whole-variant scoring, identical to
scoring each subset on its own (checked against separate ``translation_scores`` calls and
hand-worked figures), and the per-sentence functions run once per sentence pair."""

from __future__ import annotations

import math

import nltk.translate.meteor_score as nltk_meteor
import pytest
from sacrebleu.metrics.bleu import BLEU

import koala.scoring.translation as tr
from koala.score import score_config
from koala.scoring.translation import translation_scores

CI = {"confidence": 0.95, "n_resamples": 200, "seed": 0}
METRICS = ["bleu", "meteor", "bertscore"]

# Written for these tests: (id, subset, talk, reference, k1's answer, k2's answer); None is a
# failed request (an empty translation).
ROWS = [
    ("a1", "tst-HE", "t1", "가나다라", "가나다라", "가나다"),
    ("a2", "tst-HE", "t1", "마바사", "마바", "마바사"),
    ("a3", "tst-HE", "t2", "아자", None, "아자차"),
    ("b1", "tst-COMMON", "t3", "오늘 날씨가 좋다.", "오늘 날씨 좋다", "오늘은 날씨가 좋다"),
    ("b2", "tst-COMMON", "t3", "TED 강연을 봤다", "ted 강연 봤다", "TED 강의를 봤다"),
    ("b3", "tst-COMMON", "t4", "감사합니다", "감사합니다!", ""),
]
VARIANTS = {"k1": 4, "k2": 5}  # the column of each variant's answers in ROWS


def records() -> list[dict]:
    recs = []
    for variant, col in VARIANTS.items():
        for row in ROWS:
            rid, subset, talk, ref, pred = row[0], row[1], row[2], row[3], row[col]
            recs.append(
                {
                    "task": "st",
                    "config": "st",
                    "variant": variant,
                    "condition": "speech",
                    "id": rid,
                    "subset": subset,
                    "status": "ok" if pred is not None else "failed",
                    "prediction": pred,
                    "ref": {"reference": ref, "talk_id": talk},
                }
            )
    return recs


def fake_bertscore(calls: list[int]):
    """Stands in for ``bert_score.score``: each sentence's values depend on its pair alone
    (shared characters over each side's length), so any batching gives the same numbers."""
    import torch

    def score(cands, refs, **kwargs):
        calls.append(len(cands))
        rows = []
        for c, r in zip(cands, refs, strict=True):
            common = len(set(c) & set(r))
            p, rr = common / max(len(set(c)), 1), common / max(len(set(r)), 1)
            rows.append([p, rr, 2 * p * rr / (p + rr) if p + rr else 0.0])
        t = torch.tensor(rows, dtype=torch.float32)
        return (t[:, 0], t[:, 1], t[:, 2]), "fake-hash"

    return score


@pytest.fixture()
def counted(monkeypatch):
    """Counts of the per-sentence work: sacreBLEU's segment statistics, NLTK's sentence
    METEOR, and the (fake) BERTScore model runs with the sentences each got."""
    import bert_score

    counts = {"bleu": 0, "meteor": 0, "bertscore": []}
    segment, meteor = BLEU._compute_segment_statistics, nltk_meteor.meteor_score

    def counting_segment(self, *args, **kwargs):
        counts["bleu"] += 1
        return segment(self, *args, **kwargs)

    def counting_meteor(*args, **kwargs):
        counts["meteor"] += 1
        return meteor(*args, **kwargs)

    monkeypatch.setattr(BLEU, "_compute_segment_statistics", counting_segment)
    monkeypatch.setattr(nltk_meteor, "meteor_score", counting_meteor)
    monkeypatch.setattr(tr, "_locate_bertscore_model", lambda mt, mp: (mt, mt))
    monkeypatch.setattr(bert_score, "score", fake_bertscore(counts["bertscore"]))
    return counts


def separately(rows, col, protocol, failed):
    """A subset scored on its own, as ``koala-bench score`` did before: one
    ``translation_scores`` call per metric on the subset's sentences, then the counts."""
    preds = [row[col] or "" for row in sorted(rows)]
    refs = [row[3] for row in sorted(rows)]
    out = {}
    for m in METRICS:
        out.update(translation_scores(preds, refs, metrics=[m], protocol=protocol))
    return out | {"failed": failed, "abstained": 0}


@pytest.mark.parametrize("protocol", ["koala", "published"])
def test_subset_figures_are_those_of_scoring_each_subset_alone(counted, protocol):
    out = score_config("st", records(), METRICS, task="st", ci=CI, protocol=protocol)

    for subset in ("tst-HE", "tst-COMMON"):
        rows = [row for row in ROWS if row[1] == subset]
        for variant, col in VARIANTS.items():
            failed = sum(row[col] is None for row in rows)
            got = out["subsets"][subset][variant]["gen"]
            want = separately(rows, col, protocol, failed)
            assert got == want
            assert list(got) == list(want)  # scores.json keeps its key order
            assert "bleu_ci" not in got  # intervals stay whole-set only

    # hand-worked, k1 on tst-HE: hypotheses 가나다라 / 마바 / "" against 가나다라 / 마바사 / 아자
    he = out["subsets"]["tst-HE"]["k1"]["gen"]
    assert he["bleu_counts"] == [6, 4, 2, 1] and he["bleu_totals"] == [6, 4, 2, 1]
    assert (he["bleu_sys_len"], he["bleu_ref_len"]) == (6, 9)
    assert he["bleu"] == pytest.approx(100 * math.exp(1 - 9 / 6))  # precisions 1, BP e^(1-9/6)
    # METEOR (alpha .9, beta 3, gamma .5): identical 4 chars in one chunk: 1 - .5 (1/4)^3;
    # 2 of 3 chars matched in one chunk: P 1, R 2/3, Fmean = PR / (.9P + .1R), x (1 - .5 (1/2)^3)
    fmean = (2 / 3) / (0.9 + 0.1 * 2 / 3)
    meteor = ((1 - 0.5 / 64) + fmean * (1 - 0.5 / 8) + 0.0) / 3
    scale = 100 if protocol == "published" else 1
    assert he["meteor"] == pytest.approx(scale * meteor)
    assert he["failed"] == 1 and he["num_sentences"] == 3

    # the whole-variant figures, with their interval by talk, as before
    preds = [row[4] or "" for row in ROWS]
    refs = [row[3] for row in ROWS]
    talks = [row[2] for row in ROWS]
    whole = translation_scores(
        preds, refs, metrics=["bleu"], protocol=protocol, clusters=talks, **CI
    )
    k1 = out["variants"]["k1"]["gen"]
    assert k1["bleu"] == whole["bleu"] and k1["bleu_ci"] == whole["bleu_ci"]
    assert k1["num_sentences"] == 6


def test_per_sentence_work_runs_once_per_variant_not_per_subset(counted):
    recs = records()
    out = score_config("st", recs, METRICS, task="st", ci=CI)
    assert set(out["subsets"]) == {"tst-HE", "tst-COMMON"}
    # 2 variants x 6 sentence pairs; before: whole set, again for the interval rows, again per
    # subset (BLEU 36, METEOR 24, BERTScore 6 model runs)
    assert counted["bleu"] == len(recs) == 12
    assert counted["meteor"] == 12
    assert counted["bertscore"] == [6, 6]  # one model run per variant, over all its sentences


def test_a_metric_that_fails_leaves_the_subsets_to_be_scored_alone(counted, monkeypatch):
    # the BERTScore model cannot be loaded: the note, as a subset scored alone gives it
    def absent(model_type, model_path):
        raise tr.BERTScoreModelUnavailable(f"{model_type} is absent in this test")

    monkeypatch.setattr(tr, "_locate_bertscore_model", absent)
    out = score_config("st", records(), METRICS, task="st")
    he = out["subsets"]["tst-HE"]["k2"]["gen"]
    assert he["notes"] == out["variants"]["k2"]["gen"]["notes"]
    assert he["notes"][0].startswith("bertscore: not scored: BERTScoreModelUnavailable")
    rows = [row for row in ROWS if row[1] == "tst-HE"]
    preds, refs = [row[5] for row in rows], [row[3] for row in rows]
    alone = translation_scores(preds, refs, metrics=["bleu", "meteor"])
    assert (he["bleu"], he["meteor"]) == (alone["bleu"], alone["meteor"])
    # 가나다 / 마바사 / 아자차 against 가나다라 / 마바사 / 아자: (3,2,1,0) + (3,2,1,0) + (2,1,0,0)
    assert he["bleu_counts"] == [8, 5, 2, 0] and he["bleu_totals"] == [9, 6, 3, 0]


def test_translation_scores_groups_hand_worked():
    preds = ["가나다라", "마바", "", "가나"]
    refs = ["가나다라", "마바사", "아자", "다라"]
    out = translation_scores(preds, refs, metrics=["bleu", "meteor"], groups={"x": [0, 1, 2]})
    x = out["groups"]["x"]
    assert x["num_sentences"] == 3 and x["protocol"] == "koala"
    assert x["bleu_counts"] == [6, 4, 2, 1] and x["bleu_ref_len"] == 9
    assert x["bleu"] == pytest.approx(100 * math.exp(-0.5))
    assert out["bleu_counts"] == [6, 4, 2, 1]  # 가나 vs 다라 adds no match
    assert out["bleu_totals"] == [8, 5, 2, 1] and out["num_sentences"] == 4
    assert "groups" not in translation_scores(preds, refs, metrics=["bleu"])
    with pytest.raises(ValueError, match="empty"):
        translation_scores(preds, refs, metrics=["bleu"], groups={"x": []})
    with pytest.raises(ValueError, match="outside"):
        translation_scores(preds, refs, metrics=["bleu"], groups={"x": [4]})
