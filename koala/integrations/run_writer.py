"""Write records answered elsewhere (an lmms-eval or inspect_ai log) as a koala-bench run.

A run folder is what ``koala-bench score`` reads: ``predictions.jsonl`` (one record per
request, :mod:`koala.predictions`), ``plan/<config>.json`` (every request the run asked for,
with its fingerprint) and ``run.json``. An imported record carries what the runner's record
carries (``task``, ``config``, ``variant``, ``condition``, ``id``, ``ref``, ``status``,
``prediction``, ``logprobs``, ``shown_labels``); its fingerprint is a digest of the request as
the harness logged it (source, config, variant, condition, id, prompt, reference), and the plan
lists exactly the imported requests, so scoring covers them all and nothing else.

An import never replaces records it did not write: ``--out`` must be new or empty, or hold an
earlier import of the same model by the same harness (whose configs that this import brings
are replaced, the others kept); a folder holding a run of ``koala-bench run``, a merge or
another harness's import is refused. Everything is checked before anything is written (a
refused import writes nothing): every record's fields, its config (known to the builder
registry, never a path or a name holding a NUL byte) and its task (the config's own).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from koala.predictions import (
    ABSTAINED,
    FAILED,
    FORMAT_VERSION,
    MANIFEST,
    OK,
    PLAN_DIR,
    PREDICTIONS,
    ConfigPlan,
    canonical_json,
    fingerprint,
    read_predictions,
    record_key,
    ref_digest,
    write_plan,
)
from koala.tasks import find_task

__all__ = ["REQUIRED", "write_run"]

REQUIRED = ("task", "config", "variant", "condition", "id", "ref", "status")


def _config_task(config: Any, where: str) -> str:
    """The task of an imported record's config: a config name the builder registry knows (or
    a registered task's own name, as ``koala-bench run`` takes it); a path-like name, one
    holding a NUL byte or an unknown one is refused."""
    from koala.prompts import task_of

    if not isinstance(config, str):
        raise ValueError(f"{where}: config {config!r} is not a string")
    if "\x00" in config or "/" in config or "\\" in config or config.startswith("."):
        raise ValueError(f"{where}: config {config!r} is not a config name (a path, or a NUL byte)")
    try:
        return task_of(config)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _check(rec: Mapping[str, Any], where: str) -> None:
    missing = [f for f in REQUIRED if rec.get(f) in (None, "")]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    if find_task(rec["task"]) is None:
        raise ValueError(f"{where}: unknown task {rec['task']!r}")
    task = _config_task(rec["config"], where)
    if rec["task"] != task:
        raise ValueError(
            f"{where}: task {rec['task']!r}, but config {rec['config']} is a {task} config"
        )
    if rec["status"] not in (OK, FAILED, ABSTAINED):
        raise ValueError(f"{where}: status {rec['status']!r} is not one of ok/failed/abstained")
    if not isinstance(rec["ref"], Mapping):
        raise ValueError(f"{where}: field 'ref' must be a mapping, got {type(rec['ref']).__name__}")


def _check_out(run_dir: Path, model: str, harness: str) -> None:
    """``run_dir`` must be new or empty, or an earlier import of ``model`` by ``harness``:
    an import never replaces records it did not write."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir}: is a file, not a run folder")
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return
    try:
        old = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ValueError(f"{run_dir}: not empty and not a koala-bench run") from None
    if not isinstance(old, dict):
        raise ValueError(f"{run_dir}/{MANIFEST}: not a koala-bench run manifest")
    if old.get("model") != model:
        raise ValueError(f"{run_dir}: a run of {old.get('model')!r}; one model per run folder")
    source = old.get("imported_from")
    invocations = old.get("invocations") or []
    if (
        not isinstance(source, Mapping)
        or old.get("merged")
        or any(not isinstance(i, Mapping) or "imported" not in i for i in invocations)
    ):
        raise ValueError(
            f"{run_dir}: holds a run of {model!r} that is not an import (koala-bench run or "
            "merge wrote it); an import never replaces records it did not write: give --out a "
            "new folder"
        )
    if source.get("harness") != harness:
        raise ValueError(
            f"{run_dir}: holds an import of {source.get('harness')!r}, not of {harness!r}; an "
            "import never replaces records it did not write: give --out a new folder"
        )
    for path in sorted((run_dir / PLAN_DIR).glob("*.json")):
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))["settings"]["spec"]
        except (OSError, ValueError, KeyError, TypeError):
            spec = None
        if spec != f"imported:{harness}":
            raise ValueError(
                f"{path}: a plan not written by an import of {harness!r}; an import never "
                "replaces records it did not write: give --out a new folder"
            )


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_run(
    out: str | os.PathLike[str],
    model: str,
    records: Iterable[Mapping[str, Any]],
    *,
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``records`` (``where`` of each, if given, names it in errors) as the run folder
    ``out`` of ``model``; ``source`` (the harness, its version, the log path) goes into
    ``run.json`` and every fingerprint. ``out`` must be new or empty, or hold an earlier import
    of the same model by the same harness (the configs this import brings are replaced, the
    others kept); anything else is refused. Every record is checked before anything is
    written. Returns ``{"records", "configs", "status"}``."""
    run_dir = Path(out)
    src = dict(source)
    _check_out(run_dir, model, str(src.get("harness", "unknown")))
    by_config: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, ...]] = set()
    for k, raw in enumerate(records):
        where = str(raw.get("where") or f"record {k}")
        _check(raw, where)
        rec = {f: v for f, v in raw.items() if f not in ("where", "prompt")}
        rec.update(format=FORMAT_VERSION, model=model, id=str(raw["id"]))
        rec.setdefault("prediction", None)
        rec.setdefault("logprobs", None)
        rec.setdefault("error", None)
        rec.setdefault("subset", None)
        rec.setdefault("noise", "noisy" if str(raw["config"]).endswith("_noisy") else "clean")
        rec.setdefault("shown_labels", None)
        rec["fingerprint"] = fingerprint(
            {
                "format": FORMAT_VERSION,
                "source": src,
                "model": model,
                "config": rec["config"],
                "variant": rec["variant"],
                "condition": rec["condition"],
                "id": rec["id"],
                "prompt": raw.get("prompt"),
                "ref": hashlib.sha256(canonical_json(rec["ref"]).encode("utf-8")).hexdigest(),
            }
        )
        key = record_key(rec)
        if key in seen:
            raise ValueError(f"{where}: a second answer to {key}")
        seen.add(key)
        by_config[rec["config"]].append(rec)
    if not by_config:
        raise ValueError("no records to import")
    # everything is checked: write (each file atomically)
    old_records, _ = read_predictions(run_dir / PREDICTIONS)
    kept = [r for key, r in old_records.items() if key[1] not in by_config]
    lines = [*kept, *(r for recs in by_config.values() for r in recs)]
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_text(
        run_dir / PREDICTIONS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
    )
    for config, recs in by_config.items():
        plan = ConfigPlan(
            config,
            recs[0]["task"],
            len(recs),
            {record_key(r): r["fingerprint"] for r in recs},
            {
                "model": model,
                "spec": f"imported:{src.get('harness', 'unknown')}",
                "imported_from": src,
            },
            {record_key(r): ref_digest(r["ref"]) for r in recs},
        )
        write_plan(run_dir, config, plan)
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    manifest_path = run_dir / MANIFEST
    try:
        m = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        m = {"created": now, "invocations": []}
    m.update(
        format=FORMAT_VERSION,
        model=model,
        model_spec=f"imported:{src.get('harness', 'unknown')}",
        configs=sorted(set(m.get("configs", [])) | set(by_config)),
        predictions=PREDICTIONS,
        plans="plan/<config>.json",
        imported_from=src,
    )
    m["invocations"].append({"started": now, "imported": sorted(by_config), "source": src})
    _atomic_text(manifest_path, json.dumps(m, ensure_ascii=False, indent=2) + "\n")
    status = Counter(r["status"] for recs in by_config.values() for r in recs)
    return {
        "records": sum(len(v) for v in by_config.values()),
        "configs": sorted(by_config),
        "status": dict(status),
    }
