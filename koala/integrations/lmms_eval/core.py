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

The audio reaches both kinds of lmms-eval model class. A "simple" class calls
:func:`doc_to_audio` (``doc_to_visual``: ``[{"array", "sampling_rate"}]``, the shape of
lmms-eval's own audio tasks); a chat class calls :func:`doc_to_messages`, which gives one user
turn ``[{"type": "audio", "url": ...}, {"type": "text", "text": prompt}]``, the message shape
of lmms-eval's XModBench task (``tasks/xmod_bench/utils.py``). lmms-eval's classes read that
url differently (a file path for Gemini, Qwen-Omni, MiniCPM-o; a URL the server fetches for
the ``openai``/``vllm``/``litellm`` classes, which send ``audio_url``), and the simple
``openai`` class sends only audio *files* (``input_audio``) and drops arrays. So the form
follows the ``--model`` name, through lmms-eval's own per-model
``lmms_eval_specific_kwargs`` (:data:`MODEL_KWARGS`, written into the YAML files): a WAV file
by default, a ``data:audio/wav;base64`` URI for the OpenAI-style chat classes, a WAV file for
the simple ``openai``/``litellm`` classes, and a refusal (an error naming the reason and the
way that works) where lmms-eval 0.7.3's class drops the audio (``phi4_multimodal``'s chat
class, ``vllm --force_simple``).

lmms-eval batches requests of all tasks together, grouped by their ``generation_kwargs``, and
most model classes read every document of a batch from the batch's *first* task
(``task = task[0]``). So each task's ``generation_kwargs`` carries its own stop sequence
(:func:`stop_sequence`, a string no answer contains): requests of two tasks are never in one
batch.

``koala_canary`` (:data:`CANARY_TASK`) asks the first :data:`CANARY_ROWS` rows of
:data:`CANARY_CONFIG` with their own clip, silence as long and the next row's clip, like
``koala-bench check`` (:mod:`koala.check`), and stops the evaluation (exit status 6) when
every row got the same answer whatever it heard.
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
    "CANARY_CONFIG",
    "CANARY_ROWS",
    "CANARY_TASK",
    "FAILED_MARKERS",
    "METRICS",
    "MODEL_KWARGS",
    "PREFIX",
    "PROTOCOL",
    "TASK_COLUMN",
    "LmmsTask",
    "aggregate",
    "doc_to_audio",
    "doc_to_messages",
    "doc_to_target",
    "doc_to_text",
    "lmms_groups",
    "lmms_tasks",
    "process_docs_for",
    "process_results",
    "record_of_sample",
    "stop_sequence",
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

#: the canary task (see the module docstring), its config, rows, and the columns it adds: the
#: clip condition sent (``own``, ``silence``, ``other``) and the other row's clip
CANARY_TASK = f"{PREFIX}canary"
CANARY_CONFIG = "asr_zeroth"
CANARY_ROWS = 4
CANARY_COLUMN = "koala_canary"
CANARY_CLIP = "koala_canary_clip"

#: what lmms-eval's API classes answer in place of an answer when a request failed: such a
#: record is ``failed`` (counted wrong, as ``koala-bench run`` counts a failed request)
FAILED_MARKERS = ("[LMMS_EVAL_REQUEST_FAILED", "[LMMS_EVAL_BUDGET_EXCEEDED]")

_OPENAI_CHAT = (  # chat classes whose requests carry {"type": "audio_url", "audio_url": {url}}
    "openai",
    "openai_compatible",
    "openai_compatible_chat",
    "async_openai",
    "async_openai_compatible",
    "async_openai_compatible_chat",
    "litellm",
    "litellm_chat",
    "litellm_compatible",
    "vllm",
)
_SIMPLE_FILE = (  # simple classes that send audio files (input_audio) and drop arrays
    "openai",
    "openai_compatible",
    "openai_compatible_chat",
    "litellm",
    "litellm_chat",
    "litellm_compatible",
)
#: ``--model`` name -> how the clip is given to that lmms-eval class (lmms-eval picks a task's
#: ``lmms_eval_specific_kwargs`` entry by the ``--model`` name, else ``default``):
#: ``message_audio`` (:func:`doc_to_messages`: ``file``, the default, or ``data_uri``),
#: ``visual_audio`` (:func:`doc_to_audio`: ``array``, the default, or ``file``) and
#: ``refuse_messages`` / ``refuse_visual``: why that path of the class cannot send audio.
MODEL_KWARGS: dict[str, dict[str, str]] = {
    **{m: {"message_audio": "data_uri"} for m in _OPENAI_CHAT},
    "phi4_multimodal": {
        "refuse_messages": (
            "lmms-eval 0.7.3's phi4_multimodal chat class builds its prompt from the text "
            "parts only (no <|audio_1|> tag), so Phi-4 never hears the clip: run it with "
            "--force_simple --batch_size 1 (the simple class sends the audio)"
        )
    },
}
for _m in _SIMPLE_FILE:
    MODEL_KWARGS[_m]["visual_audio"] = "file"
