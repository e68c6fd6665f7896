"""KoALa-Bench as inspect_ai tasks: ``inspect eval koala/integrations/inspect_tasks.py@koala_sqa
-T config=sqa_click -T data=DIR --model ...`` (see ``INSPECT.md`` beside this file).

Everything benchmark-specific comes from the project's own task objects
(:func:`koala.tasks.config_task`): the conditions and the audio column each sends, the prompt
of each prompt variant (:meth:`~koala.tasks.base.Task.build_prompt`), the labels shown and the
reference fields (:meth:`~koala.tasks.base.Task.ref`). One inspect ``Sample`` is one request of
``koala-bench run``: a (row, condition, prompt variant), id ``"{config}|{variant}|{condition}|
{id}"``, the clip sent as a WAV data URI (``ContentAudio``) followed by the prompt text, and
metadata carrying what a koala-bench record carries (so :mod:`koala.integrations.inspect_import`
needs nothing else). SCA-QA's text-only condition sends a 1 s silent clip, or no audio with
``text_audio="none"``, as ``koala-bench run --sca-text-audio`` does. Temperature 0.

The scorer stores each answer (and, for multiple choice, the label koala reads from it); the
metric :func:`koala_figures` rebuilds koala-bench records from the samples and scores them with
:func:`koala.score.score_config`, so the figures inspect prints are koala-bench's: per config
(the noise is part of the config name), prompt variant and, for a union config, subset, named
``"{config}/{variant}/{figure}"``, ``"{config}/{subset}/{variant}/{figure}"`` and
``"{config}/best/{main metric}"``. SIF is rated by an LLM judge through inspect's model API
(:func:`sif_judge`: the project's judge prompt, temperature 0; the figure is "10 x mean rating").
Samples inspect could not answer (an error) are not scored by inspect; the importer records them
as failed, and koala-bench then counts them as wrong answers.
"""

from __future__ import annotations

import base64
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessageSystem,
    ChatMessageUser,
    ContentAudio,
    ContentText,
    GenerateConfig,
    get_model,
)
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState, generate

from koala.predictions import OK
from koala.tasks import config_task
from koala.tasks.base import Task as KoalaTask
from koala.tasks.base import shown_gold

__all__ = [
    "SAMPLE_FIELDS",
    "canary_answer",
    "canary_figures",
    "canary_samples",
    "koala",
    "koala_answer",
    "koala_asr",
    "koala_canary",
    "koala_dataset",
    "koala_figures",
    "koala_pa_qa",
    "koala_sca_qa",
    "koala_sif",
    "koala_sqa",
    "koala_st",
    "record_from_sample",
    "record_to_sample",
    "sample_id",
    "sif_judge",
    "sif_score",
    "wav_data_uri",
]

#: what every sample's metadata carries (a koala-bench record's request fields)
SAMPLE_FIELDS = (
    "config",
    "task",
    "variant",
    "condition",
    "id",
    "subset",
    "noise",
    "ref",
    "shown_labels",
)
SILENCE_SECONDS = 1.0  # the text-only condition's clip, as koala.plan does
JUDGED_TASKS = frozenset({"sif"})  # rated by an LLM judge (through inspect's model API)


# ------------------------------------------------------------------------------- samples


def sample_id(config: str, variant: str, condition: str, row_id: str) -> str:
    """The id of one request: ``"{config}|{variant}|{condition}|{id}"``."""
    return f"{config}|{variant}|{condition}|{row_id}"


def wav_data_uri(value: Any, where: str = "audio") -> str:
    """A stored (undecoded) audio value ``{bytes, path}`` as ``data:audio/wav;base64,...``:
    WAV bytes are sent as stored; anything else is decoded and written as 16-bit WAV."""
    raw = value.get("bytes") if isinstance(value, Mapping) else None
    if not (isinstance(raw, bytes) and raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"):
        from koala.data import decode_audio
        from koala.models import wav_bytes

        raw = wav_bytes(decode_audio(value, where))
    return "data:audio/wav;base64," + base64.b64encode(raw).decode("ascii")


def _silence_uri() -> str:
    from koala.models import silence, wav_bytes

    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(silence(SILENCE_SECONDS))).decode(
        "ascii"
    )


