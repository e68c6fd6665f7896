"""``koala-bench score RUN_DIR``: score a run's predictions; writes ``RUN_DIR/scores.json``.

Only what the run asked for is scored. ``koala-bench run`` writes, per config, a *plan*: every
request with its fingerprint (prompt text, labels shown, condition, model spec and options,
audio digest; :mod:`koala.plan`) and the digest of its reference. A record in
``predictions.jsonl`` is scored only when the plan asks for its key, its fingerprint matches
and its reference is the plan's; every other record (made with other prompts, options or
data, scored against an older reference, or of a config the run no longer plans) is ignored
and counted per config with the reason. Coverage (answered / planned) is reported per config
and variant, and a config with requests still missing is marked ``partial``. Whole-ness is
per config: a plan that holds only some shards of its config (a ``--shard K/N`` run, or a
merge of some shards) is ``partial`` with the missing shards named, and its ``planned`` is
the whole config's when the plan records it (``full_plan``). The ``truncated`` flag of a
record with ``audio_seconds`` is recomputed from the plan's ``max_audio_s`` (the latest
limit the run was given; changing it asks nothing again).

Every figure comes from the scoring functions of :mod:`koala.scoring` that the ``metrics/``
``evaluate`` modules wrap (the same code, without the ``evaluate`` import cost), per model,
config, prompt variant and mode:

* ``asr``: ``korean_cer`` (:func:`koala.scoring.cer.corpus_cer`): "sum of edits / sum of
  reference lengths".
* ``sqa``, ``pa_qa``: ``choice_accuracy`` and, for PA-QA, ``segment_accuracy`` ("an item with
  evidence in several segments counts once in each"). Mode ``gen`` reads the generated text;
  mode ``logit`` takes the argmax of the label log-probabilities, where the model gave them.
* ``sca_qa``: ``scf`` over the three conditions: "among the items the model answers correctly
  from text alone, the share whose answer follows the counterfactual speech".
* ``st``: BLEU, METEOR, BERTScore; ``sif``: the LLM judge (needs ``--judge-url``).

Two switches, both recorded in ``scores.json``:

* ``--protocol koala|published``: the scoring rules (:mod:`koala.scoring.protocol`). ``published``
  reproduces the authors' code exactly (its parsers and fallbacks, the published gold fields,
  ST normalisation and judge rules); ``koala`` departs where those rules are defects (see the
  README's table).
* ``--select koala|published``: which prompt variant a table shows (:data:`SELECTION_RULES`).

Failed and abstained requests are never dropped: for choice tasks, ASR and ST they count as
empty answers (wrong; all deletions; empty translation) and are reported beside the score; for
SIF an empty answer is rated as the judge protocol says. A variant whose every request failed
is ``failed``, one whose every request was abstained is ``not scored``: never a 0.

The SIF judge (``--judge-url``, ``--judge-model``): a URL with credentials is refused;
``--judge-timeout`` (seconds per attempt), ``--judge-retries`` and ``--judge-breaker N`` (one
:class:`koala.scoring.judge.JudgeBreaker` for every SIF config and variant of the command:
after N consecutive failed requests nothing more is sent). Exit status: 0 scored, 1 usage
error, :data:`EXIT_JUDGE` (5) when the judge could not judge some answers (the scores are
written without them and the message names the judge).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from koala.constants import PROTOCOLS
from koala.openai_client import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from koala.plan import ShardState, shard_state
from koala.predictions import (
    ABSTAINED,
    FAILED,
    OK,
    PREDICTIONS,
    current_records,
    load_plan,
    read_predictions,
)
from koala.tasks import all_tasks, find_task, get_task, task_names
from koala.tasks.base import value_of
from koala.tasks.st import ST_METRICS

DEFAULT_BREAKER = 8  # koala.scoring.judge.DEFAULT_BREAKER (not imported: --help stays light)

__all__ = [
    "EXIT_JUDGE",
    "MAIN_METRIC",
    "SCORES",
    "SELECTIONS",
    "SELECTION_RULES",
    "add_arguments",
    "judge_failures",
    "main",
    "run",
    "score_config",
    "score_run",
    "scoring_options",
    "shown_variant",
    "strict_json",
]

log = logging.getLogger(__name__)

SCORES = "scores.json"
SELECTIONS = ("koala", "published")
EXIT_JUDGE = 5  # a judge was asked for and could not judge every SIF answer


def selection_rules(select: str) -> dict[str, str]:
    """The rule, in words, by which ``select`` picks the variant a task's table shows, per
    known task (:data:`SELECTION_RULES` for the built-in ones)."""
    if select == "koala":
        return {t.name: t.selection_rule for t in all_tasks()}
    return {
        t.name: f"best {t.main_metric} of the variants (the authors keep the best of the four "
        "per model)"
        for t in all_tasks()
    }


# task -> (main metric, higher is better), of the built-in tasks
MAIN_METRIC: dict[str, tuple[str, bool]] = {
    t.name: (t.main_metric, t.higher_is_better) for t in all_tasks()
}
SELECTION_RULES: dict[str, dict[str, str]] = {s: selection_rules(s) for s in SELECTIONS}


def _status_counts(recs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Records by status, and how many sent a clip longer than the model's input limit
    (``truncated``) or share one answer across the prompt variants (``shared_answer``: the
    model ignores the prompt)."""
    c = Counter(r.get("status") for r in recs)
    return {
        "records": len(recs),
        OK: c[OK],
        FAILED: c[FAILED],
        ABSTAINED: c[ABSTAINED],
        "truncated": sum(bool(r.get("truncated")) for r in recs),
        "shared_answer": sum(bool(r.get("shared_answer")) for r in recs),
    }