MODEL_KWARGS["vllm"]["refuse_visual"] = (
    "lmms-eval 0.7.3's simple vllm class sends images and videos only and drops the audio: "
    "run it without --force_simple (its chat class sends the clip as audio_url)"
)

_SEGMENT_METRICS = {
    "accuracy_front": "front",
    "accuracy_front_middle": "front-middle",
    "accuracy_middle_late": "middle-late",
    "accuracy_late": "late",
}
#: the canary's metric: the share of its rows whose answers differ with what they heard
CANARY_METRICS: tuple[tuple[str, bool], ...] = (("audio_dependent", True),)
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


@functools.cache
def canary_task() -> LmmsTask:
    """The canary: :data:`CANARY_CONFIG` in its task's first condition that sends audio."""
    from koala.prompts import task_of
    from koala.tasks import get_task

    task = get_task(task_of(CANARY_CONFIG))
    condition = next(c for c in task.conditions if task.audio_column(c) is not None)
    return LmmsTask(CANARY_TASK, CANARY_CONFIG, condition, task.name)


def stop_sequence(name: str) -> str:
    """The stop sequence of the lmms-eval task ``name`` in its ``generation_kwargs``: a string
    no answer contains, distinct per task, so lmms-eval (which groups requests into batches by
    their ``generation_kwargs``) never puts two tasks' requests in one batch."""
    return f"<|{name}|>"


def _spec(doc: Mapping[str, Any]) -> LmmsTask:
    name = doc.get(TASK_COLUMN)
    if name == CANARY_TASK:
        return canary_task()
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
    if name == CANARY_TASK:
        return _canary_docs
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


def _canary_docs(dataset: Any) -> Any:
    """The canary's rows: the first :data:`CANARY_ROWS` rows with audio, each three times
    (:data:`CANARY_COLUMN` ``own``, ``silence``, ``other``); ``other`` carries the next row's
    clip (the last row the first row's) in :data:`CANARY_CLIP`, as ``koala-bench check``."""
    import datasets

    spec = canary_task()
    from koala.tasks import get_task

    col = get_task(spec.task).audio_column(spec.condition)
    assert col is not None
    raw = dataset.cast_column(col, datasets.Audio(decode=False))
    picked: list[dict[str, Any]] = []
    for row in raw:
        if row.get(col) is not None:
            picked.append(row)
        if len(picked) == CANARY_ROWS:
            break
    if len(picked) < 2:
        raise ValueError(
            f"{CANARY_TASK}: config {spec.config} has {len(picked)} row(s) with audio in "
            f"{col!r}; the canary needs two"
        )
    rows = []
    for k, row in enumerate(picked):
        for cond in ("own", "silence", "other"):
            other = picked[(k + 1) % len(picked)][col] if cond == "other" else None
            rows.append({**row, TASK_COLUMN: CANARY_TASK, CANARY_COLUMN: cond, CANARY_CLIP: other})
    features = raw.features.copy()
    features[TASK_COLUMN] = datasets.Value("string")
    features[CANARY_COLUMN] = datasets.Value("string")
    features[CANARY_CLIP] = datasets.Audio(decode=False)
    return datasets.Dataset.from_list(rows, features=features)


def _clip(doc: Mapping[str, Any]) -> Any:
    """The :class:`koala.models.Audio` a row sends in its task's condition (the text-only
    condition: a 1 s silent clip; a canary row: its own clip, silence as long, or the other
    row's clip)."""
    from koala.data import decode_audio
    from koala.models import silence
    from koala.tasks import get_task

    spec = _spec(doc)
    col = get_task(spec.task).audio_column(spec.condition)
    if col is None:
        return silence(TEXT_AUDIO_SECONDS)
    where = f"{spec.name} row {doc.get('id')!r} field {col!r}"
    audio = decode_audio(doc.get(col), where)
    cond = doc.get(CANARY_COLUMN)
    if cond == "silence":
        return silence(audio.duration, audio.sampling_rate)
    if cond == "other":
        return decode_audio(doc.get(CANARY_CLIP), f"{where} (the canary's other clip)")
    return audio


@functools.cache
def _audio_dir() -> str:
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="koala-lmms-audio-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _wav_file(audio: Any) -> str:
    """The path of a 16-bit PCM WAV file of ``audio`` (16 kHz) in a folder of this process,
    removed at exit; named by the bytes' digest, so a clip asked twice is written once."""
    import hashlib

    from koala.models import wav_bytes

    data = wav_bytes(audio)
    path = os.path.join(_audio_dir(), hashlib.blake2b(data, digest_size=16).hexdigest() + ".wav")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path