def _target(spec: KoalaTask, ref: Mapping[str, Any], condition: str, shown: Any) -> str:
    """The gold label in the labels shown (multiple choice), else the reference text."""
    if spec.multiple_choice:
        return _gold({"ref": ref, "shown_labels": shown, "condition": condition})[1]
    for field in ("text", "reference", "reference_answer"):
        if isinstance(ref.get(field), str):
            return ref[field]
    return ""


def record_to_sample(
    row: Mapping[str, Any],
    *,
    config: str,
    prompts: Any = None,
    protocol: str = "koala",
    text_audio: str = "silence",
    variants: Sequence[str] | None = None,
    _uris: dict[str, str] | None = None,
) -> list[Sample]:
    """The samples of one exported row: one per condition of its task and prompt variant
    (``prompts``: a :class:`koala.prompts.PromptSet`, default the project's), as
    ``koala-bench run`` builds its requests (a condition whose audio column is null for the
    row is skipped when optional, as unpublished original SCA-QA speech is)."""
    from koala.prompts import load_prompts

    spec = config_task(config)
    prompts = prompts or load_prompts()
    if text_audio not in ("silence", "none"):
        raise ValueError(f"text_audio={text_audio!r}: use 'silence' or 'none'")
    rid = row.get("id")
    if rid in (None, ""):
        raise ValueError(f"config {config}: a row without an 'id'")
    rid = str(rid)
    ref = spec.ref(row)
    shown = spec.shown_labels(row, protocol)
    uris = {} if _uris is None else _uris
    out: list[Sample] = []
    for condition in spec.conditions:
        col = spec.audio_column(condition)
        if col is not None and row.get(col) is None:
            if condition in spec.optional_conditions:
                continue
            raise ValueError(f"config {config} row {rid}: no audio in column {col!r}")
        if col is None:
            uri = uris.setdefault("<silence>", _silence_uri()) if text_audio == "silence" else None
        else:
            uri = wav_data_uri(row[col], f"config {config} row {rid} field {col!r}")
        for v in prompts.variants(config, row.get("subset")):
            if variants and v.name not in variants:
                continue
            prompt = spec.build_prompt(v, row, condition, protocol)
            content: list[Any] = [ContentText(text=prompt)]
            if uri is not None:
                content.insert(0, ContentAudio(audio=uri, format="wav"))
            meta = {
                "config": config,
                "task": spec.name,
                "variant": v.name,
                "condition": condition,
                "id": rid,
                "subset": row.get("subset"),
                "noise": row.get("noise"),
                "ref": ref,
                "shown_labels": list(shown) if shown is not None else None,
                "protocol": protocol,
                "text_audio": text_audio if col is None else None,
            }
            out.append(
                Sample(
                    input=[ChatMessageUser(content=content)],
                    target=_target(spec, ref, condition, meta["shown_labels"]),
                    id=sample_id(config, v.name, condition, rid),
                    metadata=meta,
                )
            )
    return out


def koala_dataset(
    configs: str | Sequence[str],
    data: str | None = None,
    *,
    prompts: str | None = None,
    protocol: str = "koala",
    text_audio: str = "silence",
    limit: int | None = None,
    variants: str | Sequence[str] | None = None,
) -> MemoryDataset:
    """Every request of ``configs`` (comma separated or a list) from the export ``data``
    (default: ``$KOALA_BENCH_DATA``), ``limit`` rows per config, as inspect samples."""
    import os

    from koala.data import DATA_ENV, load_config
    from koala.prompts import load_prompts

    data = data or os.environ.get(DATA_ENV)
    if not data:
        raise ValueError(f"no data: pass -T data=DIR (a koala-bench export) or set {DATA_ENV}")
    names = _names(configs)
    chosen = _names(variants) if variants else None
    prompt_set = load_prompts(prompts)
    samples: list[Sample] = []
    uris: dict[str, str] = {}
    for config in names:
        for row in load_config(data, config, limit):
            samples += record_to_sample(
                row,
                config=config,
                prompts=prompt_set,
                protocol=protocol,
                text_audio=text_audio,
                variants=chosen,
                _uris=uris,
            )
    return MemoryDataset(samples, name="koala-bench:" + ",".join(names))


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [s.strip() for s in items if s.strip()]


