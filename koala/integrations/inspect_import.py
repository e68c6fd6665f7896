"""inspect_ai logs of the KoALa-Bench tasks (:mod:`koala.integrations.inspect_tasks`) as
koala-bench records: ``koala-bench import inspect LOG --out RUN_DIR`` (:mod:`koala.import_logs`).

Each sample of a log is one request: its metadata carries the config, task, prompt variant,
condition, row id, subset, noise, reference fields and labels shown, exactly as
``koala-bench run`` stores them, and its output is the answer. A sample that ended in an error
or hit a limit is a ``failed`` record (koala-bench counts it as a wrong or empty answer; inspect
leaves it out of its own metrics). When several logs answer the same request (an eval and its
retry), the log created last wins.

A koala-bench run holds one answer per request, and an eval with ``--epochs N`` gives N: the
import refuses such logs unless ``epoch=`` (``--epoch K``) names the epoch to import (import
each epoch into a run folder of its own to compare them); no epoch is dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from koala.predictions import FAILED, OK

__all__ = ["LOG_SUFFIXES", "log_files", "read_logs", "sample_record"]

LOG_SUFFIXES = (".eval", ".json")
CANARY_TASK = "koala_canary"
_REQUIRED = ("config", "task", "variant", "condition", "id", "ref")


def log_files(path: str | Path) -> list[Path]:
    """``path`` itself (a ``.eval`` or ``.json`` log), or the logs in the folder ``path``
    (recursively, sorted by name)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in LOG_SUFFIXES)
        files = [f for f in files if f.name != "logs.json"]  # inspect's index of a log folder
        if not files:
            raise FileNotFoundError(f"{p}: no inspect logs (*.eval, *.json)")
        return files
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such log file or folder")
    return [p]


def _prompt(sample: Any) -> str | None:
    """The text the sample sent (its text parts, attachments resolved)."""
    messages = sample.input if isinstance(sample.input, list) else None
    if messages is None:
        return str(sample.input)
    parts: list[str] = []
    for m in messages:
        content = m.content if isinstance(m.content, list) else [m.content]
        for c in content:
            text = c if isinstance(c, str) else getattr(c, "text", None)
            if isinstance(text, str):
                if text.startswith("attachment://"):
                    text = (sample.attachments or {}).get(text.removeprefix("attachment://"), text)
                parts.append(text)
    return "\n".join(parts) if parts else None


def sample_record(sample: Any, where: str) -> dict[str, Any]:
    """The koala-bench record of one inspect sample (``ValueError`` when its metadata is not
    a koala-bench request's)."""
    md: Mapping[str, Any] = sample.metadata or {}
    missing = [f for f in _REQUIRED if md.get(f) in (None, "")]
    if missing:
        raise ValueError(
            f"{where}: not a koala-bench sample (metadata lacks {missing}); run the tasks of "
            "koala/integrations/inspect_tasks.py"
        )
    rec: dict[str, Any] = {
        "task": md["task"],
        "config": md["config"],
        "variant": md["variant"],
        "condition": md["condition"],
        "id": str(md["id"]),
        "ref": dict(md["ref"]),
        "subset": md.get("subset"),
        "noise": md.get("noise"),
        "shown_labels": md.get("shown_labels"),
        "logprobs": None,
        "prompt": _prompt(sample),
        "where": where,
    }
    if sample.error is not None:
        rec.update(status=FAILED, prediction=None, error=f"inspect: {sample.error.message}")
    elif sample.limit is not None:
        rec.update(status=FAILED, prediction=None, error=f"inspect: {sample.limit.type} limit")
    else:
        output = sample.output
        rec.update(status=OK, prediction=output.completion if output is not None else "")
    return rec


def read_logs(
    path: str | Path, epoch: int | None = None
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """``(model, records, source)`` of the inspect log ``path`` (a file, or a folder of them):
    the evaluated model, one record per sample (of ``epoch`` when given; a ``ValueError``
    listing the epochs when the logs hold several and none is given), and ``source`` (harness,
    inspect version, the logs read, the epoch) for ``run.json`` and the fingerprints."""
    from inspect_ai.log import read_eval_log

    logs = []
    for f in log_files(path):
        try:
            log = read_eval_log(str(f))
        except Exception as exc:
            raise ValueError(f"{f}: not an inspect log ({type(exc).__name__}: {exc})") from exc
        if log.eval.task.split("/")[-1] == CANARY_TASK:
            continue  # the canary is a check, not a result
        logs.append((log.eval.created or "", str(f), log))
    logs.sort(key=lambda t: (t[0], t[1]))
    if not logs:
        raise ValueError(f"{path}: no log of a KoALa-Bench task (only the canary's)")
    models = sorted({log.eval.model for _, _, log in logs})
    if len(models) != 1:
        raise ValueError(f"{path}: logs of several models {models}; import one model at a time")
    epochs = sorted({sample.epoch for _, _, log in logs for sample in log.samples or []})
    if epoch is None and len(epochs) > 1:
        raise ValueError(
            f"{path}: the logs hold epochs {', '.join(map(str, epochs))} (inspect eval "
            "--epochs); a koala-bench run holds one answer per request: import one epoch "
            "with --epoch K (each into its own run folder)"
        )
    if epoch is not None and epoch not in epochs:
        raise ValueError(
            f"{path}: no epoch {epoch} in the logs (epochs: {', '.join(map(str, epochs))})"
        )
    wanted = epoch if epoch is not None else (epochs[0] if epochs else 1)
    records: dict[tuple[str, ...], dict[str, Any]] = {}
    read: list[dict[str, Any]] = []
    for _, f, log in logs:
        for sample in log.samples or []:
            if sample.epoch != wanted:
                continue
            rec = sample_record(sample, f"{f}: sample {sample.id} epoch {sample.epoch}")
            key = (rec["config"], rec["variant"], rec["condition"], rec["id"])
            records[key] = rec  # a later log answers the same request again
        read.append(
            {
                "file": Path(f).name,
                "task": log.eval.task,
                "eval_id": log.eval.eval_id,
                "created": log.eval.created,
                "status": log.status,
            }
        )
    if not records:
        raise ValueError(f"{path}: the logs hold no samples")
    version = next((log.eval.packages.get("inspect_ai") for _, _, log in logs), None)
    source = {
        "harness": "inspect_ai",
        "version": version,
        "path": str(Path(path).resolve()),
        "logs": read,
        "epoch": wanted,
        "epochs": epochs,
    }
    return models[0], list(records.values()), source