def _refuse(kw: Mapping[str, Any], key: str) -> None:
    reason = kw.get(key)
    if reason:
        raise RuntimeError(f"KoALa-Bench: {reason}")


def doc_to_audio(
    doc: Mapping[str, Any], lmms_eval_specific_kwargs: Mapping[str, Any] | None = None
) -> list[Any]:
    """``doc_to_visual``, what lmms-eval's simple classes call: the clip a row sends in its
    task's condition, as lmms-eval's audio tasks give it (``[{"array", "sampling_rate"}]``), or
    as the path of a WAV file where the ``--model`` entry of :data:`MODEL_KWARGS` says
    ``visual_audio: file`` (the simple ``openai`` class sends files and drops arrays)."""
    kw = lmms_eval_specific_kwargs or {}
    _refuse(kw, "refuse_visual")
    audio = _clip(doc)
    if kw.get("visual_audio") == "file":
        return [_wav_file(audio)]
    return [{"array": audio.array, "sampling_rate": audio.sampling_rate}]


def doc_to_messages(
    doc: Mapping[str, Any], lmms_eval_specific_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """What lmms-eval's chat classes call: one user turn, the clip then the prompt, in the
    shape of lmms-eval's XModBench task: ``[{"role": "user", "content": [{"type": "audio",
    "url": ...}, {"type": "text", "text": ...}]}]``. The url is the path of a WAV file, or a
    ``data:audio/wav;base64,...`` URI where the ``--model`` entry of :data:`MODEL_KWARGS` says
    ``message_audio: data_uri`` (the OpenAI-style classes put the url in ``audio_url``, which
    a server cannot read from this machine's disk)."""
    import base64

    from koala.models import wav_bytes

    kw = lmms_eval_specific_kwargs or {}
    _refuse(kw, "refuse_messages")
    audio = _clip(doc)
    if kw.get("message_audio") == "data_uri":
        url = "data:audio/wav;base64," + base64.b64encode(wav_bytes(audio)).decode("ascii")
    else:
        url = _wav_file(audio)
    text = doc_to_text(doc, kw)
    return [
        {
            "role": "user",
            "content": [{"type": "audio", "url": url}, {"type": "text", "text": text}],
        }
    ]


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
    logprobs, shown_labels, subset, noise, prompt, lmms_task, protocol``. An answer lmms-eval
    put in place of a failed request (:data:`FAILED_MARKERS`) is a ``failed`` record with the
    text as its ``error``; a canary row's record names the clip it was sent (``canary``)."""
    answer = results[0] if results else ""
    text = "" if answer is None else str(answer)
    rec = _record(doc, text)
    if text.startswith(FAILED_MARKERS):
        rec.update(status="failed", prediction=None, error=text)
    if doc.get(TASK_COLUMN) == CANARY_TASK:
        rec["canary"] = doc[CANARY_COLUMN]
        return {metric: rec for metric, _ in CANARY_METRICS}
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


def canary_result(items: Sequence[Mapping[str, Any]]) -> Any:
    """The :class:`koala.check.CheckResult` of the canary's records (a failed request is no
    answer, as ``koala-bench check`` counts it)."""
    from koala.check import CheckResult, CheckRow

    spec = canary_task()
    rows: dict[str, CheckRow] = {}
    for r in items:
        row = rows.setdefault(str(r["id"]), CheckRow(str(r["id"])))
        if r.get("status") == "ok":
            row.answers[r["canary"]] = str(r.get("prediction") or "").strip()
        else:
            row.answers[r["canary"]] = None
            row.errors[r["canary"]] = str(r.get("error") or r.get("status"))
    return CheckResult(spec.config, spec.condition, list(rows.values()))


def aggregate_audio_dependent(items: Sequence[Mapping[str, Any]]) -> float:
    """The canary's aggregation: the share of its rows whose answers differ between their own
    clip, silence and another row's clip. When no row's answers differ (or none could be
    compared) the answers do not depend on the audio: the report of ``koala-bench check`` is
    printed and the evaluation stops with exit status 6 (``SystemExit``, which lmms-eval's
    command line does not catch, unlike the errors it logs and exits 0 on)."""
    import sys

    from koala.manifest import EXIT_CHECK_FAILED, EXIT_NOTHING_ANSWERED

    result = canary_result(items)
    if not result.passed:
        report = result.report().replace("koala-bench check:", f"{CANARY_TASK}:", 1)
        print(report, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CHECK_FAILED if result.comparable else EXIT_NOTHING_ANSWERED)
    return result.varied / result.comparable