# ------------------------------------------------------------------------------- scoring


def _gold(rec: Mapping[str, Any]) -> tuple[list[str], str]:
    """The labels shown and the gold of a record's condition: ``<condition>_answer`` where
    the row has one (SCA-QA's counterfactual speech), else ``answer``."""
    field = f"{rec.get('condition')}_answer"
    return shown_gold(rec, field if field in rec["ref"] else "answer")


def _read_label(rec: Mapping[str, Any], answer: str) -> tuple[str | None, float]:
    """The label koala reads from ``answer`` and whether it is the condition's gold."""
    from koala.scoring.choices import choice_accuracy

    labels, gold = _gold(rec)
    out = choice_accuracy(
        [answer],
        [gold],
        choices=[rec["ref"].get("choices")],
        labels=[labels],
        return_items=True,
        protocol="koala",
    )
    label = out["predicted_labels"][0]
    return label, float(label is not None and label == out["gold_labels"][0])


def _item_value(spec: KoalaTask, rec: Mapping[str, Any], protocol: str) -> float | str:
    """A per-sample figure for the log: the task's main metric on the one answer (CER,
    sentence BLEU); ``"unscored"`` where it has none."""
    from koala.tasks.base import value_of

    try:
        res = spec.score([rec], protocol, None, {"st_metrics": (spec.main_metric,)})
        v = value_of(res.get("gen", {}), spec.main_metric)
    except Exception:
        v = None
    return v if v is not None else "unscored"


@scorer(metrics=[])
def koala_answer(protocol: str = "koala") -> Scorer:
    """Store the answer of each sample (``Score.answer``) and, for multiple choice, the label
    koala reads from it (``metadata["label"]``; value 1 when it is the gold of the sample's
    condition); the figures are :func:`koala_figures`'s."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = state.output.completion if state.output else ""
        rec = record_from_sample(state.metadata, answer)
        spec = config_task(rec["config"])
        meta = {"status": OK, "epoch": state.epoch}
        if spec.multiple_choice:
            label, value = _read_label(rec, answer)
            return Score(value=value, answer=answer, metadata=meta | {"label": label})
        return Score(value=_item_value(spec, rec, protocol), answer=answer, metadata=meta)

    return score


def record_from_sample(
    metadata: Mapping[str, Any], answer: str | None, status: str = OK
) -> dict[str, Any]:
    """A koala-bench record (:mod:`koala.predictions`) of one sample's metadata and answer."""
    missing = [
        f for f in ("config", "task", "variant", "condition", "id", "ref") if f not in metadata
    ]
    if missing:
        raise ValueError(f"not a koala-bench sample: its metadata lacks {missing}")
    rec = {f: metadata.get(f) for f in SAMPLE_FIELDS}
    rec.update(status=status, prediction=answer if status == OK else None, logprobs=None)
    return rec


def _figures(res: Mapping[str, Any], prefix: str, out: dict[str, float]) -> None:
    """The finite float figures of one result (one level of nesting, ``key.sub``)."""
    for k, v in res.items():
        if isinstance(v, float) and math.isfinite(v):
            out[f"{prefix}/{k}"] = v
        elif isinstance(v, Mapping):
            for sub, x in v.items():
                if isinstance(x, float) and math.isfinite(x):
                    out[f"{prefix}/{k}.{sub}"] = x


