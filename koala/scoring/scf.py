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

How answers are read depends on the protocol (:mod:`koala.scoring.protocol`):

* ``published`` (``SCA-QA/evaluate_with_original.py``): "the choices are shown as ``(A)``-``(D)``
  (not numbers), and an answer is read letter by letter in order A, B, C, D: ``(L)`` or ``(l)``
  in the text, or ``L`` anywhere in the upper-cased text; else ``A``. [...] The gold letter is
  the choice whose text equals ``answer`` (``new_answer`` in the counterfactual condition)
  exactly, else index 0 (A)." So ``"The answer is C."`` reads as A (its "ANSWER" holds an A),
  and a gold text that is no choice's exact text (``"안시성 전투"`` against ``"안시성"``) is A.
  The references are answer *texts* and ``choices`` one list of choice texts per item.
* ``koala`` (default): answers and golds are read with the multiple-choice rules of
  :mod:`koala.scoring.choices` (``(L)``, a standalone label, a choice's text, a bare label;
  unreadable answers are unparsed, not A). An item whose reference is malformed, or whose
  counterfactual gold is the original gold (it cannot tell speech from knowledge), is left
  out and reported in ``invalid`` / ``invalid_items``; ``strict=True`` raises instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from koala.scoring._validate import check_same_length, check_sequence
from koala.scoring.bootstrap import ratio_interval, subset_clusters
from koala.scoring.choices import (
    LETTER_LABELS,
    ItemScore,
    argmax_label,
    score_choice_items,
)
from koala.scoring.protocol import check_protocol

__all__ = ["speech_context_faithfulness"]


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _published_reading(text: str, labels: Sequence[str]) -> tuple[str, str]:
    """``(L)``/``(l)`` or ``L`` in the upper-cased text, letter by letter; else the first."""
    upper = text.upper()
    for label in labels:
        if f"({label})" in text or f"({label.lower()})" in text:
            return label, "paren"
        if label in upper:
            return label, "bare"
    return labels[0], "fallback"


def _published_items(
    predictions: Sequence[Any],
    references: Sequence[Any],
    choices: Sequence[Sequence[str]],
    names: tuple[str, str],
) -> list[ItemScore]:
    pname, rname = names
    out = []
    for i, (pred, gold, texts) in enumerate(zip(predictions, references, choices, strict=True)):
        if not isinstance(gold, str):
            raise TypeError(f"{rname}[{i}] must be the answer text, got {gold!r}")
        labels = LETTER_LABELS[: len(texts)]
        gold_label = labels[list(texts).index(gold)] if gold in texts else labels[0]
        if isinstance(pred, str):
            label, method = _published_reading(pred, labels)
        elif pred is None:
            raise ValueError(f"{pname}[{i}] is None; expected a string (use '' for no answer)")
        else:
            try:
                label, method = argmax_label(pred, labels), "logit"
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{pname}[{i}]: {exc}") from None
        out.append(ItemScore(label, gold_label, method))
    return out


def _published_choices(choices: Any, n: int) -> list[list[str]]:
    if choices is None:
        raise ValueError(
            "protocol='published' needs choices= (one list of choice texts per item): the gold "
            "letter is the choice whose text equals the answer"
        )
    check_sequence(choices, "choices")
    if len(choices) != n:
        raise ValueError(f"choices has {len(choices)} items but predictions has {n}")
    rows = []
    for i, row in enumerate(choices):
        if isinstance(row, str) or not isinstance(row, Sequence) or not row:
            raise TypeError(f"choices[{i}] must be a non-empty list of choice texts, got {row!r}")
        if len(row) > len(LETTER_LABELS) or not all(isinstance(c, str) for c in row):
            raise TypeError(f"choices[{i}] must be a list of at most 10 strings, got {row!r}")
        rows.append(list(row))
    return rows


