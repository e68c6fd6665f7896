"""ASR: Korean speech recognition, scored by the Korean-normalised corpus CER
(:func:`koala.scoring.cer.corpus_cer`): "sum of edits / sum of reference lengths"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from koala.tasks._features import string
from koala.tasks.base import (
    PairedData,
    Task,
    answer_text,
    interval_options,
    non_ok,
    sorted_records,
)


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

    # utterances stand alone; CER is a corpus ratio: the paired permutation test over items
    paired_unit = "item"
    paired_test = "permutation"

    def paired(
        self,
        a: Sequence[Mapping[str, Any]],
        b: Sequence[Mapping[str, Any]],
        protocol: str,
        context: Any = None,
    ) -> PairedData:
        """Corpus CER: per utterance (edits, reference length) under the protocol's
        normalisation; the figure is the ratio of the sums ("sum of edits / sum of reference
        lengths"), recomputed on every resample and swap. A draw with no reference character
        follows the protocol's corpus rule (:meth:`koala.scoring.cer.CERStats.score`)."""
        import numpy as np

        from koala.scoring.cer import corpus_cer

        def columns(recs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
            out = {}
            for r in recs:
                st = corpus_cer([answer_text(r)], [r["ref"]["text"]], protocol=protocol).stats
                out[str(r["id"])] = (st.edits, st.reference_length)
            return out

        ca, cb = columns(a), columns(b)
        ids = sorted(set(ca) & set(cb))
        published = protocol == "published"

        def score(sums: Any) -> Any:
            ed, ref = sums[:, 0], sums[:, 1]
            empty = np.zeros(len(ed)) if published else (ed > 0).astype(float)
            return np.where(ref > 0, ed / np.where(ref > 0, ref, 1), empty)

        xa = np.array([ca[i] for i in ids], dtype=float).reshape(len(ids), 2)
        xb = np.array([cb[i] for i in ids], dtype=float).reshape(len(ids), 2)
        return PairedData("cer", xa, xb, score, self.paired_unit, test=self.paired_test)

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
