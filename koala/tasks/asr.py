"""ASR: Korean speech recognition, scored by the Korean-normalised corpus CER
(:func:`koala.scoring.cer.corpus_cer`): "sum of edits / sum of reference lengths".

Beside that CER (the protocol's, the headline figure) each variant also gets the
numeral-aware CER (normalisation ``koala_numerals``, :mod:`koala.numerals`): the same CER after
numbers are read the same way on both sides, so "2018년" against the reference's
"이천 십 팔 년" is no error; and the number of references that hold a number."""

from __future__ import annotations

import math
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

#: the normalisation of the numeral-aware CER shown beside the headline CER
NUMERALS = "koala_numerals"
#: the counts of the numeral-aware CER kept in scores.json (``numerals``)
NUMERALS_COUNTS = (
    "substitutions",
    "deletions",
    "insertions",
    "hits",
    "reference_length",
    "hypothesis_length",
    "normalization",
)


def references_with_numbers(references: Sequence[str]) -> int:
    """How many ``references`` hold a number as ``koala_numerals`` reads them (digits, or a
    spelled number it rewrites into digits)."""
    from koala.normalize import get_normalizer

    norm = get_normalizer(NUMERALS)
    return sum(any(c in "0123456789" for c in text) for text in norm.batch(list(references)))


def _numerals_cell(g: Mapping[str, Any] | None) -> str:
    """The numeral-aware CER (%) of the shown variant with its interval, "—" when the scores
    have none (scored before it existed, or no variant to show)."""
    from koala.report_cells import fmt, interval, num

    value = num((g or {}).get("cer_numerals"))
    if g is None or math.isnan(value):
        return "—"
    return fmt(100 * value) + interval(g, "cer_numerals", 100.0, 2)


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
        """The protocol's CER (``cer``, the headline) and the numeral-aware CER
        (``cer_numerals``, its counts in ``numerals``, its interval in ``cer_numerals_ci``), with
        ``references_with_numbers`` of ``num_utterances``."""
        from koala.scoring.cer import corpus_cer

        recs = sorted_records(recs)
        preds = [answer_text(r) for r in recs]
        refs = [r["ref"]["text"] for r in recs]
        res = corpus_cer(preds, refs, protocol=protocol, **interval_options(ci))
        out = res if isinstance(res, dict) else res.as_dict()
        num = corpus_cer(
            preds, refs, normalization=NUMERALS, protocol=protocol, **interval_options(ci)
        ).as_dict()
        out["cer_numerals"] = num["cer"]
        if "cer_ci" in num:
            out["cer_numerals_ci"] = num["cer_ci"]
        out["numerals"] = {k: num[k] for k in NUMERALS_COUNTS}
        out["references_with_numbers"] = references_with_numbers(refs)
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

    def report_table(
        self, results: Mapping[str, Mapping[str, Any]], configs: Sequence[str]
    ) -> tuple[list[str], list[list[str]]]:
        """The default table (one CER column per model, the headline), then one numeral-aware
        CER column per model and the share of references that hold a number."""
        from koala.report_cells import best_metrics

        header, rows = super().report_table(results, configs)
        models = list(results)
        for row, config in zip(rows, configs, strict=True):
            shown = [
                best_metrics(results[m][config]) if config in results[m] else None for m in models
            ]
            row += [_numerals_cell(g) for g in shown]
            share = next(
                (
                    (g["references_with_numbers"], g["num_utterances"])
                    for g in shown
                    if g and "references_with_numbers" in g and g.get("num_utterances")
                ),
                None,
            )
            row.append(
                "—" if share is None else f"{100 * share[0] / share[1]:.1f} ({share[0]}/{share[1]})"
            )
        header = [*header, *[f"{m}: numerals" for m in models], "refs with a number (%)"]
        return header, rows

    def report_notes(self, table: Mapping[str, Any]) -> list[str]:
        notes = []
        if any(str(h).endswith(": numerals") for h in table.get("header", [])):
            notes.append(
                "Each model's first column is the CER of the protocol (the headline, comparable "
                "with the paper); its *numerals* column is the same CER after numbers are read "
                'the same way on both sides (normalisation `koala_numerals`: "이천 십 팔 년", '
                '"2018년" and "2,018년" are all 2018년; "이 사람" stays text), so a model '
                "that writes digits where Zeroth spells numbers out is not charged for it. "
                "*refs with a number*: the share of references holding a number."
            )
        for row in table.get("rows", []):
            for cell in row[2:]:
                try:
                    if float(str(cell).split(" ")[0]) > 100:
                        notes.append(
                            "CER counts insertions, so it exceeds 100 % when a transcript is "
                            "longer than its reference (a model that talks instead of "
                            "transcribing)."
                        )
                        return notes
                except ValueError:
                    continue
        return notes


TASK = ASR()
