"""``koala-bench score RUN_DIR``: score a run's predictions; writes ``RUN_DIR/scores.json``.

Every figure comes from the scoring functions of :mod:`koala.scoring` that the ``metrics/``
``evaluate`` modules wrap (the same code, without the ``evaluate`` import cost), per model,
config, prompt variant and mode:

* ``asr``: ``korean_cer`` (:func:`koala.scoring.cer.corpus_cer`, the published normalisation
  ``koala``): "sum of edits / sum of reference lengths".
* ``sqa``, ``pa_qa``: ``choice_accuracy`` and, for PA-QA, ``segment_accuracy``
  (:func:`koala.scoring.segments.segment_accuracy`, from the evidence positions: "an item with
  evidence in several segments counts once in each"). Mode ``gen`` reads the generated text
  (published extraction order; an answer no rule reads is *unparsed* and wrong, never the first
  choice); mode ``logit`` takes the argmax of the label log-probabilities, where the model gave
  them.
* ``sca_qa``: ``scf`` (:func:`koala.scoring.scf.speech_context_faithfulness`) over the three
  conditions: "among the items the model answers correctly from text alone, the share whose
  answer follows the counterfactual speech", with ``parametric_proportion`` and the accuracy of
  each condition.
* ``st``: :func:`koala.scoring.translation.translation_scores` (BLEU, METEOR, BERTScore), and
  ``sif``: :func:`koala.scoring.judge.judge_scores` (the LLM judge; needs ``--judge-url``).
  Both are imported when needed; when a module or a metric's model is missing the config is
  marked ``not scored: ...`` instead of failing.

Failed and abstained requests are never dropped silently: for choice tasks, ASR and ST they
count as empty answers (wrong; all deletions; empty translation) and their numbers are
reported beside the score; for SIF they are not sent to the judge and are reported as such.
``best`` names, per mode, the variant with the best main metric (lowest CER, else highest).
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

from koala.runner import ABSTAINED, FAILED, OK, PREDICTIONS, read_predictions

__all__ = ["MAIN_METRIC", "SCORES", "add_arguments", "main", "run", "score_config", "score_run"]

log = logging.getLogger(__name__)

SCORES = "scores.json"
# task -> (main metric, higher is better)
MAIN_METRIC: dict[str, tuple[str, bool]] = {
    "asr": ("cer", False),
    "st": ("bleu", True),
    "sif": ("score", True),
    "sqa": ("accuracy", True),
    "pa_qa": ("accuracy", True),
    "sca_qa": ("scf", True),
}
ST_METRICS = ("bleu", "meteor", "bertscore")


def _status_counts(recs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    c = Counter(r.get("status") for r in recs)
    return {"records": len(recs), OK: c[OK], FAILED: c[FAILED], ABSTAINED: c[ABSTAINED]}


def _text(rec: Mapping[str, Any]) -> str:
    return rec.get("prediction") or "" if rec.get("status") == OK else ""


def _logit(rec: Mapping[str, Any]) -> dict[str, float] | str:
    """Finite label log-probabilities of an answered record, else ``""`` (unparsed)."""
    if rec.get("status") != OK or not isinstance(rec.get("logprobs"), Mapping):
        return ""
    labels = {str(x).upper() for x in rec["ref"].get("choice_labels", [])}
    lp = {
        str(k).upper(): float(v)
        for k, v in rec["logprobs"].items()
        if str(k).upper() in labels and v is not None and not math.isnan(float(v))
    }
    return lp if any(v > -math.inf for v in lp.values()) else ""


def _has_logits(recs: Sequence[Mapping[str, Any]]) -> bool:
    return any(isinstance(r.get("logprobs"), Mapping) and r["logprobs"] for r in recs)


def _sorted(recs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(recs, key=lambda r: str(r["id"]))


def _non_ok(recs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    c = Counter(r.get("status") for r in recs)
    return {"failed": c[FAILED], "abstained": c[ABSTAINED]}


# ------------------------------------------------------------------------ per task


def _valid(
    recs: Sequence[Mapping[str, Any]], gold: Sequence[str] = ("answer",)
) -> tuple[list[Mapping[str, Any]], int]:
    """Records whose multiple-choice reference is usable (choices match labels, gold names a
    choice), and how many are not: those rows are left out and counted (``invalid_rows``)."""
    from koala.scoring.choices import parse_choices, parse_gold

    good, bad = [], 0
    for r in recs:
        ref = r.get("ref") or {}
        try:
            choice = parse_choices(ref["choices"], ref["choice_labels"])
            for f in gold:
                parse_gold(ref[f], choice)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            bad += 1
            continue
        good.append(r)
    return good, bad


def _mc(recs: Sequence[Mapping[str, Any]], mode: str) -> dict[str, Any]:
    from koala.scoring.choices import choice_accuracy

    recs, invalid = _valid(_sorted(recs))
    if not recs:
        return {"note": "not scored: no row with a usable reference", "invalid_rows": invalid}
    preds = [_text(r) if mode == "gen" else _logit(r) for r in recs]
    out = choice_accuracy(
        preds,
        [r["ref"]["answer"] for r in recs],
        choices=[r["ref"]["choices"] for r in recs],
        labels=[r["ref"]["choice_labels"] for r in recs],
    )
    out["invalid_rows"] = invalid
    return _mc_counts(out, recs, preds, mode)


def _mc_counts(
    out: dict[str, Any], recs: Sequence[Mapping[str, Any]], preds: Sequence[Any], mode: str
) -> dict[str, Any]:
    """Split the scorer's ``unparsed`` count: failed and abstained requests (scored as empty
    answers) are counted apart, as are, in logit mode, answers without log-probabilities."""
    non_ok = _non_ok(recs)
    out.update(non_ok)
    out["unparsed"] -= non_ok["failed"] + non_ok["abstained"]
    if mode == "logit":
        missing = sum(
            1 for r, p in zip(recs, preds, strict=True) if r.get("status") == OK and p == ""
        )
        out["no_logprobs"] = missing
        out["unparsed"] -= missing
    return out


def _pa_qa(recs: Sequence[Mapping[str, Any]], mode: str) -> dict[str, Any]:
    from koala.scoring.segments import segment_accuracy

    recs, invalid = _valid(_sorted(recs))
    if not recs:
        return {"note": "not scored: no row with a usable reference", "invalid_rows": invalid}
    preds = [_text(r) if mode == "gen" else _logit(r) for r in recs]
    refs = [r["ref"] for r in recs]
    kw: dict[str, Any]
    if all(ref.get("evidence_positions") is not None for ref in refs):
        kw = {"positions": [ref["evidence_positions"] for ref in refs]}
    else:
        kw = {"segments": [ref.get("evidence_segments") or [] for ref in refs]}
    out = segment_accuracy(
        preds,
        [ref["answer"] for ref in refs],
        choices=[ref["choices"] for ref in refs],
        labels=[ref["choice_labels"] for ref in refs],
        **kw,
    )
    out["invalid_rows"] = invalid
    return _mc_counts(out, recs, preds, mode)


def _sca(by_cond: Mapping[str, Sequence[Mapping[str, Any]]], mode: str) -> dict[str, Any]:
    from koala.scoring.choices import choice_accuracy
    from koala.scoring.scf import speech_context_faithfulness

    pick = _text if mode == "gen" else _logit
    gold = ("answer", "counterfactual_answer")
    invalid = 0
    conds = {}
    for c in ("text", "counterfactual", "original"):
        good, bad = _valid(by_cond.get(c, []), gold)
        conds[c] = {str(r["id"]): r for r in good}
        invalid = max(invalid, bad)
    text, cf, orig = conds["text"], conds["counterfactual"], conds["original"]
    ids = sorted(set(text) & set(cf))
    if not ids:
        return {"note": "not scored: no row has both the text-only and the counterfactual answer"}
    with_orig = all(i in orig for i in ids)
    refs = [cf[i]["ref"] for i in ids]
    out = speech_context_faithfulness(
        [pick(cf[i]) for i in ids],
        [ref["counterfactual_answer"] for ref in refs],
        [pick(text[i]) for i in ids],
        [ref["answer"] for ref in refs],
        [pick(orig[i]) for i in ids] if with_orig else None,
        choices=[ref["choices"] for ref in refs],
        labels=[ref["choice_labels"] for ref in refs],
    )
    if not with_orig and orig:  # the original speech exists for some rows only
        oid = sorted(orig)
        acc = choice_accuracy(
            [pick(orig[i]) for i in oid],
            [orig[i]["ref"]["answer"] for i in oid],
            choices=[orig[i]["ref"]["choices"] for i in oid],
            labels=[orig[i]["ref"]["choice_labels"] for i in oid],
        )
        out["original_accuracy"] = acc["accuracy"]
        out["original_total"] = acc["total"]
    out["conditions"] = {
        c: _non_ok(list(m.values())) | {"records": len(m)}
        for c, m in (("text", text), ("counterfactual", cf), ("original", orig))
    }
    out["unscored_rows"] = len((set(text) | set(cf)) - set(ids))
    out["invalid_rows"] = invalid
    return out


def _asr(recs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    from koala.scoring.cer import corpus_cer

    recs = _sorted(recs)
    out = corpus_cer([_text(r) for r in recs], [r["ref"]["text"] for r in recs]).as_dict()
    out.update(_non_ok(recs))
    return out


def _st(recs: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    recs = _sorted(recs)
    try:
        from koala.scoring.translation import translation_scores
    except ImportError as exc:
        return {"note": f"not scored: module missing (koala.scoring.translation: {exc})"}
    preds = [_text(r) for r in recs]
    refs = [r["ref"]["reference"] for r in recs]
    out: dict[str, Any] = {}
    notes = []
    for m in metrics:
        try:
            out.update(translation_scores(preds, refs, metrics=[m]))
        except Exception as exc:  # e.g. the BERTScore model is not available offline
            notes.append(f"{m}: not scored: {type(exc).__name__}: {str(exc)[:300]}")
    if notes:
        out["notes"] = notes
    if not any(k in out for k in metrics):
        out["note"] = "not scored: " + "; ".join(notes)
    out.update(_non_ok(recs))
    return out


def _sif(recs: Sequence[Mapping[str, Any]], judge: Mapping[str, Any] | None) -> dict[str, Any]:
    recs = _sorted(recs)
    answered = [r for r in recs if r.get("status") == OK]
    base = _non_ok(recs) | {"num_answered": len(answered)}
    if not answered:
        return base | {"note": "not scored: no answer to judge (all failed or abstained)"}
    if not judge or not judge.get("base_url"):
        return base | {"note": "not scored: no judge configured (--judge-url, --judge-model)"}
    try:
        from koala.scoring.judge import judge_scores
    except ImportError as exc:
        return base | {"note": f"not scored: module missing (koala.scoring.judge: {exc})"}
    try:
        out = judge_scores(
            [r["ref"]["instruction"] for r in answered],
            [r.get("prediction") or "" for r in answered],
            return_records=False,
            **judge,
        )
    except Exception as exc:
        return base | {"note": f"not scored: judge failed: {type(exc).__name__}: {exc}"}
    return base | dict(out)


# ------------------------------------------------------------------------ per config


def _group(recs: Sequence[Mapping[str, Any]], *fields: str) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for r in recs:
        out[tuple(r[f] for f in fields) if len(fields) > 1 else r[fields[0]]].append(r)
    return out


def _score_variant(
    task: str,
    recs: Sequence[Mapping[str, Any]],
    st_metrics: Sequence[str],
    judge: Mapping[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """Metrics of one prompt variant, per mode (``gen``, and ``logit`` where available).

    A variant whose every request was abstained is not scored (an abstaining model has no
    accuracy on a task it declines; partial abstentions count as wrong answers)."""
    if recs and all(r.get("status") == ABSTAINED for r in recs):
        return {"gen": {"note": "not scored: every request was abstained"}}
    if task == "asr":
        return {"gen": _asr(recs)}
    if task == "st":
        return {"gen": _st(recs, st_metrics)}
    if task == "sif":
        return {"gen": _sif(recs, judge)}
    modes = ["gen", "logit"] if _has_logits(recs) else ["gen"]
    if task == "sca_qa":
        by_cond = _group(recs, "condition")
        return {m: _sca(by_cond, m) for m in modes}
    if task == "pa_qa":
        return {m: _pa_qa(recs, m) for m in modes}
    return {m: _mc(recs, m) for m in modes}


def _best(task: str, variants: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    metric, higher = MAIN_METRIC[task]
    best: dict[str, Any] = {}
    modes = sorted({m for v in variants.values() for m in v})
    for mode in modes:
        cands = [
            (float(res[mode][metric]), name)
            for name, res in variants.items()
            if mode in res
            and isinstance(res[mode].get(metric), int | float)
            and not math.isnan(float(res[mode][metric]))
        ]
        if not cands:
            continue
        value, name = _pick(cands, higher)
        best[mode] = {"variant": name, "metric": metric, "value": value}
    return best


def _pick(cands: Sequence[tuple[float, str]], higher: bool) -> tuple[float, str]:
    """The best (value, variant); ties go to the variant name that sorts first."""
    return sorted(cands, key=lambda c: (-c[0] if higher else c[0], c[1]))[0]


def score_config(
    config: str,
    recs: Sequence[Mapping[str, Any]],
    st_metrics: Sequence[str] = ST_METRICS,
    judge: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Scores of one model on one config: per variant and mode, the best, and the counts."""
    from koala.prompts import task_of

    task = recs[0].get("task") or task_of(config)
    out: dict[str, Any] = {
        "task": task,
        "set": config.removesuffix("_noisy"),
        "noise": "noisy" if config.endswith("_noisy") else "clean",
        "rows": len({str(r["id"]) for r in recs}),
        "counts": _status_counts(recs),
    }
    variants = {
        v: _score_variant(task, vrecs, st_metrics, judge)
        for v, vrecs in sorted(_group(recs, "variant").items())
    }
    out["variants"] = variants
    out["best"] = _best(task, variants)
    subsets = sorted({r.get("subset") for r in recs if r.get("subset")})
    if len(subsets) > 1 and task not in ("sif",):
        out["subsets"] = {
            s: {
                v: _score_variant(
                    task, [r for r in vrecs if r.get("subset") == s], st_metrics, None
                )
                for v, vrecs in sorted(_group(recs, "variant").items())
            }
            for s in subsets
        }
    return out


