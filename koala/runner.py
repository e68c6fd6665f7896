"""``koala-bench run``: run a model over benchmark configs, resumably and concurrently.

::

    koala-bench run --model SPEC --configs CONFIG [CONFIG ...] [--data DIR_OR_HUB_ID]
                    [--prompts FILE] [--limit N] [--concurrency N]
                    [--protocol koala|published] [--check] [--shard K/N] --out RUN_DIR

What one run does, per config (one after another, each with a progress bar showing rate and
ETA):

1. The config's rows: ``DATA`` is a directory written by ``koala-bench export`` (Parquet
   shards + a README with YAML ``configs:``), read where it lies one row group at a time
   (:class:`koala.data.ParquetRows`: nothing is copied into the ``datasets`` cache), or a Hub
   id, read with ``datasets.load_dataset(DATA, CONFIG, split="test")``. A
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
3. Every request gets a *fingerprint* (:func:`koala.plan.request_fingerprint`) of what can
   change its answer: the prompt text, the condition, the text-audio mode (text condition),
   the model's kind, target and every option that can change an answer (not how requests
   travel: time-outs, retries, server URLs; nor ``max_audio_s``, which only flags records;
   :func:`model_identity`), the labels shown, and a digest of the stored (undecoded) bytes of
   the audio column it sends, read in Arrow batches before any request is sent. The config's
   plan (every request with its fingerprint and the digest of the record's ``ref``,
   :func:`koala.predictions.write_plan`) is written to ``RUN_DIR/plan/CONFIG.json`` before
   its requests are sent.
4. A request whose record in ``RUN_DIR/predictions.jsonl`` is ``ok`` or ``abstained`` with the
   same fingerprint is skipped: a re-run resumes, and a change of prompts, model options or
   audio re-asks exactly the requests it changes. A change that only changes the score (a
   re-export that fixes a gold answer, ``--protocol`` where the request shows the same
   labels, ``max_audio_s``) asks nothing: the record is rewritten with the new reference when
   it changed. Failed records are retried.
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

Where the rows come from is :mod:`koala.data`, the plan of every request :mod:`koala.plan`,
what a run did (counts, ``run.json``, exit status, summary) :mod:`koala.manifest`; this module
executes the plan and is the ``run`` command.

Records are keyed by ``(model, config, variant, condition, id)`` and carry the fields the
scorer needs (``ref``), so ``koala-bench score RUN_DIR`` needs no dataset; the format lives
in :mod:`koala.predictions`.

A dead or hung server: after ``breaker`` consecutive failed requests (the ``openai`` adapter's
``?breaker=N``, default 8; 0: never) the run stops sending to it: requests in flight are
dropped and the rest are not sent; neither is recorded, so they stay pending and the same
command resumes them. Everything committed is kept; the summary names the server and the last
error. When those failures are all answers without text of one reason (``content: null``
with ``finish_reason`` ``length``: a reasoning model out of tokens), the server is not down:
the message names the reason and what to change (raise ``max_tokens`` /
``max_completion_tokens``) instead of asking to wait for the server.

``--shard K/N`` plans and sends only shard K of N of every config's requests
(:func:`koala.plan.in_shard`: a hash of ``(config, variant, condition, id)``; for SLURM arrays
or several machines); the plan file lists only that share and records ``"shard": "K/N"`` in
its settings (and the size of the whole config, ``full_plan``, so a shard alone scores as
*partial*, never complete), and ``koala-bench merge`` (:mod:`koala.merge`) joins the N run
folders into one that scores as an unsharded run. A shard is refused in a folder whose plan
of a config is another: the whole config (it would shrink to the shard's share) or another
shard (it would replace it); give each shard its own ``--out``. A model with several servers
(``openai:MODEL@URL1,URL2``) reports its per-server counts (``server_counts()``), which the
summary and ``run.json`` show.

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
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koala.data import (
    DATA_ENV,
    as_rows,
    config_names,
    load_config,
    open_rows,
    source_tree_error,
)
from koala.manifest import (
    EXIT_BREAKER,
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RUN,
    EXIT_NOTHING_ANSWERED,
    EXIT_WRITE_FAILED,
    RunStats,
    _check_one_model,
    _finish_manifest,
    _lock,
    _write_manifest,
    exit_status,
    summary,
)
from koala.models import (
    Abstain,
    Answer,
    Audio,
    call_answer,
    parse_spec,
)
from koala.openai_client import EmptyAnswer
from koala.plan import (
    ConfigWork,
    Item,
    attach_audio,
    audio_digests,
    parse_shard,
    plan_config,
    request_fingerprint,
    shard_state,
    share_by_clip,
)
from koala.predictions import (
    ABSTAINED,
    FAILED,
    MANIFEST,
    OK,
    PLAN_DIR,
    PREDICTIONS,
    ConfigPlan,
    Key,
    PredictionStore,
    ReadStats,
    WriteError,
    load_plan,
    read_predictions,
    record_key,
    write_plan,
)
from koala.prompts import PROTOCOLS, PromptSet, load_prompts, task_of

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
    "load_config",
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


class _ReadAhead:
    """How many requests the reader thread may have handed to the event loop that no worker
    has taken yet: at most ``limit``, handed over in blocks of at most ``block`` (half the
    limit, so a block can go while the other half is still queued). A worker's take is a
    counter decrement that wakes the reader only when it waits and its block now fits: one
    thread switch per block instead of two per request."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.block = max(1, self.limit // 2)
        self.held = 0
        self._need = 0  # the size of the block the reader waits to hand over (0: not waiting)
        self._cv = threading.Condition()

    def reserve(self, n: int, stop: threading.Event) -> bool:
        """Wait until ``n`` more requests fit (or none is held); False when ``stop`` is set."""
        with self._cv:
            while self.held and self.held + n > self.limit:
                if stop.is_set():
                    return False
                self._need = n
                self._cv.wait(0.2)
            self._need = 0
            self.held += n
            return True

    def take(self) -> None:
        """One request taken by a worker."""
        with self._cv:
            self.held -= 1
            if self._need and (not self.held or self.held + self._need <= self.limit):
                self._cv.notify()


