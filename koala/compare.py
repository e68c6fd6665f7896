"""``koala-bench compare RUN_A RUN_B``: is model A really better than model B here?

For every config both runs scored, the shown variant of each (the selection rule of
:mod:`koala.score`) is compared item by item on the same items:

* ``sqa``, ``pa_qa``: accuracy (generation-based). The difference A - B, its paired bootstrap
  interval and p-value, and the exact McNemar p-value over the discordant items (A right and B
  wrong, and the reverse), the test for two proportions measured on the same items.
* ``asr``: corpus CER (sum of edits / sum of reference lengths, recomputed on each resample).
* ``sca_qa`` (``koala`` protocol): SCF, a ratio whose denominator (items answered correctly
  from text alone) differs per model and per resample: recomputed on each.
* ``st`` and ``sif`` are not compared yet (said in the output).

Resampling is paired (the same items, or PA-QA passages, drawn for both runs) and seeded. The
p-values of all configs compared are corrected together by Holm's method (``p_holm``).

Runs are compared only on the same items: when the planned rows differ, or a row's data
(audio and reference digests) differs between the runs, the config is refused and the output
says which rows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from koala.predictions import current_records, load_plan, read_predictions
from koala.score import PROTOCOLS, SELECTIONS, score_run, strict_json
from koala.tasks.base import answer_text as _text
from koala.tasks.base import sorted_records as _sorted
from koala.tasks.choice import mc_inputs as _mc_inputs

__all__ = ["add_arguments", "compare_runs", "main", "run"]

COMPARED = ("asr", "sqa", "pa_qa", "sca_qa")


def _current(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    plans = load_plan(run_dir)
    records, _ = read_predictions(Path(run_dir) / "predictions.jsonl")
    current, _ = current_records(records, plans)
    return current


def _shown_records(
    scores: Mapping[str, Any], current: Mapping[str, list[dict[str, Any]]], config: str
) -> tuple[str | None, list[dict[str, Any]]]:
    model = next(iter(scores["models"]), None)
    if model is None:
        return None, []
    c = scores["models"][model]["configs"].get(config) or {}
    best = (c.get("best") or {}).get("gen")
    if not best:
        return None, []
    return best["variant"], [r for r in current.get(config, []) if r["variant"] == best["variant"]]


def _mc_outcomes(recs: Sequence[Mapping[str, Any]], protocol: str) -> dict[str, bool]:
    """Per item id: answered correctly (generation-based); invalid items are left out."""
    from koala.scoring.choices import choice_accuracy

    recs = _sorted(recs)
    preds, kw, _ = _mc_inputs(recs, "gen", protocol)
    out = choice_accuracy(preds, protocol=protocol, return_items=True, **kw)
    invalid = set(out.get("invalid_items") or [])
    return {
        str(r["id"]): p is not None and p == g
        for k, (r, p, g) in enumerate(
            zip(recs, out["predicted_labels"], out["gold_labels"], strict=True)
        )
        if k not in invalid
    }


def _cer_outcomes(recs: Sequence[Mapping[str, Any]], protocol: str) -> dict[str, tuple[int, int]]:
    """Per item id: (edits, reference length) under the protocol's normalisation."""
    from koala.scoring.cer import corpus_cer

    out = {}
    for r in recs:
        s = corpus_cer([_text(r)], [r["ref"]["text"]], protocol=protocol).stats
        out[str(r["id"])] = (s.substitutions + s.deletions + s.insertions, s.reference_length)
    return out


def _sca_outcomes(recs: Sequence[Mapping[str, Any]], protocol: str) -> dict[str, tuple[bool, bool]]:
    """Per item id: (answered correctly from text alone, follows the counterfactual speech)."""
    by_cond: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in recs:
        by_cond.setdefault(r["condition"], {})[str(r["id"])] = r
    text, cf = by_cond.get("text", {}), by_cond.get("counterfactual", {})
    ids = sorted(set(text) & set(cf))
    t = _mc_outcomes([text[i] for i in ids], protocol)
    cf_recs = [
        {**cf[i], "ref": {**cf[i]["ref"], "answer": cf[i]["ref"].get("counterfactual_answer")}}
        for i in ids
    ]
    c = _mc_outcomes(cf_recs, protocol)
    return {i: (t[i], c[i]) for i in ids if i in t and i in c}


