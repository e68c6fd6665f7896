"""What a run did: per-config counts (:class:`RunStats`), the run manifest (``run.json``:
model, settings, start and end, one model per run folder), the exit status and the summary
printed at the end."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koala.predictions import (
    ABSTAINED,
    FAILED,
    FORMAT_VERSION,
    MANIFEST,
    OK,
    PREDICTIONS,
)
from koala.prompts import PromptSet

EXIT_NOTHING_ANSWERED, EXIT_NOT_RUN, EXIT_WRITE_FAILED, EXIT_BREAKER = 2, 3, 4, 5
EXIT_CHECK_FAILED = 6  # koala-bench check / run --check: the answers ignore the audio
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as a shell reports it: 128 + 2


@dataclass
class RunStats:
    """What a run did, per config; ``writer_error`` and ``lost`` say whether the predictions
    file failed and how many answers never reached it (``committed`` did)."""

    planned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # already done
    # already answered, the record written again with a new reference or fingerprint version
    refreshed: Counter[str] = field(default_factory=Counter)
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
    # the breaker's failures were answers without text (the server answers; the model's
    # options must change, waiting for the server will not help)
    breaker_no_text: bool = False
    # per server of the model (host:port): requests answered, failed there, times taken out
    servers: dict[str, dict[str, int]] = field(default_factory=dict)
    shard: str | None = None  # "K/N" when the run planned one shard (--shard)
    interrupted: bool = False  # stopped by Ctrl-C (SIGINT)

    def count(self, config: str, rec: Mapping[str, Any]) -> None:
        self.written[config] += 1
        self.status.setdefault(config, Counter())[rec["status"]] += 1
        if rec["status"] == FAILED:
            self.errors.setdefault(config, Counter())[str(rec.get("error"))[:160]] += 1
        if rec.get("truncated"):
            self.truncated[config] += 1


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
            "interrupted": stats.interrupted,
            "written": dict(stats.written),
            "skipped_done": dict(stats.skipped),
            "refreshed": dict(stats.refreshed),
            "status": {c: dict(v) for c, v in stats.status.items()},
            "config_errors": stats.config_errors,
            "writer_error": stats.writer_error,
            "lost": stats.lost,
            "breaker": stats.breaker,
            "truncated": dict(stats.truncated),
            "max_audio_s": stats.max_audio_s,
            "servers": stats.servers,
            "exit_status": exit_status(stats),
        }
    )
    _atomic_json(path, m)


def exit_status(stats: RunStats) -> int:
    """The exit status of a run: 130 when it was interrupted (Ctrl-C), 4 when the predictions
    file could not be written, 5 when the circuit breaker stopped it, 2 when nothing could be
    answered, 3 when a requested config did not run (or stopped), else 0."""
    if stats.interrupted:
        return EXIT_INTERRUPTED
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
    """The end-of-run summary: per config what was done and the errors; per server of a
    fleet (or a server that failed) its counts; configs that did not run and answers lost to
    a failed predictions file are said last."""
    shard = f" (shard {stats.shard})" if stats.shard else ""
    lines = [f"koala-bench run summary{shard}:"]
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
        if stats.refreshed[c]:
            lines.append(
                f"      {stats.refreshed[c]} answered request(s) recorded again without asking: "
                "the same request, with a new reference (a re-export) or fingerprint version"
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
    if len(stats.servers) > 1 or any(n.get("failed") for n in stats.servers.values()):
        lines.append("  per server:")
        for label, n in stats.servers.items():
            out = f", taken out {n['taken_out']} time(s)" if n.get("taken_out") else ""
            lines.append(
                f"      {label}: {n.get('answered', 0)} answered, {n.get('failed', 0)} failed{out}"
            )
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
    if stats.shard:
        lines.append(
            f"  This folder holds shard {stats.shard} of each config: it scores as partial "
            "until its shards are joined with koala-bench merge."
        )
    if stats.breaker is not None and stats.breaker_no_text:
        lines.append(
            f"  STOPPED: {stats.breaker}. The requests not sent are not recorded: they stay "
            "pending, and everything committed is kept; change what the message says and run "
            "again (a changed model option asks every request again: it is part of each "
            "request's fingerprint; ?breaker=0 turns the breaker off)."
        )
    elif stats.breaker is not None:
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
