"""PA-QA: position-aware question answering over long speech.

Accuracy by the segment of the passage that holds the evidence (:mod:`koala.scoring.segments`:
front [0, .25), front-middle [.25, .5), middle-late [.5, .75), late [.75, 1]; "an item with
evidence in several segments counts once in each"). The questions of one passage share its
audio, so intervals resample passages; clips longer than the model's input limit are flagged
``truncated`` and the figures are also given over the untruncated rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from koala.constants import SEGMENTS
from koala.tasks._features import float64, int32, list_of, string
from koala.tasks.base import TaskPlot, interval_options, sorted_records
from koala.tasks.choice import ChoiceTask, mc_columns, mc_counts, mc_inputs

__all__ = [
    "TASK",
    "figure_pa_qa_segments",
    "pa_qa_segment_counts",
    "pa_qa_segment_data",
]


class PAQA(ChoiceTask):
    name = "pa_qa"
    row_mapper = "pa_qa_columns"
    title = "PA-QA: accuracy (%) by evidence segment ↑"
    order = 60
    main_metric = "accuracy"
    ref_fields = (
        *ChoiceTask.ref_fields,
        "evidence_positions",
        "evidence_segments",
        "passage",  # its questions are resampled together for the intervals
    )
    selection_rule = (
        "highest overall accuracy over every planned row (failed, abstained and unparsed "
        "answers count wrong); ties to the first variant name"
    )
    # the questions of one passage share its clip: compared by passage (the clustered form of
    # McNemar's test, a permutation test that swaps A and B within whole passages), never by
    # McNemar over questions, which treats them as independent
    paired_unit = "passage"
    paired_test = "permutation"

    def columns(self) -> dict[str, Any]:
        return {
            "passage": string(),
            **mc_columns(),
            "evidence_sentences": list_of(string()),
            "evidence_positions": list_of(float64()),
            "evidence_segments": list_of(string()),
            "evidence_char_spans": list_of(list_of(int32())),
            "source_answer": string(),
            "source_choices": string(),
        }

    def score_mode(
        self,
        recs: Sequence[Mapping[str, Any]],
        mode: str,
        protocol: str,
        ci: Mapping[str, Any] | None = None,
        split_truncated: bool = True,
    ) -> dict[str, Any]:
        """PA-QA by segment. When some clips were longer than the model's input limit
        (records flagged ``truncated``: the model may never have heard the late segment), the
        result also gives the same figures over the untruncated rows alone (``untruncated``)."""
        from koala.scoring.segments import segment_accuracy

        recs = sorted_records(recs)
        n_cut = sum(bool(r.get("truncated")) for r in recs)
        if split_truncated and n_cut:
            whole = self.score_mode(recs, mode, protocol, ci, split_truncated=False)
            kept = [r for r in recs if not r.get("truncated")]
            whole["truncated"] = n_cut
            whole["untruncated"] = (
                self.score_mode(kept, mode, protocol, ci, split_truncated=False)
                if kept
                else {"note": "not scored: every clip was longer than the model's input limit"}
            )
            return whole
        preds, kw, notes = mc_inputs(recs, mode, protocol)
        refs = [r["ref"] for r in recs]
        if all(ref.get("evidence_positions") is not None for ref in refs):
            kw["positions"] = [ref["evidence_positions"] for ref in refs]
        else:
            kw["segments"] = [ref.get("evidence_segments") or [] for ref in refs]
        try:
            # the questions of one passage share its audio: resample passages, not questions
            passages = [r["ref"].get("passage") or str(r["id"]) for r in recs]
            out = segment_accuracy(preds, protocol=protocol, **kw, **interval_options(ci, passages))
        except (TypeError, ValueError) as exc:
            return {"note": f"not scored: {exc}"}
        if notes:
            out["notes"] = notes
        return mc_counts(out, recs, preds, mode)

    def paired_clusters(self, recs: Sequence[Mapping[str, Any]], ids: Sequence[str]) -> list[Any]:
        """The passage of each item (the item itself when a record names none)."""
        by_id = {str(r["id"]): r for r in recs}
        return [by_id[i]["ref"].get("passage") or i for i in ids]

    def report_table(
        self, results: Mapping[str, Mapping[str, Any]], configs: Sequence[str]
    ) -> tuple[list[str], list[list[str]]]:
        from koala.report_cells import logit_metrics, logit_text, model_rows, pct, pct_ci

        def cells(c: Mapping[str, Any], g: Mapping[str, Any]) -> list[str]:
            lg = logit_metrics(c)
            return [
                f"{pct_ci(g, 'accuracy')} (n={g.get('total')})",
                *[
                    f"{pct(g['segment_accuracy'][s])}"
                    f"{_segment_interval(g, s)} (n={g['segment_count'][s]})"
                    for s in SEGMENTS
                ],
                logit_text(lg, lg.get("total")) if lg else "—",
                (
                    f"{pct(g['untruncated'].get('accuracy'))} "
                    f"(n={g['untruncated'].get('total', 0)})"
                    if isinstance(g.get("untruncated"), Mapping)
                    else "—"
                ),
            ]

        header = [
            "set",
            "model",
            "variant",
            "overall",
            *SEGMENTS,
            "logit overall",
            "untruncated overall",
        ]
        return header, model_rows(results, configs, "segment_accuracy", cells)

    def plots(self) -> Sequence[TaskPlot]:
        return (
            TaskPlot(
                "pa_qa_segments",
                "PA-QA by segment",
                pa_qa_segment_data,
                lambda results: figure_pa_qa_segments(
                    pa_qa_segment_data(results), pa_qa_segment_counts(results)
                ),
                "no PA-QA config was scored",
                order=0,
            ),
        )


def _segment_interval(g: Mapping[str, Any], segment: str) -> str:
    from koala.report_cells import interval

    cis = g.get("segment_accuracy_ci")
    if not isinstance(cis, Mapping) or not isinstance(cis.get(segment), Mapping):
        return ""
    return interval({"x_ci": cis[segment]}, "x", 100.0)


def pa_qa_segment_data(results: Mapping[str, Mapping[str, Any]]) -> dict[str, list[float]]:
    """``{"model (config)": [accuracy in % per segment]}`` for every PA-QA config."""
    from koala.report_cells import best_metrics, num

    data: dict[str, list[float]] = {}
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            if c.get("task") != "pa_qa":
                continue
            m = best_metrics(c)
            if not m or "segment_accuracy" not in m:
                continue
            data[f"{model} ({config})"] = [
                100.0 * num(m["segment_accuracy"].get(s)) for s in SEGMENTS
            ]
    return data


def pa_qa_segment_counts(results: Mapping[str, Mapping[str, Any]]) -> dict[str, list[int]]:
    """``{"model (config)": [items per segment]}``: the n behind each point of the PA-QA
    plot (as :func:`pa_qa_segment_data`)."""
    from koala.report_cells import best_metrics

    data: dict[str, list[int]] = {}
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            m = best_metrics(c) if c.get("task") == "pa_qa" else None
            if m and "segment_count" in m:
                data[f"{model} ({config})"] = [int(m["segment_count"].get(s, 0)) for s in SEGMENTS]
    return data


def figure_pa_qa_segments(
    data: Mapping[str, Sequence[float]], counts: Mapping[str, Sequence[int]] | None = None
) -> Any:
    """One line per model and PA-QA config over the four segments; with ``counts``, the
    number of items behind each point is written under it (``n=2``)."""
    from koala.plots import plt as _plt

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


TASK = PAQA()