def _data_mismatch(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> list[str]:
    da = {(str(r["id"]), r["condition"]): r.get("data_sha") for r in a}
    db = {(str(r["id"]), r["condition"]): r.get("data_sha") for r in b}
    return sorted(f"{i}/{c}" for (i, c) in set(da) & set(db) if da[(i, c)] != db[(i, c)])


def _compare_config(
    task: str,
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    protocol: str,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    from koala.scoring.paired import mcnemar_exact, paired_bootstrap

    if task not in COMPARED:
        return {"note": f"not compared: paired comparison of {task} is not implemented yet"}
    if task == "sca_qa" and protocol != "koala":
        return {"note": "not compared: SCF is compared under the koala protocol only"}
    ids_a = {str(r["id"]) for r in a}
    ids_b = {str(r["id"]) for r in b}
    if ids_a != ids_b:
        only = sorted(ids_a ^ ids_b)
        return {
            "refused": f"the runs scored other items: {len(only)} item(s) in one run only "
            f"(e.g. {', '.join(only[:5])})"
        }
    changed = _data_mismatch(a, b)
    if changed:
        return {
            "refused": f"the data differ between the runs for {len(changed)} item(s) (audio or "
            f"reference; e.g. {', '.join(changed[:5])}): export once and run both on it"
        }
    out: dict[str, Any] = {}
    clusters = None
    if task in ("sqa", "pa_qa"):
        oa, ob = _mc_outcomes(a, protocol), _mc_outcomes(b, protocol)
        ids = sorted(set(oa) & set(ob))
        xa = np.array([oa[i] for i in ids], dtype=float)
        xb = np.array([ob[i] for i in ids], dtype=float)
        metric = "accuracy"
        out["mcnemar_p"] = mcnemar_exact(
            int(((xa == 1) & (xb == 0)).sum()), int(((xa == 0) & (xb == 1)).sum())
        )
        out["discordant"] = {
            "a_right_b_wrong": int(((xa == 1) & (xb == 0)).sum()),
            "a_wrong_b_right": int(((xa == 0) & (xb == 1)).sum()),
        }
        if task == "pa_qa":
            by_id = {str(r["id"]): r for r in a}
            clusters = [by_id[i]["ref"].get("passage") or i for i in ids]

        def fa(idx: np.ndarray) -> float:
            return float(xa[idx].mean()) if len(idx) else math.nan

        def fb(idx: np.ndarray) -> float:
            return float(xb[idx].mean()) if len(idx) else math.nan
    elif task == "asr":
        oa, ob = _cer_outcomes(a, protocol), _cer_outcomes(b, protocol)
        ids = sorted(oa)
        ea, ra = (np.array([oa[i][k] for i in ids], dtype=float) for k in (0, 1))
        eb, rb = (np.array([ob[i][k] for i in ids], dtype=float) for k in (0, 1))
        metric = "cer"

        def fa(idx: np.ndarray) -> float:
            den = ra[idx].sum()
            return float(ea[idx].sum() / den) if den else math.nan

        def fb(idx: np.ndarray) -> float:
            den = rb[idx].sum()
            return float(eb[idx].sum() / den) if den else math.nan
    else:
        oa, ob = _sca_outcomes(a, protocol), _sca_outcomes(b, protocol)
        ids = sorted(set(oa) & set(ob))
        ta, fa_ = (np.array([oa[i][k] for i in ids], dtype=bool) for k in (0, 1))
        tb, fb_ = (np.array([ob[i][k] for i in ids], dtype=bool) for k in (0, 1))
        metric = "scf"

        def fa(idx: np.ndarray) -> float:
            den = ta[idx].sum()
            return float((ta[idx] & fa_[idx]).sum() / den) if den else math.nan

        def fb(idx: np.ndarray) -> float:
            den = tb[idx].sum()
            return float((tb[idx] & fb_[idx]).sum() / den) if den else math.nan

    res = paired_bootstrap(fa, fb, len(ids), clusters=clusters, **opts)
    interval = res["interval"]
    out.update(
        {
            "metric": metric,
            "items": len(ids),
            "a": fa(np.arange(len(ids))),
            "b": fb(np.arange(len(ids))),
            "difference": res["difference"],
            "interval": interval.as_dict() if hasattr(interval, "as_dict") else interval,
            "p_value": out.get("mcnemar_p", res["p_value"]),
            "p_bootstrap": res["p_value"],
            "test": "exact McNemar" if "mcnemar_p" in out else "paired bootstrap",
        }
    )
    return out


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    protocol: str = "koala",
    select: str | None = None,
    configs: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare the shown variants of two runs per config (see the module doc)."""
    from koala.scoring.paired import holm

    opts = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    scored = [
        score_run(r, write=False, protocol=protocol, select=select, confidence=None)
        for r in (run_a, run_b)
    ]
    current = [_current(Path(r)) for r in (run_a, run_b)]
    names = [next(iter(s["models"]), "?") for s in scored]
    common = sorted(
        set(scored[0]["models"].get(names[0], {}).get("configs", {}))
        & set(scored[1]["models"].get(names[1], {}).get("configs", {}))
    )
    if configs:
        common = [c for c in common if c in set(configs)]
    result: dict[str, Any] = {
        "a": {"run": str(run_a), "model": names[0]},
        "b": {"run": str(run_b), "model": names[1]},
        "protocol": protocol,
        "selection": select or protocol,
        "bootstrap": {"method": "paired percentile bootstrap", **opts},
        "configs": {},
    }
    for config in common:
        task = scored[0]["models"][names[0]]["configs"][config].get("task")
        va, ra = _shown_records(scored[0], current[0], config)
        vb, rb = _shown_records(scored[1], current[1], config)
        if not ra or not rb:
            result["configs"][config] = {"task": task, "note": "not compared: no scored variant"}
            continue
        entry = {"task": task, "variant_a": va, "variant_b": vb}
        entry |= _compare_config(task, ra, rb, protocol, opts)
        result["configs"][config] = entry
    pvals = {c: e["p_value"] for c, e in result["configs"].items() if "p_value" in e}
    for c, p in holm(pvals).items():
        result["configs"][c]["p_holm"] = p
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="run directory of model A")
    parser.add_argument("run_b", help="run directory of model B")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="koala", help="scoring rules")
    parser.add_argument(
        "--select", choices=SELECTIONS, default=None, help="variant rule (default: the protocol's)"
    )
    parser.add_argument("--configs", nargs="+", default=None, help="only these configs")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval (default 0.95)")
    parser.add_argument("--n-resamples", type=int, default=1000, help="resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--out", default=None, help="also write the result as JSON here")


def run(args: argparse.Namespace) -> int:
    """``koala-bench compare``."""
    try:
        res = compare_runs(
            args.run_a,
            args.run_b,
            protocol=args.protocol,
            select=args.select,
            configs=args.configs,
            confidence=args.confidence,
            n_resamples=args.n_resamples,
            seed=args.seed,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"koala-bench compare: {exc}", file=sys.stderr)
        return 1
    a, b = res["a"]["model"], res["b"]["model"]
    print(f"A = {a} ({res['a']['run']}), B = {b} ({res['b']['run']}), protocol {res['protocol']}")
    for config, e in res["configs"].items():
        if "difference" not in e:
            print(f"  {config}: {e.get('refused') or e.get('note')}")
            continue
        iv = e["interval"]
        print(
            f"  {config}: {e['metric']} A {e['a']:.4f} B {e['b']:.4f}  A-B {e['difference']:+.4f} "
            f"[{iv['low']:+.4f}, {iv['high']:+.4f}]  p={e['p_value']:.4g} ({e['test']}), "
            f"Holm p={e.get('p_holm', float('nan')):.4g}, n={e['items']}"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps(strict_json(res), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
            encoding="utf-8",
        )
    refused = any("refused" in e for e in res["configs"].values())
    return 3 if refused else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m koala.compare", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
