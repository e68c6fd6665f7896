"""LLM judge for speech instruction following (KoALa-Bench SIF) as an ``evaluate`` metric."""

from typing import ClassVar

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
score is 10 x the mean grade. `protocol="published"` reproduces the authors' scoring exactly
(MT-bench's "single-v1" prompt from FastChat or `judge_prompt_file`, the first `[[x]]` when in
1-10, else no rating and the item leaves the mean, 0.0 only when nothing is rated, empty
answers left out, 512 max tokens). The default `protocol="koala"` uses this
project's own prompt, strict parsing (judgements without one valid `[[x]]` are counted and left
out, never scored), rates an empty answer 1 without a judge call, and counts judge failures
apart. Any OpenAI-compatible server works; a JSONL cache makes re-scoring free.
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
    protocol (`str`, default `"koala"`): `"published"` = the authors' rules exactly;
        `"koala"` = this project's prompt and rules (see the card's "Protocols" table).
    judge_prompt_file (`str`, optional): the judge prompt to use, required by `"published"`
        unless FastChat is installed: a `.jsonl` file in FastChat's `judge_prompts.jsonl`
        format (the line named `single-v1`), or a plain text file holding the user message
        with the fields `{question}` and `{answer}`.
    api_key_env (`str`, default `"OPENAI_API_KEY"`): environment variable holding the key.
    concurrency (`int`, 8), timeout (`float`, 60 s per request), max_retries (`int`, 4),
        backoff (`float`, 0.5 s): request settings (retries on 429, 5xx and time-outs).
    cache_path (`str`, optional): JSONL cache of judgements.
    max_tokens (`int`, 2048 under `koala`, 512 under `published`), prompt (`str`, a prompt id
        of `koala.scoring.judge.PROMPTS`, `koala` only), progress (`bool`, True),
        return_records (`bool`, True).
    confidence (`float`, optional): e.g. `0.95` adds `score_ci` (10 x the mean rating over
        the rated items of each resample; from the ratings obtained, no extra judge call): a
        seeded percentile bootstrap interval (`low`, `high`, `confidence`, `method`,
        `n_resamples`, `seed`, `cluster`, `n_clusters`, `dropped`; `null` bounds when
        undefined).
    n_resamples (`int`, default 1000), seed (`int`, default 0): the bootstrap draws.
    clusters (`list`, optional): one key per item; whole clusters are resampled.
Returns:
    score (`float`, 0-100; nothing in the mean: `None` under `koala`, 0.0 under
        `published`): 10 x mean grade;
    mean_rating (`float`); protocol (`str`); mean_rule (`str`: what the mean is over);
    num_items, num_in_mean, num_scored, num_empty, num_no_rating, num_unparsable,
    num_judge_failed (`int`); not_in_mean (`dict`: status -> count); judge_model, judge_url,
    prompt_id, prompt_hash, prompt_source (`"builtin"`, `"fastchat"` or the file path) (`str`);
    reference_guided (`bool`); temperature (`float`); max_tokens, requests_sent, cache_hits
    (`int`); cache_path; score_ci (`dict`, with `confidence`); records (`list` of `dict`:
    index, status ok/empty/no_rating/unparsable/judge_failed, rating, judgement, error, ...).
Examples:
    >>> judge = evaluate.load("metrics/llm_judge")
    >>> judge.compute(predictions=["서울입니다."], instructions=["한국의 수도는 어디인가요?"],
    ...               base_url="http://localhost:8000/v1", model="gpt-4o-mini")["score"]
    90.0
"""


class LLMJudge(metric_base.KoalaMetric):
    scorer = staticmethod(judge_scores)
    description = _DESCRIPTION
    kwargs_description = _KWARGS_DESCRIPTION
    citation = _CITATION
    reference_urls = (
        "https://github.com/scai-research/KoALa-Bench",
        "https://arxiv.org/abs/2306.05685",
    )
    # an input column, so it also works with `add_batch`; evaluate would silently drop
    # `references` (not an input here): the base refuses it with this message instead
    features: ClassVar = {"predictions": "string", "instructions": "string"}
    no_references_message = (
        "llm_judge takes no `references`: pass the instructions as `instructions=` and reference "
        "answers (for reference-guided grading) as `reference_answers=`"
    )
    rename: ClassVar = {"predictions": "answers"}  # judge_scores(instructions, answers, ...)
    required = ("base_url", "model")
    missing_message = (
        "llm_judge needs the judge server and model: compute(..., "
        "base_url='http://host:port/v1', model='gpt-4o-mini')"
    )