def _by_epoch(scores: Sequence[SampleScore]) -> dict[int, list[SampleScore]]:
    """The scores of each epoch (``Score.metadata["epoch"]``, 1 where absent)."""
    out: dict[int, list[SampleScore]] = defaultdict(list)
    for s in scores:
        out[int((s.score.metadata or {}).get("epoch") or 1)].append(s)
    return dict(sorted(out.items()))


def _mean_over_epochs(per_epoch: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each figure's mean over the epochs (figures every epoch has; one epoch: its figures)."""
    if not per_epoch:
        return {}
    keys = set(per_epoch[0]).intersection(*per_epoch[1:])
    return {k: math.fsum(e[k] for e in per_epoch) / len(per_epoch) for k in sorted(keys)}


def _epoch_figures(
    scores: list[SampleScore], protocol: str, st_metrics: list[str] | None
) -> dict[str, float]:
    """koala-bench's figures of one epoch's samples (see :func:`koala_figures`)."""
    from koala.score import score_config
    from koala.tasks.st import ST_METRICS

    by_config: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        rec = record_from_sample(s.sample_metadata or {}, s.score.answer or "")
        by_config[rec["config"]].append(rec)
    out: dict[str, float] = {}
    for config, recs in sorted(by_config.items()):
        c = score_config(
            config,
            recs,
            tuple(st_metrics or ST_METRICS),
            task=recs[0]["task"],
            protocol=protocol,
        )
        for variant, res in c.get("variants", {}).items():
            _figures(res.get("gen", {}), f"{config}/{variant}", out)
        for subset, by_variant in (c.get("subsets") or {}).items():
            for variant, res in by_variant.items():
                _figures(res.get("gen", {}), f"{config}/{subset}/{variant}", out)
        best = (c.get("best") or {}).get("gen")
        if best and isinstance(best.get("value"), float) and math.isfinite(best["value"]):
            out[f"{config}/best/{best['metric']}"] = best["value"]
    return out


@metric(scores="unreduced")
def koala_figures(protocol: str = "koala", st_metrics: list[str] | None = None) -> Metric:
    """koala-bench's figures of the scored samples (:func:`koala.score.score_config` on
    records rebuilt from them): per config, prompt variant and, for a union config, subset,
    every figure of the generation mode, and the main metric of the variant koala shows.

    The metric takes every epoch's answers (``scores="unreduced"``: inspect's epoch reducers
    would merge the answers of a sample, and a mean reducer keeps none when they differ). With
    ``--epochs N`` each epoch is scored as a run of its own and each figure is the mean of the
    N epochs' figures."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        per_epoch = [
            _epoch_figures(group, protocol, st_metrics) for group in _by_epoch(scores).values()
        ]
        return _mean_over_epochs(per_epoch)

    return compute


# ------------------------------------------------------------------------------ SIF judge


def sif_score(ratings: Sequence[float | None]) -> float | None:
    """The SIF figure (:mod:`koala.scoring.judge`): "10 x mean rating over the judged items
    with one valid [[x]] in 1-10 and the empty answers (rated 1 without a judge call);
    unparsable and judge_failed items are not in the mean"."""
    got = [r for r in ratings if r is not None and not math.isnan(r)]
    return 10.0 * math.fsum(got) / len(got) if got else None


def _sif_epoch(scores: Sequence[SampleScore]) -> dict[str, float]:
    mds = [s.sample_metadata or {} for s in scores]
    subsets: dict[str, set[Any]] = defaultdict(set)
    for md in mds:
        subsets[str(md.get("config"))].add(md.get("subset"))
    groups: dict[str, list[float | None]] = defaultdict(list)
    for s, md in zip(scores, mds, strict=True):
        v = s.score.value
        rating = float(v) if isinstance(v, int | float) else None
        config, variant = md.get("config"), md.get("variant")
        groups[f"{config}/{variant}"].append(rating)
        if len(subsets[str(config)]) > 1:
            groups[f"{config}/{md.get('subset')}/{variant}"].append(rating)
    return {f"{k}/score": v for k, rs in sorted(groups.items()) if (v := sif_score(rs)) is not None}


@metric(scores="unreduced")
def sif_figures() -> Metric:
    """SIF's judge score per config and prompt variant (and subset of a union config):
    ``"{config}[/{subset}]/{variant}/score"``; with ``--epochs N``, the mean of the N
    epochs' scores (as :func:`koala_figures`)."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        return _mean_over_epochs([_sif_epoch(g) for g in _by_epoch(scores).values()])

    return compute


@scorer(metrics=[sif_figures()])
def sif_judge(judge: str | None = None) -> Scorer:
    """Rate each answer with an LLM judge through inspect's model API (``judge``: a model
    name, else the model of the ``grader`` role, else the evaluated model), temperature 0,
    with the project's judge prompt (:data:`koala.scoring.judge.DEFAULT_PROMPT`) and rating
    rule (:func:`koala.scoring.judge_prompts.parse_rating`). "An empty model answer is never
    sent to the judge": under ``koala`` it is rated 1, the lowest rating; a judgement without
    a valid rating is not in the mean (its value is NaN)."""
    from koala.scoring.judge import DEFAULT_PROMPT, MAX_TOKENS, PROMPTS, parse_rating

    prompt = PROMPTS[DEFAULT_PROMPT]

    async def score(state: TaskState, target: Target) -> Score:
        answer = state.output.completion if state.output else ""
        if not answer.strip():
            return Score(
                value=1.0,
                answer=answer,
                metadata={"status": OK, "judge": "empty", "epoch": state.epoch},
            )
        instruction = state.metadata["ref"]["instruction"]
        messages = []
        for m in prompt.messages(instruction, answer):
            cls = ChatMessageSystem if m["role"] == "system" else ChatMessageUser
            messages.append(cls(content=m["content"]))
        model = get_model(judge, role="grader") if judge else get_model(role="grader")
        out = await model.generate(
            messages, config=GenerateConfig(temperature=0.0, max_tokens=MAX_TOKENS["koala"])
        )
        rating, error = parse_rating(out.completion, "koala")
        return Score(
            value=rating if rating is not None else math.nan,
            answer=answer,
            explanation=out.completion,
            metadata={
                "status": OK,
                "judge": "ok" if rating is not None else "unparsable",
                "epoch": state.epoch,
            }
            | ({"error": error} if error else {}),
        )

    return score


# --------------------------------------------------------------------------------- tasks


def _koala_task(
    expected: str | None,
    config: str | Sequence[str],
    data: str | None,
    prompts: str | None,
    protocol: str,
    text_audio: str,
    limit: int | None,
    variants: str | Sequence[str] | None,
    st_metrics: str | Sequence[str] | None = None,
    judge: str | None = None,
) -> Task:
    from koala.scoring.protocol import check_protocol

    check_protocol(protocol)
    names = _names(config)
    if not names:
        raise ValueError("no config: pass -T config=NAME (several: NAME,NAME)")
    tasks = {config_task(c).name for c in names}
    if len(tasks) != 1 or (expected is not None and tasks != {expected}):
        want = f"of task {expected!r}" if expected else "of one task"
        raise ValueError(f"configs {names} are of tasks {sorted(tasks)}; pass configs {want}")
    dataset = koala_dataset(
        names,
        data,
        prompts=prompts,
        protocol=protocol,
        text_audio=text_audio,
        limit=limit,
        variants=variants,
    )
    judged = tasks <= JUDGED_TASKS
    scorer_ = sif_judge(judge) if judged else koala_answer(protocol)
    metrics = (
        [sif_figures()]
        if judged
        else [koala_figures(protocol, _names(st_metrics) if st_metrics else None)]
    )
    return Task(
        dataset=dataset,
        solver=generate(),
        scorer=scorer_,
        metrics=metrics,
        config=GenerateConfig(temperature=0.0),
        name="koala_" + tasks.pop(),
        metadata={"koala_configs": names, "protocol": protocol, "text_audio": text_audio},
    )


@task
def koala(
    config: str,
    data: str | None = None,
    prompts: str | None = None,
    protocol: str = "koala",
    text_audio: str = "silence",
    limit: int | None = None,
    variants: str | None = None,
    st_metrics: str | None = None,
    judge: str | None = None,
) -> Task:
    """Any config (or several of one task, comma separated), of any registered task."""
    return _koala_task(
        None, config, data, prompts, protocol, text_audio, limit, variants, st_metrics, judge
    )


@task
def koala_asr(
    config: str = "asr",
    data: str | None = None,
    prompts: str | None = None,
    limit: int | None = None,
    variants: str | None = None,
) -> Task:
    """ASR: Korean character error rate (``cer``, lower is better)."""
    return _koala_task("asr", config, data, prompts, "koala", "silence", limit, variants)


@task
def koala_st(
    config: str = "st",
    data: str | None = None,
    prompts: str | None = None,
    protocol: str = "koala",
    limit: int | None = None,
    variants: str | None = None,
    st_metrics: str | None = None,
) -> Task:
    """ST: English-to-Korean speech translation (BLEU, METEOR, BERTScore)."""
    return _koala_task(
        "st", config, data, prompts, protocol, "silence", limit, variants, st_metrics
    )


@task
def koala_sqa(
    config: str = "sqa",
    data: str | None = None,
    prompts: str | None = None,
    protocol: str = "koala",
    limit: int | None = None,
    variants: str | None = None,
) -> Task:
    """SQA: multiple-choice spoken question answering (accuracy)."""
    return _koala_task("sqa", config, data, prompts, protocol, "silence", limit, variants)


@task
def koala_sif(
    config: str = "sif",
    data: str | None = None,
    prompts: str | None = None,
    limit: int | None = None,
    variants: str | None = None,
    judge: str | None = None,
) -> Task:
    """SIF: speech instruction following, rated by an LLM judge (``judge``, else the
    ``grader`` model role, else the evaluated model)."""
    return _koala_task(
        "sif", config, data, prompts, "koala", "silence", limit, variants, judge=judge
    )


@task
def koala_sca_qa(
    config: str = "sca_qa",
    data: str | None = None,
    prompts: str | None = None,
    protocol: str = "koala",
    text_audio: str = "silence",
    limit: int | None = None,
    variants: str | None = None,
) -> Task:
    """SCA-QA: the three conditions and Speech Context Faithfulness (``scf``)."""
    return _koala_task("sca_qa", config, data, prompts, protocol, text_audio, limit, variants)


@task
def koala_pa_qa(
    config: str = "pa_qa",
    data: str | None = None,
    prompts: str | None = None,
    protocol: str = "koala",
    limit: int | None = None,
    variants: str | None = None,
) -> Task:
    """PA-QA: accuracy by the segment of the passage that holds the evidence."""
    return _koala_task("pa_qa", config, data, prompts, protocol, "silence", limit, variants)


# -------------------------------------------------------------------------------- canary

CANARY_CLIPS = ("own", "silence", "other")


def canary_samples(
    config: str, rows: Sequence[Mapping[str, Any]], prompts: Any = None, protocol: str = "koala"
) -> list[Sample]:
    """The canary's samples, as ``koala-bench check`` sends them (:mod:`koala.check`): each
    row (those with audio) three times with its first prompt variant, with its own clip
    (``own``), silence as long (``silence``) and the next row's clip (``other``, the last row
    the first row's); id ``"canary|{clip}|{id}"``."""
    from koala.data import decode_audio
    from koala.models import silence, wav_bytes
    from koala.prompts import load_prompts

    spec = config_task(config)
    prompts = prompts or load_prompts()
    condition = next(c for c in spec.conditions if spec.audio_column(c) is not None)
    col = spec.audio_column(condition)
    picked = [r for r in rows if r.get(col) is not None]
    if len(picked) < 2:
        raise ValueError(f"koala_canary: config {config} has {len(picked)} row(s) with audio")
    out: list[Sample] = []
    for k, row in enumerate(picked):
        rid = str(row["id"])
        other = picked[(k + 1) % len(picked)]
        prompt = spec.build_prompt(
            prompts.variants(config, row.get("subset"))[0], row, condition, protocol
        )
        own = decode_audio(row[col], f"config {config} row {rid} field {col!r}")
        clips = {
            "own": wav_data_uri(row[col]),
            "silence": "data:audio/wav;base64,"
            + base64.b64encode(wav_bytes(silence(own.duration, own.sampling_rate))).decode(),
            "other": wav_data_uri(other[col]),
        }
        for clip in CANARY_CLIPS:
            out.append(
                Sample(
                    input=[
                        ChatMessageUser(
                            content=[
                                ContentAudio(audio=clips[clip], format="wav"),
                                ContentText(text=prompt),
                            ]
                        )
                    ],
                    id=f"canary|{clip}|{rid}",
                    metadata={"canary": clip, "id": rid, "config": config},
                )
            )
    return out


