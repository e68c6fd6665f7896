"""Read the per-sample logs of an lmms-eval run of the KoALa-Bench task package
(``--log_samples``) as koala-bench records (``koala-bench import lmms-eval LOG_DIR --out RUN``).

lmms-eval writes ``<output_path>/<model>/<date>_samples_<task>.jsonl`` (one line per row: the
row, the arguments, the responses and what ``process_results`` returned under each metric) and
``<date>_results.json``. The package's ``process_results`` returns the koala-bench record of the
row (:func:`koala.integrations.lmms_eval.core.process_results`), so each line carries it; the
record's ``ref`` is ``task.ref(row)``, as the runner stores it. Lines of tasks that are not
KoALa-Bench's are left out; when a folder holds several runs of one task, the newest is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from koala.integrations.lmms_eval.core import PREFIX, lmms_tasks, record_of_sample

__all__ = ["SAMPLES", "read_logs"]

SAMPLES = "_samples_"
RECORD_FIELDS = (
    "task",
    "config",
    "variant",
    "condition",
    "id",
    "ref",
    "status",
    "prediction",
    "logprobs",
    "shown_labels",
    "subset",
    "noise",
    "prompt",
)


def _sample_files(root: Path) -> dict[str, Path]:
    """The newest samples file of every KoALa-Bench task under ``root`` (a file or folder)."""
    files = [root] if root.is_file() else sorted(root.rglob(f"*{SAMPLES}{PREFIX}*.jsonl"))
    newest: dict[str, Path] = {}
    for f in files:
        date, sep, task = f.stem.partition(SAMPLES)
        if not sep or not task.startswith(PREFIX):
            raise ValueError(f"{f}: not an lmms-eval samples file (<date>{SAMPLES}<task>.jsonl)")
        old = newest.get(task)
        if old is None or old.stem.partition(SAMPLES)[0] < date:
            newest[task] = f
    return newest


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{n}: not JSON: {exc}") from None


def _results(files: Mapping[str, Path]) -> list[dict[str, Any]]:
    """The ``<date>_results.json`` beside the samples files read (those that exist)."""
    out = []
    for f in sorted(
        {f.parent / f"{f.stem.partition(SAMPLES)[0]}_results.json" for f in files.values()}
    ):
        try:
            out.append(json.loads(f.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError):
            continue
    return out


def _model(results: list[dict[str, Any]], files: Mapping[str, Path]) -> str:
    # model_name comes from the model's arguments (pretrained=...); else the model class
    names = {str(n) for r in results if (n := r.get("model_name") or r.get("model_source"))}
    if not names:  # no results file: the folder lmms-eval named after the model
        names = {f.parent.name for f in files.values()}
    if len(names) != 1:
        raise ValueError(f"the logs are of several models {sorted(names)}: import one at a time")
    return names.pop()


def read_logs(path: str | os.PathLike[str]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """``(model name, records, source)`` of the lmms-eval logs under ``path`` (the
    ``--output_path`` folder, a model folder in it, or one samples file)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    files = _sample_files(root)
    if not files:
        raise ValueError(
            f"{root}: no KoALa-Bench samples file (*{SAMPLES}{PREFIX}*.jsonl); run lmms-eval "
            "with --log_samples and the koala tasks"
        )
    known = lmms_tasks()
    records: list[dict[str, Any]] = []
    for task_name, f in sorted(files.items()):
        spec = known.get(task_name)
        if spec is None:
            raise ValueError(f"{f}: {task_name!r} is not a task of this koala-bench version")
        for n, sample in _lines(f):
            where = f"{f}:{n}"
            rec = record_of_sample(sample)
            if rec is None:
                raise ValueError(
                    f"{where}: no koala-bench record among the metrics (a log of another "
                    "version of the task package?)"
                )
            if (rec["config"], rec["condition"]) != (spec.config, spec.condition):
                raise ValueError(
                    f"{where}: a record of {rec['config']}/{rec['condition']} in the log of "
                    f"{task_name}"
                )
            out = {k: rec[k] for k in RECORD_FIELDS if k in rec}
            out["where"] = where
            records.append(out)
    results = _results(files)
    versions = sorted({str(r["lmms_eval_version"]) for r in results if r.get("lmms_eval_version")})
    source = {
        "harness": "lmms-eval",
        "version": versions[0] if len(versions) == 1 else versions or None,
        "path": str(root.resolve()),
        "tasks": sorted(files),
        "files": [str(f.resolve()) for _, f in sorted(files.items())],
        "protocol": "koala",
    }
    return _model(results, files), records, source
