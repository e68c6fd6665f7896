"""Speech Context Faithfulness (SCA-QA).

SCA-QA asks each question in three conditions: the question alone (text only; gold = the
world-knowledge answer), with the speech of a *counterfactual* context (gold = the
counterfactual answer), and, optionally, with the speech of the original context (gold = the
world-knowledge answer). The paper defines Speech Context Faithfulness as:

    "among the items the model answers correctly from text alone, the share whose answer
    follows the counterfactual speech (prediction == new_answer)"

The published code also reports ``parametric_proportion``: the share of text-correct items
whose speech answer equals the text answer (the model kept its own knowledge). The two need
not sum to 1: a speech answer can be neither.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from koala.scoring._validate import check_same_length, check_sequence
from koala.scoring.choices import score_choice_items

__all__ = ["speech_context_faithfulness"]


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def speech_context_faithfulness(
    predictions: Sequence[Any],
    references: Sequence[str],
    text_predictions: Sequence[Any],
    text_references: Sequence[str],
    original_predictions: Sequence[Any] | None = None,
    choices: Sequence[Any] | None = None,
    labels: Any = None,
    fallback: str = "none",
) -> dict[str, Any]:
    """SCF and its companions over SCA-QA items.

    Args:
        predictions: answers given the counterfactual speech (generations, labels, or
            per-label log-probabilities).
        references: the counterfactual answers (gold ``new_answer``).
        text_predictions: answers to the question alone.
        text_references: the world-knowledge answers (gold ``answer``).
        original_predictions: optional answers given the original speech (gold ``answer``).
        choices, labels, fallback: as in :func:`koala.scoring.choices.choice_accuracy`.

    Returns a dict with ``scf``, ``parametric_proportion``, ``other_proportion`` (text-correct
    items whose speech answer is neither), ``num_text_correct``, ``total``, the accuracy of each
    condition, unparsed counts, and with ``original_predictions`` the 2x2 ``case_table`` of
    counterfactual-correct x original-correct over the text-correct items. When no item is
    text-correct the ratios are NaN and ``note`` says why.
    """
    check_sequence(predictions, "predictions")
    check_sequence(references, "references")
    check_sequence(text_predictions, "text_predictions")
    check_sequence(text_references, "text_references")
    arrays = [
        ("predictions", predictions),
        ("references", references),
        ("text_predictions", text_predictions),
        ("text_references", text_references),
    ]
    if original_predictions is not None:
        check_sequence(original_predictions, "original_predictions")
        arrays.append(("original_predictions", original_predictions))
    check_same_length(*arrays)

    common = {"choices": choices, "labels": labels, "fallback": fallback}
    speech = score_choice_items(
        predictions, references, names=("predictions", "references"), **common
    )
    text = score_choice_items(
        text_predictions, text_references, names=("text_predictions", "text_references"), **common
    )
    original = None
    if original_predictions is not None:
        original = score_choice_items(
            original_predictions,
            text_references,
            names=("original_predictions", "text_references"),
            **common,
        )

    n = len(speech)
    text_correct = [k for k in range(n) if text[k].correct]
    k_tc = len(text_correct)
    follows_speech = sum(speech[k].correct for k in text_correct)
    keeps_own = sum(
        speech[k].predicted is not None and speech[k].predicted == text[k].predicted
        for k in text_correct
    )
    out: dict[str, Any] = {
        "scf": _ratio(follows_speech, k_tc),
        "parametric_proportion": _ratio(keeps_own, k_tc),
        "other_proportion": _ratio(k_tc - follows_speech - keeps_own, k_tc),
        "num_text_correct": k_tc,
        "num_follows_speech": follows_speech,
        "num_parametric": keeps_own,
        "total": n,
        "text_accuracy": _ratio(sum(t.correct for t in text), n),
        "counterfactual_accuracy": _ratio(sum(s.correct for s in speech), n),
        "unparsed": {
            "counterfactual": sum(s.method == "unparsed" for s in speech),
            "text": sum(t.method == "unparsed" for t in text),
        },
    }
    if original is not None:
        out["original_accuracy"] = _ratio(sum(o.correct for o in original), n)
        out["unparsed"]["original"] = sum(o.method == "unparsed" for o in original)
        table = {
            "counterfactual_correct": {"original_correct": 0, "original_wrong": 0},
            "counterfactual_wrong": {"original_correct": 0, "original_wrong": 0},
        }
        for k in text_correct:
            row = "counterfactual_correct" if speech[k].correct else "counterfactual_wrong"
            col = "original_correct" if original[k].correct else "original_wrong"
            table[row][col] += 1
        out["case_table"] = table
    if k_tc == 0:
        out["note"] = (
            f"no item of {n} was answered correctly from text alone; SCF is undefined (NaN)"
        )
    return out
