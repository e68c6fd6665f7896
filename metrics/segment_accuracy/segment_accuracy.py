"""Accuracy by evidence position (KoALa-Bench PA-QA) as an ``evaluate`` metric."""

from koala import metric_base
from koala.scoring.segments import segment_accuracy

_DESCRIPTION = """\
PA-QA accuracy overall and by the segment of the long speech that holds the evidence: front
[0, .25), front-middle [.25, .5), middle-late [.5, .75), late [.75, 1]; "an item with evidence
in several segments counts once in each". `spread` = best minus worst segment accuracy.
An empty segment is NaN (koala protocol) or 0.0 (`protocol="published"`, as published).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated answers or labels.
    references (`list` of `str`): gold answers (`(D)`, `D`, or a choice's text).
    positions (`list` of `list` of `float`): evidence positions in [0, 1] per item; or
    segments (`list` of `list` of `str`): segment names per item (`middle-front` is accepted).
    choices, labels, fallback, protocol, strict: as in `choice_accuracy`.
    confidence (`float`, optional): e.g. `0.95` adds `accuracy_ci` and
        `segment_accuracy_ci` (per segment): a seeded percentile bootstrap interval (`low`,
        `high`, `confidence`, `method`, `n_resamples`, `seed`, `cluster`, `n_clusters`,
        `dropped`; `null` bounds when undefined) that recomputes the metric on every resample.
    n_resamples (`int`, default 1000), seed (`int`, default 0): the bootstrap draws.
    clusters (`list`, optional): one key per item (the passage: its questions share the
        audio; the passages are drawn once for all segments); whole clusters are resampled.
Returns:
    accuracy (`float`), correct, total, unparsed, fallback_used, invalid, invalid_gold,
    no_evidence (`int`), invalid_items (`list`), protocol (`str`),
    segment_accuracy / segment_count / segment_correct (`dict` by segment), spread (`float`),
    accuracy_ci and segment_accuracy_ci (`dict`, with `confidence`).
Examples:
    >>> seg = evaluate.load("metrics/segment_accuracy")
    >>> seg.compute(predictions=["A", "B"], references=["A", "C"],
    ...             positions=[[0.1], [0.9]])["segment_accuracy"]["front"]
    1.0
"""


class SegmentAccuracy(metric_base.KoalaMetric):
    scorer = staticmethod(segment_accuracy)
    description = _DESCRIPTION
    kwargs_description = _KWARGS_DESCRIPTION