# ------------------------------------------------------------------------ per config


def _group(recs: Sequence[Mapping[str, Any]], *fields: str) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for r in recs:
        out[tuple(r[f] for f in fields) if len(fields) > 1 else r[fields[0]]].append(r)
    return out


def _score_variant(
    task: str,
    recs: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
    protocol: str = "koala",
    ci: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of one prompt variant, per mode (``gen``, and ``logit`` where available), with
    intervals when ``ci`` gives the bootstrap options.

    A variant whose every request failed is ``failed``; one whose every request was
    abstained is not scored (an abstaining model has no accuracy on a task it declines);
    partial failures and abstentions count as wrong answers."""
    if recs and all(r.get("status") == FAILED for r in recs):
        return {"gen": {"note": "failed: every request failed", "failed": len(recs)}}
    if recs and all(r.get("status") == ABSTAINED for r in recs):
        return {"gen": {"note": "not scored: every request was abstained"}}
    if recs and all(r.get("status") in (ABSTAINED, FAILED) for r in recs):
        return {"gen": {"note": "not scored: every request failed or was abstained"}}
    return get_task(task).score(recs, protocol, ci, options)


def _best(
    task: str,
    variants: Mapping[str, Mapping[str, Mapping[str, Any]]],
    select: str = "koala",
    coverage: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The variant a table shows, per mode, under the selection rule ``select``
    (:data:`SELECTION_RULES`), with the rule and the value of the main metric.

    Under ``koala`` only variants with every planned request answered compete when there is
    one (so variants are compared on the same rows); the pick says ``partial`` otherwise."""
    spec = get_task(task)
    metric, higher = spec.main_metric, spec.higher_is_better
    best: dict[str, Any] = {}
    modes = sorted({m for v in variants.values() for m in v})
    complete = {
        name for name in variants if not coverage or coverage.get(name, {}).get("complete", True)
    }
    for mode in modes:
        results = {name: res[mode] for name, res in variants.items() if mode in res}
        if select == "koala" and complete and len(complete) < len(results):
            results = {n: r for n, r in results.items() if n in complete}
        cands = spec.candidates(results, select)
        if not cands:
            continue
        _, name = _pick(cands, higher)
        value = value_of(results[name], metric)
        best[mode] = {"variant": name, "metric": metric, "value": value, "rule": select}
        if name not in complete:
            best[mode]["partial"] = True
    return best


def _sensitivity(
    task: str, variants: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Per mode, the main metric across the prompt variants: mean, lowest, highest and their
    range, so a reader sees how much "best of the variants" adds over a typical one."""
    metric = get_task(task).main_metric
    out: dict[str, dict[str, Any]] = {}
    for mode in sorted({m for v in variants.values() for m in v}):
        values = [
            v for res in variants.values() if (v := value_of(res.get(mode, {}), metric)) is not None
        ]
        if values:
            out[mode] = {
                "metric": metric,
                "variants": len(values),
                "mean": sum(values) / len(values),
                "min": min(values),
                "max": max(values),
                "range": max(values) - min(values),
            }
    return out


def shown_variant(
    c: Mapping[str, Any], select: str = "koala"
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(best, sensitivity)`` of one config's scores ``c`` (:func:`score_config`'s output:
    its ``task``, ``variants`` and per-variant ``coverage``) under the selection rule
    ``select``: the variant a table shows and the spread over the variants, from the scores
    alone (``report`` reselects this way when it reuses judged figures)."""
    coverage = (c.get("coverage") or {}).get("variants")
    return _best(c["task"], c["variants"], select, coverage), _sensitivity(c["task"], c["variants"])


def _pick(cands: Sequence[tuple[float, str]], higher: bool) -> tuple[float, str]:
    """The best (value, variant); ties go to the variant name that sorts first."""
    return sorted(cands, key=lambda c: (-c[0] if higher else c[0], c[1]))[0]


def _coverage(
    recs: Sequence[Mapping[str, Any]],
    planned: Mapping[str, int],
    shards: ShardState | None = None,
) -> dict[str, dict[str, Any]]:
    """Per variant: planned requests, records, answered (ok or abstained), failed, missing;
    ``complete`` when every planned request has a record and the plan holds every shard of
    the config (``shards``: those it holds, when not all)."""
    by_variant = _group(recs, "variant")
    out = {}
    for variant in sorted(set(planned) | set(by_variant)):
        vrecs = by_variant.get(variant, [])
        c = Counter(r.get("status") for r in vrecs)
        p = planned.get(variant, len(vrecs))
        out[variant] = {
            "planned": p,
            "records": len(vrecs),
            "answered": c[OK] + c[ABSTAINED],
            "failed": c[FAILED],
            "missing": max(0, p - len(vrecs)),
            "complete": len(vrecs) >= p and shards is None,
        }
    return out


def score_config(
    config: str,
    recs: Sequence[Mapping[str, Any]],
    st_metrics: Sequence[str] = ST_METRICS,
    judge: Mapping[str, Any] | None = None,
    *,
    task: str | None = None,
    planned: Mapping[str, int] | None = None,
    rows: int | None = None,
    protocol: str = "koala",
    select: str = "koala",
    ci: Mapping[str, Any] | None = None,
    shards: ShardState | None = None,
) -> dict[str, Any]:
    """Scores of one model on one config: per variant and mode, the shown variant (``best``),
    how much the choice of variant matters (``sensitivity``), coverage against the plan
    (``planned``: requests per variant of the whole config; ``shards``: the shards the plan
    holds when not all, which makes the config partial whatever was recorded) and the
    counts; with ``ci`` (``confidence``, ``n_resamples``, ``seed``) a bootstrap interval
    beside each headline figure."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: use one of {PROTOCOLS}")
    if select not in SELECTIONS:
        raise ValueError(f"select={select!r}: use one of {SELECTIONS}")
    task = task or (recs[0].get("task") if recs else None)
    spec = find_task(task)
    if spec is None:
        return {
            "task": task,
            "note": f"not scored: unknown task {task!r} (tasks: {sorted(task_names())})",
            "counts": _status_counts(recs),
        }
    # memo: what a task's whole-set scoring works out for the subsets scored below (ST)
    options = {"st_metrics": st_metrics, "judge": judge, "memo": {}}
    by_variant = _group(recs, "variant")
    coverage = _coverage(recs, planned or {v: len(r) for v, r in by_variant.items()}, shards)
    cov_total: dict[str, Any] = {
        k: sum(c[k] for c in coverage.values())
        for k in ("planned", "records", "answered", "failed", "missing")
    }
    cov_total["complete"] = shards is None and all(c["complete"] for c in coverage.values())
    if shards is not None:
        cov_total["shards"] = {
            "of": shards.of,
            "present": shards.names(shards.present),
            "missing": shards.names(shards.missing),
        }
    out: dict[str, Any] = {
        "task": task,
        "set": config.removesuffix("_noisy"),
        "noise": "noisy" if config.endswith("_noisy") else "clean",
        "rows": rows if rows is not None else len({str(r["id"]) for r in recs}),
        "counts": _status_counts(recs),
        "coverage": cov_total | {"variants": coverage},
        "status": "complete" if cov_total["complete"] else "partial",
    }
    if not recs:
        out["status"] = "not run"
    elif all(r.get("status") == FAILED for r in recs):
        out["status"] = "failed"
    variants = {
        v: _score_variant(task, vrecs, options, protocol, ci)
        for v, vrecs in sorted(by_variant.items())
    }
    out["variants"] = variants
    out["best"], out["sensitivity"] = shown_variant(out, select)
    subsets = sorted({r.get("subset") for r in recs if r.get("subset")})
    if len(subsets) > 1 and spec.score_subsets:
        out["subsets"] = {
            s: {
                v: _score_variant(
                    task,
                    [r for r in vrecs if r.get("subset") == s],
                    {**options, "judge": None},
                    protocol,
                )
                for v, vrecs in sorted(by_variant.items())
            }
            for s in subsets
        }
    return out


def strict_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by ``None`` and, beside it in the same
    mapping, ``"<key>_null_reason"`` (strict JSON has no NaN: ``jq`` and browsers refuse it)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out[str(k)] = strict_json(v)
            if isinstance(v, float) and not math.isfinite(v):
                out[f"{k}_null_reason"] = (
                    "undefined: no item in its denominator" if math.isnan(v) else f"was {v}"
                )
        return out
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    return obj


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps(strict_json(obj), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, path)


def score_run(
    run_dir: str | Path,
    st_metrics: Sequence[str] = ST_METRICS,
    judge: Mapping[str, Any] | None = None,
    write: bool = True,
    *,
    protocol: str = "koala",
    select: str | None = None,
    confidence: float | None = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score what the run's plan asks for, per (model, config); writes ``scores.json`` when
    ``write``. ``select`` defaults to the protocol's own rule. ``confidence`` (``None``: no
    intervals) sets the seeded percentile bootstrap intervals beside each headline figure:
    items are resampled, PA-QA questions by passage and ST segments by talk."""
    run_dir = Path(run_dir)
    select = select or protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: use one of {PROTOCOLS}")
    if select not in SELECTIONS:
        raise ValueError(f"select={select!r}: use one of {SELECTIONS}")
    path = run_dir / PREDICTIONS
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no predictions (run 'koala-bench run ... --out {run_dir}' first)"
        )
    plans = load_plan(run_dir)
    if not plans:
        raise FileNotFoundError(
            f"{run_dir}: no plan of the run's requests (plan/*.json); it was not written by "
            "'koala-bench run' of this version: run the same command again to plan and resume"
        )
    records, rstats = read_predictions(path)
    current, ignored = current_records(records, plans)
    ci = (
        {"confidence": confidence, "n_resamples": n_resamples, "seed": seed} if confidence else None
    )
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "protocol": protocol,
        "selection": {"rule": select, "per_task": SELECTION_RULES[select]},
        "predictions": {
            "lines": rstats.lines,
            "records": len(records),
            "superseded": rstats.duplicates,
            "corrupt_lines": rstats.corrupt,
            "malformed": [list(m) for m in rstats.malformed],
            "other_versions": dict(rstats.other_versions),
            "truncated_tail": rstats.truncated_tail,
            "ignored": {c: dict(n) for c, n in sorted(ignored.items()) if n},
        },
        "scoring": {
            "protocol": protocol,
            "selection": select,
            "st_metrics": list(st_metrics),
            "judge_model": (judge or {}).get("model"),
            "intervals": (
                {
                    "method": "percentile bootstrap",
                    **ci,
                    # each task's resampling unit, as it declares it (paired_unit)
                    "cluster_unit": {
                        t: get_task(t).paired_unit
                        for t in sorted({plan.task for plan in plans.values()})
                    },
                }
                if ci
                else None
            ),
        },
        "models": {},
    }
    by_model: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for config, plan in plans.items():
        model = str(plan.settings.get("model") or "model")
        by_model[model][config] = current.get(config, [])
    for model, configs in sorted(by_model.items()):
        scored = {}
        for config, crecs in sorted(configs.items()):
            plan = plans[config]
            jd = dict(judge) if judge else None
            if jd is not None and "cache_path" not in jd:
                jd["cache_path"] = str(run_dir / "judge_cache.jsonl")
            planned, rows, shards = _planned(plan)
            _flag_truncated(crecs, plan.settings)
            c = score_config(
                config,
                crecs,
                st_metrics,
                jd,
                task=plan.task,
                planned=planned,
                rows=rows,
                protocol=protocol,
                select=select,
                ci=ci,
                shards=shards,
            )
            c["ignored"] = dict(ignored.get(config, {}))
            scored[config] = c
        result["models"][model] = {"configs": scored}
    if write:
        _write_json(run_dir / SCORES, result)
    return result


