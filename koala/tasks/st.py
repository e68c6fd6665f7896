"""ST: English-to-Korean speech translation of TED talk segments, scored by BLEU, METEOR and
BERTScore (:mod:`koala.scoring.translation`); BLEU intervals resample whole talks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from koala.tasks._features import float64, string
from koala.tasks.base import Task, answer_text, interval_options, non_ok, sorted_records

ST_METRICS = ("bleu", "meteor", "bertscore")


class ST(Task):
    name = "st"
    row_mapper = "st_columns"
    title = "Speech translation: BLEU (0-100) / METEOR / BERTScore-F1 (0-1) ↑"
    order = 20
    main_metric = "bleu"
    plot_scale = 1.0
    plot_label = "BLEU"
    ref_fields = ("reference", "source_text", "talk_id")
    segments_of_recordings = True
    selection_rule = (
        "highest BLEU over every planned row (failed requests count as empty translations); "
        "ties to the first variant name"
    )

    def columns(self) -> dict[str, Any]:
        return {
            "source_text": string(),
            "reference": string(),
            "talk_id": string(),
            "offset": float64(),
            "segment_duration": float64(),
        }

    def score(
        self,
        recs: Sequence[Mapping[str, Any]],
        protocol: str,
        ci: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        metrics = options.get("st_metrics") or ST_METRICS
        recs = sorted_records(recs)
        try:
            from koala.scoring.translation import translation_scores
        except ImportError as exc:
            return {
                "gen": {"note": f"not scored: module missing (koala.scoring.translation: {exc})"}
            }
        preds = [answer_text(r) for r in recs]
        refs = [r["ref"]["reference"] for r in recs]
        out: dict[str, Any] = {}
        notes = []
        for m in metrics:
            try:
                # segments of one TED talk share a speaker and a topic: resample talks
                talks = [str(r["ref"].get("talk_id") or r["id"]) for r in recs]
                extra = interval_options(ci, talks) if m == "bleu" else {}
                out.update(translation_scores(preds, refs, metrics=[m], protocol=protocol, **extra))
            except Exception as exc:  # e.g. the BERTScore model is not available offline
                notes.append(f"{m}: not scored: {type(exc).__name__}: {str(exc)[:300]}")
        if notes:
            out["notes"] = notes
        if not any(k in out for k in metrics):
            out["note"] = "not scored: " + "; ".join(notes)
        out.update(non_ok(recs))
        return {"gen": out}

    def cell(self, c: Mapping[str, Any], g: Mapping[str, Any]) -> str:
        from koala.report_cells import fmt, interval

        return " / ".join(
            fmt(g.get(k)) + (interval(g, k, 1.0, 2) if k == "bleu" else "") if k in g else "—"
            for k in ("bleu", "meteor", "bertscore_f1")
        )


TASK = ST()
