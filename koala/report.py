"""``koala-bench report RUN_DIR [RUN_DIR ...]``: tables and plots over one or more runs.

Writes into ``--out`` (default: the run directory when there is one, else ``koala_report``):

* ``results.json``: every score of every model (all prompt variants and modes), the tables
  and the data behind each plot;
* ``results.md``: one table per task, models side by side, each cell the best prompt variant
  (as the published authors report), then the request counts (failed, abstained, unparsed:
  nothing is hidden) and every variant's figure;
* ``pa_qa_segments.png``: PA-QA accuracy by evidence segment (front, front-middle,
  middle-late, late) per model, clean solid, noisy dashed;
* ``clean_vs_noisy.png``: per task, the main metric of each set, clean against noisy, per model;
* ``scf.png``: per model and SCA-QA set, the text-correct items split into those that follow
  the counterfactual speech (SCF), those that keep the model's own answer (parametric
  proportion) and the rest.

Runs whose ``scores.json`` is missing or older than their predictions are scored first (and
when the interval or protocol options differ from ``score``'s). Judged SIF figures are never
lost: without ``--judge-url`` the report reuses them from ``scores.json`` or says why not,
and leaves ``scores.json`` as it is. Exit status: 0, 1 on a usage error, 5 when a judge given
with ``--judge-url`` could not judge some answers. The
figures use the generation-based scores of each model's best variant (the variant chosen per
config by the main metric). Each ``plot_*`` function returns the numbers it drew.
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

from koala.plots import plt as pyplot
from koala.plots import save
from koala.predictions import PREDICTIONS
from koala.report_cells import best_metrics, fmt, num
from koala.score import (
    EXIT_JUDGE,
    SCORES,
    ST_METRICS,
    add_scoring_arguments,
    judge_failures,
    score_run,
    scoring_options,
    selection_rules,
    shown_variant,
    strict_json,
)
from koala.tasks import TaskPlot, all_tasks, find_task, get_task
from koala.tasks.pa_qa import figure_pa_qa_segments, pa_qa_segment_counts, pa_qa_segment_data
from koala.tasks.sca_qa import figure_scf, scf_data

log = logging.getLogger(__name__)

__all__ = [
    "add_arguments",
    "clean_noisy_data",
    "collect",
    "figure_clean_noisy",
    "figure_pa_qa_segments",
    "figure_scf",
    "main",
    "pa_qa_segment_data",
    "plot_clean_noisy",
    "plot_pa_qa_segments",
    "plot_scf",
    "run",
    "scf_data",
    "write_report",
]


# ------------------------------------------------------------------------ loading


def _judged(c: Mapping[str, Any]) -> bool:
    """Whether a config's scores hold figures a judge gave (a ``judge`` block in a variant)."""
    return any(
        isinstance((modes or {}).get("gen"), Mapping) and "judge" in modes["gen"]
        for modes in (c.get("variants") or {}).values()
    )


def _keep_judged(
    old: Mapping[str, Any],
    new: dict[str, Any],
    changed: bool,
    protocol: str,
    select: str,
    run_dir: Path,
) -> list[str]:
    """Carry the judged SIF configs of ``old`` (scores.json) into ``new`` (scored now without
    a judge) when they were scored from the same predictions under the same protocol; else
    say why in each such config. Returns the configs reused."""
    reused = []
    for model, m in new.get("models", {}).items():
        old_configs = ((old.get("models") or {}).get(model) or {}).get("configs") or {}
        for config, c in m.get("configs", {}).items():
            prev = old_configs.get(config)
            if not isinstance(prev, Mapping) or not _judged(prev) or _judged(c):
                continue
            if changed or old.get("protocol") != protocol:
                why = (
                    "the judged figures in scores.json are older than the predictions"
                    if changed
                    else f"scores.json holds figures judged under the {old.get('protocol')} "
                    f"protocol, not {protocol}"
                )
                note = (
                    f"not scored: {why}; run koala-bench score {run_dir} --judge-url URL "
                    f"--protocol {protocol} (cached ratings are not asked again)"
                )
                for modes in c.get("variants", {}).values():
                    if isinstance(modes.get("gen"), dict):
                        modes["gen"]["note"] = note
                continue
            iv = (old.get("scoring") or {}).get("intervals") or {}
            entry = dict(prev)
            entry["best"], entry["sensitivity"] = shown_variant(entry, select)
            judge = (old.get("scoring") or {}).get("judge_model")
            entry["judged_figures"] = (
                f"reused from scores.json (judge {judge}; intervals as scored there: "
                + (
                    f"confidence {iv.get('confidence')}, n_resamples {iv.get('n_resamples')}, "
                    f"seed {iv.get('seed')}"
                    if iv
                    else "none"
                )
                + "): report does not call the judge without --judge-url"
            )
            m["configs"][config] = entry
            reused.append(config)
    return reused