class BreakerTripped(RuntimeError):
    """The circuit breaker stopped the run (see :class:`Breaker`); ``no_text`` when the last
    failures were answers without text of one reason (the server answers: nothing to wait
    for)."""

    def __init__(self, message: str, no_text: bool = False) -> None:
        super().__init__(message)
        self.no_text = no_text


@dataclass
class Breaker:
    """Stops sending to a server after ``limit`` consecutive failed requests (0: never).

    With the adapter's defaults a hung server costs 60 s x 5 attempts per request; without a
    breaker every request of the run would pay it. A success (or an abstention) resets the
    count; requests that fail before reaching the model (an undecodable clip, a prompt that
    cannot be built) do not count.

    An answer without text (:class:`koala.openai_client.EmptyAnswer`: ``content: null``, a
    reasoning model out of tokens, a refusal) is a failure too, but the server did answer: when
    every one of the consecutive failures is such an answer of the same reason, the message
    names that reason and what to change (:meth:`message`) instead of a server to wait for.
    """

    limit: int
    server: str
    consecutive: int = 0
    last_error: str | None = None
    # the no-text reason of each consecutive failure (None: another failure), and the advice
    # of the last one that had a reason
    no_text: list[str | None] = field(default_factory=list)
    advice: str = ""

    @property
    def tripped(self) -> bool:
        return self.limit > 0 and self.consecutive >= self.limit

    def record(self, ans: Answer | BaseException) -> None:
        """Count one model call's outcome."""
        if isinstance(ans, BaseException) and not isinstance(ans, Abstain):
            self.consecutive += 1
            self.last_error = f"{type(ans).__name__}: {ans}".strip()[:500]
            reason = ans.reason if isinstance(ans, EmptyAnswer) else None
            self.no_text.append(reason)
            if isinstance(ans, EmptyAnswer):
                self.advice = ans.advice
        else:
            self.consecutive = 0
            self.no_text.clear()

    @property
    def no_text_reason(self) -> str | None:
        """The reason every consecutive failure was an answer without text, when they share
        one (``finish_reason=length``); ``None`` otherwise."""
        reasons = set(self.no_text)
        return reasons.pop() if len(reasons) == 1 and None not in reasons else None

    def message(self) -> str:
        why = self.no_text_reason
        if why is not None:
            return (
                f"circuit breaker: {self.consecutive} consecutive answers without text ({why}) "
                f"from {self.server}: the server answers, the model writes no text; "
                f"{self.advice}; stopped sending to it. Last error: {self.last_error}"
            )
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
    shard: tuple[int, int] | None = None  # (K, N) of --shard K/N
    legacy_model_id: dict[str, Any] | None = None  # the model's part of a version-1 fingerprint


