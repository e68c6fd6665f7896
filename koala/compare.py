"""``koala-bench compare RUN_A RUN_B``: is model A really better than model B here?

For every config both runs scored, the shown variant of each (the selection rule of
:mod:`koala.score`) is compared item by item on the same items:

* ``sqa``, ``pa_qa``: accuracy (generation-based). The difference A - B, its paired bootstrap
  interval and p-value, and the exact McNemar p-value over the discordant items (A right and B
  wrong, and the reverse), the test for two proportions measured on the same items.
* ``asr``: corpus CER (sum of edits / sum of reference lengths, recomputed on each resample).
* ``sca_qa`` (``koala`` protocol): SCF, a ratio whose denominator (items answered correctly
  from text alone) differs per model and per resample: recomputed on each.
* ``st``: corpus BLEU (0-100) exactly as ``koala-bench score`` computes it under the protocol
  (:func:`koala.scoring.translation.corpus_bleu`: the published ST normalisation, "sacreBLEU
  over those characters"), recomputed on each resample from the summed sufficient statistics
  of the drawn segments. The segments of one TED talk share a speaker and a topic: whole talks
  are resampled. METEOR and BERTScore are not compared (BERTScore needs its model).
* ``sif``: the judge score (10 x mean rating, as ``koala-bench score`` reports it) over the
  items both runs have a rating for, read from each run's judge cache (``judge_cache.jsonl``,
  written by ``koala-bench score --judge-url``): no judge is ever called. An item without a
  cached rating is left out and counted; an empty (failed or abstained) answer is rated as the
  protocol rates it without a judge call (``koala``: 1, the lowest rating; ``published``: not
  rated). Both runs must have been rated by the same judge model and prompt. The shown
  variant is the one with the highest cached judge score (the selection rule of SIF), and a
  Wilcoxon signed-rank p-value of the paired ratings is given beside the bootstrap one.

Resampling is paired (the same items, PA-QA passages or ST talks drawn for both runs) and
seeded. The p-values of all configs compared are corrected together by Holm's method
(``p_holm``). The bootstrap p-value is two-sided: twice the smaller share of resampled
differences A - B that are <= 0 or >= 0 (:func:`koala.scoring.paired.paired_bootstrap`).

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
from typing import Any, NamedTuple

import numpy as np

from koala.predictions import current_records, load_plan, read_predictions
from koala.score import PROTOCOLS, SELECTIONS, score_run, strict_json

# the record helpers koala-bench score uses (moved out of koala.score into koala.tasks)
from koala.tasks.base import answer_text as _text
from koala.tasks.base import sorted_records as _sorted
from koala.tasks.choice import mc_inputs as _mc_inputs

__all__ = ["add_arguments", "compare_runs", "main", "run"]

COMPARED = ("asr", "st", "sqa", "pa_qa", "sca_qa", "sif")
JUDGE_CACHE = "judge_cache.jsonl"  # where koala-bench score keeps a run's judge ratings
NO_RATINGS = "not compared: no cached judge ratings, run koala-bench score with a judge first"
BOOTSTRAP_TEST = (
    "paired bootstrap, {unit} resampled; two-sided p = 2 x the smaller share of resampled "
    "differences A - B that are <= 0 or >= 0"
)
ST_NOTE = (
    "BLEU only: METEOR and BERTScore are not compared (BERTScore needs its model, "
    "xlm-roberta-large)"
)


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


def _bleu_outcomes(recs: Sequence[Mapping[str, Any]], protocol: str) -> dict[str, np.ndarray]:
    """Per item id: its sacreBLEU sufficient statistics (matching and total 1- to 4-grams,
    system and reference length) as ``koala-bench score`` computes ST BLEU under the protocol
    (:func:`~koala.scoring.translation.corpus_bleu`, one sentence at a time: the statistics
    are additive, so they sum to the corpus statistics)."""
    from koala.scoring.translation import corpus_bleu

    out = {}
    for r in recs:
        s = corpus_bleu([_text(r)], [r["ref"]["reference"]], protocol=protocol).stats
        out[str(r["id"])] = np.array([*s.counts, *s.totals, s.sys_len, s.ref_len], np.int64)
    return out


def _corpus_bleu(stats: np.ndarray) -> float:
    """Corpus BLEU (0-100) of the summed per-sentence statistics (rows of
    :func:`_bleu_outcomes`)."""
    from koala.scoring.translation import BLEUStats

    c = stats.sum(axis=0)
    return BLEUStats(tuple(c[0:4]), tuple(c[4:8]), int(c[8]), int(c[9])).score


class _Judge(NamedTuple):
    """A judge as compared runs must share it: the judge model and the prompt (id and hash;
    the hash covers the prompt's text). Also what :func:`koala.scoring.judge.cache_key` reads
    of a prompt (``id``, ``hash``), so a cached prompt need not be loaded to find its keys."""

    model: str
    id: str
    hash: str

    def describe(self) -> str:
        return f"{self.model} with prompt {self.id} ({self.hash})"


def _cached_judges(
    run_dir: str | Path, protocol: str
) -> tuple[dict[str, Any], dict[_Judge, set[tuple[str, float, int]]]]:
    """The run's judge cache entries by key, and the judges they were made by under
    ``protocol`` with the (server URL, temperature, max_tokens) each was asked with (all part
    of the cache key)."""
    from koala.scoring.judge import JudgeCache

    path = Path(run_dir) / JUDGE_CACHE
    if not path.is_file():
        return {}, {}
    entries = JudgeCache(path).entries
    judges: dict[_Judge, set[tuple[str, float, int]]] = {}
    for e in entries.values():
        try:
            if e.get("protocol") != protocol:
                continue
            judge = _Judge(str(e["judge_model"]), str(e["prompt_id"]), str(e["prompt_hash"]))
            setting = (str(e["judge_url"]), float(e["temperature"]), int(e["max_tokens"]))
        except (KeyError, TypeError, ValueError):  # an older cache format: keys differ anyway
            continue
        judges.setdefault(judge, set()).add(setting)
    return entries, judges


def _sif_ratings(
    recs: Sequence[Mapping[str, Any]],
    entries: Mapping[str, Any],
    judge: _Judge,
    settings: set[tuple[str, float, int]],
    protocol: str,
) -> list[float | None]:
    """Per record, the rating ``koala-bench score`` would use, from the cache alone: an empty
    answer is "never sent to the judge" and rated 1 (``koala``) or left out (``published``);
    otherwise the cached judgement of this instruction and answer by ``judge`` (no reference
    answer, as score asks), read by the protocol's rule (:func:`parse_rating`; only a readable
    rating is reused, as the judge reuses it), or ``None`` when there is none."""
    from koala.scoring.judge import RATING_MIN, cache_key, parse_rating

    def cached(instruction: str, answer: str) -> float | None:
        for url, temperature, max_tokens in sorted(settings):
            key = cache_key(
                judge.model,
                judge,  # type: ignore[arg-type]  # cache_key reads only .id and .hash
                instruction,
                answer,
                None,
                base_url=url,
                protocol=protocol,
                temperature=temperature,
                max_tokens=max_tokens,
            )
            if key in entries:
                rating, _ = parse_rating(entries[key]["judgement"], protocol)
                if rating is not None:
                    return rating
        return None

    empty = RATING_MIN if protocol == "koala" else None
    return [cached(r["ref"]["instruction"], _text(r)) if _text(r).strip() else empty for r in recs]


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
    ratings: tuple[Mapping[str, float | None], Mapping[str, float | None]] | None = None,
) -> dict[str, Any]:
    """The paired comparison of one config's shown records ``a`` and ``b`` (``ratings``: the
    SIF ratings per item id of each run, see :func:`_sif_choice`)."""
    from koala.scoring.paired import mcnemar_exact, paired_bootstrap

    if task not in COMPARED:
        return {"note": f"not compared: paired comparison of {task} is not implemented yet"}
    if task == "sif" and ratings is None:
        return {"note": NO_RATINGS}
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
    test = "paired bootstrap"
    if task in ("sqa", "pa_qa"):
        oa, ob = _mc_outcomes(a, protocol), _mc_outcomes(b, protocol)
        ids = sorted(set(oa) & set(ob))
        xa = np.array([oa[i] for i in ids], dtype=float)
        xb = np.array([ob[i] for i in ids], dtype=float)
        metric = "accuracy"
        test = "exact McNemar"
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
    elif task == "st":
        sa, sb = _bleu_outcomes(a, protocol), _bleu_outcomes(b, protocol)
        ids = sorted(sa)
        xa = np.array([sa[i] for i in ids]).reshape(len(ids), 10)
        xb = np.array([sb[i] for i in ids]).reshape(len(ids), 10)
        metric = "bleu"
        # segments of one TED talk share a speaker and a topic: resample talks (as score does)
        by_id = {str(r["id"]): r for r in a}
        clusters = [str(by_id[i]["ref"].get("talk_id") or i) for i in ids]
        test = BOOTSTRAP_TEST.format(unit="talks")
        out["note"] = ST_NOTE

        def fa(idx: np.ndarray) -> float:
            return _corpus_bleu(xa[idx]) if len(idx) else math.nan

        def fb(idx: np.ndarray) -> float:
            return _corpus_bleu(xb[idx]) if len(idx) else math.nan
    elif task == "sif":
        assert ratings is not None
        qa, qb = ratings
        both = sorted(ids_a)
        ids = [i for i in both if qa.get(i) is not None and qb.get(i) is not None]
        # the judge score is 10 x the mean rating
        xa = np.array([10.0 * float(qa[i]) for i in ids])  # type: ignore[arg-type]
        xb = np.array([10.0 * float(qb[i]) for i in ids])  # type: ignore[arg-type]
        metric = "score"
        out["excluded"] = {
            "items": len(both) - len(ids),
            "unrated_a": sum(qa.get(i) is None for i in both),
            "unrated_b": sum(qb.get(i) is None for i in both),
        }
        out["wilcoxon_p"] = _wilcoxon(xa - xb)
        test = BOOTSTRAP_TEST.format(unit="items") + "; wilcoxon_p: Wilcoxon signed-rank"

        def fa(idx: np.ndarray) -> float:
            return float(xa[idx].mean()) if len(idx) else math.nan

        def fb(idx: np.ndarray) -> float:
            return float(xb[idx].mean()) if len(idx) else math.nan
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

    res = paired_bootstrap(
        fa, fb, len(ids), clusters=clusters, cluster_name="talk" if task == "st" else None, **opts
    )
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
            "test": test,
        }
    )
    return out


def _wilcoxon(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (scipy's defaults: zero
    differences dropped, exact for small samples); 1.0 when every difference is 0, NaN when
    there is none."""
    from scipy.stats import wilcoxon

    if len(differences) == 0:
        return math.nan
    if not np.any(differences):
        return 1.0
    return float(wilcoxon(differences).pvalue)