def _load_scores(
    run_dir: Path,
    rescore: bool,
    st_metrics: Sequence[str],
    judge: Mapping[str, Any] | None,
    protocol: str = "koala",
    select: str | None = None,
    intervals: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's scores under ``protocol`` and ``select``: ``scores.json`` when it is newer
    than the predictions and the plan and was scored with the same switches and interval
    options, else scored now (and ``scores.json`` rewritten).

    Judged SIF figures are never lost: without a judge (``--judge-url``), a ``scores.json``
    that holds them is not overwritten; its judged SIF configs are reused when they were
    scored from the same predictions under the same protocol (``judged_figures`` says so,
    with the interval options they were scored with), else each says why not and how to judge
    again."""
    iv = dict(intervals or {"confidence": 0.95, "n_resamples": 1000, "seed": 0})
    scores, preds = run_dir / SCORES, run_dir / PREDICTIONS
    inputs = [preds, *sorted((run_dir / "plan").glob("*.json"))]
    old = json.loads(scores.read_text(encoding="utf-8")) if scores.exists() else None
    changed = old is not None and any(
        p.exists() and p.stat().st_mtime > scores.stat().st_mtime for p in inputs
    )
    if old is not None and not rescore and not changed:
        stored = old.get("scoring", {}).get("intervals") or {}
        same = (
            old.get("protocol") == protocol
            and old.get("selection", {}).get("rule") == (select or protocol)
            and all(stored.get(k) == v for k, v in iv.items() if v is not None)
            and (iv.get("confidence") is not None) == bool(stored)
        )
        if same:
            return old
    judged = old is not None and any(
        _judged(c)
        for m in (old.get("models") or {}).values()
        for c in (m.get("configs") or {}).values()
        if isinstance(c, Mapping)
    )
    if judge or not judged:
        return score_run(run_dir, st_metrics, judge, protocol=protocol, select=select, **iv)
    assert old is not None
    new = score_run(run_dir, st_metrics, None, write=False, protocol=protocol, select=select, **iv)
    reused = _keep_judged(old, new, changed, protocol, select or protocol, run_dir)
    if reused:
        log.warning(
            "%s: scored again for the report's options without a judge; the judged figures of "
            "%s reused from scores.json (scores.json is left as it is)",
            run_dir,
            ", ".join(reused),
        )
    else:
        log.warning(
            "%s: scores.json holds judged SIF figures that cannot be reused (%s): the report "
            "shows SIF not scored, scores.json is left as it is; run koala-bench score with "
            "--judge-url to judge again",
            run_dir,
            "the predictions changed since" if changed else "another protocol",
        )
    return new


def collect(
    run_dirs: Sequence[str | Path],
    rescore: bool = False,
    st_metrics: Sequence[str] = ST_METRICS,
    judge: Mapping[str, Any] | None = None,
    protocol: str = "koala",
    select: str | None = None,
    intervals: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{model: {config: config scores}}`` over the runs (a model name that occurs in two
    runs gets the run directory's name appended). ``intervals``: the bootstrap options of
    :func:`koala.score.score_run` (``confidence`` ``None`` for none)."""
    out: dict[str, dict[str, Any]] = {}
    for d in run_dirs:
        path = Path(d)
        scores = _load_scores(path, rescore, st_metrics, judge, protocol, select, intervals)
        for model, m in scores["models"].items():
            name = model if model not in out else f"{model} [{path.name}]"
            out[name] = m["configs"]
    return out


# ------------------------------------------------------------------------ plot data


def clean_noisy_data(
    results: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``{task: {set: {model: {"clean": v, "noisy": v}}}}`` (main metric of the best
    generation variant, scaled as the task plots it) for sets with both variants."""
    data: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for model, configs in results.items():
        by_set: dict[str, dict[str, float]] = {}
        task_of_set: dict[str, str] = {}
        for c in configs.values():
            task = c.get("task")
            m = best_metrics(c)
            spec = find_task(task)
            if spec is None or not m:
                continue
            value = spec.plot_scale * num(m.get(spec.main_metric))
            by_set.setdefault(c["set"], {})[c["noise"]] = value
            task_of_set[c["set"]] = task
        for s, vals in by_set.items():
            if "clean" in vals and "noisy" in vals:
                data.setdefault(task_of_set[s], {}).setdefault(s, {})[model] = {
                    "clean": vals["clean"],
                    "noisy": vals["noisy"],
                }
    return data


# ------------------------------------------------------------------------ figures


def figure_clean_noisy(data: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> Any:
    """One panel per task; per set, a clean and a noisy (hatched) bar per model. Bars carry
    ``gid = "task|set|model|noise"``."""
    plt = pyplot()
    tasks = [t.name for t in all_tasks() if t.name in data] or ["none"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6, 4.5 * len(tasks)), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        if task == "none":
            ax.text(
                0.5,
                0.5,
                "no set with both clean and noisy scores",
                ha="center",
                transform=ax.transAxes,
            )
            ax.set_axis_off()
            continue
        sets = sorted(data[task])
        models = sorted({m for s in sets for m in data[task][s]})
        width = 0.8 / max(1, 2 * len(models))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for k, model in enumerate(models):
            for j, noise in enumerate(("clean", "noisy")):
                off = (2 * k + j) * width - 0.4 + width / 2
                for i, s in enumerate(sets):
                    if model not in data[task][s]:
                        continue
                    container = ax.bar(
                        i + off,
                        data[task][s][model][noise],
                        width,
                        color=colors[k % len(colors)],
                        hatch="//" if noise == "noisy" else None,
                        edgecolor="black",
                        linewidth=0.5,
                        label=f"{model} ({noise})" if i == 0 else None,
                    )
                    container[0].set_gid(f"{task}|{s}|{model}|{noise}")
                    ax.bar_label(container, fmt="%.1f", fontsize=6)
        ax.set_xticks(range(len(sets)), sets, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(get_task(task).plot_label)
        ax.set_title(f"{task}: clean vs noisy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_clean_noisy(results: Mapping[str, Mapping[str, Any]], path: str | Path) -> dict:
    data = clean_noisy_data(results)
    save(figure_clean_noisy(data), Path(path))
    return data


def plot_pa_qa_segments(results: Mapping[str, Mapping[str, Any]], path: str | Path) -> dict:
    data = pa_qa_segment_data(results)
    save(figure_pa_qa_segments(data, pa_qa_segment_counts(results)), Path(path))
    return data


def plot_scf(results: Mapping[str, Mapping[str, Any]], path: str | Path) -> dict:
    data = scf_data(results)
    save(figure_scf(data), Path(path))
    return data


# ------------------------------------------------------------------------ tables


def _cell(x: Any) -> str:
    """A Markdown table cell: ``|`` escaped (a model, config or variant name may hold one) and
    line breaks made spaces, so no text splits the row."""
    return " ".join(str(x).replace("\\", "\\\\").replace("|", "\\|").splitlines())


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    pad = len(header)
    out += ["| " + " | ".join(_cell(x) for x in [*r, *[""] * (pad - len(r))]) + " |" for r in rows]
    return out


def _tables(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task (in report order), its table: title, header and rows."""
    configs_by_task: dict[str, list[str]] = {}
    for configs in results.values():
        for config, c in configs.items():
            configs_by_task.setdefault(c["task"], [])
            if config not in configs_by_task[c["task"]]:
                configs_by_task[c["task"]].append(config)
    tables: dict[str, dict[str, Any]] = {}
    for task in all_tasks():
        configs = sorted(configs_by_task.get(task.name, []))
        if not configs:
            continue
        header, rows = task.report_table(results, configs)
        tables[task.name] = {"title": task.title, "header": header, "rows": rows}
    return tables


def _plots(results: Mapping[str, Mapping[str, Any]], out_dir: Path) -> list[tuple[Any, Any]]:
    """Every figure with the data it plots: each task's own and the clean-vs-noisy one."""
    common = TaskPlot(
        "clean_vs_noisy",
        "clean vs noisy",
        clean_noisy_data,
        lambda r: figure_clean_noisy(clean_noisy_data(r)),
        "no set was scored both clean and noisy",
        order=1,
    )
    specs = sorted([common, *(p for t in all_tasks() for p in t.plots())], key=lambda p: p.order)
    out = []
    for spec in specs:
        data = spec.data(results)
        save(spec.figure(results), out_dir / f"{spec.name}.png")
        out.append((spec, data))
    return out


def _counts_rows(results: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            cnt = c.get("counts", {})
            cov = c.get("coverage", {})
            g = best_metrics(c, "gen") or {}
            unparsed = g.get("unparsed")
            if isinstance(unparsed, Mapping):
                unparsed = sum(unparsed.values())
            invalid = g.get("invalid")
            rows.append(
                [
                    model,
                    config,
                    c.get("status", ""),
                    str(c.get("rows", "")),
                    str(cov.get("planned", "")),
                    str(cnt.get("records", "")),
                    str(cnt.get("ok", "")),
                    str(cnt.get("failed", "")),
                    str(cnt.get("abstained", "")),
                    str(cov.get("missing", "")),
                    str(sum(c.get("ignored", {}).values())),
                    "—" if unparsed is None else str(unparsed),
                    "—" if invalid is None else str(invalid),
                ]
            )
    return rows


def _variant_rows(results: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            spec = find_task(c.get("task"))
            if spec is None:
                continue
            metric = spec.main_metric
            for variant, modes in c["variants"].items():
                for mode, m in modes.items():
                    v = m.get(metric)
                    shown = m.get("note", "not scored") if v is None else fmt(v, 4)
                    best = c["best"].get(mode, {}).get("variant") == variant
                    rows.append(
                        [model, config, variant, mode, metric, shown, "best" if best else ""]
                    )
    return rows


def write_report(
    results: Mapping[str, Mapping[str, Any]],
    out: str | Path,
    runs: Sequence[str] = (),
    protocol: str = "koala",
    select: str | None = None,
    significance: Mapping[str, Any] | None = None,
    html: bool = False,
) -> dict[str, Any]:
    """Write ``results.json``, ``results.md`` and the three plots into ``out``; ``protocol``
    and ``select`` are the switches the results were scored with (stated in both files).
    ``significance`` (:func:`significance`) adds the paired comparisons of the runs; ``html``
    also writes ``results.html``, one self-contained page (:mod:`koala.html_report`)."""
    select = select or protocol
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = _plots(results, out_dir)
    plots = {spec.name: data for spec, data in drawn}
    rules = selection_rules(select)
    tables = _tables(results)
    md = ["# KoALa-Bench results", ""]
    md.append(f"Models: {', '.join(results) or 'none'}. Runs: {', '.join(map(str, runs))}.")
    md.append(
        f"Scored under the **{protocol}** protocol; the shown prompt variant is chosen by the "
        f"**{select}** rule, stated under each table (every variant is listed at the end). "
        "A *row* is one benchmark item; a *record* is one answered request (an item asked with "
        "each prompt variant and, for SCA-QA, in each condition). Failed and abstained "
        "requests count as wrong answers (ASR: empty transcripts; ST: empty translations; "
        "SIF: rated by the judge protocol) and each cell says how many there were; a config "
        "with requests still missing is marked *partial* with answered/planned, and is not a "
        "result. In the SCA-QA and PA-QA tables, a variant marked * is shown because no "
        "variant has a defined main metric."
    )
    md.append("")
    for task in all_tasks():
        if task.name not in tables:
            continue
        t = tables[task.name]
        md += [f"## {t['title']}", "", *_table(t["header"], t["rows"]), ""]
        md += [f"Variant shown: {rules[task.name]}.", ""]
        for line in task.report_notes(t):
            md += [line, ""]
    md += ["## Plots", ""]
    for spec, data in drawn:
        if data:
            md += [f"![{spec.title}]({spec.name}.png)", ""]
        else:
            md += [f"No {spec.title} plot: {spec.why_empty}.", ""]
    md += [
        "## Requests",
        "",
        *_table(
            [
                "model",
                "config",
                "status",
                "rows",
                "planned",
                "records",
                "ok",
                "failed",
                "abstained",
                "missing",
                "stale ignored",
                "unparsed (shown)",
                "invalid rows (shown)",
            ],
            _counts_rows(results),
        ),
        "",
    ]
    if significance:
        md += ["## Paired comparisons", "", *_table(
            ["config", "A", "B", "metric", "A - B", "interval", "p", "p (Holm)", "test"],
            [
                [
                    config,
                    p["a"],
                    p["b"],
                    p["metric"],
                    fmt(p["difference"], 4),
                    f"[{fmt(p['low'], 4)}, {fmt(p['high'], 4)}]"
                    if p.get("low") is not None
                    else f"no interval: {p.get('interval_note') or 'undefined'}",
                    fmt(p["p_value"], 4),
                    fmt(p.get("p_holm"), 4),
                    p.get("test") or "",
                ]
                for config, entry in sorted(significance.items())
                for p in entry["pairs"]
            ],
        ), "", "Paired over the same items with each task's test: exact McNemar over items "
           "(SQA), a permutation test over the task's units otherwise (PA-QA passages, ST "
           "talks, SCA-QA items with their conditions, ASR and SIF items); p-values count the "
           "observed data among the draws, so none is 0. Holm's correction runs over the "
           "configs compared between the same two runs (one family per pair of runs), not "
           "across pairs.", ""]  # fmt: skip
    md += [
        "## Every prompt variant",
        "",
        *_table(
            ["model", "config", "variant", "mode", "metric", "value", ""], _variant_rows(results)
        ),
        "",
    ]
    (out_dir / "results.md").write_text("\n".join(md), encoding="utf-8")
    payload = {
        "significance": dict(significance or {}),
        "protocol": protocol,
        "selection": {"rule": select, "per_task": rules},
        "runs": [str(r) for r in runs],
        "models": list(results),
        "results": results,
        "tables": tables,
        "plots": {name: {"path": f"{name}.png", "data": data} for name, data in plots.items()},
    }
    tmp = out_dir / ".results.json.tmp"
    tmp.write_text(
        json.dumps(strict_json(payload), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, out_dir / "results.json")
    if html:
        from koala.html_report import write_html

        payload["html"] = str(write_html(payload, out_dir / "results.html"))
    return payload


def significance(
    run_dirs: Sequence[str | Path],
    protocol: str = "koala",
    select: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired comparisons of every two runs (:func:`koala.compare.compare_runs`), as
    ``{config: {"models": [...], "pairs": [{"a", "b", "metric", "difference", "low",
    "high", "interval_note", "p_value", "p_holm", "test", "unit", "holm_family"}]}}``;
    configs a pair could not be compared on are left out. ``p_holm`` is corrected over the
    configs of its pair of runs (``holm_family``), not across pairs."""
    from itertools import combinations

    from koala.compare import compare_runs

    out: dict[str, Any] = {}
    for ra, rb in combinations(run_dirs, 2):
        res = compare_runs(
            ra,
            rb,
            protocol=protocol,
            select=select,
            n_resamples=n_resamples,
            seed=seed,
            confidence=confidence,
        )
        a, b = res["a"]["model"], res["b"]["model"]
        for config, e in res["configs"].items():
            if "difference" not in e:
                continue
            entry = out.setdefault(config, {"models": [], "pairs": []})
            entry["models"] += [m for m in (a, b) if m not in entry["models"]]
            entry["pairs"].append(
                {
                    "a": a,
                    "b": b,
                    "metric": e["metric"],
                    "difference": e["difference"],
                    "low": e["interval"]["low"],
                    "high": e["interval"]["high"],
                    "interval_note": e["interval"].get("note"),
                    "p_value": e["p_value"],
                    "p_holm": e.get("p_holm"),
                    "test": e.get("test"),
                    "unit": e.get("unit"),
                    "holm_family": list(res.get("holm_family") or []),
                }
            )
    return out


# ------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", help="run directories (one per model)")
    parser.add_argument(
        "--out",
        default=None,
        help="output directory (default: the run directory if one, else koala_report)",
    )
    parser.add_argument("--rescore", action="store_true", help="score again even if up to date")
    parser.add_argument(
        "--html",
        action="store_true",
        help="also write results.html: one self-contained page (tables, intervals, sortable "
        "columns, paired comparisons, plots, the paper's published figures)",
    )
    add_scoring_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """``koala-bench report``."""
    options = scoring_options(args, "koala-bench report")
    if options is None:
        return 1
    metrics, intervals, judge = options
    try:
        results = collect(
            args.run_dirs,
            args.rescore,
            metrics,
            judge,
            protocol=args.protocol,
            select=args.select,
            intervals=intervals,
        )
    except FileNotFoundError as exc:
        print(f"koala-bench report: {exc}", file=sys.stderr)
        return 1
    out = args.out or (args.run_dirs[0] if len(args.run_dirs) == 1 else "koala_report")
    sig = None
    if len(args.run_dirs) > 1:
        sig = significance(
            args.run_dirs,
            args.protocol,
            args.select,
            intervals["n_resamples"],
            intervals["seed"],
            intervals["confidence"] or 0.95,
        )
    payload = write_report(
        results,
        out,
        args.run_dirs,
        protocol=args.protocol,
        select=args.select,
        significance=sig,
        html=args.html,
    )
    text = (Path(out) / "results.md").read_text(encoding="utf-8")
    print(text.split("## Plots")[0].rstrip())
    pngs = ", ".join(
        str(Path(out) / p) for p in ("pa_qa_segments.png", "clean_vs_noisy.png", "scf.png")
    )
    print(f"\nwrote {Path(out) / 'results.md'}, {Path(out) / 'results.json'} and plots {pngs}")
    if payload.get("html"):
        print(f"leaderboard page: {payload['html']}")
    problem = judge_failures(results, judge)
    if problem:
        print(f"koala-bench report: {problem} (exit status {EXIT_JUDGE})", file=sys.stderr)
        return EXIT_JUDGE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from koala.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m koala.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