def _planned(plan: Any) -> tuple[dict[str, int], int, ShardState | None]:
    """Requests per variant and rows of a plan's whole config, and the shards it holds when
    not all (a shard's plan records the whole config's size in ``full_plan``; one written
    before it did counts its own requests)."""
    planned: dict[str, int] = dict(Counter(k[2] for k in plan.requests))
    rows = len({k[4] for k in plan.requests})
    try:
        shards = shard_state(plan.settings.get("shard"))
    except ValueError as exc:
        raise ValueError(f"plan of {plan.config}: {exc}") from None
    full = plan.settings.get("full_plan")
    if shards is not None and isinstance(full, Mapping):
        variants = full.get("variants")
        if isinstance(variants, Mapping):
            planned = {str(v): int(n) for v, n in variants.items()}
        if isinstance(full.get("rows"), int):
            rows = full["rows"]
    return planned, rows, shards


def _flag_truncated(recs: Sequence[dict[str, Any]], settings: Mapping[str, Any]) -> None:
    """Set each record's ``truncated`` from its ``audio_seconds`` and the plan's
    ``max_audio_s`` (the model's input limit as the run last knew it; ``None``: no known
    limit). A plan without the setting (an older run, an import) leaves the flags as recorded."""
    if "max_audio_s" not in settings:
        return
    limit = settings["max_audio_s"]
    for r in recs:
        seconds = r.get("audio_seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            r["truncated"] = bool(limit and seconds > limit)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by 'koala-bench run'")
    add_scoring_arguments(parser)


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``score`` and ``report`` share."""
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="koala",
        help="scoring rules: 'koala' (default; departs from the published code where it is "
        "wrong, see the README) or 'published' (the authors' code exactly)",
    )
    parser.add_argument(
        "--select",
        choices=SELECTIONS,
        default=None,
        help="which prompt variant a table shows: 'koala' (a rule no variant can win by "
        "failing or shrinking a denominator) or 'published' (best of the variants by the task "
        "metric); default: the protocol's own",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="confidence of the bootstrap interval beside each headline figure, between 0 and "
        "1 (default 0.95; 0 for none)",
    )
    parser.add_argument(
        "--n-resamples",
        type=int,
        default=1000,
        help="bootstrap resamples per interval, at least 1 (default 1000)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)"
    )
    parser.add_argument(
        "--st-metrics",
        default=",".join(ST_METRICS),
        help="translation metrics, comma separated (bleu, meteor, bertscore; default all)",
    )
    parser.add_argument(
        "--judge-url",
        default=None,
        help="OpenAI-compatible base URL of the SIF judge (none: SIF is not scored)",
    )
    parser.add_argument("--judge-model", default="gpt-4o-mini", help="judge model name")
    parser.add_argument(
        "--judge-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the judge's API key",
    )
    parser.add_argument(
        "--judge-concurrency",
        type=int,
        default=8,
        help="judge requests in flight (default 8)",
    )
    parser.add_argument(
        "--judge-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds to wait for the judge's answer per attempt (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--judge-retries",
        type=int,
        default=DEFAULT_RETRIES,
        help=f"retries of a failed judge request, with backoff (default {DEFAULT_RETRIES})",
    )
    parser.add_argument(
        "--judge-breaker",
        type=int,
        default=DEFAULT_BREAKER,
        metavar="N",
        help=f"stop sending to the judge after N consecutive failed requests, for every SIF "
        f"config and variant (default {DEFAULT_BREAKER}; 0: never); a judge that could not "
        f"judge ends the command with exit status {EXIT_JUDGE}",
    )
    parser.add_argument(
        "--judge-prompt-file",
        default=None,
        help="the MT-bench 'single-v1' judge prompt for --protocol published (a FastChat "
        "judge_prompts.jsonl or a text file); by default it is read from an installed fschat",
    )
    parser.add_argument(
        "--judge-agreement",
        type=int,
        default=0,
        metavar="N",
        help="re-judge N rated SIF items (a random sample drawn with --seed) with a second "
        "judge and report how well the two agree (default 0: none)",
    )
    parser.add_argument(
        "--agreement-judge-url",
        default=None,
        help="OpenAI-compatible base URL of the second judge (default: --judge-url)",
    )
    parser.add_argument(
        "--agreement-judge-model",
        default=None,
        help="model name of the second judge (needed with --judge-agreement)",
    )
    parser.add_argument(
        "--agreement-judge-key-env",
        default=None,
        help="environment variable holding the second judge's API key (default: --judge-key-env)",
    )


def judge_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--judge-*`` options as :func:`koala.scoring.judge.judge_scores` keywords (``None``:
    no judge), with one :class:`~koala.scoring.judge.JudgeBreaker` shared by every SIF config
    and variant; ``--judge-agreement`` adds ``agreement``. A bad option (a judge URL with
    credentials or without ``http(s)://``, a time-out <= 0, a second judge that is missing or
    is the first) ends the program with a message and exit status 1 (``SystemExit``); the
    message never repeats a URL holding credentials."""
    if not getattr(args, "judge_url", None):
        return None
    from koala.openai_client import check_base_url
    from koala.scoring.judge import JudgeBreaker

    try:
        check_base_url(args.judge_url, "--judge-url")
        if getattr(args, "agreement_judge_url", None):
            check_base_url(args.agreement_judge_url, "--agreement-judge-url")
        timeout = getattr(args, "judge_timeout", DEFAULT_TIMEOUT)
        if not timeout > 0:
            raise ValueError(f"--judge-timeout must be a number of seconds > 0, got {timeout}")
        retries = getattr(args, "judge_retries", DEFAULT_RETRIES)
        if retries < 0:
            raise ValueError(f"--judge-retries must be >= 0, got {retries}")
        if args.judge_concurrency < 1:
            raise ValueError(f"--judge-concurrency must be >= 1, got {args.judge_concurrency}")
        breaker = JudgeBreaker(getattr(args, "judge_breaker", DEFAULT_BREAKER))
    except ValueError as exc:
        raise SystemExit(f"koala-bench: {exc}") from None
    opts: dict[str, Any] = {
        "base_url": args.judge_url,
        "model": args.judge_model,
        "api_key_env": args.judge_key_env,
        "concurrency": args.judge_concurrency,
        "timeout": timeout,
        "max_retries": retries,
        "breaker": breaker,
    }
    if getattr(args, "judge_prompt_file", None):
        opts["judge_prompt_file"] = args.judge_prompt_file
    if getattr(args, "judge_agreement", 0):
        from koala.scoring.judge import agreement_spec

        agreement = {
            "n": args.judge_agreement,
            "model": args.agreement_judge_model,
            "base_url": args.agreement_judge_url,
            "api_key_env": args.agreement_judge_key_env,
            "seed": getattr(args, "seed", 0),
        }
        try:
            opts["agreement"] = agreement_spec(
                agreement, args.judge_url, args.judge_model, args.judge_key_env
            )
        except ValueError as exc:
            raise SystemExit(f"--judge-agreement: {exc}") from None
    return opts