async def _run_config(model: Any, data: Any, config: str, ctx: _Run) -> None:
    loop = asyncio.get_running_loop()
    stats, store, concurrency = ctx.stats, ctx.store, ctx.concurrency
    ds = as_rows(data)
    audio_cols = ds.audio_columns
    meta_cols = [c for c in ds.column_names if c not in audio_cols]

    def make_plan() -> ConfigWork:
        work = plan_config(
            ds.iter_columns(meta_cols),
            config,
            model.name,
            getattr(model, "tasks", None),
            ctx.prompts,
            ctx.done,
            digests=audio_digests(ds, audio_cols),
            model_id=ctx.model_id,
            legacy_model_id=ctx.legacy_model_id,
            text_audio=ctx.text_audio,
            protocol=ctx.protocol,
            shard=ctx.shard,
            locate=_locator(ds),
        )
        settings = dict(ctx.settings)
        if ctx.shard is not None:
            settings["full_plan"] = work.full_plan()
        write_plan(
            ctx.run_dir,
            config,
            ConfigPlan(config, task_of(config), work.total, work.requests, settings, work.refs),
        )
        return work

    work = await loop.run_in_executor(None, make_plan)
    plans, total, n_done = work.rows, work.total, work.done
    stats.planned[config] += total
    stats.skipped[config] += n_done
    for rec in work.refreshed:  # answered before: the record again, with what changed
        store.put(rec)
    stats.refreshed[config] += len(work.refreshed)
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
    shared = bool(getattr(model, "ignores_prompt", False))  # one call per clip, see Item
    breaker = ctx.breaker
    queue: asyncio.Queue[Any] = asyncio.Queue()
    # Bounded read-ahead: requests (with their clips: long PA-QA passages are large) read and
    # not yet taken by a worker, handed to the event loop in blocks (one wake-up per block)
    room = _ReadAhead(concurrency + 8)
    stop = threading.Event()

    def put_all(objs: list[Any]) -> None:
        for obj in objs:
            queue.put_nowait(obj)

    def feed(obj: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the run stopped
            loop.call_soon_threadsafe(put_all, obj if isinstance(obj, list) else [obj])

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
                        row = ds.row(plan.index, audio_cols) if audio_cols else {}
                        attach_audio(plan, row, ctx.text_audio, cache)
                        if shared:
                            share_by_clip(plan)
                interleaved = itertools.chain.from_iterable(
                    itertools.zip_longest(*(p.items for p in chunk))
                )
                items = [item for item in interleaved if item is not None]
                for k in range(0, len(items), room.block):
                    block = items[k : k + room.block]
                    if not room.reserve(len(block), stop):
                        return
                    feed(block)
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
        room.take()
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
                room.take()
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
                    one.request = None  # the plan keeps the item, not its clip
                if breaker is not None:
                    breaker.record(ans)
            if breaker is not None and breaker.tripped:
                # the TaskGroup cancels the other workers (and their calls in flight, which
                # stay pending); nothing more is sent
                raise BreakerTripped(breaker.message(), breaker.no_text_reason is not None)

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


def _locator(ds: Any) -> Callable[[int], str | None] | None:
    """Where row ``index`` of a config read from Parquet files lies (file and row there), for
    messages; ``None`` for other sources."""
    files = getattr(ds, "files", None)
    if not files:
        return None

    def locate(index: int) -> str | None:
        import pyarrow.parquet as pq

        first = 0
        for f in files:
            n = pq.ParquetFile(f).metadata.num_rows
            if index < first + n:
                return f"{f} row {index - first}"
            first += n
        return None

    return locate


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
            # the model's input limit, known once it is loaded (transformers: its feature
            # extractor's): the score flags longer clips truncated from it
            limit_s = getattr(model, "max_audio_s", None)
            ctx.settings["max_audio_s"] = float(limit_s) if limit_s else None
            for n, config in enumerate(configs):
                try:
                    task_of(config)
                    ds = await loop.run_in_executor(None, loader, config)
                    await _run_config(model, ds, config, ctx)
                except (KeyboardInterrupt, asyncio.CancelledError):
                    raise
                except BreakerTripped as exc:
                    stats.breaker = str(exc)
                    stats.breaker_no_text = exc.no_text
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
        counts = getattr(model, "server_counts", None)
        if callable(counts):
            stats.servers = counts()
    return stats


# Spec options that set what a record says about its answer, not the answer: the model's input
# limit flags longer clips ``truncated``, a flag the score recomputes from the plan's limit.
RECORD_OPTIONS = frozenset({"max_audio_s"})
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
        "per_server",
        "cooloff",
    }
)