def _sif_choice(
    runs: Sequence[str | Path],
    recs: Sequence[Sequence[Mapping[str, Any]]],
    complete: Sequence[set[str]],
    protocol: str,
    select: str,
) -> dict[str, Any]:
    """The judge both runs were rated by (the one with the most cached ratings of this config
    when they share several) and per run the shown SIF variant, by the SIF selection rule
    "highest judge score" over the cached ratings (under ``koala`` among the variants with
    every planned request answered, when there is one; ties to the first variant name):
    ``{"judge": {...}, "shown": [(variant, records, {id: rating}), ...]}``, else ``{"note"}``
    (no cached rating) or ``{"refused"}`` (different judges)."""
    ratings: list[dict[_Judge, list[float | None]]] = []
    hits: list[dict[_Judge, int]] = []
    for run, rs in zip(runs, recs, strict=True):
        entries, judges = _cached_judges(run, protocol)
        per = {j: _sif_ratings(rs, entries, j, st, protocol) for j, st in judges.items()}
        ratings.append(per)
        # judged items only: an empty answer gets its rating without the judge
        hits.append(
            {
                j: sum(
                    q is not None and bool(_text(r).strip()) for r, q in zip(rs, qs, strict=True)
                )
                for j, qs in per.items()
            }
        )
    have = [{j for j, n in h.items() if n} for h in hits]
    if not have[0] or not have[1]:
        which = " and ".join(name for name, h in zip("AB", have, strict=True) if not h)
        return {"note": f"{NO_RATINGS} (none for run {which} under the {protocol} protocol)"}
    common = have[0] & have[1]
    if not common:
        a, b = ("; ".join(j.describe() for j in sorted(h)) for h in have)
        return {
            "refused": f"the runs were rated by different judges: A by {a}, B by {b}: score "
            "both with the same judge model and prompt"
        }
    judge = max(sorted(common), key=lambda j: hits[0][j] + hits[1][j])
    shown = []
    for k in (0, 1):
        by_variant: dict[str, list[tuple[Mapping[str, Any], float | None]]] = {}
        for r, q in zip(recs[k], ratings[k][judge], strict=True):
            by_variant.setdefault(r["variant"], []).append((r, q))
        scores = {
            v: 10.0 * float(np.mean([q for r, q in rq if q is not None]))
            for v, rq in by_variant.items()
            if any(q is not None and _text(r).strip() for r, q in rq)
        }
        if select == "koala" and scores.keys() & complete[k]:
            scores = {v: x for v, x in scores.items() if v in complete[k]}
        variant = min(scores, key=lambda v: (-scores[v], v))
        rq = by_variant[variant]
        shown.append((variant, [r for r, _ in rq], {str(r["id"]): q for r, q in rq}))
    return {
        "judge": {"model": judge.model, "prompt_id": judge.id, "prompt_hash": judge.hash},
        "shown": shown,
    }


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
        task = scored[0]["models"][names[0]]["configs"][config].get("task")
        entry: dict[str, Any] = {"task": task}
        ratings = None
        if task == "sif":  # scored without a judge here: the ratings come from the caches
            complete = [
                {
                    v
                    for v, c in s["models"][n]["configs"][config]["coverage"]["variants"].items()
                    if c.get("complete")
                }
                for s, n in zip(scored, names, strict=True)
            ]
            choice = _sif_choice(
                (run_a, run_b),
                [c.get(config, []) for c in current],
                complete,
                protocol,
                select or protocol,
            )
            if "shown" not in choice:
                result["configs"][config] = entry | choice
                continue
            (va, ra, qa), (vb, rb, qb) = choice["shown"]
            ratings = (qa, qb)
            entry["judge"] = choice["judge"]
        else:
            va, ra = _shown_records(scored[0], current[0], config)
            vb, rb = _shown_records(scored[1], current[1], config)
        if not ra or not rb:
            result["configs"][config] = entry | {"note": "not compared: no scored variant"}
            continue
        entry |= {"variant_a": va, "variant_b": vb}
        entry |= _compare_config(task, ra, rb, protocol, opts, ratings)
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
            f"  {config}: {e['metric']} A {_num(e['a'], '.4f')} B {_num(e['b'], '.4f')}  "
            f"A-B {_num(e['difference'], '+.4f')} "
            f"[{_num(iv['low'], '+.4f')}, {_num(iv['high'], '+.4f')}]  "
            f"p={_num(e['p_value'], '.4g')} ({e['test'].split(';')[0]}), "
            f"Holm p={_num(e.get('p_holm'), '.4g')}, n={e['items']}"
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
    parser = argparse.ArgumentParser(prog="python -m koala.compare", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