def judge_failures(result: Mapping[str, Any], judge: Mapping[str, Any] | None) -> str | None:
    """When a judge was asked for and could not judge (answers ``judge_failed``, or the judge
    call itself failed), a message naming the judge and saying how many answers, in which
    configs, and why; ``None`` otherwise. ``result``: :func:`score_run`'s, or
    ``{model: {config: scores}}`` as the report collects it."""
    if not judge:
        return None
    models = result.get("models", result)
    failed = 0
    configs: list[str] = []
    reasons: list[str] = []
    for m in models.values():
        for config, c in (m.get("configs", m) if isinstance(m, Mapping) else {}).items():
            if not isinstance(c, Mapping) or c.get("task") != "sif":
                continue
            for modes in (c.get("variants") or {}).values():
                g = modes.get("gen") or {}
                n = g.get("num_judge_failed") or 0
                note = str(g.get("note") or "")
                if note.startswith("not scored: judge failed"):
                    n = max(
                        n,
                        (g.get("num_answered") or 0)
                        + (g.get("failed") or 0)
                        + (g.get("abstained") or 0),
                    )
                    reasons.append(note.removeprefix("not scored: "))
                if n:
                    failed += n
                    if config not in configs:
                        configs.append(config)
    if not failed:
        return None
    from koala.scoring.judge import _host

    breaker = judge.get("breaker")
    why = [breaker.message()] if breaker is not None and breaker.tripped else []
    if not why and breaker is not None and breaker.last_error:
        why = [f"last error: {breaker.last_error}"]
    why += [r for r in reasons if r not in why][:1]
    return (
        f"the judge {judge.get('model')} at {_host(str(judge.get('base_url')))} could not judge "
        f"{failed} SIF answer(s) in {', '.join(configs)}"
        + (f" ({'; '.join(why)})" if why else "")
        + ": they are left out of the SIF figures; run the same command again when the judge "
        "answers (rated answers are cached and not asked again)"
    )