def speech_context_faithfulness(
    predictions: Sequence[Any],
    references: Sequence[str],
    text_predictions: Sequence[Any],
    text_references: Sequence[str],
    original_predictions: Sequence[Any] | None = None,
    choices: Sequence[Any] | None = None,
    labels: Any = None,
    fallback: str = "none",
    protocol: str = "koala",
    strict: bool = False,
    confidence: float | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """SCF and its companions over SCA-QA items.

    Args:
        predictions: answers given the counterfactual speech (generations, labels, or
            per-label log-probabilities).
        references: the counterfactual answers (gold ``new_answer``).
        text_predictions: answers to the question alone.
        text_references: the world-knowledge answers (gold ``answer``).
        original_predictions: optional answers given the original speech (gold ``answer``).
        choices, labels, fallback: as in :func:`koala.scoring.choices.choice_accuracy`
            (``koala``). Under ``published`` ``choices`` is required, one list of choice texts
            per item, the references are answer texts, and ``labels``/``fallback`` are
            ignored (letters A, B, ... are shown; nothing read means A).
        protocol: ``"koala"`` or ``"published"`` (see the module doc for how each reads).
        strict: ``koala`` only: raise on an invalid item instead of leaving it out.
        confidence: e.g. 0.95 adds ``scf_ci`` and ``parametric_proportion_ci``: seeded
            percentile bootstrap intervals (``n_resamples``, ``seed``) that resample the
            scored items (an item's conditions together) and recompute each ratio over the
            text-correct items of the resample, so the denominator varies
            (:func:`koala.scoring.bootstrap.ratio_interval`).
        clusters: one key per input item to resample clusters of items instead (default:
            every item is its own cluster).

    Returns a dict with ``scf``, ``parametric_proportion``, ``other_proportion`` (text-correct
    items whose speech answer is neither), ``num_text_correct``, ``total`` (scored items),
    the accuracy of each condition, ``unparsed`` and ``fallback_used`` per condition,
    ``invalid`` / ``invalid_items`` (left-out items), ``protocol``, and with
    ``original_predictions`` the 2x2 ``case_table`` of counterfactual-correct x
    original-correct over the text-correct items. When no item is text-correct the ratios
    are NaN and ``note`` says why.
    """
    published = check_protocol(protocol) == "published"
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

    runs: list[tuple[str, Sequence[Any], Sequence[str], tuple[str, str]]] = [
        ("counterfactual", predictions, references, ("predictions", "references")),
        ("text", text_predictions, text_references, ("text_predictions", "text_references")),
    ]
    if original_predictions is not None:
        names = ("original_predictions", "text_references")
        runs.append(("original", original_predictions, text_references, names))
    scored: dict[str, list[ItemScore]] = {}
    if published:
        rows = _published_choices(choices, len(predictions))
        for cond, preds, refs, names in runs:
            scored[cond] = _published_items(preds, refs, rows, names)
        invalid_items: list[int] = []
    else:
        common = {"choices": choices, "labels": labels, "fallback": fallback, "strict": strict}
        for cond, preds, refs, names in runs:
            scored[cond] = score_choice_items(preds, refs, names=names, **common)
        invalid_items = []
        for k in range(len(predictions)):
            items = [scored[c][k] for c in scored]
            if any(not it.counted for it in items):
                invalid_items.append(k)
            elif scored["counterfactual"][k].gold == scored["text"][k].gold:
                if strict:
                    raise ValueError(
                        f"references[{k}]: the counterfactual answer is the original answer "
                        f"({references[k]!r} vs {text_references[k]!r}); the item cannot tell "
                        "speech from knowledge"
                    )
                invalid_items.append(k)
    left_out = set(invalid_items)
    keep = [k for k in range(len(predictions)) if k not in left_out]
    speech = [scored["counterfactual"][k] for k in keep]
    text = [scored["text"][k] for k in keep]
    original = [scored["original"][k] for k in keep] if "original" in scored else None

    n = len(keep)
    text_correct = [k for k in range(n) if text[k].correct]
    k_tc = len(text_correct)
    follows_speech = sum(speech[k].correct for k in text_correct)
    keeps_own = sum(
        speech[k].predicted is not None and speech[k].predicted == text[k].predicted
        for k in text_correct
    )
    kept = {"counterfactual": speech, "text": text}
    if original is not None:
        kept["original"] = original
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
        "unparsed": {c: sum(it.method == "unparsed" for it in v) for c, v in kept.items()},
        "fallback_used": {c: sum(it.method == "fallback" for it in v) for c, v in kept.items()},
        "invalid": len(invalid_items),
        "invalid_items": invalid_items,
        "protocol": protocol,
    }
    if original is not None:
        out["original_accuracy"] = _ratio(sum(o.correct for o in original), n)
        table = {
            "counterfactual_correct": {"original_correct": 0, "original_wrong": 0},
            "counterfactual_wrong": {"original_correct": 0, "original_wrong": 0},
        }
        for k in text_correct:
            row = "counterfactual_correct" if speech[k].correct else "counterfactual_wrong"
            col = "original_correct" if original[k].correct else "original_wrong"
            table[row][col] += 1
        out["case_table"] = table
    if confidence is not None:
        opts = (subset_clusters(clusters, len(predictions), keep), n_resamples, confidence, seed)
        is_text_correct = [t.correct for t in text]
        follows = [sp.correct for sp in speech]
        own = [
            sp.predicted is not None and sp.predicted == t.predicted
            for sp, t in zip(speech, text, strict=True)
        ]
        out["scf_ci"] = ratio_interval(follows, is_text_correct, *opts).as_dict()
        out["parametric_proportion_ci"] = ratio_interval(own, is_text_correct, *opts).as_dict()
    if n == 0:
        out["note"] = (
            f"all {len(predictions)} items are invalid (see invalid_items); SCF is undefined (NaN)"
        )
    elif k_tc == 0:
        out["note"] = (
            f"no item of {n} was answered correctly from text alone; SCF is undefined (NaN)"
        )
    return out
