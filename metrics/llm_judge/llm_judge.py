"""LLM judge for speech instruction following (KoALa-Bench SIF) as an ``evaluate`` metric."""

import datasets
import evaluate

from koala import metric_base
from koala.scoring.judge import judge_scores

_CITATION = (
    metric_base.KOALA_CITATION
    + """\
@inproceedings{zheng2023judging,
  title     = {Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena},
  author    = {Zheng, Lianmin and others},
  booktitle = {NeurIPS Datasets and Benchmarks},
  year      = {2023}
}
"""
)

_DESCRIPTION = """\
Speech instruction following scored as KoALa-Bench publishes it: an LLM judge (the authors
used gpt-4o-mini at temperature 0) grades each answer to the text of the spoken instruction on
1-10 with MT-bench's single-answer grading protocol, the grade is read from `[[x]]`, and the
score is 10 x the mean grade. The prompt is this project's own equivalent (id and hash are
returned). Judgements that fail or carry no valid `[[x]]` are counted and excluded, never
scored. Any OpenAI-compatible server works; a JSONL cache makes re-scoring free.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the model's answers.
    instructions (`list` of `str`): the text of each spoken instruction (`question_ko`),
        paired with `predictions` (an input column, so it also works with `add_batch`).
        There is no `references` input: pass `instructions=`, and reference answers as
        `reference_answers=`.
    reference_answers (`list` of `str`, optional): reference answers, one per item, for
        reference-guided grading (a separate prompt; not the published protocol).
    reference_guided (`bool`, optional): default `True` when `reference_answers` is given.
    base_url (`str`, required): the server's OpenAI-compatible base URL, e.g.
        `https://api.openai.com/v1` or `http://localhost:8000/v1`.
    model (`str`, required): the judge model, e.g. `gpt-4o-mini` (the published judge).
    api_key_env (`str`, default `"OPENAI_API_KEY"`): environment variable holding the key.
    concurrency (`int`, 8), timeout (`float`, 60 s per request), max_retries (`int`, 4),
        backoff (`float`, 0.5 s): request settings (retries on 429, 5xx and time-outs).
    cache_path (`str`, optional): JSONL cache of judgements.
    max_tokens (`int`, 2048), prompt (`str`, a prompt id), recheck_unparsable (`bool`),
        progress (`bool`, True), return_records (`bool`, True).
Returns:
    score (`float` in [10, 100], or `None` when nothing was scored): 10 x mean grade;
    mean_rating (`float` in [1, 10]); num_items, num_scored, num_unparsable, num_failed (`int`);
    judge_model, prompt_id, prompt_hash (`str`); reference_guided (`bool`); temperature
    (`float`); requests_sent, cache_hits (`int`); cache_path; records (`list` of `dict`: index,
    status ok/unparsable/failed, rating, judgement, error, ...).
Examples:
    >>> judge = evaluate.load("metrics/llm_judge")
    >>> judge.compute(predictions=["서울입니다."], instructions=["한국의 수도는 어디인가요?"],
    ...               base_url="http://localhost:8000/v1", model="gpt-4o-mini")["score"]
    90.0
"""

_NO_REFERENCES = (
    "llm_judge takes no `references`: pass the instructions as `instructions=` and reference "
    "answers (for reference-guided grading) as `reference_answers=`"
)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LLMJudge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "instructions": datasets.Value("string")}
            ),
            reference_urls=[
                "https://github.com/scai-research/KoALa-Bench",
                "https://arxiv.org/abs/2306.05685",
            ],
        )

    # evaluate would silently drop `references` (not an input here): refuse it instead.
    def compute(self, *, predictions=None, references=None, **kwargs):
        """Judge `predictions` (answers) to `instructions`; see the arguments below."""
        if references is not None:
            raise ValueError(_NO_REFERENCES)
        return super().compute(predictions=predictions, **kwargs)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add answers (`predictions`) with their `instructions`."""
        if references is not None:
            raise ValueError(_NO_REFERENCES)
        return super().add_batch(predictions=predictions, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one answer (`prediction`) with its `instructions` item."""
        if reference is not None:
            raise ValueError(_NO_REFERENCES)
        return super().add(prediction=prediction, **kwargs)

    def _compute(
        self,
        predictions: list[str],
        instructions: list[str],
        base_url: str | None = None,
        model: str | None = None,
        **settings,
    ) -> dict:
        if not base_url or not model:
            raise ValueError(
                "llm_judge needs the judge server and model: compute(..., "
                "base_url='http://host:port/v1', model='gpt-4o-mini')"
            )
        return judge_scores(instructions, predictions, base_url=base_url, model=model, **settings)
