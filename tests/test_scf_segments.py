"""SCF (SCA-QA) and segment accuracy (PA-QA) on hand-worked items."""

import math
from pathlib import Path

import evaluate
import pytest

from koala.scoring.scf import speech_context_faithfulness
from koala.scoring.segments import normalize_segment, segment_accuracy, segment_of

METRICS = Path(__file__).resolve().parent.parent / "metrics"

# Six SCA-QA items, labels 1-4. World-knowledge answer (text gold) and counterfactual answer:
TEXT_GOLD = ["1", "2", "1", "3", "4", "2"]
CF_GOLD = ["3", "4", "2", "1", "1", "3"]
TEXT_PRED = ["1", "2", "1", "3", "1", "4"]  # items 0-3 text-correct; 4, 5 wrong
CF_PRED = ["3", "2", "4", "1", "1", "3"]  # follows speech on 0, 3 (and 4, 5 not text-correct);
#                                           keeps own answer on 1; neither on 2
ORIG_PRED = ["1", "2", "3", "3", "4", "2"]  # original speech: correct on 0, 1, 3 (4, 5 too)


def test_scf_hand_worked():
    out = speech_context_faithfulness(
        CF_PRED, CF_GOLD, TEXT_PRED, TEXT_GOLD, ORIG_PRED, labels="numbers"
    )
    assert out["num_text_correct"] == 4
    assert out["scf"] == pytest.approx(2 / 4)
    assert out["parametric_proportion"] == pytest.approx(1 / 4)
    assert out["other_proportion"] == pytest.approx(1 / 4)
    assert out["text_accuracy"] == pytest.approx(4 / 6)
    assert out["counterfactual_accuracy"] == pytest.approx(4 / 6)
    assert out["original_accuracy"] == pytest.approx(5 / 6)
    t = out["case_table"]
    # over text-correct items 0-3: cf correct on 0, 3; original correct on 0, 1, 3
    assert t["counterfactual_correct"] == {"original_correct": 2, "original_wrong": 0}
    assert t["counterfactual_wrong"] == {"original_correct": 1, "original_wrong": 1}
    assert sum(sum(r.values()) for r in t.values()) == out["num_text_correct"]


def test_scf_from_raw_generations_with_choice_text():
    choices = [["한라산", "지리산", "설악산", "백두산"]] * 2
    out = speech_context_faithfulness(
        predictions=["(3) 설악산", "한라산입니다"],
        references=["설악산", "설악산"],
        text_predictions=["한라산", "정답은 (1)"],
        text_references=["한라산", "한라산"],
        choices=choices,
        labels="numbers",
    )
    assert out["num_text_correct"] == 2
    assert out["scf"] == 0.5 and out["parametric_proportion"] == 0.5


def test_scf_no_text_correct_is_nan_with_a_note():
    # (the counterfactual gold differs from the original: an equal one would be invalid)
    out = speech_context_faithfulness(["1"], ["2"], ["2"], ["1"], labels="numbers")
    assert math.isnan(out["scf"]) and math.isnan(out["parametric_proportion"])
    assert out["num_text_correct"] == 0 and out["total"] == 1
    assert "answered correctly" in out["note"] and "undefined" in out["note"]


def test_scf_unparsed_speech_answer_is_neither():
    out = speech_context_faithfulness(["음..."], ["2"], ["1"], ["1"], labels="numbers")
    assert out["scf"] == 0.0 and out["parametric_proportion"] == 0.0
    assert out["other_proportion"] == 1.0 and out["unparsed"]["counterfactual"] == 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"text_predictions": ["1"]}, "text_predictions has 1 items"),
        ({"original_predictions": ["1"]}, "original_predictions has 1 items"),
        ({"text_references": None}, "text_references is None"),
    ],
)
def test_scf_bad_input(kwargs, needle):
    args = {
        "predictions": ["1", "2"],
        "references": ["1", "2"],
        "text_predictions": ["1", "2"],
        "text_references": ["1", "2"],
        "labels": "numbers",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        speech_context_faithfulness(**args)


def test_scf_evaluate_module():
    scf = evaluate.load(str(METRICS / "scf"))
    out = scf.compute(
        predictions=CF_PRED,
        references=CF_GOLD,
        text_predictions=TEXT_PRED,
        text_references=TEXT_GOLD,
        original_predictions=ORIG_PRED,
        labels="numbers",
    )
    assert out["scf"] == 0.5 and out["case_table"]["counterfactual_wrong"]["original_wrong"] == 1
    with pytest.raises(ValueError, match="text_predictions"):
        scf.compute(predictions=["1"], references=["1"])


@pytest.mark.parametrize(
    ("p", "seg"),
    [
        (0.0, "front"),
        (0.2499, "front"),
        (0.25, "front-middle"),
        (0.4999, "front-middle"),
        (0.5, "middle-late"),
        (0.75, "late"),
        (1.0, "late"),
    ],
)
def test_segment_boundaries(p, seg):
    assert segment_of(p) == seg


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan])
def test_position_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"positions\[1\]"):
        segment_accuracy(["A", "A"], ["A", "A"], positions=[[0.1], [bad]])


def test_segment_labels_and_alias():
    assert normalize_segment("middle-front") == "front-middle"
    assert normalize_segment("Middle_Late") == "middle-late"
    with pytest.raises(ValueError, match=r"segments\[0\].*unknown segment 'middle'"):
        segment_accuracy(["A"], ["A"], segments=[["middle"]])


def test_segment_accuracy_hand_worked():
    preds = ["A", "B", "(C)", "D", "A"]
    refs = ["A", "C", "C", "D", "B"]  # correct: 0, 2, 3
    positions = [
        [0.1],  # front, correct
        [0.3, 0.9],  # front-middle + late, wrong: counts once in each
        [0.55, 0.6],  # middle-late twice: counts once
        [0.8],  # late, correct
        [],  # no evidence: overall only
    ]
    out = segment_accuracy(preds, refs, positions=positions)
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["segment_count"] == {"front": 1, "front-middle": 1, "middle-late": 1, "late": 2}
    assert out["segment_accuracy"] == {
        "front": 1.0,
        "front-middle": 0.0,
        "middle-late": 1.0,
        "late": 0.5,
    }
    assert out["spread"] == 1.0 and out["no_evidence"] == 1
    by_label = segment_accuracy(
        preds,
        refs,
        segments=[["front"], ["middle-front", "late"], ["middle-late"] * 2, "late", []],
    )
    assert by_label["segment_accuracy"] == out["segment_accuracy"]


def test_segment_empty_segment_is_nan_and_excluded_from_spread():
    out = segment_accuracy(["A", "B"], ["A", "A"], positions=[[0.1], [0.12]])
    assert math.isnan(out["segment_accuracy"]["late"])
    assert out["spread"] == 0.0


def test_segment_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        segment_accuracy(["A"], ["A"])
    with pytest.raises(ValueError, match="positions has 1 items"):
        segment_accuracy(["A", "B"], ["A", "B"], positions=[[0.1]])
    with pytest.raises(TypeError, match=r"positions\[0\]"):
        segment_accuracy(["A"], ["A"], positions=[0.1])


def test_segment_evaluate_module():
    seg = evaluate.load(str(METRICS / "segment_accuracy"))
    out = seg.compute(predictions=["A", "B"], references=["A", "C"], positions=[[0.1], [0.9]])
    assert out["segment_accuracy"]["front"] == 1.0 and out["segment_accuracy"]["late"] == 0.0
    assert out["spread"] == 1.0
