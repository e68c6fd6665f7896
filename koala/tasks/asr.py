"""ASR: Korean speech recognition, scored by the Korean-normalised corpus CER
(:func:`koala.scoring.cer.corpus_cer`): "sum of edits / sum of reference lengths"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from koala.tasks._features import string
from koala.tasks.base import Task, answer_text, interval_options, non_ok, sorted_records


class ASR(Task):
    name = "asr"
    row_mapper = "asr_columns"
    title = "ASR: CER (%) ↓"
    order = 10
    main_metric = "cer"
    higher_is_better = False
    plot_scale = 100.0
    plot_label = "CER (%)"
    ref_fields = ("text",)
    selection_rule = (
        "lowest corpus CER over every planned row (failed requests count as empty "
        "transcripts); ties to the first variant name"
    )

    def columns(self) -> dict[str, Any]:
        return {"text": string()}

    def score(
        self,
        recs: Sequence[Mapping[str, Any]],
        protocol: str,
        ci: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        from koala.scoring.cer import corpus_cer

        recs = sorted_records(recs)
        res = corpus_cer(
            [answer_text(r) for r in recs],
            [r["ref"]["text"] for r in recs],
            protocol=protocol,
            **interval_options(ci),
        )
        out = res if isinstance(res, dict) else res.as_dict()
        out.update(non_ok(recs))
        return {"gen": out}

    def cell(self, c: Mapping[str, Any], g: Mapping[str, Any]) -> str:
        from koala.report_cells import fmt, interval, num

        return fmt(100 * num(g["cer"])) + interval(g, "cer", 100.0, 2)

    def report_notes(self, table: Mapping[str, Any]) -> list[str]:
        for row in table.get("rows", []):
            for cell in row[2:]:
                try:
                    if float(str(cell).split(" ")[0]) > 100:
                        return [
                            "CER counts insertions, so it exceeds 100 % when a transcript is "
                            "longer than its reference (a model that talks instead of "
                            "transcribing)."
                        ]
                except ValueError:
                    continue
        return []


TASK = ASR()
