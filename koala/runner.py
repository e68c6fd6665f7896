"""``koala-bench run``: run a model over benchmark configs, resumably and concurrently.

::

    koala-bench run --model SPEC --configs CONFIG [CONFIG ...] [--data DIR_OR_HUB_ID]
                    [--prompts FILE] [--limit N] [--concurrency N]
                    [--protocol koala|published] [--check] --out RUN_DIR

What one run does, per config (one after another, each with a progress bar showing rate and
ETA):

1. ``datasets.load_dataset(DATA, CONFIG, split="test")``: ``DATA`` is a directory written by
   ``koala-bench export`` (Parquet shards + a README with YAML ``configs:``) or a Hub id. A
   KoALA source tree (the published metadata JSONL in ``SQA/``, ``PA-QA/``, ... and no card
   with ``configs:``) is refused with the ``koala-bench export`` command that converts it.
2. For every row, every prompt variant (:mod:`koala.prompts`, chosen by the row's subset; all
   of them are run, the report keeps the best and shows all) and every condition of the task
   it builds one request. SCA-QA has three conditions: ``text`` (the question alone, gold
   ``answer``), ``counterfactual`` (speech of the counterfactual context, column ``audio``,
   gold ``counterfactual_answer``) and ``original`` (speech of the original context, column
   ``original_audio``, gold ``answer``; rows without it are skipped). In the text-only
   condition the model gets a one-second silent clip (``--sca-text-audio silence``, the
   default, as the published code does, so every adapter sees the same input format) or no
   audio at all (``--sca-text-audio none``). Every other task has one condition, ``speech``.
   Under ``--protocol published`` the SCA-QA choices are shown as (A)-(D), as the published
   evaluation does; the record keeps the labels shown in ``shown_labels``.
3. Every request gets a *fingerprint* (:func:`koala.predictions.fingerprint`) of what
   decides its answer: the prompt text, the condition, the text-audio mode (text condition),
   the model spec as given with its parsed options, the labels shown, the protocol, a digest
   of the stored (undecoded) bytes of the audio column it sends, read in Arrow batches before
   any request is sent, and a digest of the record's ``ref``. The config's plan (every
   request with its fingerprint, :func:`koala.predictions.write_plan`) is written to
   ``RUN_DIR/plan/CONFIG.json`` before its requests are sent.
4. A request whose record in ``RUN_DIR/predictions.jsonl`` is ``ok`` or ``abstained`` with the
   same fingerprint is skipped: a re-run resumes, and a change of prompts, model options,
   data or settings re-asks exactly the requests it changes. Failed records are retried.
5. The model answers (``--concurrency`` requests in flight for HTTP models, a thread pool or
   batches for local ones; an asynchronous model answers one request per call). A model that
   ignores the prompt (``ignores_prompt``, e.g. ``vosk-ko``) is asked once per clip and
   condition: the one answer is recorded for every prompt variant, each record with its own
   fingerprint and ``"shared_answer": true``. Every record with audio carries
   ``"audio_seconds"``, and ``"truncated": true`` when the clip is longer than the model's
   input limit (``max_audio_s``; several audio LMs and servers cut input at 30 s and still
   answer, so the late part of a 1-2 minute PA-QA passage is never heard); the summary counts
   them per config.
   Multiple-choice requests ask for label log-probabilities too when the model gives them,
   so generation-based and logit-based scores come from one call.
6. Each answer becomes one JSON line, appended and fsynced before it counts as done (a writer
   thread commits what has arrived as one group: one fsync per group, never a record left in
   a buffer). A run killed with SIGKILL loses only the requests in flight; a truncated last
   line is cut off when the run resumes. When the file cannot be written (a full disk), the
   run stops and says how many answers were lost; everything committed before is safe.

A failed request (an exception from the model, an undecodable clip, a row missing a field) is
recorded with ``status: "failed"`` and its error; a model that declines (``Abstain``, or a
task outside ``model.tasks``) is recorded with ``status: "abstained"``. Neither stops the run;
the end of the run prints an error summary, and ``koala-bench score``/``report`` count them.

Records are keyed by ``(model, config, variant, condition, id)`` and carry the fields the
scorer needs (``ref``), so ``koala-bench score RUN_DIR`` needs no dataset; the format lives
in :mod:`koala.predictions`.

A dead or hung server: after ``breaker`` consecutive failed requests (the ``openai`` adapter's
``?breaker=N``, default 8; 0: never) the run stops sending to it: requests in flight are
dropped and the rest are not sent; neither is recorded, so they stay pending and the same
command resumes them. Everything committed is kept; the summary names the server and the last
error.

``--check`` first runs :mod:`koala.check` (the model's answers must depend on the audio) on
one of the configs and stops when they do not.

Exit status: 0 when every requested config ran (even with failed samples, which the summary
and the report count); 1 on a usage error; 2 when nothing could be answered; 3 when a
requested config did not run (or stopped); 4 when the predictions file could not be written;
5 when the circuit breaker stopped the run; 6 when ``--check`` found that the answers do not
depend on the audio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import hashlib
import io
import itertools
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koala.models import (
    Abstain,
    Answer,
    Audio,
    Request,
    as_audio,
    call_answer,
    parse_spec,
    silence,
)
from koala.predictions import (
    ABSTAINED,
    FAILED,
    FORMAT_VERSION,
    MANIFEST,
    OK,
    PREDICTIONS,
    ConfigPlan,
    Key,
    PredictionStore,
    ReadStats,
    WriteError,
    canonical_json,
    fingerprint,
    read_predictions,
    record_key,
    write_plan,
)
from koala.prompts import PROTOCOLS, PromptSet, load_prompts, task_of
from koala.tasks import get_task

__all__ = [
    "ABSTAINED",
    "EXIT_BREAKER",
    "EXIT_CHECK_FAILED",
    "EXIT_NOTHING_ANSWERED",
    "EXIT_NOT_RUN",
    "EXIT_WRITE_FAILED",
    "FAILED",
    "MANIFEST",
    "OK",
    "PREDICTIONS",
    "Breaker",
    "BreakerTripped",
    "Key",
    "PredictionStore",
    "ReadStats",
    "RunStats",
    "add_arguments",
    "audio_digests",
    "exit_status",
    "main",
    "model_identity",
    "read_predictions",
    "record_key",
    "request_fingerprint",
    "run",
    "run_model",
    "share_by_clip",
    "source_tree_error",
    "summary",
]

log = logging.getLogger(__name__)

DATA_ENV = "KOALA_BENCH_DATA"
EXIT_NOTHING_ANSWERED, EXIT_NOT_RUN, EXIT_WRITE_FAILED, EXIT_BREAKER = 2, 3, 4, 5
EXIT_CHECK_FAILED = 6  # koala-bench check / run --check: the answers ignore the audio


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# ============================================================================ data


def _card_configs(root: Path) -> list[Any] | None:
    """The YAML ``configs:`` block of the dataset card ``root/README.md`` (the block
    ``load_dataset(root, config)`` reads); ``None`` when there is no such block."""
    import yaml

    readme = root / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{readme}: the YAML header does not parse: {exc}") from None
    configs = meta.get("configs") if isinstance(meta, Mapping) else None
    return configs if isinstance(configs, list) else None


def _local_data_files(root: Path, config: str) -> list[str] | None:
    """The test-split files of ``config`` per the YAML ``configs:`` block of ``root/README.md``
    (the block ``load_dataset(root, config)`` reads); ``None`` when there is no such block."""
    import glob

    readme = root / "README.md"
    configs = _card_configs(root)
    if configs is None:
        return None
    names = [c.get("config_name") for c in configs if isinstance(c, Mapping)]
    entry = next(
        (c for c in configs if isinstance(c, Mapping) and c.get("config_name") == config), None
    )
    if entry is None:
        raise ValueError(f"{readme}: no config {config!r}; the export has {names}")
    spec = entry.get("data_files")
    if isinstance(spec, Mapping):
        spec = [{"split": k, "path": v} for k, v in spec.items()]
    if isinstance(spec, str | list) and not (
        isinstance(spec, list) and spec and isinstance(spec[0], Mapping)
    ):
        spec = [{"split": "test", "path": spec}]
    if not isinstance(spec, list):
        raise ValueError(f"{readme}: config {config!r} has no data_files")
    splits = {str(d.get("split", "train")): d.get("path") for d in spec if isinstance(d, Mapping)}
    patterns = splits.get("test", next(iter(splits.values())) if len(splits) == 1 else None)
    if patterns is None:
        raise ValueError(f"{readme}: config {config!r} has no 'test' split (has {list(splits)})")
    files: list[str] = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        files += sorted(glob.glob(str(root / pattern), recursive=True))
    if not files:
        raise ValueError(f"{readme}: config {config!r}: no file matches {patterns!r}")
    return files


# the metadata folders of the published KoALA layout (see koala.sources.koala_meta)
SOURCE_FOLDERS = ("ASR", "SQA", "Instruct", "SCA-QA", "PA-QA", "Translation")


def source_tree_error(data: str) -> str | None:
    """What to say when ``data`` is a KoALA source tree (the published layout: metadata JSONL
    files in ``ASR/``, ``SQA/``, ... and no dataset card with a ``configs:`` block) instead of
    an export; ``None`` otherwise. ``load_dataset`` would read such a folder as one
    ``default`` config ("BuilderConfig 'sqa_click' not found. Available: ['default']")."""
    import shlex

    root = Path(data)
    if not root.is_dir():
        return None
    found = sorted(
        str(f.relative_to(root)) for d in SOURCE_FOLDERS for f in (root / d).glob("*.jsonl")
    )
    if not found:
        return None
    try:
        if _card_configs(root) is not None:  # a card with configs: an export after all
            return None
    except ValueError:  # a broken card: the loader says what is wrong with it
        return None
    out = root.parent / f"{root.resolve().name}_parquet"
    command = shlex.join(["koala-bench", "export", "--data-dir", str(root), "--out", str(out)])
    return (
        f"{root} is a KoALA source tree (the published metadata, e.g. {found[0]}), not an "
        "export: the runner reads Parquet exports. Export it first:\n"
        f"    {command}\n"
        f"then run with --data {shlex.quote(str(out))}"
    )


def load_config(data: str, config: str, limit: int | None = None) -> Any:
    """The ``test`` split of ``config``, with audio columns left undecoded (the runner decodes
    them itself, off the event loop) and the first ``limit`` rows.

    A Hub id goes through ``load_dataset(data, config, split="test")``. For a local export the
    config's Parquet files are read from the README's YAML ``configs:`` block and loaded with
    ``load_dataset("parquet", data_files=...)``: datasets 5.2 keys its cache for
    ``load_dataset(DIR, config)`` on the directory's name and README only, so a re-exported
    directory (or another one with the same name) would silently load the old rows; explicit
    data files are keyed on their paths and modification times.
    """
    import datasets

    root = Path(data)
    refused = source_tree_error(data)
    if refused is not None:
        raise ValueError(refused)
    if root.is_dir():
        files = _local_data_files(root, config)
        if files is not None:
            builder = "parquet" if all(f.endswith(".parquet") for f in files) else None
            if builder is None:
                raise ValueError(f"{root}: config {config!r}: expected Parquet files, got {files}")
            ds = datasets.load_dataset(builder, data_files={"test": files}, split="test")
        else:
            ds = datasets.load_dataset(
                str(root), config, split="test", download_mode="force_redownload"
            )
    else:
        ds = datasets.load_dataset(data, config, split="test")
    for col in audio_columns(ds):
        ds = ds.cast_column(col, datasets.Audio(decode=False))
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


def audio_columns(ds: Any) -> list[str]:
    """The columns of ``ds`` that hold audio (``datasets.Audio`` features)."""
    import datasets

    return [c for c, f in (ds.features or {}).items() if isinstance(f, datasets.Audio)]


def decode_audio(value: Any, where: str) -> Audio:
    """Decode an undecoded ``Audio`` value (``{"bytes", "path"}``) with soundfile, falling back
    to the ``datasets`` decoder (torchcodec/FFmpeg); decoded values pass through."""
    if value is None:
        raise ValueError(f"{where}: no audio (null)")
    if (
        isinstance(value, Mapping)
        and "array" not in value
        and ("bytes" in value or "path" in value)
    ):
        src = value.get("bytes") or value.get("path")
        if not src:
            raise ValueError(f"{where}: audio has neither bytes nor a path")
        try:
            import soundfile as sf

            arr, sr = sf.read(io.BytesIO(src) if isinstance(src, bytes) else src, dtype="float32")
            audio = as_audio((arr.T if arr.ndim == 2 else arr, sr))
        except Exception as sf_exc:
            try:
                import datasets

                decoded = datasets.Audio().decode_example(dict(value))
                audio = as_audio(decoded)
            except Exception as exc:
                raise ValueError(f"{where}: cannot decode audio ({sf_exc}; {exc})") from exc
        assert audio is not None
        return audio
    audio = as_audio(value)
    if audio is None:
        raise ValueError(f"{where}: no audio")
    return audio


def config_names(data: str) -> list[str]:
    """The configs of an export or Hub id (a source tree is refused, see
    :func:`source_tree_error`)."""
    import datasets

    refused = source_tree_error(data)
    if refused is not None:
        raise ValueError(refused)

    return list(datasets.get_dataset_config_names(data))


# ============================================================================ planning


@dataclass
class Item:
    """One request of the plan."""

    config: str
    task: str
    variant: str
    condition: str
    id: str
    prompt: str
    labels: tuple[str, ...] | None
    base: dict[str, Any]  # the record without the answer
    record: dict[str, Any] | None = None  # a record decided without calling the model
    request: Request | None = None
    # the other variants of the same clip and condition, answered by this item's one call
    # (a model that ignores the prompt, see share_by_clip)
    followers: list[Item] = field(default_factory=list)


@dataclass
class RowPlan:
    index: int
    items: list[Item]


@dataclass
class RunStats:
    """What a run did, per config; ``writer_error`` and ``lost`` say whether the predictions
    file failed and how many answers never reached it (``committed`` did)."""

    planned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # already done
    written: Counter[str] = field(default_factory=Counter)
    status: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    config_errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    writer_error: str | None = None
    lost: int = 0
    committed: int = 0
    # records whose clip is longer than the model's input limit, per config
    truncated: Counter[str] = field(default_factory=Counter)
    max_audio_s: float | None = None  # the model's input limit (seconds) when known
    # model calls made, per config (fewer than records when one answer is shared by variants)
    calls: Counter[str] = field(default_factory=Counter)
    breaker: str | None = None  # why the circuit breaker stopped the run

    def count(self, config: str, rec: Mapping[str, Any]) -> None:
        self.written[config] += 1
        self.status.setdefault(config, Counter())[rec["status"]] += 1
        if rec["status"] == FAILED:
            self.errors.setdefault(config, Counter())[str(rec.get("error"))[:160]] += 1
        if rec.get("truncated"):
            self.truncated[config] += 1


def _digest(value: Any) -> str | None:
    """sha256 of one stored audio value: its bytes, else its path; ``None`` for null."""
    if value is None:
        return None
    if isinstance(value, Mapping) and ("bytes" in value or "path" in value):
        if value.get("bytes") is not None:
            return hashlib.sha256(value["bytes"]).hexdigest()
        if value.get("path") is None:
            return None
        return hashlib.sha256(b"path:" + str(value["path"]).encode("utf-8")).hexdigest()
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return hashlib.sha256(json.dumps(value, default=str).encode("utf-8")).hexdigest()


def audio_digests(
    ds: Any, columns: Sequence[str], batch_rows: int = 64
) -> dict[str, list[str | None]]:
    """Per audio column, the sha256 of each row's stored, undecoded audio bytes (of its path
    when only a path is stored; ``None`` for a null), read from Arrow in batches of
    ``batch_rows`` rows without decoding."""
    out: dict[str, list[str | None]] = {c: [] for c in columns}
    if not columns:
        return out
    table = ds.select_columns(list(columns)).with_format("arrow")
    for start in range(0, len(ds), batch_rows):
        batch = table[start : start + batch_rows]
        for c in columns:
            out[c] += [_digest(v) for v in batch.column(c).to_pylist()]
    return out


def request_fingerprint(
    *,
    model: Mapping[str, Any],
    prompt: str | None,
    condition: str,
    text_audio: str | None,
    labels: Sequence[str] | None,
    protocol: str,
    audio: str | None,
    ref: Mapping[str, Any],
) -> str:
    """The fingerprint of one request: what decides its answer. ``model`` is the model's
    identity (name, the spec as given and its parsed options), ``audio`` the digest of the
    stored audio it sends; ``text_audio`` (what a condition without the row's audio sends)
    is ``None`` for the conditions that send the row's audio."""
    return fingerprint(
        {
            "format": FORMAT_VERSION,
            "model": dict(model),
            "prompt": prompt,
            "condition": condition,
            "text_audio": text_audio,
            "labels": list(labels) if labels is not None else None,
            "protocol": protocol,
            "audio": audio,
            "ref": hashlib.sha256(canonical_json(ref).encode("utf-8")).hexdigest(),
        }
    )


@dataclass
class ConfigWork:
    """The plan of one config: the rows with requests still to make, the fingerprint of
    every request (done or not) and the number of requests and of those already done."""

    rows: list[RowPlan]
    requests: dict[Key, str]
    total: int
    done: int


def plan_config(
    rows: Iterable[Mapping[str, Any]],
    config: str,
    model_name: str,
    model_tasks: frozenset[str] | None,
    prompts: PromptSet,
    done: Mapping[Key, Mapping[str, Any]],
    *,
    digests: Mapping[str, Sequence[str | None]] | None = None,
    model_id: Mapping[str, Any] | None = None,
    text_audio: str = "silence",
    protocol: str = "koala",
) -> ConfigWork:
    """Every request of ``config`` with its fingerprint, and those still to make (rows
    without their audio). ``digests`` are :func:`audio_digests` of the config's audio columns
    (a column absent from them counts as null, so the ``original`` condition is skipped)."""
    spec = get_task(task_of(config))
    task = spec.name
    prompts.variants(config)  # a prompt file without this task fails the config
    digests = digests or {}
    model_id = dict(model_id or {"name": model_name})
    work = ConfigWork([], {}, 0, 0)
    for index, row in enumerate(rows):
        rid = row.get("id")
        rid = str(rid) if rid is not None else f"#row{index}"
        ref = spec.ref(row)
        items: list[Item] = []
        for condition in spec.conditions:
            col = spec.audio_column(condition)
            col_digests = digests.get(col) if col else None
            audio = col_digests[index] if col_digests is not None else None
            if condition in spec.optional_conditions and audio is None:
                continue  # not published for this row
            for v in prompts.variants(config, row.get("subset")):
                work.total += 1
                base: dict[str, Any] = {
                    "format": FORMAT_VERSION,
                    "model": model_name,
                    "config": config,
                    "task": task,
                    "variant": v.name,
                    "condition": condition,
                    "id": rid,
                    "subset": row.get("subset"),
                    "noise": row.get("noise"),
                    "ref": ref,
                }
                labels: tuple[str, ...] | None = None
                prompt: str | None = None
                error = None
                try:
                    if rid.startswith("#row"):
                        raise ValueError(f"config {config} row {index}: no 'id' field")
                    shown = spec.shown_labels(row, protocol)
                    labels = tuple(shown) if shown is not None else None
                    prompt = spec.build_prompt(v, row, condition, protocol)
                except (KeyError, TypeError, ValueError) as exc:
                    what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    error = f"config {config} row {rid}: cannot build the prompt: {what}"
                fp = request_fingerprint(
                    model=model_id,
                    prompt=prompt,
                    condition=condition,
                    text_audio=text_audio if col is None else None,
                    labels=labels,
                    protocol=protocol,
                    audio=audio,
                    ref=ref,
                )
                key = (model_name, config, v.name, condition, rid)
                work.requests[key] = fp
                base["fingerprint"] = fp
                # the data the request was about (for comparing two runs on the same items)
                base["data_sha"] = _sha(canonical_json({"audio": audio, "ref": ref}))
                base["prompt_sha"] = _sha(prompt) if prompt is not None else None
                base["shown_labels"] = list(labels) if labels is not None else None
                if prompt is None:
                    rec = {**base, "status": FAILED, "prediction": None, "logprobs": None}
                    rec["error"] = error
                    items.append(Item(config, task, v.name, condition, rid, "", None, base, rec))
                    continue
                prev = done.get(key)
                if (
                    prev is not None
                    and prev.get("status") in (OK, ABSTAINED)
                    and prev.get("fingerprint") == fp
                ):
                    work.done += 1
                    continue
                item = Item(config, task, v.name, condition, rid, prompt, labels, base)
                if model_tasks is not None and task not in model_tasks:
                    item.record = {
                        **base,
                        "status": ABSTAINED,
                        "prediction": None,
                        "logprobs": None,
                        "error": f"{model_name} does not do {task}",
                    }
                items.append(item)
        if items:
            work.rows.append(RowPlan(index, items))
    return work


def attach_audio(
    plan: RowPlan,
    audio_row: Mapping[str, Any],
    text_audio: str,
    cache: dict[str, Audio],
) -> None:
    """Decode the clips a row's pending items need and build their requests; a clip that
    fails to decode fails only its items."""
    cache.clear()
    for item in plan.items:
        if item.record is not None:
            continue
        try:
            col = get_task(item.task).audio_column(item.condition)
            if col is None:  # a condition without the row's audio (SCA-QA text-only)
                audio = silence(1.0) if text_audio == "silence" else None
            else:
                if col not in cache:
                    cache[col] = decode_audio(
                        audio_row.get(col), f"config {item.config} row {item.id} field {col!r}"
                    )
                audio = cache[col]
        except Exception as exc:
            item.record = {
                **item.base,
                "status": FAILED,
                "prediction": None,
                "logprobs": None,
                "error": str(exc),
            }
            continue
        item.request = Request(audio, item.prompt, item.labels)


def share_by_clip(plan: RowPlan) -> None:
    """For a model that ignores the prompt: make the first pending item of each condition of
    the row ask for every other variant of that condition (its ``followers``, which leave
    ``plan.items``): one call per clip and condition instead of one per prompt variant."""
    leaders: dict[str, Item] = {}
    kept: list[Item] = []
    for item in plan.items:
        if item.record is None and item.request is not None:
            leader = leaders.setdefault(item.condition, item)
            if leader is not item:
                leader.followers.append(item)
                continue
        kept.append(item)
    plan.items = kept


# ============================================================================ execution


def _answer_record(
    item: Item,
    ans: Answer | BaseException,
    seconds: float,
    max_audio_s: float | None = None,
    shared: bool = False,
) -> dict[str, Any]:
    """The record of one answered (or failed) request. A request with audio records its
    length in ``audio_seconds`` and whether it exceeds the model's input limit
    ``max_audio_s`` in ``truncated``; ``shared`` marks an answer given once for every prompt
    variant (``shared_answer``)."""
    rec = dict(item.base)
    if isinstance(ans, Abstain):
        rec.update(status=ABSTAINED, prediction=None, logprobs=None, error=ans.reason)
    elif isinstance(ans, BaseException):
        msg = f"{type(ans).__name__}: {ans}".strip()
        rec.update(status=FAILED, prediction=None, logprobs=None, error=msg[:2000])
    else:
        rec.update(status=OK, prediction=ans.text, logprobs=ans.logprobs, error=None)
        if ans.meta:
            rec["meta"] = ans.meta
    rec["seconds"] = round(seconds, 4)
    audio = item.request.audio if item.request is not None else None
    if audio is not None:
        rec["audio_seconds"] = round(audio.duration, 3)
        rec["truncated"] = bool(max_audio_s and audio.duration > max_audio_s)
    if shared:
        rec["shared_answer"] = True
    return rec


class BreakerTripped(RuntimeError):
    """The circuit breaker stopped the run (see :class:`Breaker`)."""


@dataclass
class Breaker:
    """Stops sending to a server after ``limit`` consecutive failed requests (0: never).

    With the adapter's defaults a hung server costs 60 s x 5 attempts per request; without a
    breaker every request of the run would pay it. A success (or an abstention) resets the
    count; requests that fail before reaching the model (an undecodable clip, a prompt that
    cannot be built) do not count.
    """

    limit: int
    server: str
    consecutive: int = 0
    last_error: str | None = None

    @property
    def tripped(self) -> bool:
        return self.limit > 0 and self.consecutive >= self.limit

    def record(self, ans: Answer | BaseException) -> None:
        """Count one model call's outcome."""
        if isinstance(ans, BaseException) and not isinstance(ans, Abstain):
            self.consecutive += 1
            self.last_error = f"{type(ans).__name__}: {ans}".strip()[:500]
        else:
            self.consecutive = 0

    def message(self) -> str:
        return (
            f"circuit breaker: {self.consecutive} consecutive requests to {self.server} "
            f"failed; stopped sending to it. Last error: {self.last_error}"
        )


class _End:
    pass


_END = _End()


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The first leaf exception of a (nested) exception group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


@dataclass
class _Run:
    """What every config of one invocation shares."""

    run_dir: Path
    prompts: PromptSet
    done: Mapping[Key, Mapping[str, Any]]
    store: PredictionStore
    stats: RunStats
    concurrency: int
    text_audio: str
    protocol: str
    model_id: dict[str, Any]  # the model's part of every fingerprint
    settings: dict[str, Any]  # the plan's settings
    executor: ThreadPoolExecutor | None
    progress: bool
    breaker: Breaker | None = None


async def _run_config(model: Any, ds: Any, config: str, ctx: _Run) -> None:
    loop = asyncio.get_running_loop()
    stats, store, concurrency = ctx.stats, ctx.store, ctx.concurrency
    audio_cols = audio_columns(ds)
    meta_cols = [c for c in ds.column_names if c not in audio_cols]

    def make_plan() -> ConfigWork:
        work = plan_config(
            ds.select_columns(meta_cols),
            config,
            model.name,
            getattr(model, "tasks", None),
            ctx.prompts,
            ctx.done,
            digests=audio_digests(ds, audio_cols),
            model_id=ctx.model_id,
            text_audio=ctx.text_audio,
            protocol=ctx.protocol,
        )
        write_plan(
            ctx.run_dir,
            config,
            ConfigPlan(config, task_of(config), work.total, work.requests, ctx.settings),
        )
        return work

    work = await loop.run_in_executor(None, make_plan)
    plans, total, n_done = work.rows, work.total, work.done
    stats.planned[config] += total
    stats.skipped[config] += n_done
    pending = sum(len(p.items) for p in plans)
    if not pending:
        log.info("%s: all %d requests already done", config, total)
        return

    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=n_done,
        desc=config,
        unit="req",
        disable=not ctx.progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    audio_ds = ds.select_columns(audio_cols) if audio_cols else None
    shared = bool(getattr(model, "ignores_prompt", False))  # one call per clip, see Item
    breaker = ctx.breaker
    queue: asyncio.Queue[Any] = asyncio.Queue()
    # Bounded read-ahead: decoded clips waiting for a worker (long PA-QA passages are large).
    slots = threading.Semaphore(concurrency + 8)
    stop = threading.Event()

    def feed(obj: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the run stopped
            loop.call_soon_threadsafe(queue.put_nowait, obj)

    def produce() -> None:
        # Rows go out in groups of ``concurrency`` (at most 16), their requests interleaved
        # (row 1 variant 1, row 2 variant 1, ...): parallel calls work on different clips, and
        # a model that caches per clip (vosk-ko, cascade) never decodes one clip twice at once.
        cache: dict[str, Audio] = {}
        group = max(1, min(concurrency, 16))
        try:
            for start in range(0, len(plans), group):
                if stop.is_set():
                    return
                chunk = plans[start : start + group]
                for plan in chunk:
                    if any(it.record is None for it in plan.items):
                        row = audio_ds[plan.index] if audio_ds is not None else {}
                        attach_audio(plan, row, ctx.text_audio, cache)
                        if shared:
                            share_by_clip(plan)
                interleaved = itertools.chain.from_iterable(
                    itertools.zip_longest(*(p.items for p in chunk))
                )
                for item in interleaved:
                    if item is None:
                        continue
                    while not slots.acquire(timeout=0.2):
                        if stop.is_set():
                            return
                    feed(item)
        except BaseException as exc:  # the dataset itself broke: stop this config
            feed(exc)
        finally:
            feed(_END)

    producer = threading.Thread(target=produce, name=f"koala-reader-{config}", daemon=True)
    t0 = time.perf_counter()
    producer.start()

    def finish(rec: dict[str, Any]) -> None:
        store.put(rec)  # raises WriteError once the predictions file failed
        stats.count(config, rec)
        bar.update(1)

    is_async = hasattr(model, "aanswer")
    # an asynchronous model answers one request per call: concurrency, not batches
    batch_size = 1 if is_async else max(1, int(getattr(model, "batch_size", 1) or 1))
    crash: list[BaseException] = []

    async def take() -> Item | None:
        obj = await queue.get()
        if obj is _END:
            queue.put_nowait(_END)
            return None
        if isinstance(obj, BaseException):
            crash.append(obj)
            queue.put_nowait(_END)
            return None
        slots.release()
        return obj

    async def worker() -> None:
        while True:
            item = await take()
            if item is None:
                return
            if item.record is not None:
                finish(item.record)
                continue
            items = [item]
            while len(items) < batch_size and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is _END or isinstance(nxt, BaseException):
                    queue.put_nowait(nxt)
                    break
                slots.release()
                if nxt.record is not None:
                    finish(nxt.record)
                else:
                    items.append(nxt)
            start = time.perf_counter()
            answers: Sequence[Answer | BaseException]
            try:
                if is_async:
                    answers = [await model.aanswer(item.request)]
                elif batch_size > 1:
                    answers = await loop.run_in_executor(
                        ctx.executor, model.answer_batch, [it.request for it in items]
                    )
                else:
                    answers = [
                        await loop.run_in_executor(ctx.executor, call_answer, model, item.request)
                    ]
                if len(answers) != len(items):
                    raise ValueError(
                        f"the model gave {len(answers)} answer(s) for {len(items)} request(s)"
                    )
            except Exception as exc:
                answers = [exc] * len(items)
            took = (time.perf_counter() - start) / len(items)
            limit = getattr(model, "max_audio_s", None)
            stats.max_audio_s = limit
            stats.calls[config] += len(items)
            for it, ans in zip(items, answers, strict=True):
                for one in (it, *it.followers):
                    finish(_answer_record(one, ans, took, limit, shared))
                if breaker is not None:
                    breaker.record(ans)
            if breaker is not None and breaker.tripped:
                # the TaskGroup cancels the other workers (and their calls in flight, which
                # stay pending); nothing more is sent
                raise BreakerTripped(breaker.message())

    n_workers = max(1, concurrency if is_async else -(-concurrency // batch_size))
    failure: BaseException | None = None
    try:
        try:
            # a TaskGroup cancels the other workers as soon as one fails: nothing keeps
            # draining the queue (and calling the model) once the config is stopping
            async with asyncio.TaskGroup() as tg:
                for _ in range(n_workers):
                    tg.create_task(worker())
        except BaseExceptionGroup as group:
            failure = _first_error(group)
    finally:
        stop.set()
        try:
            await loop.run_in_executor(None, store.drain)
        except WriteError as exc:
            failure = failure or exc
        finally:
            bar.close()
            stats.seconds[config] = stats.seconds.get(config, 0.0) + time.perf_counter() - t0
    if failure is not None:
        raise failure
    if crash:
        raise crash[0]


@contextlib.asynccontextmanager
async def opened(model: Any, concurrency: int) -> Any:
    if hasattr(model, "aopen"):
        await model.aopen(concurrency)
    elif hasattr(model, "open"):
        await asyncio.get_running_loop().run_in_executor(None, model.open, concurrency)
    try:
        yield model
    finally:
        if hasattr(model, "aclose"):
            await model.aclose()
        elif hasattr(model, "close"):
            model.close()


async def _run_all(
    model: Any,
    configs: Sequence[str],
    loader: Callable[[str], Any],
    ctx: _Run,
) -> RunStats:
    stats = ctx.stats
    limit = getattr(model, "max_concurrency", None)
    conc = max(1, min(ctx.concurrency, limit) if limit else ctx.concurrency)
    is_async = hasattr(model, "aanswer")
    if not is_async:
        ctx.concurrency = conc
        ctx.executor = ThreadPoolExecutor(conc, thread_name_prefix="koala-model")
    loop = asyncio.get_running_loop()
    limit_fails = int(getattr(model, "breaker", 0) or 0)
    if limit_fails > 0:
        server = getattr(model, "server", None) or getattr(model, "base_url", None) or model.name
        ctx.breaker = Breaker(limit_fails, str(server))
    try:
        async with opened(model, ctx.concurrency):
            for n, config in enumerate(configs):
                try:
                    task_of(config)
                    ds = await loop.run_in_executor(None, loader, config)
                    await _run_config(model, ds, config, ctx)
                except (KeyboardInterrupt, asyncio.CancelledError):
                    raise
                except BreakerTripped as exc:
                    stats.breaker = str(exc)
                    log.error("config %s: %s; the run stops", config, exc)
                    stats.config_errors[config] = "stopped by the circuit breaker"
                    for rest in configs[n + 1 :]:
                        stats.config_errors[rest] = "not started: the circuit breaker tripped"
                    break
                except WriteError as exc:
                    cause = exc.__cause__ or exc
                    stats.writer_error = f"{type(cause).__name__}: {cause}"
                    log.error("config %s: %s; the run stops", config, exc)
                    stats.config_errors[config] = "stopped: the predictions file failed"
                    for rest in configs[n + 1 :]:
                        stats.config_errors[rest] = "not started: the predictions file failed"
                    break
                except Exception as exc:
                    msg = f"{type(exc).__name__}: {exc}"
                    stats.config_errors[config] = msg
                    log.error("config %s: %s", config, msg)
    finally:
        if ctx.executor is not None:
            ctx.executor.shutdown(wait=True)
    return stats


# Spec options that change how a request travels, never what the model answers: left out of
# the fingerprint, so raising a time-out to get past failures does not re-ask every request.
TRANSPORT_OPTIONS = frozenset(
    {
        "timeout",
        "retries",
        "backoff",
        "key_env",
        "pool_size",
        "max_concurrency",
        "concurrency",
        "breaker",
    }
)


def model_identity(model: Any, spec: str | None = None) -> dict[str, Any]:
    """The model's part of every fingerprint: its name, the spec's kind, target and URL, and
    the spec's parsed options that can change an answer (the name alone does not tell two
    temperatures or URLs apart; :data:`TRANSPORT_OPTIONS` are left out)."""
    options: dict[str, Any] = {}
    where: dict[str, Any] = {}
    if spec:
        parsed = parse_spec(spec)
        options = {k: v for k, v in parsed.options.items() if k not in TRANSPORT_OPTIONS}
        where = {"kind": parsed.kind, "target": parsed.target, "url": parsed.url}
    return {"name": model.name, "spec": where or None, "options": options}


def run_model(
    model: Any,
    configs: Sequence[str],
    out: str | Path,
    *,
    data: str | None = None,
    loader: Callable[[str], Any] | None = None,
    prompts: PromptSet | None = None,
    limit: int | None = None,
    concurrency: int = 8,
    text_audio: str = "silence",
    protocol: str = "koala",
    spec: str | None = None,
    progress: bool = True,
    manifest: Mapping[str, Any] | None = None,
) -> RunStats:
    """Run ``model`` (any object of the :mod:`koala.models` protocol) over ``configs`` into
    the run directory ``out``; the Python entry point behind ``koala-bench run``.

    ``loader(config) -> Dataset`` replaces ``load_dataset(data, config, split="test")``.
    ``spec`` is the ``--model`` string the model was built from (it and its options are part
    of every request's fingerprint). A config that cannot run is listed in
    ``config_errors``; when the predictions file cannot be written the run stops and
    ``writer_error`` and ``lost`` say so (see :func:`exit_status`).
    """
    if text_audio not in ("silence", "none"):
        raise ValueError(f"text_audio={text_audio!r}: use 'silence' or 'none'")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: use one of {list(PROTOCOLS)}")
    if loader is None:
        if data is None:
            raise ValueError("give data= (an export directory or a Hub id) or loader=")
        src = data

        def loader(config: str) -> Any:
            return load_config(src, config, limit)

    prompts = prompts or load_prompts()
    model_id = model_identity(model, spec)
    settings = {
        "model": model.name,
        "spec": spec,
        "options": model_id["options"],
        "prompts": {
            "source": prompts.source,
            "sha256": prompts.sha256,
            "variants": {k: [v.name for v in vs] for k, vs in prompts.entries.items()},
        },
        "sca_text_audio": text_audio,
        "protocol": protocol,
        "limit": limit,
        "data": data,
    }
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _lock(run_dir):
        _check_one_model(run_dir, model.name)
        _write_manifest(run_dir, model, configs, prompts, settings, manifest)
        done, rstats = read_predictions(run_dir / PREDICTIONS)
        if rstats.corrupt or rstats.malformed:
            log.warning(
                "%s: %d corrupt line(s) and %d malformed record(s) skipped",
                run_dir / PREDICTIONS,
                len(rstats.corrupt),
                len(rstats.malformed),
            )
        store = PredictionStore(run_dir / PREDICTIONS)
        store.open()
        stats = RunStats()
        ctx = _Run(
            run_dir,
            prompts,
            done,
            store,
            stats,
            concurrency,
            text_audio,
            protocol,
            model_id,
            settings,
            None,
            progress,
        )
        try:
            asyncio.run(_run_all(model, configs, loader, ctx))
        finally:
            store.close()
            stats.lost, stats.committed = store.lost, store.committed
            if store.failed and stats.writer_error is None:
                stats.writer_error = f"{type(store.error).__name__}: {store.error}"
        try:
            _finish_manifest(run_dir, stats)
        except OSError as exc:  # a full disk fails the manifest too
            log.error("%s: cannot update the manifest: %s", run_dir / MANIFEST, exc)
    return stats


@contextlib.contextmanager
def _lock(run_dir: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(run_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"{run_dir}: another koala-bench run is writing to this directory"
            ) from None
        yield
    finally:
        os.close(fd)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _check_one_model(run_dir: Path, name: str) -> None:
    """A run directory holds one model's run (its plans are per config): refuse another."""
    try:
        holder = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8")).get("model")
    except (FileNotFoundError, ValueError, AttributeError):
        return
    if holder is not None and holder != name:
        raise RuntimeError(
            f"{run_dir} holds the run of model {holder!r}; a run directory holds one model: "
            f"give {name!r} its own --out (koala-bench report takes several run directories)"
        )


def _write_manifest(
    run_dir: Path,
    model: Any,
    configs: Sequence[str],
    prompts: PromptSet,
    settings: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
) -> None:
    path = run_dir / MANIFEST
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        m = {"created": _now(), "invocations": []}
    m.update(
        {
            "format": FORMAT_VERSION,
            "model": model.name,
            "model_spec": settings["spec"],
            "data": settings["data"],
            "configs": sorted(set(m.get("configs", [])) | set(configs)),
            "prompts": {
                "source": prompts.source,
                "sha256": prompts.sha256,
                "variants": prompts.as_dict(),
            },
            "sca_text_audio": settings["sca_text_audio"],
            "protocol": settings["protocol"],
            "predictions": PREDICTIONS,
            "plans": "plan/<config>.json",
        }
    )
    m["invocations"].append(
        {
            "started": _now(),
            "configs": list(configs),
            "limit": settings["limit"],
            "protocol": settings["protocol"],
            **(extra or {}),
        }
    )
    _atomic_json(path, m)


def _finish_manifest(run_dir: Path, stats: RunStats) -> None:
    path = run_dir / MANIFEST
    m = json.loads(path.read_text(encoding="utf-8"))
    m["invocations"][-1].update(
        {
            "finished": _now(),
            "written": dict(stats.written),
            "skipped_done": dict(stats.skipped),
            "status": {c: dict(v) for c, v in stats.status.items()},
            "config_errors": stats.config_errors,
            "writer_error": stats.writer_error,
            "lost": stats.lost,
            "breaker": stats.breaker,
            "truncated": dict(stats.truncated),
            "max_audio_s": stats.max_audio_s,
            "exit_status": exit_status(stats),
        }
    )
    _atomic_json(path, m)


# ============================================================================ CLI


def exit_status(stats: RunStats) -> int:
    """The exit status of a run: 4 when the predictions file could not be written, 5 when the
    circuit breaker stopped it, 2 when nothing could be answered, 3 when a requested config
    did not run (or stopped), else 0."""
    if stats.writer_error is not None:
        return EXIT_WRITE_FAILED
    if stats.breaker is not None:
        return EXIT_BREAKER
    answered = sum(st[OK] + st[ABSTAINED] for st in stats.status.values())
    attempted = sum(stats.written.values())
    if (attempted and not answered) or (stats.config_errors and not stats.planned):
        return EXIT_NOTHING_ANSWERED
    if stats.config_errors:
        return EXIT_NOT_RUN
    return 0


def summary(stats: RunStats, predictions: str | Path = PREDICTIONS) -> str:
    """The end-of-run summary: per config what was done and the errors; configs that did
    not run and answers lost to a failed predictions file are said last."""
    lines = ["koala-bench run summary:"]
    configs = list(dict.fromkeys([*stats.planned, *stats.config_errors]))
    for c in configs:
        st = stats.status.get(c, Counter())
        if c in stats.config_errors and not stats.planned[c]:
            lines.append(f"  {c}: NOT RUN: {stats.config_errors[c]}")
            continue
        secs = stats.seconds.get(c)
        rate = f", {stats.written[c] / secs:.1f} req/s" if secs and stats.written[c] else ""
        lines.append(
            f"  {c}: {stats.planned[c]} requests, {stats.skipped[c]} already done, "
            f"{stats.written[c]} new (ok {st[OK]}, failed {st[FAILED]}, "
            f"abstained {st[ABSTAINED]}){rate}"
        )
        if stats.calls[c] and stats.calls[c] < stats.written[c]:
            lines.append(
                f"      {stats.calls[c]} model call(s): the model ignores the prompt, so one "
                "answer per clip and condition is recorded for every variant (shared_answer)"
            )
        if stats.truncated[c]:
            lines.append(
                f"      {stats.truncated[c]} request(s) TRUNCATED: the clip is longer than the "
                f"model's input limit of {stats.max_audio_s:g} s, the rest was never heard "
                "(records say truncated: true)"
            )
        if c in stats.config_errors:
            lines.append(f"      STOPPED before the end: {stats.config_errors[c]}")
        for msg, n in stats.errors.get(c, Counter()).most_common(5):
            lines.append(f"      {n} x {msg}")
    failed = sum(st[FAILED] for st in stats.status.values())
    if failed:
        lines.append(
            f"  {failed} failed request(s) are recorded; re-run the same command to retry them."
        )
    if stats.config_errors:
        lines.append(
            f"  {len(stats.config_errors)} requested config(s) did not run to the end: "
            f"{', '.join(stats.config_errors)}."
        )
    if stats.breaker is not None:
        lines.append(
            f"  STOPPED: {stats.breaker}. The requests not sent are not recorded: they stay "
            "pending, and everything committed is kept; run the same command again when the "
            "server answers (the model option ?breaker=0 turns the breaker off)."
        )
    if stats.writer_error is not None:
        lines.append(
            f"  WRITING {predictions} FAILED ({stats.writer_error}): the run stopped; "
            f"{stats.lost} answer(s) were lost (submitted but not committed). The "
            f"{stats.committed} record(s) committed in this run, and everything before, are "
            "safe on disk; free the space and run the same command again to ask for the rest."
        )
    return "\n".join(lines)


def _split_configs(values: Sequence[str]) -> list[str]:
    return [c for v in values for c in v.replace(",", " ").split() if c]


def model_help() -> str:
    """The ``--model`` help: the spec forms, and what a dead or hung server costs (the
    per-request deadline, the Retry-After cap, the circuit breaker)."""
    from koala.models.openai import DEFAULT_BREAKER
    from koala.openai_client import DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_BACKOFF, deadline

    return (
        "model spec: vosk-ko | cascade | openai:MODEL@URL | transformers:PATH (options after "
        "'?', see koala.models); required, no default. openai: a request is given up after "
        f"TIMEOUT x (RETRIES + 1) attempts, by default {DEFAULT_TIMEOUT:g} s x "
        f"{DEFAULT_RETRIES + 1} = {deadline():g} s (?timeout=SECONDS&retries=N), plus the waits "
        f"between attempts (exponential from 0.5 s; a server's Retry-After is honoured up to "
        f"{MAX_BACKOFF:g} s); after {DEFAULT_BREAKER} consecutive failed requests the run stops "
        "sending to the server and exits with status 5, the rest staying pending (?breaker=N; "
        "0 = never). ?max_audio_s=SECONDS: the model's input limit (default: unknown, except "
        "transformers: its feature extractor's, 30 s for Whisper-style ones); longer clips are "
        "still sent and flagged truncated"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help=model_help())
    parser.add_argument(
        "--configs",
        nargs="+",
        required=True,
        help="config names (space or comma separated), or 'all' (every config of --data); "
        "required, no default",
    )
    parser.add_argument(
        "--data",
        default=os.environ.get(DATA_ENV),
        help="directory written by 'koala-bench export' (Parquet + dataset card) or Hub id "
        f"(default: ${DATA_ENV}); a KoALA source tree must be exported first",
    )
    parser.add_argument(
        "--prompts",
        default=None,
        help="prompt file, YAML (this project's or the published prompts.yaml format); "
        "default: the built-in prompts (koala/prompts_default.yaml)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="run the first N rows of each config (rows; default: every row)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests in flight (HTTP models) or worker threads (local models), a count "
        "(default: 8, capped by the model's own limit)",
    )
    parser.add_argument(
        "--sca-text-audio",
        choices=("silence", "none"),
        default="silence",
        help="what the SCA-QA text-only condition sends: a 1 s silent clip "
        "(default: silence, as published) or no audio (none)",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="koala",
        help="how requests are shown: koala (default; every set with its own labels) or "
        "published (SCA-QA choices shown as (A)-(D), as the published evaluation does)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="before the run, send 4 rows of one config with their audio, with silence and "
        "with another row's audio (12 requests), and stop with exit status 6 when the answers "
        "do not depend on the audio (default: off; see 'koala-bench check')",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (default: one bar per config on stderr)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="run directory (created; resumed if it exists); required, no default",
    )


def run(args: argparse.Namespace) -> int:
    """``koala-bench run``."""
    from koala.models import load_model

    for noisy in ("httpx", "httpcore"):  # one INFO line per request would drown the bars
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    if not args.data:
        print(f"koala-bench run: give --data DIR_OR_HUB_ID (or set ${DATA_ENV})", file=sys.stderr)
        return 1
    if args.limit is not None and args.limit < 1:
        print("koala-bench run: --limit must be >= 1", file=sys.stderr)
        return 1
    if args.concurrency < 1:
        print("koala-bench run: --concurrency must be >= 1", file=sys.stderr)
        return 1
    refused = source_tree_error(args.data)
    if refused is not None:
        print(f"koala-bench run: {refused}", file=sys.stderr)
        return 1
    configs = _split_configs(args.configs)
    try:
        if configs == ["all"]:
            configs = config_names(args.data)
        model = load_model(args.model)
        prompts = load_prompts(args.prompts)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"koala-bench run: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "check", False):
        from koala.check import check_model

        status = check_model(model, args.data, configs, prompts=prompts, protocol=args.protocol)
        if status:
            print("koala-bench run: the check failed; nothing was run", file=sys.stderr)
            return status
    try:
        stats = run_model(
            model,
            configs,
            args.out,
            data=args.data,
            prompts=prompts,
            limit=args.limit,
            concurrency=args.concurrency,
            text_audio=args.sca_text_audio,
            protocol=args.protocol,
            spec=args.model,
            progress=not args.no_progress,
            manifest={"spec": args.model, "argv": sys.argv[1:]},
        )
    except RuntimeError as exc:
        print(f"koala-bench run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\nkoala-bench run: interrupted; every answer received is saved in "
            f"{Path(args.out) / PREDICTIONS}; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print(summary(stats, Path(args.out) / PREDICTIONS), file=sys.stderr)
    status = exit_status(stats)
    if status:
        print(f"koala-bench run: exit status {status} ({_EXIT_MEANING[status]})", file=sys.stderr)
    return status


_EXIT_MEANING = {
    EXIT_NOTHING_ANSWERED: "nothing could be answered",
    EXIT_NOT_RUN: "a requested config did not run",
    EXIT_WRITE_FAILED: "the predictions file could not be written; answers were lost",
    EXIT_BREAKER: "the circuit breaker stopped sending to a failing server",
}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m koala.runner ...`` (the same options as ``koala-bench run``)."""
    parser = argparse.ArgumentParser(
        prog="python -m koala.runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