def score_run(
    run_dir: str | Path,
    st_metrics: Sequence[str] = ST_METRICS,
    judge: Mapping[str, Any] | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Score every (model, config) of a run directory; writes ``scores.json`` when ``write``."""
    run_dir = Path(run_dir)
    path = run_dir / PREDICTIONS
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no predictions (run 'koala-bench run ... --out {run_dir}' first)"
        )
    records, rstats = read_predictions(path)
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "predictions": {
            "lines": rstats.lines,
            "records": len(records),
            "superseded": rstats.duplicates,
            "corrupt_lines": rstats.corrupt,
            "truncated_tail": rstats.truncated_tail,
        },
        "scoring": {
            "cer_normalization": "koala",
            "choice_fallback": "none (unparsed answers are wrong)",
            "st_metrics": list(st_metrics),
            "judge_model": (judge or {}).get("model"),
        },
        "models": {},
    }
    by_model = _group(list(records.values()), "model")
    for model, mrecs in sorted(by_model.items()):
        configs = {}
        for config, crecs in sorted(_group(mrecs, "config").items()):
            jd = dict(judge) if judge else None
            if jd is not None and "cache_path" not in jd:
                jd["cache_path"] = str(run_dir / "judge_cache.jsonl")
            configs[config] = score_config(config, crecs, st_metrics, jd)
        result["models"][model] = {"configs": configs}
    if write:
        tmp = run_dir / f".{SCORES}.tmp"
        tmp.write_text(
            json.dumps(result, ensure_ascii=False, indent=2, allow_nan=True) + "\n",
            encoding="utf-8",
        )
        os.replace(tmp, run_dir / SCORES)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by 'koala-bench run'")
    parser.add_argument(
        "--st-metrics",
        default=",".join(ST_METRICS),
        help="translation metrics, comma separated (bleu, meteor, bertscore)",
    )
    parser.add_argument(
        "--judge-url",
        default=None,
        help="OpenAI-compatible base URL of the SIF judge (none: SIF is not scored)",
    )
    parser.add_argument("--judge-model", default="gpt-4o-mini", help="judge model")
    parser.add_argument(
        "--judge-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the judge's API key",
    )
    parser.add_argument("--judge-concurrency", type=int, default=8)


def judge_options(args: argparse.Namespace) -> dict[str, Any] | None:
    if not getattr(args, "judge_url", None):
        return None
    return {
        "base_url": args.judge_url,
        "model": args.judge_model,
        "api_key_env": args.judge_key_env,
        "concurrency": args.judge_concurrency,
    }


def run(args: argparse.Namespace) -> int:
    """``koala-bench score``."""
    metrics = [m.strip() for m in args.st_metrics.split(",") if m.strip()]
    bad = [m for m in metrics if m not in ST_METRICS]
    if bad:
        print(
            f"koala-bench score: unknown --st-metrics {bad}; use {list(ST_METRICS)}",
            file=sys.stderr,
        )
        return 1
    try:
        result = score_run(args.run_dir, metrics, judge_options(args))
    except FileNotFoundError as exc:
        print(f"koala-bench score: {exc}", file=sys.stderr)
        return 1
    for model, m in result["models"].items():
        for config, c in m["configs"].items():
            best = (
                ", ".join(
                    f"{mode} {b['metric']}={b['value']:.4f} ({b['variant']})"
                    for mode, b in c["best"].items()
                )
                or "not scored"
            )
            cnt = c["counts"]
            print(
                f"{model}  {config}: {best}  [ok {cnt['ok']}, failed {cnt['failed']}, "
                f"abstained {cnt['abstained']}]"
            )
    print(f"wrote {Path(args.run_dir) / SCORES}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m koala.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