@scorer(metrics=[])
def canary_answer() -> Scorer:
    """Store each canary answer (:func:`canary_figures` compares them)."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = state.output.completion if state.output else ""
        return Score(value=0, answer=answer, metadata={"epoch": state.epoch})

    return score


@metric(scores="unreduced")
def canary_figures() -> Metric:
    """``audio_dependent``: the share of the canary's rows whose answers differ between their
    own clip, silence and another row's clip (first epoch). When none differ the answers do
    not depend on the audio: the metric raises with ``koala-bench check``'s report, and
    inspect ends the eval in error."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        from koala.check import CheckResult, CheckRow

        first = next(iter(_by_epoch(scores).values()), [])
        rows: dict[str, CheckRow] = {}
        config = ""
        for s in first:
            md = s.sample_metadata or {}
            config = str(md.get("config"))
            row = rows.setdefault(str(md["id"]), CheckRow(str(md["id"])))
            row.answers[md["canary"]] = (s.score.answer or "").strip()
        result = CheckResult(config, "speech", list(rows.values()))
        if not result.passed:
            raise RuntimeError(result.report().replace("koala-bench check:", "koala_canary:", 1))
        return {"audio_dependent": result.varied / result.comparable}

    return compute


@task
def koala_canary(
    config: str | None = None,
    data: str | None = None,
    rows: int = 4,
    prompts: str | None = None,
    protocol: str = "koala",
) -> Task:
    """Do the answers depend on the audio? The first ``rows`` rows of ``config`` (default:
    the first ASR config of the export) with their own clip, silence and another row's clip
    (:func:`canary_samples`); the eval ends in error, with every answer shown, when no row's
    answers differ (:func:`canary_figures`)."""
    import os

    from koala.data import DATA_ENV, config_names, load_config
    from koala.prompts import load_prompts, task_of

    data = data or os.environ.get(DATA_ENV)
    if not data:
        raise ValueError(f"no data: pass -T data=DIR (a koala-bench export) or set {DATA_ENV}")
    if config is None:
        names = config_names(data)
        config = next((c for c in names if task_of(c) == "asr"), names[0] if names else None)
        if config is None:
            raise ValueError(f"{data}: no config to check")
    if rows < 2:
        raise ValueError("rows must be >= 2")
    samples = canary_samples(
        config, list(load_config(data, config, rows)), load_prompts(prompts), protocol
    )
    return Task(
        dataset=MemoryDataset(samples, name=f"koala-canary:{config}"),
        solver=generate(),
        scorer=canary_answer(),
        metrics=[canary_figures()],
        config=GenerateConfig(temperature=0.0),
        name="koala_canary",
        metadata={"koala_canary": config},
    )