def model_identity(model: Any, spec: str | None = None, *, version: int = 2) -> dict[str, Any]:
    """The model's part of every fingerprint: its name, the spec's kind and target, and the
    spec's parsed options that can change an answer (the name alone does not tell two
    temperatures apart; :data:`TRANSPORT_OPTIONS` and :data:`RECORD_OPTIONS` are left out).
    ``version=1``: the identity of the version-1 fingerprint, which kept the record options
    (:func:`koala.plan.legacy_fingerprint`).

    The ``@URL`` (one server or a fleet ``URL1,URL2,...``) is transport too: it says where
    the model named by the target is served, not what answers, so a run on three replicas
    and one on a single replica (or on another machine's server, as the shards of one run on
    several machines are) have the same fingerprints and their records are interchangeable.
    ``url`` stays in the identity as ``null``, so that runs made without a URL keep their
    fingerprints. Serving another model under the same name at another URL is a different
    model: give it another ``?name=``, or its own run folder."""
    options: dict[str, Any] = {}
    where: dict[str, Any] = {}
    if spec:
        parsed = parse_spec(spec)
        left_out = TRANSPORT_OPTIONS if version == 1 else TRANSPORT_OPTIONS | RECORD_OPTIONS
        options = {k: v for k, v in parsed.options.items() if k not in left_out}
        where = {"kind": parsed.kind, "target": parsed.target, "url": None}
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
    shard: tuple[int, int] | None = None,
) -> RunStats:
    """Run ``model`` (any object of the :mod:`koala.models` protocol) over ``configs`` into
    the run directory ``out``; the Python entry point behind ``koala-bench run``.

    ``loader(config)`` replaces reading ``data`` (:func:`koala.data.open_rows`); it returns a
    ``datasets.Dataset`` or a :class:`koala.data.ParquetRows`.
    ``spec`` is the ``--model`` string the model was built from (it and its options are part
    of every request's fingerprint). A config that cannot run is listed in
    ``config_errors``; when the predictions file cannot be written the run stops and
    ``writer_error`` and ``lost`` say so (see :func:`exit_status`). ``shard=(K, N)`` plans
    and sends only shard K of N (see ``--shard``).
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
            return open_rows(src, config, limit)

    prompts = prompts or load_prompts()
    model_id = model_identity(model, spec)
    legacy_model_id = model_identity(model, spec, version=1)
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
    if shard is not None:
        k, n = shard
        if not 1 <= k <= n:
            raise ValueError(f"shard={shard!r}: give (K, N) with 1 <= K <= N")
        settings["shard"] = f"{k}/{n}"
        manifest = {**(manifest or {}), "shard": settings["shard"]}
    run_dir = Path(out)
    _check_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _lock(run_dir):
        _check_one_model(run_dir, model.name)
        _check_shard(run_dir, configs, settings.get("shard"))
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
        stats = RunStats(shard=settings.get("shard"))
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
            shard=shard,
            legacy_model_id=legacy_model_id,
        )
        try:
            try:
                asyncio.run(_run_all(model, configs, loader, ctx))
            except KeyboardInterrupt:
                stats.interrupted = True
                raise
            finally:
                store.close()
                stats.lost, stats.committed = store.lost, store.committed
                if store.failed and stats.writer_error is None:
                    stats.writer_error = f"{type(store.error).__name__}: {store.error}"
        finally:  # an interrupted invocation is recorded as one
            try:
                _finish_manifest(run_dir, stats)
            except OSError as exc:  # a full disk fails the manifest too
                log.error("%s: cannot update the manifest: %s", run_dir / MANIFEST, exc)
    return stats


def _check_run_dir(run_dir: Path) -> None:
    """``--out`` must be a folder (or not exist), and what a run folder holds must have its
    kind: a file where ``predictions.jsonl`` or ``run.json`` goes, a folder for ``plan``."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RuntimeError(f"--out {run_dir}: is a file, not a run folder; give a folder")
    for name in (PREDICTIONS, MANIFEST):
        p = run_dir / name
        if p.exists() and not p.is_file():
            raise RuntimeError(f"{p}: is not a file; {run_dir} is not a run folder")
    p = run_dir / PLAN_DIR
    if p.exists() and not p.is_dir():
        raise RuntimeError(f"{p}: is not a folder; {run_dir} is not a run folder")


