"""Accuracy by evidence position (KoALa-Bench PA-QA) as an ``evaluate`` metric."""

import datasets
import evaluate

from koala import metric_base
from koala.scoring.segments import segment_accuracy

_CITATION = metric_base.KOALA_CITATION

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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SegmentAccuracy(metric_base.KoalaMetric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[str],
        positions: list | None = None,
        segments: list | None = None,
        choices: list | None = None,
        labels: object = None,
        fallback: str = "none",
        protocol: str = "koala",
        strict: bool = False,
        confidence: float | None = None,
        n_resamples: int = 1000,
        seed: int = 0,
        clusters: list | None = None,
    ) -> dict:
        return segment_accuracy(
            predictions,
            references,
            positions,
            segments,
            choices,
            labels,
            fallback,
            protocol=protocol,
            strict=strict,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
            clusters=clusters,
        )
