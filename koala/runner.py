"""``koala-bench run``: run a model over benchmark configs, resumably and concurrently.

::

    koala-bench run --model SPEC --configs CONFIG [CONFIG ...] [--data DIR_OR_HUB_ID]
                    [--prompts FILE] [--limit N] [--concurrency N] --out RUN_DIR

What one run does, per config (one after another, each with a progress bar showing rate and
ETA):

1. ``datasets.load_dataset(DATA, CONFIG, split="test")``: ``DATA`` is a directory written by
   ``koala-bench export`` (Parquet shards + a README with YAML ``configs:``) or a Hub id.
2. For every row, every prompt variant (:mod:`koala.prompts`; all of them are run, the report
   keeps the best and shows all) and every condition of the task it builds one request. SCA-QA
   has three conditions: ``text`` (the question alone, gold ``answer``), ``counterfactual``
   (speech of the counterfactual context, column ``audio``, gold ``counterfactual_answer``)
   and ``original`` (speech of the original context, column ``original_audio``, gold
   ``answer``; rows without it are skipped). In the text-only condition the model gets a
   one-second silent clip (``--sca-text-audio silence``, the default, as the published code
   does, so every adapter sees the same input format) or no audio at all
   (``--sca-text-audio none``). Every other task has one condition, ``speech``.
3. Requests whose record is already in ``RUN_DIR/predictions.jsonl`` (same key, same prompt
   text) are skipped: a re-run resumes. Failed records are retried.
4. The model answers (``--concurrency`` requests in flight for HTTP models, a thread pool or
   batches for local ones). Multiple-choice requests ask for label log-probabilities too
   when the model gives them, so generation-based and logit-based scores come from one call.
5. Each answer becomes one JSON line, appended and fsynced before it counts as done (a writer
   thread commits what has arrived as one group: one fsync per group, never a record left in
   a buffer). A run killed with SIGKILL loses only the requests in flight; a truncated last
   line is cut off when the run resumes.

A failed request (an exception from the model, an undecodable clip, a row missing a field) is
recorded with ``status: "failed"`` and its error; a model that declines (``Abstain``, or a
task outside ``model.tasks``) is recorded with ``status: "abstained"``. Neither stops the run;
the end of the run prints an error summary, and ``koala-bench score``/``report`` count them.

Records are keyed by ``(model, config, variant, condition, id)`` and carry the fields the
scorer needs (``ref``), so ``koala-bench score RUN_DIR`` needs no dataset.

Exit status: 0 when the run went through (even with failed samples, which the summary and the
report count), 2 when nothing could be answered, 1 on a usage error.
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

from koala.models import Abstain, Answer, Audio, Request, as_audio, call_answer, silence
from koala.prompts import CONDITIONS, MC_TASKS, PromptSet, build_prompt, load_prompts, task_of

__all__ = [
    "PREDICTIONS",
    "PredictionStore",
    "RunStats",
    "add_arguments",
    "main",
    "read_predictions",
    "record_key",
    "run",
    "run_model",
]

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
MANIFEST = "run.json"
DATA_ENV = "KOALA_BENCH_DATA"
AUDIO_COLUMNS = ("audio", "original_audio")
# fields copied from a row into the record's ``ref``, per task
REF_FIELDS: dict[str, tuple[str, ...]] = {
    "asr": ("text",),
    "st": ("reference", "source_text", "talk_id"),
    "sif": ("instruction", "reference_answer"),
    "sqa": ("question", "choices", "choice_labels", "answer"),
    "pa_qa": (
        "question",
        "choices",
        "choice_labels",
        "answer",
        "evidence_positions",
        "evidence_segments",
    ),
    "sca_qa": (
        "question",
        "choices",
        "choice_labels",
        "answer",
        "counterfactual_answer",
        "domain",
    ),
}
OK, FAILED, ABSTAINED = "ok", "failed", "abstained"

Key = tuple[str, str, str, str, str]


def record_key(rec: Mapping[str, Any]) -> Key:
    """``(model, config, variant, condition, id)`` of a record."""
    return (rec["model"], rec["config"], rec["variant"], rec["condition"], str(rec["id"]))


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# ============================================================================ predictions file


@dataclass
class ReadStats:
    lines: int = 0
    records: int = 0
    duplicates: int = 0  # keys seen more than once (the last record wins)
    corrupt: list[int] = field(default_factory=list)  # line numbers that were not JSON
    truncated_tail: bool = False


def read_predictions(path: str | Path) -> tuple[dict[Key, dict[str, Any]], ReadStats]:
    """The last record per key of a predictions file, and what reading found.

    A last line without a newline (a run killed mid-write) is ignored; another line that is
    not JSON is skipped with a warning naming the line.
    """
    p = Path(path)
    out: dict[Key, dict[str, Any]] = {}
    st = ReadStats()
    if not p.exists():
        return out, st
    data = p.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        st.truncated_tail = True
        lines.pop()
    for n, raw in enumerate(lines, 1):
        st.lines += 1
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            key = record_key(rec)
        except (ValueError, KeyError, TypeError):
            st.corrupt.append(n)
            log.warning("%s line %d: not a prediction record; skipped", p, n)
            continue
        st.records += 1
        if key in out:
            st.duplicates += 1
        out[key] = rec
    return out, st


class PredictionStore:
    """Append-only JSONL of records with group commit: :meth:`put` queues a record, a writer
    thread appends everything queued, flushes and fsyncs, then counts it committed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._queue: list[bytes] = []
        self._cv = threading.Condition()
        self._submitted = 0
        self._committed = 0
        self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._file: io.BufferedWriter | None = None

    def open(self) -> None:
        """Cut a truncated last line off (a killed run's partial record), then append."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with open(self.path, "rb+") as f:
                data = f.read()
                if data and not data.endswith(b"\n"):
                    cut = data.rfind(b"\n") + 1
                    log.warning(
                        "%s: dropping a truncated last line (%d bytes) left by an interrupted run",
                        self.path,
                        len(data) - cut,
                    )
                    f.truncate(cut)
                    f.flush()
                    os.fsync(f.fileno())
        self._file = open(self.path, "ab")
        self._thread = threading.Thread(target=self._write_loop, name="koala-writer", daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._cv:
            if self._error is not None:
                raise RuntimeError(f"{self.path}: cannot write predictions") from self._error
            self._queue.append(line.encode("utf-8"))
            self._submitted += 1
            self._cv.notify_all()

    def _write_loop(self) -> None:
        assert self._file is not None
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                batch, self._queue = self._queue, []
                closing = self._closing
            if batch:
                try:
                    self._file.write(b"".join(batch))
                    self._file.flush()
                    os.fsync(self._file.fileno())
                except BaseException as exc:
                    with self._cv:
                        self._error = exc
                        self._cv.notify_all()
                    return
                with self._cv:
                    self._committed += len(batch)
                    self._cv.notify_all()
            if closing and not batch:
                return

    def drain(self) -> None:
        """Wait until every record put so far is on disk."""
        with self._cv:
            while self._committed < self._submitted and self._error is None:
                self._cv.wait()
            if self._error is not None:
                raise RuntimeError(f"{self.path}: cannot write predictions") from self._error

    def close(self) -> None:
        if self._thread is not None:
            with self._cv:
                self._closing = True
                self._cv.notify_all()
            self._thread.join()
            self._thread = None
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def committed(self) -> int:
        return self._committed


# ============================================================================ data


def _local_data_files(root: Path, config: str) -> list[str] | None:
    """The test-split files of ``config`` per the YAML ``configs:`` block of ``root/README.md``
    (the block ``load_dataset(root, config)`` reads); ``None`` when there is no such block."""
    import glob

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
    if not isinstance(configs, list):
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
    for col in AUDIO_COLUMNS:
        if col in ds.column_names and isinstance(ds.features[col], datasets.Audio):
            ds = ds.cast_column(col, datasets.Audio(decode=False))
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


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
    import datasets

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


@dataclass
class RowPlan:
    index: int
    items: list[Item]


@dataclass
class RunStats:
    """What a run did, per config."""

    planned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # already done
    written: Counter[str] = field(default_factory=Counter)
    status: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    config_errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def count(self, config: str, rec: Mapping[str, Any]) -> None:
        self.written[config] += 1
        self.status.setdefault(config, Counter())[rec["status"]] += 1
        if rec["status"] == FAILED:
            self.errors.setdefault(config, Counter())[str(rec.get("error"))[:160]] += 1


def _ref(task: str, row: Mapping[str, Any]) -> dict[str, Any]:
    return {f: row[f] for f in REF_FIELDS[task] if f in row}


def plan_config(
    rows: Iterable[Mapping[str, Any]],
    config: str,
    model_name: str,
    model_tasks: frozenset[str] | None,
    prompts: PromptSet,
    done: Mapping[Key, Mapping[str, Any]],
) -> tuple[list[RowPlan], int, int]:
    """The requests still to make for ``config`` (rows without their audio), the number of
    requests in total and the number already done."""
    task = task_of(config)
    variants = prompts.variants(config)
    conditions = CONDITIONS[task]
    plans: list[RowPlan] = []
    total = n_done = 0
    for index, row in enumerate(rows):
        rid = row.get("id")
        rid = str(rid) if rid is not None else f"#row{index}"
        items: list[Item] = []
        for condition in conditions:
            if condition == "original" and row.get("original_audio") is None:
                continue  # not published for this row
            for v in variants:
                total += 1
                base = {
                    "model": model_name,
                    "config": config,
                    "task": task,
                    "variant": v.name,
                    "condition": condition,
                    "id": rid,
                    "subset": row.get("subset"),
                    "noise": row.get("noise"),
                    "ref": _ref(task, row),
                }
                try:
                    if rid.startswith("#row"):
                        raise ValueError(f"config {config} row {index}: no 'id' field")
                    prompt = build_prompt(task, v, row, condition)
                except (KeyError, TypeError, ValueError) as exc:
                    what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    rec = {
                        **base,
                        "prompt_sha": None,
                        "status": FAILED,
                        "prediction": None,
                        "logprobs": None,
                        "error": f"config {config} row {rid}: cannot build the prompt: {what}",
                    }
                    items.append(Item(config, task, v.name, condition, rid, "", None, base, rec))
                    continue
                base["prompt_sha"] = _sha(prompt)
                key = (model_name, config, v.name, condition, rid)
                prev = done.get(key)
                if (
                    prev is not None
                    and prev.get("status") in (OK, ABSTAINED)
                    and prev.get("prompt_sha") == base["prompt_sha"]
                ):
                    n_done += 1
                    continue
                labels = None
                if task in MC_TASKS:
                    labels = tuple(str(x) for x in row["choice_labels"])
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
            plans.append(RowPlan(index, items))
    return plans, total, n_done


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
            if item.condition == "text":
                audio = silence(1.0) if text_audio == "silence" else None
            else:
                col = "original_audio" if item.condition == "original" else "audio"
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


# ============================================================================ execution


def _answer_record(item: Item, ans: Answer | BaseException, seconds: float) -> dict[str, Any]:
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
    return rec


class _End:
    pass


_END = _End()


async def _run_config(
    model: Any,
    ds: Any,
    config: str,
    prompts: PromptSet,
    done: Mapping[Key, Mapping[str, Any]],
    store: PredictionStore,
    stats: RunStats,
    concurrency: int,
    text_audio: str,
    executor: ThreadPoolExecutor | None,
    progress: bool,
) -> None:
    loop = asyncio.get_running_loop()
    meta_cols = [c for c in ds.column_names if c not in AUDIO_COLUMNS]
    has_original = "original_audio" in ds.column_names

    def make_plan() -> tuple[list[RowPlan], int, int]:
        rows: Iterable[Mapping[str, Any]] = ds.select_columns(meta_cols)
        if has_original:  # only whether the clip exists matters here: read nulls from Arrow
            table = ds.select_columns(["original_audio"]).with_format("arrow")[:]
            nulls = table.column(0).is_null().to_pylist()
            rows = (
                {**r, "original_audio": None if null else True}
                for r, null in zip(rows, nulls, strict=True)
            )
        return plan_config(rows, config, model.name, getattr(model, "tasks", None), prompts, done)

    plans, total, n_done = await loop.run_in_executor(None, make_plan)
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
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    audio_cols = [c for c in AUDIO_COLUMNS if c in ds.column_names]
    audio_ds = ds.select_columns(audio_cols) if audio_cols else None
    queue: asyncio.Queue[Any] = asyncio.Queue()
    # Bounded read-ahead: decoded clips waiting for a worker (long PA-QA passages are large).
    slots = threading.Semaphore(concurrency + 8)
    stop = threading.Event()

    def feed(obj: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, obj)

    def produce() -> None:
        # Rows go out in groups of ``concurrency`` (at most 16), their requests interleaved
        # (row 1 variant 1, row 2 variant 1, ...): parallel calls work on different clips, and
        # a model that caches per clip (vosk-ko, cascade) never decodes one clip twice at once.
        cache: dict[str, Audio] = {}
        group = max(1, min(concurrency, 16))
        try:
            for start in range(0, len(plans), group):
                chunk = plans[start : start + group]
                for plan in chunk:
                    if any(it.record is None for it in plan.items):
                        row = audio_ds[plan.index] if audio_ds is not None else {}
                        attach_audio(plan, row, text_audio, cache)
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
        store.put(rec)
        stats.count(config, rec)
        bar.update(1)

    batch_size = max(1, int(getattr(model, "batch_size", 1) or 1))
    is_async = hasattr(model, "aanswer")
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
            while batch_size > 1 and len(items) < batch_size and not queue.empty():
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
                        executor, model.answer_batch, [it.request for it in items]
                    )
                else:
                    answers = [
                        await loop.run_in_executor(executor, call_answer, model, item.request)
                    ]
            except Exception as exc:
                answers = [exc] * len(items)
            took = (time.perf_counter() - start) / len(items)
            for it, ans in zip(items, answers, strict=True):
                finish(_answer_record(it, ans, took))

    n_workers = max(1, concurrency if is_async else -(-concurrency // batch_size))
    try:
        await asyncio.gather(*(worker() for _ in range(n_workers)))
    finally:
        stop.set()
        await loop.run_in_executor(None, store.drain)
        bar.close()
        stats.seconds[config] = stats.seconds.get(config, 0.0) + time.perf_counter() - t0
    if crash:
        raise crash[0]


@contextlib.asynccontextmanager
async def _opened(model: Any, concurrency: int) -> Any:
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
    prompts: PromptSet,
    store: PredictionStore,
    done: Mapping[Key, Mapping[str, Any]],
    concurrency: int,
    text_audio: str,
    progress: bool,
) -> RunStats:
    stats = RunStats()
    limit = getattr(model, "max_concurrency", None)
    conc = max(1, min(concurrency, limit) if limit else concurrency)
    is_async = hasattr(model, "aanswer")
    executor = None if is_async else ThreadPoolExecutor(conc, thread_name_prefix="koala-model")
    loop = asyncio.get_running_loop()
    try:
        async with _opened(model, concurrency if is_async else conc):
            for config in configs:
                try:
                    task_of(config)
                    ds = await loop.run_in_executor(None, loader, config)
                    await _run_config(
                        model,
                        ds,
                        config,
                        prompts,
                        done,
                        store,
                        stats,
                        concurrency if is_async else conc,
                        text_audio,
                        executor,
                        progress,
                    )
                except (KeyboardInterrupt, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    msg = f"{type(exc).__name__}: {exc}"
                    stats.config_errors[config] = msg
                    log.error("config %s: %s", config, msg)
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    return stats


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
    progress: bool = True,
    manifest: Mapping[str, Any] | None = None,
) -> RunStats:
    """Run ``model`` (any object of the :mod:`koala.models` protocol) over ``configs`` into
    the run directory ``out``; the Python entry point behind ``koala-bench run``.

    ``loader(config) -> Dataset`` replaces ``load_dataset(data, config, split="test")``.
    """
    if text_audio not in ("silence", "none"):
        raise ValueError(f"text_audio={text_audio!r}: use 'silence' or 'none'")
    if loader is None:
        if data is None:
            raise ValueError("give data= (an export directory or a Hub id) or loader=")
        src = data

        def loader(config: str) -> Any:
            return load_config(src, config, limit)

    prompts = prompts or load_prompts()
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _lock(run_dir):
        _write_manifest(run_dir, model, configs, data, prompts, limit, text_audio, manifest)
        done, rstats = read_predictions(run_dir / PREDICTIONS)
        if rstats.corrupt:
            log.warning(
                "%s: %d corrupt line(s) skipped", run_dir / PREDICTIONS, len(rstats.corrupt)
            )
        store = PredictionStore(run_dir / PREDICTIONS)
        store.open()
        try:
            stats = asyncio.run(
                _run_all(
                    model, configs, loader, prompts, store, done, concurrency, text_audio, progress
                )
            )
        finally:
            store.close()
        _finish_manifest(run_dir, stats)
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


def _write_manifest(
    run_dir: Path,
    model: Any,
    configs: Sequence[str],
    data: str | None,
    prompts: PromptSet,
    limit: int | None,
    text_audio: str,
    extra: Mapping[str, Any] | None,
) -> None:
    path = run_dir / MANIFEST
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        m = {"created": _now(), "invocations": []}
    m.update(
        {
            "model": model.name,
            "data": data,
            "configs": sorted(set(m.get("configs", [])) | set(configs)),
            "prompts": {
                "source": prompts.source,
                "sha256": prompts.sha256,
                "variants": prompts.as_dict(),
            },
            "sca_text_audio": text_audio,
            "predictions": PREDICTIONS,
        }
    )
    m["invocations"].append(
        {"started": _now(), "configs": list(configs), "limit": limit, **(extra or {})}
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
        }
    )
    _atomic_json(path, m)


# ============================================================================ CLI


def summary(stats: RunStats) -> str:
    """The end-of-run summary: per config what was done and the errors."""
    lines = ["koala-bench run summary:"]
    configs = list(dict.fromkeys([*stats.planned, *stats.config_errors]))
    for c in configs:
        if c in stats.config_errors:
            lines.append(f"  {c}: NOT RUN: {stats.config_errors[c]}")
            continue
        st = stats.status.get(c, Counter())
        secs = stats.seconds.get(c)
        rate = f", {stats.written[c] / secs:.1f} req/s" if secs and stats.written[c] else ""
        lines.append(
            f"  {c}: {stats.planned[c]} requests, {stats.skipped[c]} already done, "
            f"{stats.written[c]} new (ok {st[OK]}, failed {st[FAILED]}, "
            f"abstained {st[ABSTAINED]}){rate}"
        )
        for msg, n in stats.errors.get(c, Counter()).most_common(5):
            lines.append(f"      {n} x {msg}")
    failed = sum(st[FAILED] for st in stats.status.values())
    if failed:
        lines.append(
            f"  {failed} failed request(s) are recorded; re-run the same command to retry them."
        )
    return "\n".join(lines)


def _split_configs(values: Sequence[str]) -> list[str]:
    return [c for v in values for c in v.replace(",", " ").split() if c]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="model spec: vosk-ko | cascade | openai:MODEL@URL | "
        "transformers:PATH (options after '?', see koala.models)",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        required=True,
        help="config names (space or comma separated), or 'all'",
    )
    parser.add_argument(
        "--data",
        default=os.environ.get(DATA_ENV),
        help=f"export directory or Hub id (default: ${DATA_ENV})",
    )
    parser.add_argument(
        "--prompts",
        default=None,
        help="prompt file (this project's or the published prompts.yaml format)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N rows of each config")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests in flight (HTTP models) or worker threads",
    )
    parser.add_argument(
        "--sca-text-audio",
        choices=("silence", "none"),
        default="silence",
        help="what the SCA-QA text-only condition sends: a 1 s silent clip "
        "(default, as published) or no audio",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--out", required=True, help="run directory (created; resumed if it exists)"
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
    configs = _split_configs(args.configs)
    try:
        if configs == ["all"]:
            configs = config_names(args.data)
        for c in configs:
            task_of(c)
        model = load_model(args.model)
        prompts = load_prompts(args.prompts)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"koala-bench run: {exc}", file=sys.stderr)
        return 1
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
    print(summary(stats), file=sys.stderr)
    answered = sum(st[OK] + st[ABSTAINED] for st in stats.status.values())
    attempted = sum(stats.written.values())
    if (attempted and not answered) or (stats.config_errors and not stats.planned):
        return 2
    return 0


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
