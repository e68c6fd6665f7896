"""Write records answered elsewhere (an lmms-eval or inspect_ai log) as a koala-bench run.

A run folder is what ``koala-bench score`` reads: ``predictions.jsonl`` (one record per
request, :mod:`koala.predictions`), ``plan/<config>.json`` (every request the run asked for,
with its fingerprint) and ``run.json``. An imported record carries what the runner's record
carries (``task``, ``config``, ``variant``, ``condition``, ``id``, ``ref``, ``status``,
``prediction``, ``logprobs``, ``shown_labels``); its fingerprint is a digest of the request as
the harness logged it (source, config, variant, condition, id, prompt, reference), and the plan
lists exactly the imported requests, so scoring covers them all and nothing else.
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
    PREDICTIONS,
    ConfigPlan,
    canonical_json,
    fingerprint,
    read_predictions,
    record_key,
    write_plan,
)
from koala.tasks import find_task

__all__ = ["REQUIRED", "write_run"]

REQUIRED = ("task", "config", "variant", "condition", "id", "ref", "status")


def _check(rec: Mapping[str, Any], where: str) -> None:
    missing = [f for f in REQUIRED if rec.get(f) in (None, "")]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    if find_task(rec["task"]) is None:
        raise ValueError(f"{where}: unknown task {rec['task']!r}")
    if rec["status"] not in (OK, FAILED, ABSTAINED):
        raise ValueError(f"{where}: status {rec['status']!r} is not one of ok/failed/abstained")
    if not isinstance(rec["ref"], Mapping):
        raise ValueError(f"{where}: field 'ref' must be a mapping, got {type(rec['ref']).__name__}")


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
    of the same model (its configs are replaced). Returns ``{"records", "configs", "status"}``."""
    run_dir = Path(out)
    if run_dir.exists() and any(run_dir.iterdir()):
        manifest = run_dir / MANIFEST
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raise ValueError(f"{run_dir}: not empty and not a koala-bench run") from None
        if old.get("model") != model:
            raise ValueError(f"{run_dir}: a run of {old.get('model')!r}; one model per run folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    src = dict(source)
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
    old_records, _ = read_predictions(run_dir / PREDICTIONS)
    kept = [r for key, r in old_records.items() if key[1] not in by_config]
    lines = [*kept, *(r for recs in by_config.values() for r in recs)]
    tmp = run_dir / f".{PREDICTIONS}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in lines:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, run_dir / PREDICTIONS)
    for config, recs in by_config.items():
        tasks = {r["task"] for r in recs}
        if len(tasks) != 1:
            raise ValueError(f"config {config}: records of several tasks {sorted(tasks)}")
        plan = ConfigPlan(
            config,
            tasks.pop(),
            len(recs),
            {record_key(r): r["fingerprint"] for r in recs},
            {
                "model": model,
                "spec": f"imported:{src.get('harness', 'unknown')}",
                "imported_from": src,
            },
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
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(m, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)
    status = Counter(r["status"] for recs in by_config.values() for r in recs)
    return {
        "records": sum(len(v) for v in by_config.values()),
        "configs": sorted(by_config),
        "status": dict(status),
    }
