"""Speech Context Faithfulness (KoALa-Bench SCA-QA) as an ``evaluate`` metric."""

import datasets
import evaluate

from koala import metric_base
from koala.scoring.scf import speech_context_faithfulness

_CITATION = metric_base.KOALA_CITATION

_DESCRIPTION = """\
Speech Context Faithfulness (SCF): "among the items the model answers correctly from text
alone, the share whose answer follows the counterfactual speech (prediction == new_answer)".
Also returns the parametric proportion (text-correct items whose speech answer equals the text
answer), each condition's accuracy and, with answers to the original speech, the 2x2 table of
counterfactual-correct x original-correct over the text-correct items.
`protocol="published"` reads answers as the published SCA-QA code does: letter by letter A-D,
"(L)" or the letter anywhere in the upper-cased text, else A; golds are answer texts matched
exactly against the choice texts, else A.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): answers given the counterfactual speech.
    references (`list` of `str`): the counterfactual answers (`new_answer`).
    text_predictions (`list` of `str`): answers to the question alone (no speech).
    text_references (`list` of `str`): the world-knowledge answers (`answer`).
    original_predictions (`list` of `str`, optional): answers given the original speech.
    choices, labels, fallback: as in `choice_accuracy` (answers may be raw generations).
        Under `protocol="published"`, `choices` is one list of choice texts per item and the
        references are answer texts.
    protocol (`str`, default `"koala"`): `"koala"` or `"published"`.
    strict (`bool`, default `False`): raise on an invalid item (malformed reference, or a
        counterfactual answer equal to the original) instead of leaving it out.
    confidence (`float`, optional): e.g. `0.95` adds `scf_ci` and `parametric_proportion_ci`
        (the text-correct denominator recounted per resample): a seeded percentile
        bootstrap interval (`low`, `high`, `confidence`, `method`, `n_resamples`, `seed`,
        `cluster`, `n_clusters`, `dropped`; `null` bounds when undefined) that recomputes the
        metric on every resample.
    n_resamples (`int`, default 1000), seed (`int`, default 0): the bootstrap draws.
    clusters (`list`, optional): one key per item (default: each item, its conditions
        together); whole clusters are resampled.
Returns:
    scf, parametric_proportion, other_proportion (`float` in [0, 1], NaN when no item is
    text-correct), num_text_correct, total, text_accuracy, counterfactual_accuracy,
    original_accuracy, unparsed and fallback_used (per condition), invalid, invalid_items,
    protocol, case_table (2x2 counts), scf_ci and parametric_proportion_ci (`dict`, with
    `confidence`).
Examples:
    >>> scf = evaluate.load("metrics/scf")
    >>> scf.compute(predictions=["3", "1"], references=["3", "4"],
    ...             text_predictions=["1", "2"], text_references=["1", "2"],
    ...             labels="numbers")["scf"]
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpeechContextFaithfulness(metric_base.KoalaMetric):
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
        text_predictions: list[str] | None = None,
        text_references: list[str] | None = None,
        original_predictions: list[str] | None = None,
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
        if text_predictions is None or text_references is None:
            raise ValueError(
                "scf needs text_predictions= (answers without speech) and text_references= "
                "(world-knowledge answers) besides predictions/references"
            )
        return speech_context_faithfulness(
            predictions,
            references,
            text_predictions,
            text_references,
            original_predictions,
            choices=choices,
            labels=labels,
            fallback=fallback,
            protocol=protocol,
            strict=strict,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
            clusters=clusters,
        )
