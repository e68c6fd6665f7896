"""Speech Context Faithfulness (KoALa-Bench SCA-QA) as an ``evaluate`` metric."""

from koala import metric_base
from koala.scoring.scf import speech_context_faithfulness

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


class SpeechContextFaithfulness(metric_base.KoalaMetric):
    scorer = staticmethod(speech_context_faithfulness)
    description = _DESCRIPTION
    kwargs_description = _KWARGS_DESCRIPTION
    required = ("text_predictions", "text_references")
    missing_message = (
        "scf needs text_predictions= (answers without speech) and text_references= "
        "(world-knowledge answers) besides predictions/references"
    )
