"""Multiple-choice accuracy (KoALa-Bench SQA, KCSAT, PA-QA) as an ``evaluate`` metric."""

from typing import ClassVar

from koala import metric_base
from koala.scoring.choices import choice_accuracy

_DESCRIPTION = """\
Accuracy = correct / total of multiple-choice answers, from generated text or from per-label
log-probabilities. Generated text is read in the published order: "(L)" in choice order, then a
standalone label, then (this project) the text of one choice, then a bare letter. An answer no
rule reads is counted wrong and reported as `unparsed`, and an item whose reference is
malformed is left out and reported as `invalid`. `protocol="published"` reproduces the
authors' scoring exactly instead (first choice when nothing matches, no bare-number step for
K-SAT, repeated labels collapsed, golds naming no label kept and always wrong). With
log-probabilities the prediction is the argmax over the labels (logit-based scoring).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`, or `list` of `list` of `float`): generated answers, or
        log-probabilities of the labels in label order (logit-based).
    references (`list` of `str`): gold answers as `(C) 1592년`, `C`, `3`, or a choice's text.
    choices (`list`, optional): per item, the labelled choice string (`"(A) 예 (B) 아니요"`)
        or the list of choice texts. Lets answers given as a choice's text be recognised.
    labels (optional): `"letters"`, `"numbers"`, one list of labels, or one list per item.
        Default: read from `choices`, else inferred from the gold answer (A-E or 1-5).
    fallback (`str`, default `"none"`): `"first"` maps unparsed answers to the first choice
        and turns choice-text matching off, as the published code did.
    match_text (`bool`, optional): force choice-text matching on or off.
    return_items (`bool`, default `False`): also return per-item labels and methods.
    protocol (`str`, default `"koala"`): `"koala"` or `"published"` (the authors' rules
        exactly; `fallback` and `match_text` are then ignored).
    strict (`bool`, default `False`): raise on a malformed reference instead of leaving the
        item out.
    confidence (`float`, optional): e.g. `0.95` adds `accuracy_ci`: a seeded percentile
        bootstrap interval (`low`, `high`, `confidence`, `method`, `n_resamples`, `seed`,
        `cluster`, `n_clusters`, `dropped`; `null` bounds when undefined) that recomputes the
        metric on every resample.
    n_resamples (`int`, default 1000), seed (`int`, default 0): the bootstrap draws.
    clusters (`list`, optional): one key per item; whole clusters are resampled.
Returns:
    accuracy (`float` in [0, 1], NaN when no item is valid), correct, total, unparsed,
    fallback_used, invalid, invalid_gold (`int`), invalid_items (`list` of `int`),
    protocol (`str`), accuracy_ci (`dict`, with `confidence`).
Examples:
    >>> acc = evaluate.load("metrics/choice_accuracy")
    >>> acc.compute(predictions=["정답은 (C)입니다", "1443년"], references=["(C) 1592년", "B"],
    ...             choices=["(A) 1392년 (B) 1443년 (C) 1592년 (D) 1910년"] * 2)["accuracy"]
    1.0
"""


class ChoiceAccuracy(metric_base.KoalaMetric):
    scorer = staticmethod(choice_accuracy)
    description = _DESCRIPTION
    kwargs_description = _KWARGS_DESCRIPTION
    features: ClassVar = [  # generated text, or per-label log-probabilities (logit-based)
        {"predictions": "string", "references": "string"},
        {"predictions": ["float64"], "references": "string"},
    ]
