"""Read the per-sample logs of an lmms-eval run of the KoALa-Bench task package
(``--log_samples``) as koala-bench records (``koala-bench import lmms-eval LOG_DIR --out RUN``).

lmms-eval writes ``<output_path>/<model>/<date>_samples_<task>.jsonl`` (one line per row: the
row, the arguments, the responses and what ``process_results`` returned under each metric) and
``<date>_results.json``. The package's ``process_results`` returns the koala-bench record of the
row (:func:`koala.integrations.lmms_eval.core.process_results`), so each line carries it; the
record's ``ref`` is ``task.ref(row)``, as the runner stores it. Lines of tasks that are not
KoALa-Bench's are left out, and so is the canary (``koala_canary``: a check, not a result).

One lmms-eval invocation is one *run*: the files of one folder sharing one ``<date>``. The
records of a task come from one run, never from several: when a folder holds two runs of the
same task (a full run and a later ``--limit`` smoke run, say) the import refuses and lists the
runs, and ``run=`` (``--run``) names the ones to read, by date or by one of their files.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koala.integrations.lmms_eval.core import CANARY_TASK, PREFIX, lmms_tasks, record_of_sample

__all__ = ["SAMPLES", "LmmsRun", "find_runs", "read_logs"]

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
    "error",
    "logprobs",
    "shown_labels",
    "subset",
    "noise",
    "prompt",
)


@dataclass
class LmmsRun:
    """One lmms-eval invocation's files: its folder, its ``<date>``, the samples file of each
    KoALa-Bench task and its ``<date>_results.json`` (``None`` when absent)."""

    folder: Path
    date: str
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def results_file(self) -> Path:
        return self.folder / f"{self.date}_results.json"

    def results(self) -> dict[str, Any] | None:
        """The parsed results file, ``None`` when there is none (``ValueError`` naming the
        file when it is not UTF-8 JSON)."""
        path = self.results_file
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 (byte {exc.start}: {exc.reason})") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from None

    def describe(self) -> str:
        try:
            res = self.results()
        except ValueError:
            res = None
        limit = ((res or {}).get("config") or {}).get("limit")
        shown = f", --limit {limit}" if limit not in (None, "None") else ""
        return f"{self.date} in {self.folder} ({len(self.files)} task(s){shown})"

    def names(self, run: str) -> bool:
        """Whether ``run`` (a date or the path of one of the run's files) names this run."""
        if run == self.date:
            return True
        p = Path(run)
        if p.is_file():
            mine = {f.resolve() for f in self.files.values()} | {self.results_file.resolve()}
            return p.resolve() in mine
        return False


def find_runs(root: Path) -> list[LmmsRun]:
    """Every run under ``root`` (a folder, or one samples file), by folder and date."""
    files = [root] if root.is_file() else sorted(root.rglob(f"*{SAMPLES}{PREFIX}*.jsonl"))
    runs: dict[tuple[Path, str], LmmsRun] = {}
    for f in files:
        date, sep, task = f.stem.partition(SAMPLES)
        if not sep or not task.startswith(PREFIX):
            raise ValueError(f"{f}: not an lmms-eval samples file (<date>{SAMPLES}<task>.jsonl)")
        if task == CANARY_TASK:
            continue
        run = runs.setdefault((f.parent, date), LmmsRun(f.parent, date))
        run.files[task] = f
    return sorted(runs.values(), key=lambda r: (r.date, str(r.folder)))


def _choose(runs: list[LmmsRun], chosen: Sequence[str] | None, root: Path) -> list[LmmsRun]:
    """The runs to read: those ``chosen`` names (every name must name one), else all of them
    when no task has more than one; a ``ValueError`` listing the runs otherwise."""
    if chosen:
        picked = [r for r in runs if any(r.names(c) for c in chosen)]
        unknown = [c for c in chosen if not any(r.names(c) for r in runs)]
        if unknown:
            listed = "\n  ".join(r.describe() for r in runs)
            raise ValueError(
                f"{root}: no run {', '.join(map(repr, unknown))}; the runs are:\n  {listed}"
            )
    else:
        picked = runs
    by_task: dict[str, list[LmmsRun]] = defaultdict(list)
    for r in picked:
        for task in r.files:
            by_task[task].append(r)
    several = {t: rs for t, rs in sorted(by_task.items()) if len(rs) > 1}
    if several:
        lines = [
            f"{t}: {len(rs)} runs: " + "; ".join(r.describe() for r in rs)
            for t, rs in several.items()
        ]
        how = (
            "name one run per task"
            if chosen
            else "choose with --run DATE (or the path of one of its files; several: comma "
            "separated), one run per task"
        )
        raise ValueError(
            f"{root}: several lmms-eval runs answer the same task; records of two runs are "
            f"never mixed: {how}.\n  " + "\n  ".join(lines)
        )
    return picked


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path}:{n}: not UTF-8 (byte {exc.start} of the line: {exc.reason})"
                ) from None
            if line.strip():
                try:
                    yield n, json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{n}: not JSON: {exc}") from None


def _model(results: list[dict[str, Any]], runs: list[LmmsRun]) -> str:
    # model_name comes from the model's arguments (pretrained=...); else the model class
    names = {str(n) for r in results if (n := r.get("model_name") or r.get("model_source"))}
    if not names:  # no results file: the folder lmms-eval named after the model
        names = {r.folder.name for r in runs}
    if len(names) != 1:
        raise ValueError(f"the logs are of several models {sorted(names)}: import one at a time")
    return names.pop()


def read_logs(
    path: str | os.PathLike[str], run: str | Sequence[str] | None = None
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """``(model name, records, source)`` of the lmms-eval logs under ``path`` (the
    ``--output_path`` folder, a model folder in it, or one samples file); ``run`` names the
    runs to read (dates or files, comma separated or a list), needed when several runs answer
    one task."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    runs = find_runs(root)
    if not runs:
        raise ValueError(
            f"{root}: no KoALa-Bench samples file (*{SAMPLES}{PREFIX}*.jsonl); run lmms-eval "
            "with --log_samples and the koala tasks"
        )
    chosen = [c.strip() for c in run.split(",")] if isinstance(run, str) else run
    runs = _choose(runs, [c for c in chosen or [] if c], root)
    known = lmms_tasks()
    records: list[dict[str, Any]] = []
    files = {task: f for r in runs for task, f in r.files.items()}
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
    results = [res for r in runs if (res := r.results()) is not None]
    versions = sorted({str(r["lmms_eval_version"]) for r in results if r.get("lmms_eval_version")})
    source = {
        "harness": "lmms-eval",
        "version": versions[0] if len(versions) == 1 else versions or None,
        "path": str(root.resolve()),
        "runs": [r.date for r in runs],
        "tasks": sorted(files),
        "files": [str(f.resolve()) for _, f in sorted(files.items())],
        "protocol": "koala",
    }
    return _model(results, runs), records, source