def interval_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--confidence``, ``--n-resamples``, ``--seed`` as :func:`score_run` keywords
    (``--confidence 0``: no intervals). ``ValueError`` naming the option for a confidence
    outside [0, 1) or fewer than 1 resample (a usage error: exit status 1)."""
    conf = getattr(args, "confidence", 0.95)
    n = getattr(args, "n_resamples", 1000)
    if conf is None or not (conf == 0 or 0 < conf < 1):
        raise ValueError(
            f"--confidence must be between 0 and 1 (e.g. 0.95), or 0 for no intervals; got {conf}"
        )
    if n is None or n < 1:
        raise ValueError(f"--n-resamples must be at least 1, got {n}")
    return {
        "confidence": conf if conf else None,
        "n_resamples": n,
        "seed": getattr(args, "seed", 0),
    }


def scoring_options(
    args: argparse.Namespace, prog: str
) -> tuple[list[str], dict[str, Any], dict[str, Any] | None] | None:
    """The options :func:`add_scoring_arguments` adds, read for ``score`` and ``report``
    alike: ``(ST metrics, interval keywords, judge keywords or None)``, or ``None`` after
    printing, under ``prog``, what is wrong (a usage error: exit status 1)."""
    metrics = st_metrics_option(args.st_metrics, prog)
    if metrics is None:
        return None
    try:
        intervals = interval_options(args)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    try:
        judge = judge_options(args)
    except SystemExit as exc:  # a bad judge option: a usage error, said plainly
        print(f"{prog}: {str(exc).removeprefix('koala-bench: ')}", file=sys.stderr)
        return None
    return metrics, intervals, judge


def st_metrics_option(value: str, prog: str) -> list[str] | None:
    """The ``--st-metrics`` list, or ``None`` after printing what is wrong."""
    metrics = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in metrics if m not in ST_METRICS]
    if bad:
        print(f"{prog}: unknown --st-metrics {bad}; use {list(ST_METRICS)}", file=sys.stderr)
        return None
    return metrics


def headline(c: Mapping[str, Any]) -> str:
    """One line per config for the terminal: the shown figures, or why there is none."""
    best = ", ".join(
        f"{mode} {b['metric']}={b['value']:.4f} ({b['variant']})"
        for mode, b in c.get("best", {}).items()
        if b.get("value") is not None
    )
    cov = c.get("coverage", {})
    status = c.get("status", "")
    if status == "failed":
        best = "failed (every request failed)"
    elif not best:
        best = "not scored"
    if status == "partial":
        best += f"  PARTIAL: {cov.get('records', 0)}/{cov.get('planned', 0)} requests recorded"
        missing = (cov.get("shards") or {}).get("missing")
        if missing:
            best += f", shard(s) {', '.join(missing)} missing"
    cnt = c.get("counts", {})
    ign = sum(c.get("ignored", {}).values())
    extra = f", {ign} stale ignored" if ign else ""
    return (
        f"{best}  [ok {cnt.get('ok', 0)}, failed {cnt.get('failed', 0)}, "
        f"abstained {cnt.get('abstained', 0)}{extra}]"
    )


def run(args: argparse.Namespace) -> int:
    """``koala-bench score``: exit status 0 when scored; 1 on a usage error (a bad option, no
    run directory); :data:`EXIT_JUDGE` (5) when a judge was asked for and could not judge every
    SIF answer (it timed out, failed, or its circuit breaker stopped sending to it): the scores
    are written without those answers and the message names the judge."""
    options = scoring_options(args, "koala-bench score")
    if options is None:
        return 1
    metrics, intervals, judge = options
    try:
        result = score_run(
            args.run_dir,
            metrics,
            judge,
            protocol=args.protocol,
            select=args.select,
            **intervals,
        )
    except FileNotFoundError as exc:
        print(f"koala-bench score: {exc}", file=sys.stderr)
        return 1
    print(f"protocol {result['protocol']}, selection {result['selection']['rule']}")
    for model, m in result["models"].items():
        for config, c in m["configs"].items():
            print(f"{model}  {config}: {headline(c)}")
    p = result["predictions"]
    if p["malformed"] or p["other_versions"] or p["corrupt_lines"]:
        print(
            f"predictions: {len(p['malformed'])} malformed record(s), "
            f"{len(p['corrupt_lines'])} corrupt line(s), other format versions "
            f"{p['other_versions'] or 'none'}: not scored (see scores.json)",
            file=sys.stderr,
        )
    print(f"wrote {Path(args.run_dir) / SCORES}")
    problem = judge_failures(result, judge)
    if problem:
        print(f"koala-bench score: {problem} (exit status {EXIT_JUDGE})", file=sys.stderr)
        return EXIT_JUDGE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from koala.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m koala.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
