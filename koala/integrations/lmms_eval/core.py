"""What the lmms-eval task package of KoALa-Bench is made of: the tasks and groups (from the
builder registry), and the functions its YAML files name (through ``utils.py``).

One lmms-eval task per config that is not a union (``koala_sqa_click``, ``koala_pa_qa_noisy``);
a task asked in several conditions (SCA-QA: ``text``, ``counterfactual``, ``original``) is one
lmms-eval task per condition (``koala_sca_qa_kpop_text``, ...) under a group named after the
config (``koala_sca_qa_kpop``). A union config (``sqa``, ``sqa_noisy``) is a group of its
subsets' tasks (``koala_sqa``): it asks every row once.

Everything a task does is the koala task's own (:mod:`koala.tasks`): the prompt is
:meth:`~koala.tasks.base.Task.build_prompt` with the config's first prompt variant (lmms-eval
asks one prompt; koala-bench's "best of the variants" is not reproduced), the labels shown
:meth:`~koala.tasks.base.Task.shown_labels`, the reference :meth:`~koala.tasks.base.Task.ref`,
and the metrics :meth:`~koala.tasks.base.Task.score` on the records :func:`process_results`
builds, which are the records of a koala-bench run (:mod:`koala.predictions`). So the harness's
metrics are koala-bench's: corpus CER "sum of edits / sum of reference lengths" (not a mean of
per-item CERs), choice accuracy with unparsed answers counted wrong (and counted), PA-QA accuracy
per evidence segment. SCF needs the three conditions of a row together: ``koala-bench import
lmms-eval`` computes it from the ``--log_samples`` output.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUDIO_COLUMN",
    "METRICS",
    "PREFIX",
    "PROTOCOL",
    "TASK_COLUMN",
    "LmmsTask",
    "aggregate",
    "doc_to_audio",
    "doc_to_target",
    "doc_to_text",
    "lmms_groups",
    "lmms_tasks",
    "process_docs_for",
    "process_results",
    "record_of_sample",
]

PREFIX = "koala_"
#: the scoring protocol of the package (the labels shown and the answer reading)
PROTOCOL = "koala"
#: the column :func:`process_docs_for` adds to every row: the lmms-eval task it belongs to
TASK_COLUMN = "koala_task"
#: the output of the text-only SCA-QA condition: "a 1 s silent clip", as the runner's default
#: ``--sca-text-audio silence`` (the published code does the same)
TEXT_AUDIO_SECONDS = 1.0
AUDIO_COLUMN = "audio"

_SEGMENT_METRICS = {
    "accuracy_front": "front",
    "accuracy_front_middle": "front-middle",
    "accuracy_middle_late": "middle-late",
    "accuracy_late": "late",
}
#: per koala task: its lmms-eval metrics and whether higher is better
METRICS: dict[str, tuple[tuple[str, bool], ...]] = {
    "asr": (("cer", False),),
    "st": (("bleu", True),),
    "sqa": (("accuracy", True), ("unparsed", False)),
    "sif": (("score", True),),
    "sca_qa": (("accuracy", True), ("unparsed", False)),
    "pa_qa": (
        ("accuracy", True),
        *((m, True) for m in _SEGMENT_METRICS),
        ("unparsed", False),
    ),
}


@dataclass(frozen=True)
class LmmsTask:
    """One lmms-eval task: a config asked in one condition."""

    name: str
    config: str
    condition: str
    task: str  # the koala task


@functools.cache
def lmms_tasks() -> dict[str, LmmsTask]:
    """Every lmms-eval task of the package, by name, in registry order."""
    from koala.builder.registry import load_registry
    from koala.tasks import get_task

    out: dict[str, LmmsTask] = {}
    for name, spec in load_registry().items():
        task = get_task(spec.task)
        if spec.union or task.name not in METRICS:
            continue
        many = len(task.conditions) > 1
        for condition in task.conditions:
            if condition in task.optional_conditions and spec.noise != "clean":
                # "null where not published: the noisy files have none" (sca_qa.yaml): the
                # builder gives a noisy row no original speech, so the task would be empty
                continue
            lname = f"{PREFIX}{name}" + (f"_{condition}" if many else "")
            out[lname] = LmmsTask(lname, name, condition, task.name)
    return out


@functools.cache
def lmms_groups() -> dict[str, tuple[str, ...]]:
    """Every group: a multi-condition config (its conditions' tasks), a union config (its
    subsets' tasks or groups, of the same noise)."""
    from koala.builder.registry import load_registry

    registry = load_registry()
    tasks = lmms_tasks()
    by_config: dict[str, list[str]] = {}
    for t in tasks.values():
        by_config.setdefault(t.config, []).append(t.name)
    groups: dict[str, tuple[str, ...]] = {
        f"{PREFIX}{config}": tuple(names) for config, names in by_config.items() if len(names) > 1
    }
    single = {
        (spec.subsets[0].name, spec.task, spec.noise): name
        for name, spec in registry.items()
        if not spec.union and len(spec.subsets) == 1
    }
    for name, spec in registry.items():
        if not spec.union or spec.task not in METRICS:
            continue
        members = [single.get((s.name, spec.task, spec.noise)) for s in spec.subsets]
        if None in members:
            continue  # a subset without its own config of this noise
        groups[f"{PREFIX}{name}"] = tuple(f"{PREFIX}{m}" for m in members if m is not None)
    return groups


def _spec(doc: Mapping[str, Any]) -> LmmsTask:
    name = doc.get(TASK_COLUMN)
    spec = lmms_tasks().get(str(name))
    if spec is None:
        raise ValueError(
            f"row {doc.get('id')!r}: no {TASK_COLUMN!r} column naming a KoALa-Bench task "
            f"(got {name!r}); the task YAML's process_docs adds it"
        )
    return spec


def process_docs_for(name: str) -> Callable[[Any], Any]:
    """The ``process_docs`` of the lmms-eval task ``name``: adds the :data:`TASK_COLUMN`
    column and keeps only the rows that are asked in its condition (the ``original`` speech of
    SCA-QA is not published for every row)."""
    spec = lmms_tasks().get(name)
    if spec is None:
        raise AttributeError(f"no KoALa-Bench lmms-eval task {name!r}")

    def process_docs(dataset: Any) -> Any:
        from koala.tasks import get_task

        task = get_task(spec.task)
        col = task.audio_column(spec.condition)
        if spec.condition in task.optional_conditions and col is not None:
            import datasets

            present = dataset.select_columns([col]).cast_column(col, datasets.Audio(decode=False))
            keep = [i for i, v in enumerate(present[col]) if v is not None]
            dataset = dataset.select(keep)
        return dataset.add_column(TASK_COLUMN, [name] * len(dataset))

    process_docs.__name__ = f"process_docs_{name}"
    return process_docs


def doc_to_audio(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The clip a row sends in its task's condition, decoded as lmms-eval's audio tasks give
    it (``[{"array", "sampling_rate"}]``); the text-only condition sends a 1 s silent clip."""
    from koala.models import as_audio, silence
    from koala.tasks import get_task

    spec = _spec(doc)
    col = get_task(spec.task).audio_column(spec.condition)
    audio = silence(TEXT_AUDIO_SECONDS) if col is None else as_audio(doc[col])
    if audio is None:
        raise ValueError(f"{spec.name} row {doc.get('id')!r}: column {col!r} has no audio")
    return [{"array": audio.array, "sampling_rate": audio.sampling_rate}]


@functools.cache
def _prompts() -> Any:
    from koala.prompts import load_prompts

    return load_prompts()


def _variant(config: str, subset: Any) -> Any:
    """The first prompt variant of a row (its subset's, else the config's, else the task's)."""
    return _prompts().variants(config, subset)[0]


def doc_to_text(
    doc: Mapping[str, Any], lmms_eval_specific_kwargs: Mapping[str, Any] | None = None
) -> str:
    """The koala task's prompt of the row (first variant, koala protocol), between the
    ``pre_prompt`` and ``post_prompt`` of ``lmms_eval_specific_kwargs`` (empty by default)."""
    from koala.tasks import get_task

    spec = _spec(doc)
    kw = lmms_eval_specific_kwargs or {}
    variant = _variant(spec.config, doc.get("subset"))
    prompt = get_task(spec.task).build_prompt(variant, doc, spec.condition, PROTOCOL)
    return f"{kw.get('pre_prompt') or ''}{prompt}{kw.get('post_prompt') or ''}"


def doc_to_target(doc: Mapping[str, Any]) -> str:
    """The gold answer of the row in its condition, as text (what lmms-eval logs as
    ``target``): the label for a choice task (the counterfactual one in SCA-QA's
    counterfactual condition), the transcript, the translation, the reference answer."""
    from koala.tasks import get_task

    spec = _spec(doc)
    task = get_task(spec.task)
    if task.multiple_choice:
        field = "counterfactual_answer" if spec.condition == "counterfactual" else "answer"
    else:
        field = next((f for f in ("text", "reference", "reference_answer") if f in doc), "id")
    return str(doc.get(field) or "")


def _record(doc: Mapping[str, Any], prediction: str) -> dict[str, Any]:
    from koala.tasks import get_task

    spec = _spec(doc)
    task = get_task(spec.task)
    variant = _variant(spec.config, doc.get("subset"))
    shown = task.shown_labels(doc, PROTOCOL)
    return {
        "task": spec.task,
        "config": spec.config,
        "variant": variant.name,
        "condition": spec.condition,
        "id": str(doc["id"]),
        "ref": task.ref(doc),
        "status": "ok",
        "prediction": prediction,
        "logprobs": None,
        "shown_labels": list(shown) if shown is not None else None,
        "subset": doc.get("subset"),
        "noise": doc.get("noise"),
        "prompt": task.build_prompt(variant, doc, spec.condition, PROTOCOL),
        "lmms_task": spec.name,
        "protocol": PROTOCOL,
    }


def process_results(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """One koala-bench record per row (what scoring and ``koala-bench import`` read), under
    each metric of the task: ``task, config, variant, condition, id, ref, status, prediction,
    logprobs, shown_labels, subset, noise, prompt, lmms_task, protocol``."""
    answer = results[0] if results else ""
    rec = _record(doc, "" if answer is None else str(answer))
    return {metric: rec for metric, _ in METRICS[rec["task"]]}


def record_of_sample(sample: Mapping[str, Any]) -> dict[str, Any] | None:
    """The koala-bench record in one ``--log_samples`` line (under any metric), or ``None``."""
    for value in sample.values():
        if isinstance(value, Mapping) and {"task", "config", "condition", "id", "ref"} <= set(
            value
        ):
            return dict(value)
    return None


def _judge() -> dict[str, Any] | None:
    url, model = os.environ.get("KOALA_JUDGE_URL"), os.environ.get("KOALA_JUDGE_MODEL")
    return {"base_url": url, "model": model} if url and model else None


def _scores(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The koala task's metrics of one lmms-eval task's records (generation mode)."""
    from koala.tasks import get_task

    recs = [dict(r) for r in items]
    if not recs:
        return {}
    task = get_task(recs[0]["task"])
    if len(task.conditions) > 1:
        # one condition: its accuracy against its own gold (the counterfactual condition
        # follows the counterfactual answer), as SCF's per-condition accuracies
        cond = recs[0]["condition"]
        if cond == "counterfactual":
            for r in recs:
                r["ref"] = {**r["ref"], "answer": r["ref"]["counterfactual_answer"]}
        return task.score_mode(recs, "gen", PROTOCOL)  # type: ignore[attr-defined]
    options = {"st_metrics": ["bleu"], "judge": _judge()}
    return task.score(recs, PROTOCOL, None, options)["gen"]


def aggregate(metric: str) -> Callable[[Sequence[Mapping[str, Any]]], float]:
    """The lmms-eval aggregation of ``metric``: the koala task's scoring over all the records
    (NaN when the task did not score, e.g. SIF without a judge)."""

    def agg(items: Sequence[Mapping[str, Any]]) -> float:
        res = _scores(items)
        value = (
            (res.get("segment_accuracy") or {}).get(_SEGMENT_METRICS[metric])
            if metric in _SEGMENT_METRICS
            else res.get(metric)
        )
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan

    agg.__name__ = f"aggregate_{metric}"
    return agg