def _check_shard(run_dir: Path, configs: Sequence[str], shard: str | None) -> None:
    """Refuse a ``--shard`` run whose plan of a config would replace another plan there:
    the whole config's (it would shrink to the shard's share and leave the rest unscored) or
    another shard's. The same shard resumes; a run without ``--shard`` grows any plan to
    the whole config, so it is never refused."""
    if shard is None or shard_state(shard) is None:  # no shard, or 1/1: every request
        return
    try:
        plans = load_plan(run_dir)
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
    clashes = []
    for config in configs:
        plan = plans.get(config)
        if plan is None or plan.settings.get("shard") == shard:
            continue
        held = plan.settings.get("shard")
        try:
            whole = held is None or shard_state(held) is None
        except ValueError:
            whole = False
        clashes.append((config, held, whole))
    if not clashes:
        return
    config, held, whole = clashes[0]
    others = [c for c, _, _ in clashes[1:]]
    more = f" (and {len(others)} other config(s): {', '.join(others)})" if others else ""
    if whole:
        what = (
            f"{run_dir} plans every request of {config}{more}; --shard {shard} would plan only "
            "its share there and leave the rest of that run unscored"
        )
    else:
        what = (
            f"{run_dir} holds shard {held} of {config}{more}; --shard {shard} would replace "
            "its plan with another share"
        )
    raise RuntimeError(
        f"{what}. Run without --shard to resume or complete the config in this folder, or give "
        "each shard its own --out and join them with koala-bench merge; nothing was run"
    )


# ============================================================================ CLI


def _split_configs(values: Sequence[str]) -> list[str]:
    return [c for v in values for c in v.replace(",", " ").split() if c]


def model_help() -> str:
    """The ``--model`` help: the spec forms, and what a dead or hung server costs (the
    per-request deadline, the Retry-After cap, the circuit breaker)."""
    from koala.models.openai import DEFAULT_BREAKER
    from koala.openai_client import DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_BACKOFF, deadline

    return (
        "model spec: vosk-ko | whisper | cascade-llm | cascade | openai:MODEL@URL | "
        "transformers:PATH (options after "
        "'?', see koala.models); required, no default. openai:MODEL@URL1,URL2,... spreads "
        "the requests over several servers (?per_server=N in flight each; a failing one is "
        "left out for ?cooloff=SECONDS, 30, its requests sent to the others). openai: a "
        "request is given up after "
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
        "--shard",
        default=None,
        metavar="K/N",
        help="plan and send only shard K of N of the requests (1 <= K <= N; a hash of each "
        "request's config, variant, condition and id, the same on every machine), for SLURM "
        "arrays or several machines; join the N run folders with 'koala-bench merge' "
        "(default: every request)",
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

    for noisy in ("httpx", "httpcore", "aiohttp"):  # per-request INFO lines drown the bars
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
    shard = None
    if getattr(args, "shard", None) is not None:
        try:
            shard = parse_shard(args.shard)
        except ValueError as exc:
            print(f"koala-bench run: {exc}", file=sys.stderr)
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
            shard=shard,
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
        return EXIT_INTERRUPTED
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
    from koala.cli import ArgumentParser

    parser = ArgumentParser(
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
