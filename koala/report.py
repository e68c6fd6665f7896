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

Runs whose ``scores.json`` is missing or older than their predictions are scored first. The
figures use the generation-based scores of each model's best variant (the variant chosen per
config by the main metric). Each ``plot_*`` function returns the numbers it drew.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from koala.predictions import PREDICTIONS
from koala.score import (
    MAIN_METRIC,
    SCORES,
    SELECTION_RULES,
    ST_METRICS,
    add_scoring_arguments,
    interval_options,
    judge_options,
    score_run,
    st_metrics_option,
    strict_json,
)

__all__ = [
    "SEGMENTS",
    "TASK_ORDER",
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

SEGMENTS = ("front", "front-middle", "middle-late", "late")
TASK_ORDER = ("asr", "st", "sqa", "sif", "sca_qa", "pa_qa")
TASK_TITLES = {
    "asr": "ASR: CER (%) ↓",
    "st": "Speech translation: BLEU (0-100) / METEOR / BERTScore-F1 (0-1) ↑",
    "sqa": "SQA: accuracy (%) ↑, generation / logit",
    "sif": "Speech instruction following: LLM-judge score (0-100) ↑",
    "sca_qa": "SCA-QA: accuracy (%) per condition, SCF and parametric proportion (%)",
    "pa_qa": "PA-QA: accuracy (%) by evidence segment ↑",
}
# what each task's main metric looks like in the plots
PLOT_METRIC = {
    "asr": ("cer", 100.0, "CER (%)"),
    "st": ("bleu", 1.0, "BLEU"),
    "sqa": ("accuracy", 100.0, "accuracy (%)"),
    "sif": ("score", 1.0, "judge score"),
    "sca_qa": ("scf", 100.0, "SCF (%)"),
    "pa_qa": ("accuracy", 100.0, "accuracy (%)"),
}


# ------------------------------------------------------------------------ loading


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
    options, else scored now."""
    iv = dict(intervals or {"confidence": 0.95, "n_resamples": 1000, "seed": 0})
    scores, preds = run_dir / SCORES, run_dir / PREDICTIONS
    inputs = [preds, *sorted((run_dir / "plan").glob("*.json"))]
    stale = (
        rescore
        or not scores.exists()
        or any(p.exists() and p.stat().st_mtime > scores.stat().st_mtime for p in inputs)
    )
    if not stale:
        old = json.loads(scores.read_text(encoding="utf-8"))
        stored = old.get("scoring", {}).get("intervals") or {}
        same = (
            old.get("protocol") == protocol
            and old.get("selection", {}).get("rule") == (select or protocol)
            and all(stored.get(k) == v for k, v in iv.items() if v is not None)
            and (iv.get("confidence") is not None) == bool(stored)
        )
        if same:
            return old
    return score_run(run_dir, st_metrics, judge, protocol=protocol, select=select, **iv)


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


def _best_metrics(c: Mapping[str, Any], mode: str = "gen") -> Mapping[str, Any] | None:
    b = c.get("best", {}).get(mode)
    if not b:
        return None
    return c["variants"][b["variant"]][mode]


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


# ------------------------------------------------------------------------ plot data


def pa_qa_segment_data(results: Mapping[str, Mapping[str, Any]]) -> dict[str, list[float]]:
    """``{"model (config)": [accuracy in % per segment]}`` for every PA-QA config."""
    data: dict[str, list[float]] = {}
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            if c.get("task") != "pa_qa":
                continue
            m = _best_metrics(c)
            if not m or "segment_accuracy" not in m:
                continue
            data[f"{model} ({config})"] = [
                100.0 * _num(m["segment_accuracy"].get(s)) for s in SEGMENTS
            ]
    return data


def pa_qa_segment_counts(results: Mapping[str, Mapping[str, Any]]) -> dict[str, list[int]]:
    """``{"model (config)": [items per segment]}``: the n behind each point of the PA-QA
    plot (as :func:`pa_qa_segment_data`)."""
    data: dict[str, list[int]] = {}
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            m = _best_metrics(c) if c.get("task") == "pa_qa" else None
            if m and "segment_count" in m:
                data[f"{model} ({config})"] = [int(m["segment_count"].get(s, 0)) for s in SEGMENTS]
    return data


def clean_noisy_data(
    results: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``{task: {set: {model: {"clean": v, "noisy": v}}}}`` (main metric of the best
    generation variant, scaled as in :data:`PLOT_METRIC`) for sets with both variants."""
    data: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for model, configs in results.items():
        by_set: dict[str, dict[str, float]] = {}
        task_of_set: dict[str, str] = {}
        for c in configs.values():
            task = c.get("task")
            m = _best_metrics(c)
            if task not in PLOT_METRIC or not m:
                continue
            metric, scale, _ = PLOT_METRIC[task]
            by_set.setdefault(c["set"], {})[c["noise"]] = scale * _num(m.get(metric))
            task_of_set[c["set"]] = task
        for s, vals in by_set.items():
            if "clean" in vals and "noisy" in vals:
                data.setdefault(task_of_set[s], {}).setdefault(s, {})[model] = {
                    "clean": vals["clean"],
                    "noisy": vals["noisy"],
                }
    return data


def scf_data(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{"model | config": {"scf", "parametric", "other" (fractions), "n"}}`` per SCA-QA
    config (best generation variant by SCF)."""
    data: dict[str, dict[str, float]] = {}
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            if c.get("task") != "sca_qa":
                continue
            m = _best_metrics(c)
            if not m or "scf" not in m:
                continue
            data[f"{model} | {config}"] = {
                "scf": _num(m["scf"]),
                "parametric": _num(m["parametric_proportion"]),
                "other": _num(m["other_proportion"]),
                "n": float(m.get("num_text_correct", 0)),
            }
    return data


# ------------------------------------------------------------------------ figures


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_pa_qa_segments(
    data: Mapping[str, Sequence[float]], counts: Mapping[str, Sequence[int]] | None = None
) -> Any:
    """One line per model and PA-QA config over the four segments; with ``counts``, the
    number of items behind each point is written under it (``n=2``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = list(range(len(SEGMENTS)))
    for label, ys in data.items():
        style = "--" if "_noisy" in label else "-"
        (line,) = ax.plot(x, list(ys), style, marker="o", label=label)
        for xi, yi, n in zip(x, ys, (counts or {}).get(label, ()), strict=False):
            if not math.isnan(yi):
                ax.annotate(
                    f"n={n}",
                    (xi, yi),
                    textcoords="offset points",
                    xytext=(0, -12),
                    ha="center",
                    fontsize=7,
                    color=line.get_color(),
                    gid=f"n|{label}|{SEGMENTS[xi]}",
                )
    ax.set_xticks(x, SEGMENTS)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("position of the evidence in the passage")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("PA-QA accuracy by evidence segment")
    ax.grid(alpha=0.3)
    if data:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no PA-QA scores", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def figure_clean_noisy(data: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> Any:
    """One panel per task; per set, a clean and a noisy (hatched) bar per model. Bars carry
    ``gid = "task|set|model|noise"``."""
    plt = _plt()
    tasks = [t for t in TASK_ORDER if t in data] or ["none"]
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
        ax.set_ylabel(PLOT_METRIC[task][2])
        ax.set_title(f"{task}: clean vs noisy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_scf(data: Mapping[str, Mapping[str, float]]) -> Any:
    """Stacked horizontal bars: SCF, parametric proportion and the rest, per model and set.
    Bars carry ``gid = "label|part"``."""
    plt = _plt()
    labels = list(data)
    fig, ax = plt.subplots(figsize=(8, max(2.8, 0.45 * len(labels) + 1.6)))
    parts = (
        ("scf", "follows the speech (SCF)", "#2c7fb8"),
        ("parametric", "keeps its own answer (parametric)", "#f03b20"),
        ("other", "neither", "#bdbdbd"),
    )
    for i, label in enumerate(labels):
        left = 0.0
        for key, name, color in parts:
            v = data[label][key]
            v = 0.0 if math.isnan(v) else 100.0 * v
            (bar,) = ax.barh(i, v, left=left, color=color, label=name if i == 0 else None)
            bar.set_gid(f"{label}|{key}")
            if v >= 8:
                ax.text(left + v / 2, i, f"{v:.0f}", ha="center", va="center", fontsize=7)
            left += v
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the items answered correctly from text alone")
    ax.set_title("SCA-QA: speech context faithfulness")
    if labels:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=3)
    else:
        ax.text(0.5, 0.5, "no SCA-QA scores", ha="center", transform=ax.transAxes)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def _save(fig: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
    _plt().close(fig)


def plot_pa_qa_segments(results: Mapping[str, Mapping[str, Any]], path: str | Path) -> dict:
    data = pa_qa_segment_data(results)
    _save(figure_pa_qa_segments(data, pa_qa_segment_counts(results)), Path(path))
    return data


def plot_clean_noisy(results: Mapping[str, Mapping[str, Any]], path: str | Path) -> dict:
    data = clean_noisy_data(results)
    _save(figure_clean_noisy(data), Path(path))
    return data


def plot_scf(results: Mapping[str, Mapping[str, Any]], path: str | Path) -> dict:
    data = scf_data(results)
    _save(figure_scf(data), Path(path))
    return data


# ------------------------------------------------------------------------ tables


def _pct(x: Any) -> str:
    v = _num(x)
    return "—" if math.isnan(v) else f"{100 * v:.1f}"


def _fmt(x: Any, digits: int = 2) -> str:
    v = _num(x)
    return "—" if math.isnan(v) else f"{v:.{digits}f}"


def _interval(g: Mapping[str, Any], key: str, scale: float = 1.0, digits: int = 1) -> str:
    """`` [low, high]`` of ``g[key + "_ci"]`` (a bootstrap interval), scaled; empty when the
    interval is absent or undefined."""
    ci = g.get(f"{key}_ci")
    if not isinstance(ci, Mapping):
        return ""
    low, high = _num(ci.get("low")), _num(ci.get("high"))
    if math.isnan(low) or math.isnan(high):
        return ""
    return f" [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def _pct_ci(g: Mapping[str, Any], key: str) -> str:
    """A share in % with its interval: ``75.0 [61.2, 86.1]``."""
    return _pct(g.get(key)) + _interval(g, key, 100.0)


def _spread(c: Mapping[str, Any], scale: float) -> str:
    """How much the choice of prompt variant matters: ``4 variants: mean 70.1, range 8.2``."""
    sens = (c.get("sensitivity") or {}).get("gen")
    if not sens or sens.get("variants", 0) < 2:
        return ""
    return (
        f"{sens['variants']} variants: mean {scale * _num(sens['mean']):.1f}, "
        f"range {scale * _num(sens['range']):.1f}"
    )


def _shown(c: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    """The variant a table row shows: the best generation variant, else (no defined main
    metric, e.g. SCF with no text-correct item) the first variant, marked with ``*``."""
    best = c.get("best", {}).get("gen")
    if best:
        return best["variant"], c["variants"][best["variant"]]["gen"]
    for name, modes in sorted(c.get("variants", {}).items()):
        if "gen" in modes:
            return f"{name}*", modes["gen"]
    return "", None


def _note(c: Mapping[str, Any]) -> str:
    if c.get("status") == "failed":
        return f"failed (all {c['counts']['failed']} requests failed)"
    if c.get("status") == "not run":
        return "not run (no request recorded)"
    notes = [v.get("gen", {}).get("note") for v in c.get("variants", {}).values()]
    note = next((n for n in notes if n), c.get("note") or "not scored")
    return f"n/a ({note.removeprefix('not scored: ')})"


def _caveat(c: Mapping[str, Any], g: Mapping[str, Any] | None = None) -> str:
    """What a cell must say beside its number: a partial config (answered of planned) and the
    requests of the shown variant that failed or were abstained."""
    parts = []
    cov = c.get("coverage") or {}
    if c.get("status") == "partial":
        parts.append(f"partial: {cov.get('records', 0)}/{cov.get('planned', 0)} requests")
    cnt = c.get("counts") or {}
    if cnt.get("truncated"):
        parts.append(f"{cnt['truncated']}/{cnt.get('records')} clips cut by the model's limit")
    if cnt.get("records") and cnt.get("shared_answer") == cnt.get("records"):
        parts.append("one answer for every variant: the model ignores the prompt")
    if g:
        task = c.get("task")
        spread = _spread(c, PLOT_METRIC[task][1]) if task in PLOT_METRIC else ""
        if spread:
            parts.append(spread)
        shown = (c.get("best", {}).get("gen") or {}).get("variant")
        n = (cov.get("variants") or {}).get(shown, {}).get("records") if shown else None
        for what in ("failed", "abstained"):
            k = g.get(what)
            if isinstance(k, int) and k:
                parts.append(f"{k}/{n} {what}" if n else f"{k} {what}")
    return f" ({'; '.join(parts)})" if parts else ""


def _cell(task: str, c: Mapping[str, Any] | None) -> str:
    if c is None:
        return ""
    g = _best_metrics(c, "gen")
    if g is None:
        return _note(c) + _caveat(c)
    if task == "asr":
        text = _fmt(100 * _num(g["cer"])) + _interval(g, "cer", 100.0, 2)
    elif task == "st":
        text = " / ".join(
            _fmt(g.get(k)) + (_interval(g, k, 1.0, 2) if k == "bleu" else "") if k in g else "—"
            for k in ("bleu", "meteor", "bertscore_f1")
        )
    elif task == "sif":
        text = _fmt(g.get("score"), 1) + _interval(g, "score")
    else:
        lg = _best_metrics(c, "logit")
        logit = _pct(lg["accuracy"]) if lg else "—"
        text = f"{_pct_ci(g, 'accuracy')} / {logit} (n={g.get('total')})"
    return text + _caveat(c, g)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    pad = len(header)
    out += ["| " + " | ".join(str(x) for x in [*r, *[""] * (pad - len(r))]) + " |" for r in rows]
    return out


def _model_rows(
    results: Mapping[str, Mapping[str, Any]],
    configs: Sequence[str],
    needed: str,
    cells: Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]],
) -> list[list[str]]:
    """One row per (config, model): set, model, shown variant, then ``cells(c, metrics)``, or
    the reason it is not scored when the shown metrics lack ``needed``."""
    rows = []
    for config in configs:
        for model, configs_of_model in results.items():
            c = configs_of_model.get(config)
            if c is None:
                continue
            variant, g = _shown(c)
            if g is None or needed not in g:
                rows.append([config, model, variant, _note(c) + _caveat(c)])
                continue
            values = cells(c, g)
            values[0] += _caveat(c, g)
            rows.append([config, model, variant, *values])
    return rows


def _tables(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    models = list(results)
    configs_by_task: dict[str, list[str]] = {}
    for configs in results.values():
        for config, c in configs.items():
            configs_by_task.setdefault(c["task"], [])
            if config not in configs_by_task[c["task"]]:
                configs_by_task[c["task"]].append(config)
    tables: dict[str, dict[str, Any]] = {}
    for task in TASK_ORDER:
        configs = sorted(configs_by_task.get(task, []))
        if not configs:
            continue
        if task == "sca_qa":
            header = [
                "set",
                "model",
                "variant",
                "text",
                "counterfactual",
                "original",
                "SCF",
                "parametric",
                "text-correct",
            ]
            rows = _model_rows(
                results,
                configs,
                "text_accuracy",
                lambda c, g: [
                    _pct(g["text_accuracy"]),
                    _pct(g["counterfactual_accuracy"]),
                    _pct(g.get("original_accuracy")),
                    _pct_ci(g, "scf"),
                    _pct_ci(g, "parametric_proportion"),
                    f"{g['num_text_correct']}/{g['total']}",
                ],
            )
        elif task == "pa_qa":
            header = [
                "set",
                "model",
                "variant",
                "overall",
                *SEGMENTS,
                "logit overall",
                "untruncated overall",
            ]

            def pa_cells(c: Mapping[str, Any], g: Mapping[str, Any]) -> list[str]:
                lg = _best_metrics(c, "logit")
                return [
                    f"{_pct_ci(g, 'accuracy')} (n={g.get('total')})",
                    *[
                        f"{_pct(g['segment_accuracy'][s])}"
                        f"{_segment_interval(g, s)} (n={g['segment_count'][s]})"
                        for s in SEGMENTS
                    ],
                    _pct(lg["accuracy"]) if lg else "—",
                    (
                        f"{_pct(g['untruncated'].get('accuracy'))} "
                        f"(n={g['untruncated'].get('total', 0)})"
                        if isinstance(g.get("untruncated"), Mapping)
                        else "—"
                    ),
                ]

            rows = _model_rows(results, configs, "segment_accuracy", pa_cells)
        else:
            header = ["set", "noise", *models]
            rows = [
                [
                    config.removesuffix("_noisy"),
                    "noisy" if config.endswith("_noisy") else "clean",
                    *[_cell(task, results[m].get(config)) for m in models],
                ]
                for config in configs
            ]
        tables[task] = {"title": TASK_TITLES[task], "header": header, "rows": rows}
    return tables


def _segment_interval(g: Mapping[str, Any], segment: str) -> str:
    cis = g.get("segment_accuracy_ci")
    if not isinstance(cis, Mapping) or not isinstance(cis.get(segment), Mapping):
        return ""
    return _interval({"x_ci": cis[segment]}, "x", 100.0)


def _cer_above_100(table: Mapping[str, Any] | None) -> bool:
    for row in (table or {}).get("rows", []):
        for cell in row[2:]:
            try:
                if float(str(cell).split(" ")[0]) > 100:
                    return True
            except ValueError:
                continue
    return False


def _counts_rows(results: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            cnt = c.get("counts", {})
            cov = c.get("coverage", {})
            g = _best_metrics(c, "gen") or {}
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
            if c.get("task") not in MAIN_METRIC:
                continue
            metric = MAIN_METRIC[c["task"]][0]
            for variant, modes in c["variants"].items():
                for mode, m in modes.items():
                    v = m.get(metric)
                    shown = m.get("note", "not scored") if v is None else _fmt(v, 4)
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
    plots = {
        "pa_qa_segments": plot_pa_qa_segments(results, out_dir / "pa_qa_segments.png"),
        "clean_vs_noisy": plot_clean_noisy(results, out_dir / "clean_vs_noisy.png"),
        "scf": plot_scf(results, out_dir / "scf.png"),
    }
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
    for task in TASK_ORDER:
        if task not in tables:
            continue
        t = tables[task]
        md += [f"## {t['title']}", "", *_table(t["header"], t["rows"]), ""]
        md += [f"Variant shown: {SELECTION_RULES[select][task]}.", ""]
    if _cer_above_100(tables.get("asr")):
        md += [
            "CER counts insertions, so it exceeds 100 % when a transcript is longer than its "
            "reference (a model that talks instead of transcribing).",
            "",
        ]
    md += ["## Plots", ""]
    why_empty = {
        "pa_qa_segments": "no PA-QA config was scored",
        "clean_vs_noisy": "no set was scored both clean and noisy",
        "scf": "no SCA-QA config has a defined SCF (no item answered correctly from text alone)",
    }
    titles = {"pa_qa_segments": "PA-QA by segment", "clean_vs_noisy": "clean vs noisy"}
    for name, data in plots.items():
        if data:
            md += [f"![{titles.get(name, name.upper())}]({name}.png)", ""]
        else:
            md += [f"No {titles.get(name, name.upper())} plot: {why_empty[name]}.", ""]
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
            ["config", "A", "B", "metric", "A - B", "interval", "p", "p (Holm)"],
            [
                [
                    config,
                    p["a"],
                    p["b"],
                    p["metric"],
                    _fmt(p["difference"], 4),
                    f"[{_fmt(p['low'], 4)}, {_fmt(p['high'], 4)}]",
                    _fmt(p["p_value"], 4),
                    _fmt(p.get("p_holm"), 4),
                ]
                for config, entry in sorted(significance.items())
                for p in entry["pairs"]
            ],
        ), "", "Paired over the same items (PA-QA passages), exact McNemar for accuracy, "
           "paired bootstrap otherwise; Holm-corrected over the configs of each pair of runs.",
           ""]  # fmt: skip
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
        "selection": {"rule": select, "per_task": SELECTION_RULES[select]},
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
) -> dict[str, Any]:
    """Paired comparisons of every two runs (:func:`koala.compare.compare_runs`), as
    ``{config: {"models": [...], "pairs": [{"a", "b", "metric", "difference", "low",
    "high", "p_value", "p_holm"}]}}``; configs a pair could not be compared on are left out."""
    from itertools import combinations

    from koala.compare import compare_runs

    out: dict[str, Any] = {}
    for ra, rb in combinations(run_dirs, 2):
        res = compare_runs(
            ra, rb, protocol=protocol, select=select, n_resamples=n_resamples, seed=seed
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
                    "p_value": e["p_value"],
                    "p_holm": e.get("p_holm"),
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
    metrics = st_metrics_option(args.st_metrics, "koala-bench report")
    if metrics is None:
        return 1
    try:
        results = collect(
            args.run_dirs,
            args.rescore,
            metrics,
            judge_options(args),
            protocol=args.protocol,
            select=args.select,
            intervals=interval_options(args),
        )
    except FileNotFoundError as exc:
        print(f"koala-bench report: {exc}", file=sys.stderr)
        return 1
    out = args.out or (args.run_dirs[0] if len(args.run_dirs) == 1 else "koala_report")
    sig = None
    if len(args.run_dirs) > 1:
        iv = interval_options(args)
        sig = significance(args.run_dirs, args.protocol, args.select, iv["n_resamples"], iv["seed"])
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m koala.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
