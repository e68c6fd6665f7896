"""``koala-bench merge RUN_DIR... --out RUN``: join the run folders of one model into one.

The run folders are typically the shards of one run (``koala-bench run --shard K/N``, one per
SLURM array task or machine); any run folders of the same model and settings can be joined.
The merged folder is an ordinary run folder: ``koala-bench score``, ``report`` and ``compare``
read it, and ``koala-bench run`` resumes it. What is joined, and what is refused (nothing is
written then):

* the model: every run must hold the same model (``run.json``'s ``model``), else refused
  naming both runs and models;
* the plans (``plan/<config>.json``): per config, the union of the requests; the settings of
  the runs must agree on everything but ``shard`` and ``full_plan`` (refused naming the
  setting, both runs and both values), where ``spec`` is compared by its kind and target
  only: its URLs and transport options say where and how the requests went, not what
  answered (see :func:`koala.runner.model_identity`; the options that change answers are the
  ``options`` setting), and ``prompts`` by content (sha256 and variants), not by the path of
  the file. A request planned by two runs with different fingerprints or references (the
  same export path re-exported with other data in between, say) is refused naming the key
  and both runs;
* the predictions: the union of each run's records (the last record per key of each run); a
  key recorded by two runs with the same fingerprint is kept once (an ``ok`` or ``abstained``
  record over a ``failed`` one, else the first run's), with different fingerprints it is
  refused naming the key and both runs;
* ``run.json``: the first run's, with the union of the configs, every run's invocations (each
  with its ``run``), and ``merged``: the runs, their shards, and whether they make a whole.

Whole-ness is decided per config, over the runs that planned it: a config is whole when an
unsharded plan of it is among them, or the plans of shards 1..N of one N. A run that never
planned a config (killed by a time limit or the breaker before reaching it, or run with a
shorter ``--configs``) contributes no shard to it. The merged plan of a whole config carries
no ``shard``; a partial one lists the shards present (``"1/3+3/3"``) and keeps the whole
config's size (``full_plan``), so ``koala-bench score`` marks it partial and names the missing
shards. Shards of different N that make no whole are refused (their union is no share of
one plan).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from koala.manifest import _atomic_json, _now
from koala.models import parse_spec
from koala.plan import ShardState, parse_shard, shard_state
from koala.predictions import (
    ABSTAINED,
    MANIFEST,
    OK,
    PREDICTIONS,
    ConfigPlan,
    Key,
    load_plan,
    read_predictions,
    write_plan,
)

__all__ = ["MergeError", "add_arguments", "merge_runs", "run"]

log = logging.getLogger(__name__)

# plan settings compared otherwise (see the module docstring)
_WHERE = frozenset({"shard", "full_plan", "spec", "prompts"})


class MergeError(ValueError):
    """Run folders that cannot be joined (the message names what differs)."""


def _spec_identity(spec: Any) -> Any:
    """The kind and target of a model spec (its URLs and options are compared elsewhere)."""
    if not isinstance(spec, str) or not spec:
        return spec
    parsed = parse_spec(spec)
    return {"kind": parsed.kind, "target": parsed.target}


def _comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in settings.items() if k not in _WHERE}
    out["spec (kind and target)"] = _spec_identity(settings.get("spec"))
    return out


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _prompts_difference(a: Any, b: Any) -> tuple[str, str, str] | None:
    """How two plans' ``prompts`` settings differ in content, as ``(first, second, what)``
    (``None``: the same sha256 and variants; the path of the file does not count)."""
    a, b = a if isinstance(a, Mapping) else {}, b if isinstance(b, Mapping) else {}
    if a.get("sha256") == b.get("sha256") and a.get("variants") == b.get("variants"):
        return None
    va, vb = a.get("variants") or {}, b.get("variants") or {}
    names = [
        f"{task}: {va.get(task)} and {vb.get(task)}"
        for task in sorted(set(va) | set(vb))
        if va.get(task) != vb.get(task)
    ]
    what = f"variants differ ({'; '.join(names)})" if names else "same variants, other text"
    return (
        f"prompt file {a.get('source')} (sha256 {a.get('sha256')})",
        f"prompt file {b.get('source')} (sha256 {b.get('sha256')})",
        what,
    )


def _shard_key(shard: str) -> tuple[int, int]:
    k, n = parse_shard(shard)
    return n, k


def _config_shards(config: str, held: Sequence[tuple[Path, str | None]]) -> ShardState | None:
    """The shards of ``config`` the runs that planned it hold together (``None``: every
    request: an unsharded plan among them, or shards 1..N of one N). Shards of different N
    that make no whole are a :class:`MergeError`."""
    by_n: dict[int, set[int]] = {}
    for run, setting in held:
        try:
            state = shard_state(setting)
        except ValueError as exc:
            raise MergeError(f"{run}: plan of {config}: {exc}") from None
        if state is None:
            return None
        by_n.setdefault(state.of, set()).update(state.present)
    states = [ShardState(n, tuple(sorted(ks))) for n, ks in sorted(by_n.items())]
    if any(not st.missing for st in states):
        return None
    if len(states) > 1:
        named = ", ".join(f"{run} ({setting})" for run, setting in held)
        raise MergeError(
            f"config {config}: shards of different N that make no whole: {named}; merge the "
            "shards of one N"
        )
    return states[0]


def _manifest(run: Path) -> dict[str, Any]:
    try:
        m = json.loads((run / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MergeError(f"{run}: not a run folder (no {MANIFEST})") from None
    except ValueError as exc:
        raise MergeError(f"{run}/{MANIFEST}: not JSON ({exc})") from None
    if not isinstance(m, dict) or not m.get("model"):
        raise MergeError(f"{run}/{MANIFEST}: names no model")
    return m


def _better(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    answered = (OK, ABSTAINED)
    return new.get("status") in answered and old.get("status") not in answered


def merge_runs(runs: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Join the run folders ``runs`` of one model into the new run folder ``out`` (see the
    module docstring); raises :class:`MergeError` naming what differs, before writing
    anything. Returns ``{"out", "model", "runs", "shards", "whole", "configs": {config:
    planned}, "records", "duplicates"}``: ``records`` written, ``duplicates`` the keys
    recorded by more than one run with the same fingerprint (kept once)."""
    dirs = [Path(r) for r in runs]
    if not dirs:
        raise MergeError("give at least one run folder")
    seen = [d.resolve() for d in dirs]
    if len(set(seen)) != len(seen):
        raise MergeError("a run folder is given twice")
    dest = Path(out)
    if dest.resolve() in seen:
        raise MergeError(f"--out {dest}: is one of the runs; give a new folder")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise MergeError(f"--out {dest}: exists and is not an empty folder; give a new folder")

    manifests = [_manifest(d) for d in dirs]
    model = manifests[0]["model"]
    for d, m in zip(dirs[1:], manifests[1:], strict=True):
        if m["model"] != model:
            raise MergeError(
                f"runs of different models: {dirs[0]} holds {model!r}, {d} holds "
                f"{m['model']!r}; a run folder holds one model"
            )

    plans: dict[str, ConfigPlan] = {}
    plan_from: dict[str, Path] = {}  # the run each merged plan's settings come from
    request_from: dict[Key, Path] = {}
    held: dict[str, list[tuple[Path, str | None]]] = {}  # per config: each run's shard setting
    for d in dirs:
        try:
            run_plans = load_plan(d)
        except ValueError as exc:
            raise MergeError(str(exc)) from None
        if not run_plans:
            raise MergeError(f"{d}: no plan (plan/*.json): not a run of 'koala-bench run'")
        for config, plan in run_plans.items():
            held.setdefault(config, []).append((d, plan.settings.get("shard")))
            if plan.settings.get("model", model) != model:
                raise MergeError(
                    f"runs of different models: {d} plans {config} for "
                    f"{plan.settings.get('model')!r}, {dirs[0]} holds {model!r}"
                )
            merged = plans.get(config)
            if merged is None:
                plans[config] = ConfigPlan(
                    config,
                    plan.task,
                    0,
                    dict(plan.requests),
                    dict(plan.settings),
                    dict(plan.refs),
                )
                plan_from[config] = d
                request_from.update(dict.fromkeys(plan.requests, d))
                continue
            first = plan_from[config]
            a, b = _comparable(merged.settings), _comparable(plan.settings)
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    raise MergeError(
                        f"config {config}: setting {name!r} differs: {first} ran with "
                        f"{_text(a.get(name))}, {d} with {_text(b.get(name))}"
                    )
            diff = _prompts_difference(merged.settings.get("prompts"), plan.settings.get("prompts"))
            if diff is not None:
                raise MergeError(
                    f"config {config}: the prompts differ: {first} ran with {diff[0]}, {d} with "
                    f"{diff[1]}: {diff[2]}"
                )
            fa, fb = merged.settings.get("full_plan"), plan.settings.get("full_plan")
            if fa is not None and fb is not None and fa != fb:
                raise MergeError(
                    f"config {config}: the shards were planned over different rows: {first} "
                    f"counts {_text(fa)} requests in the whole config, {d} {_text(fb)} (other "
                    "data or --limit)"
                )
            if fa is None and fb is not None:
                merged.settings["full_plan"] = fb
            if plan.task != merged.task:
                raise MergeError(
                    f"config {config}: task differs: {first} {merged.task!r}, {d} {plan.task!r}"
                )
            for key, fp in plan.requests.items():
                have = merged.requests.get(key)
                if have is not None and have != fp:
                    raise MergeError(
                        f"request {list(key)}: planned with different fingerprints by "
                        f"{request_from[key]} and {d} (other prompts, options or data)"
                    )
                ref, have_ref = plan.refs.get(key), merged.refs.get(key)
                if ref is not None and have_ref is not None and ref != have_ref:
                    raise MergeError(
                        f"request {list(key)}: planned with different references by "
                        f"{request_from[key]} and {d} (the data was exported again between the "
                        "runs: resume the older run on the newer data first)"
                    )
                merged.requests[key] = fp
                if ref is not None:
                    merged.refs[key] = ref
                request_from.setdefault(key, d)

    records: dict[Key, dict[str, Any]] = {}
    record_from: dict[Key, Path] = {}
    duplicates = 0
    for d in dirs:
        recs, rstats = read_predictions(d / PREDICTIONS)
        if rstats.corrupt or rstats.malformed:
            log.warning(
                "%s: %d corrupt line(s) and %d malformed record(s) skipped",
                d / PREDICTIONS,
                len(rstats.corrupt),
                len(rstats.malformed),
            )
        for key, rec in recs.items():
            old = records.get(key)
            if old is None:
                records[key], record_from[key] = rec, d
                continue
            if old.get("fingerprint") != rec.get("fingerprint"):
                raise MergeError(
                    f"record {list(key)}: different fingerprints in {record_from[key]} and {d} "
                    "(made with other prompts, options or data)"
                )
            duplicates += 1
            if _better(old, rec):
                records[key], record_from[key] = rec, d

    partial: dict[str, ShardState] = {}
    for config, plan in plans.items():
        state = _config_shards(config, held[config])
        plan.planned = len(plan.requests)
        plan.settings.pop("shard", None)
        if state is None:
            plan.settings.pop("full_plan", None)
        else:
            plan.settings["shard"] = state.setting
            partial[config] = state
    whole = not partial
    present = sorted(
        {p for runs in held.values() for _, s in runs if s is not None for p in str(s).split("+")},
        key=_shard_key,
    )

    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{PREDICTIONS}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in records.values():
            f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest / PREDICTIONS)
    for config, plan in sorted(plans.items()):
        write_plan(dest, config, plan)
    manifest = dict(manifests[0])
    manifest["created"] = _now()
    manifest["configs"] = sorted({c for m in manifests for c in m.get("configs", [])} | set(plans))
    manifest["invocations"] = [
        {**inv, "run": str(d)}
        for d, m in zip(dirs, manifests, strict=True)
        for inv in m.get("invocations", [])
    ]
    manifest["merged"] = {
        "at": _now(),
        "runs": [
            {"run": str(d), "model_spec": m.get("model_spec"), "data": m.get("data")}
            for d, m in zip(dirs, manifests, strict=True)
        ],
        "shards": present,
        "whole": whole,
        "partial": {c: st.names(st.missing) for c, st in sorted(partial.items())},
    }
    _atomic_json(dest / MANIFEST, manifest)
    return {
        "out": str(dest),
        "model": model,
        "runs": len(dirs),
        "shards": present,
        "whole": whole,
        "partial": {c: st.names(st.missing) for c, st in sorted(partial.items())},
        "configs": {c: p.planned for c, p in sorted(plans.items())},
        "records": len(records),
        "duplicates": duplicates,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR",
        help="run folders of one model (the shards of 'koala-bench run --shard K/N')",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="the merged run folder (new or empty); required, no default",
    )


def run(args: argparse.Namespace) -> int:
    """``koala-bench merge``."""
    try:
        res = merge_runs(args.runs, args.out)
    except (MergeError, ValueError) as exc:
        print(f"koala-bench merge: refused: {exc}; nothing was written", file=sys.stderr)
        return 1
    planned = sum(res["configs"].values())
    print(
        f"koala-bench merge: {res['runs']} run(s) of {res['model']} -> {res['out']}: "
        f"{len(res['configs'])} config(s), {planned} planned request(s), {res['records']} "
        f"record(s) ({res['duplicates']} recorded twice, kept once)",
        file=sys.stderr,
    )
    for config, missing in res["partial"].items():
        print(
            f"koala-bench merge: {config}: PARTIAL, shard(s) {', '.join(missing)} missing (no "
            "run given planned them); it scores as partial until they are merged in",
            file=sys.stderr,
        )
    return 0
