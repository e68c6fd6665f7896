"""ST: English-to-Korean speech translation of TED talk segments, scored by BLEU, METEOR and
BERTScore (:mod:`koala.scoring.translation`); BLEU intervals resample whole talks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from koala.tasks._features import float64, string
from koala.tasks.base import (
    PairedData,
    Task,
    answer_text,
    interval_options,
    non_ok,
    sorted_records,
)

ST_METRICS = ("bleu", "meteor", "bertscore")
ST_PAIRED_NOTE = (
    "BLEU only: METEOR and BERTScore are not compared (BERTScore needs its model, "
    "xlm-roberta-large)"
)


def _subset_key(
    protocol: str, metrics: Sequence[str], preds: Sequence[str], refs: Sequence[str]
) -> tuple[Any, ...]:
    return (protocol, tuple(metrics), tuple(preds), tuple(refs))


def _subset_groups(recs: Sequence[Mapping[str, Any]]) -> dict[str, list[int]] | None:
    """Positions of the records per subset, when they span two subsets or more."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        if r.get("subset"):
            groups.setdefault(r["subset"], []).append(i)
    return groups if len(groups) > 1 else None


def _finish(
    out: dict[str, Any],
    notes: list[str],
    metrics: Sequence[str],
    recs: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The figures with the notes of metrics that failed and the failed/abstained counts."""
    if notes:
        out["notes"] = notes
    if not any(k in out for k in metrics):
        out["note"] = "not scored: " + "; ".join(notes)
    out.update(non_ok(recs))
    return out


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
        """BLEU, METEOR and BERTScore of one variant's records (failed and abstained requests
        count as empty translations), with BLEU intervals by talk when ``ci`` is given.

        A union config is scored whole and then per subset (:func:`koala.score.score_config`).
        When ``recs`` span several subsets and ``options["memo"]`` is a dict (one per
        ``score_config`` call), each subset's figures are aggregated here from the same
        per-sentence work (``translation_scores(groups=...)``) and kept in it until the call
        for that subset (same protocol, metrics, predictions and references, no ``ci``) takes
        them, so the metrics run once per variant, not once per variant and subset. A subset
        gets no interval, as before; a metric that failed leaves its subsets to be scored on
        their own.
        """
        metrics = tuple(options.get("st_metrics") or ST_METRICS)
        recs = sorted_records(recs)
        try:
            from koala.scoring.translation import translation_scores
        except ImportError as exc:
            return {
                "gen": {"note": f"not scored: module missing (koala.scoring.translation: {exc})"}
            }
        preds = [answer_text(r) for r in recs]
        refs = [r["ref"]["reference"] for r in recs]
        memo = options.get("memo")
        if ci is None and isinstance(memo, dict):
            done = memo.pop(_subset_key(protocol, metrics, preds, refs), None)
            if done is not None:
                return {"gen": _finish(dict(done), [], metrics, recs)}
        groups = _subset_groups(recs) if isinstance(memo, dict) else None
        by_group: dict[Any, dict[str, Any]] = {s: {} for s in groups or {}}
        out: dict[str, Any] = {}
        notes = []
        for m in metrics:
            try:
                # segments of one TED talk share a speaker and a topic: resample talks
                talks = [str(r["ref"].get("talk_id") or r["id"]) for r in recs]
                extra = interval_options(ci, talks) if m == "bleu" else {}
                res = translation_scores(
                    preds, refs, metrics=[m], protocol=protocol, groups=groups, **extra
                )
                for s, part in res.pop("groups", {}).items():
                    by_group[s].update(part)
                out.update(res)
            except Exception as exc:  # e.g. the BERTScore model is not available offline
                notes.append(f"{m}: not scored: {type(exc).__name__}: {str(exc)[:300]}")
        if groups and not notes:
            for s, idx in groups.items():
                key = _subset_key(
                    protocol, metrics, [preds[i] for i in idx], [refs[i] for i in idx]
                )
                memo[key] = by_group[s]
        return {"gen": _finish(out, notes, metrics, recs)}

    # the segments of one TED talk share a speaker and a topic: compared by talk
    paired_unit = "talk"
    paired_test = "permutation"

    def paired(
        self,
        a: Sequence[Mapping[str, Any]],
        b: Sequence[Mapping[str, Any]],
        protocol: str,
        context: Any = None,
    ) -> PairedData:
        """Corpus BLEU (0-100) exactly as ``koala-bench score`` computes it under the protocol
        (:func:`koala.scoring.translation.corpus_bleu`): per segment its sacreBLEU sufficient
        statistics (matching and total 1- to 4-grams, system and reference length), additive,
        so every resample and swap of talks scores its summed statistics."""
        import numpy as np

        from koala.scoring.translation import BLEUStats, corpus_bleu

        def columns(recs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
            out = {}
            for r in recs:
                st = corpus_bleu([answer_text(r)], [r["ref"]["reference"]], protocol=protocol)
                s = st.stats
                out[str(r["id"])] = np.array([*s.counts, *s.totals, s.sys_len, s.ref_len], float)
            return out

        def score(sums: Any) -> Any:
            c = np.rint(sums).astype(np.int64)
            return np.array(
                [BLEUStats(tuple(r[0:4]), tuple(r[4:8]), int(r[8]), int(r[9])).score for r in c]
            )

        ca, cb = columns(a), columns(b)
        ids = sorted(set(ca) & set(cb))
        by_id = {str(r["id"]): r for r in a}
        talks = [str(by_id[i]["ref"].get("talk_id") or i) for i in ids]
        xa = np.array([ca[i] for i in ids]).reshape(len(ids), 10)
        xb = np.array([cb[i] for i in ids]).reshape(len(ids), 10)
        return PairedData(
            "bleu",
            xa,
            xb,
            score,
            self.paired_unit,
            talks,
            self.paired_test,
            {"note": ST_PAIRED_NOTE},
        )

    def cell(self, c: Mapping[str, Any], g: Mapping[str, Any]) -> str:
        from koala.report_cells import fmt, interval

        return " / ".join(
            fmt(g.get(k)) + (interval(g, k, 1.0, 2) if k == "bleu" else "") if k in g else "—"
            for k in ("bleu", "meteor", "bertscore_f1")
        )


TASK = ST()
