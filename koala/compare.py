"""``koala-bench compare RUN_A RUN_B``: is model A really better than model B here?

For every config both runs scored, the shown variant of each is compared item by item on the
same items. What is compared, how the items are grouped and which paired test gives the
p-value is the task's declaration (:meth:`koala.tasks.Task.paired_choice`,
:meth:`~koala.tasks.Task.paired`, :attr:`~koala.tasks.Task.paired_unit`,
:attr:`~koala.tasks.Task.paired_test`); this module names no task, so a task of one's own is
compared like the built-in ones. The built-in declarations:

* ``sqa``: accuracy; exact McNemar over items (the test for two proportions measured on the
  same items).
* ``pa_qa``: accuracy; the questions of one passage share its clip, so the unit is the
  passage: the paired permutation test swaps A and B within whole passages (the clustered
  form of McNemar's test; McNemar over questions rejects a true null far more often than its
  level when passages differ in difficulty).
* ``asr``: corpus CER (sum of edits / sum of reference lengths, recomputed on each draw);
  permutation test over utterances.
* ``st``: corpus BLEU (0-100) exactly as ``koala-bench score`` computes it under the protocol,
  from summed sacreBLEU statistics; unit the TED talk (its segments share a speaker and a
  topic). METEOR and BERTScore are not compared (BERTScore needs its model).
* ``sca_qa`` (``koala`` protocol): SCF, whose denominator (items answered correctly from text
  alone) is recounted on each draw; unit the item with its conditions together.
* ``sif``: the judge score (10 x mean rating) over the items both runs have a cached rating
  for, read from each run's judge cache (``judge_cache.jsonl``, written by ``koala-bench score
  --judge-url``): no judge is ever called; both runs must have been rated by the same judge
  model and prompt; a Wilcoxon signed-rank p-value is given beside the permutation test's.

For each config: A, B, the difference A - B, its paired percentile bootstrap interval (the
same units drawn for both runs; no interval, with the reason, for fewer than 5 units or when
every draw gives the same difference) and the p-value of the task's test
(:func:`koala.scoring.paired.paired_comparison`: exact McNemar, or the paired permutation test
with p = (k + 1) / (R + 1) or exact over all swaps: never 0). ``p_bootstrap`` is the two-sided
bootstrap p-value, for reference only. Resampling is seeded.

Holm's correction (``p_holm``) runs over the configs compared between these two runs: one
family per pair of runs (``holm_family`` lists it); pairs of runs are not corrected against
each other (``koala-bench report`` with three runs makes three families).

Runs are compared only on the same items: when the planned rows differ, or a row's data
(audio and reference digests) differs between the runs, the config is refused and the output
says which rows. Exit status: 0 done, 1 usage error, 3 a config was refused.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from koala.predictions import current_records, load_plan, read_predictions
from koala.score import PROTOCOLS, SELECTIONS, score_run, strict_json

__all__ = ["add_arguments", "compare_runs", "main", "run"]


def _current(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    plans = load_plan(run_dir)
    records, _ = read_predictions(Path(run_dir) / "predictions.jsonl")
    current, _ = current_records(records, plans)
    return current


def _data_mismatch(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> list[str]:
    da = {(str(r["id"]), r["condition"]): r.get("data_sha") for r in a}
    db = {(str(r["id"]), r["condition"]): r.get("data_sha") for r in b}
    return sorted(f"{i}/{c}" for (i, c) in set(da) & set(db) if da[(i, c)] != db[(i, c)])


def _compare_config(
    task: Any,
    runs: Sequence[Any],
    protocol: str,
    select: str,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """The paired comparison of one config (``runs``: the two runs'
    :class:`~koala.tasks.base.RunConfig`), as ``task`` declares it."""
    from koala.scoring.paired import paired_comparison
    from koala.tasks.base import PairedData

    choice = task.paired_choice(runs, protocol, select)
    if "shown" not in choice:
        return dict(choice)
    out: dict[str, Any] = {k: v for k, v in choice.items() if k not in ("shown", "context")}
    (va, ra), (vb, rb) = choice["shown"]
    if not ra or not rb:
        return out | {"note": "not compared: no scored variant"}
    out |= {"variant_a": va, "variant_b": vb}
    ids_a = {str(r["id"]) for r in ra}
    ids_b = {str(r["id"]) for r in rb}
    if ids_a != ids_b:
        only = sorted(ids_a ^ ids_b)
        return out | {
            "refused": f"the runs scored other items: {len(only)} item(s) in one run only "
            f"(e.g. {', '.join(only[:5])})"
        }
    changed = _data_mismatch(ra, rb)
    if changed:
        return out | {
            "refused": f"the data differ between the runs for {len(changed)} item(s) (audio or "
            f"reference; e.g. {', '.join(changed[:5])}): export once and run both on it"
        }
    data = task.paired(ra, rb, protocol, choice.get("context"))
    if not isinstance(data, PairedData):
        return out | dict(data)
    res = paired_comparison(
        data.a,
        data.b,
        data.score,
        data.clusters,
        test=data.test,
        cluster_name=data.unit,
        **opts,
    )
    out |= {
        "metric": data.metric,
        "items": data.items,
        "unit": data.unit,
        "units": res["units"],
        "a": res["a"],
        "b": res["b"],
        "difference": res["difference"],
        "interval": res["interval"].as_dict(),
        "p_value": res["p_value"],
        "p_bootstrap": res["p_bootstrap"],
        "test": res["test"],
    }
    if "discordant" in res:
        out["discordant"] = res["discordant"]
    return out | dict(data.info)


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
    """Compare the shown variants of two runs per config (see the module doc). ``ValueError``
    for a confidence outside (0, 1) or fewer than 1 resample."""
    from koala.scoring.bootstrap import _check_options
    from koala.scoring.paired import holm
    from koala.tasks import find_task
    from koala.tasks.base import RunConfig

    _check_options(n_resamples, confidence)
    opts = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    scored = [  # BLEU alone picks the shown ST variant: METEOR and BERTScore are not needed
        score_run(
            r, st_metrics=("bleu",), write=False, protocol=protocol, select=select, confidence=None
        )
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
        entries = [s["models"][n]["configs"][config] for s, n in zip(scored, names, strict=True)]
        name = entries[0].get("task")
        task = find_task(name)
        entry: dict[str, Any] = {"task": name}
        if task is None:
            result["configs"][config] = entry | {"note": f"not compared: unknown task {name!r}"}
            continue
        runs = [
            RunConfig(Path(r), e, c.get(config, []))
            for r, e, c in zip((run_a, run_b), entries, current, strict=True)
        ]
        result["configs"][config] = entry | _compare_config(
            task, runs, protocol, select or protocol, opts
        )
    pvals = {c: e["p_value"] for c, e in result["configs"].items() if "p_value" in e}
    family = [c for c, p in pvals.items() if not math.isnan(float(p))]
    for c, p in holm(pvals).items():
        result["configs"][c]["p_holm"] = p
    result["holm_family"] = family
    result["holm"] = (
        f"Holm's correction over the {len(family)} config(s) compared between these two runs "
        "(one family per pair of runs)"
    )
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="run directory of model A")
    parser.add_argument("run_b", help="run directory of model B")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="koala", help="scoring rules")
    parser.add_argument(
        "--select", choices=SELECTIONS, default=None, help="variant rule (default: the protocol's)"
    )
    parser.add_argument("--configs", nargs="+", default=None, help="only these configs")
    parser.add_argument(
        "--confidence", type=float, default=0.95, help="interval, between 0 and 1 (default 0.95)"
    )
    parser.add_argument(
        "--n-resamples",
        type=int,
        default=1000,
        help="bootstrap resamples and permutation swaps, at least 1 (default 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--out", default=None, help="also write the result as JSON here")


def run(args: argparse.Namespace) -> int:
    """``koala-bench compare``: exit status 0, 1 on a usage error, 3 when a config was
    refused (the runs were not made on the same items)."""
    if not 0 < args.confidence < 1:
        print(
            "koala-bench compare: --confidence must be between 0 and 1 (e.g. 0.95); got "
            f"{args.confidence}",
            file=sys.stderr,
        )
        return 1
    if args.n_resamples < 1:
        print(
            f"koala-bench compare: --n-resamples must be at least 1, got {args.n_resamples}",
            file=sys.stderr,
        )
        return 1
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
        shown = (
            f"[{_num(iv['low'], '+.4f')}, {_num(iv['high'], '+.4f')}]"
            if iv.get("low") is not None
            else f"[no interval: {iv.get('note')}]"
        )
        print(
            f"  {config}: {e['metric']} A {_num(e['a'], '.4f')} B {_num(e['b'], '.4f')}  "
            f"A-B {_num(e['difference'], '+.4f')} {shown}  "
            f"p={_num(e['p_value'], '.4g')} ({e['test']}), "
            f"Holm p={_num(e.get('p_holm'), '.4g')}, n={e['items']} ({e['units']} {e['unit']}s)"
        )
        if "judge" in e:
            j, x = e["judge"], e["excluded"]
            print(
                f"      judge {j['model']}, prompt {j['prompt_id']}; Wilcoxon signed-rank "
                f"p={_num(e['wilcoxon_p'], '.4g')}; {x['items']} item(s) left out, not rated in "
                f"both runs (unrated: A {x['unrated_a']}, B {x['unrated_b']})"
            )
        if e.get("note"):
            print(f"      {e['note']}")
    print(f"  {res['holm']}")
    if args.out:
        Path(args.out).write_text(
            json.dumps(strict_json(res), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
            encoding="utf-8",
        )
    refused = any("refused" in e for e in res["configs"].values())
    return 3 if refused else 0


def _num(x: float | None, spec: str) -> str:
    """``x`` formatted, or ``nan`` when it is undefined (``None`` or NaN)."""
    return "nan" if x is None or math.isnan(x) else format(x, spec)


def main(argv: Sequence[str] | None = None) -> int:
    from koala.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m koala.compare", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
