"""SCA-QA: does the model follow counterfactual speech or its own parametric knowledge?

Each row is asked in three conditions: the question alone (``text``: a 1 s silent clip or no
audio), with the counterfactual speech (``counterfactual``) and, where published, with the
original speech (``original``). Speech Context Faithfulness (:mod:`koala.scoring.scf`): "among
the items the model answers correctly from text alone, the share whose answer follows the
counterfactual speech". Under the published protocol the choices are shown as (A)-(D) ("the
choices are shown as (A)-(D) (not numbers)", SCA-QA/evaluate_with_original.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from koala.tasks._features import audio, string
from koala.tasks.base import (
    PairedData,
    TaskPlot,
    answer_text,
    interval_options,
    label_logprobs,
    non_ok,
    published_fields,
    ratio_of_sums,
    shown_gold,
    value_of,
)
from koala.tasks.choice import (
    MC_REF_FIELDS,
    ChoiceTask,
    logit_unscored,
    mc_columns,
    mc_outcomes,
    no_logprobs_counts,
)

__all__ = ["SCA_MIN_TEXT_CORRECT_SHARE", "TASK", "figure_scf", "scf_data"]

# Under the koala rule a variant is eligible only when it answers at least this share of the
# best variant's text-correct count correctly from text alone.
SCA_MIN_TEXT_CORRECT_SHARE = 0.5
CONDITIONS = ("text", "counterfactual", "original")


class SCAQA(ChoiceTask):
    name = "sca_qa"
    row_mapper = "sca_qa_columns"
    title = "SCA-QA: accuracy (%) per condition, SCF and parametric proportion (%)"
    order = 50
    main_metric = "scf"
    plot_label = "SCF (%)"
    conditions = CONDITIONS
    audio_columns: ClassVar[Mapping[str, str | None]] = {
        "text": None,
        "counterfactual": "audio",
        "original": "original_audio",
    }
    optional_conditions = frozenset({"original"})  # not published for every row
    ref_fields = (
        *MC_REF_FIELDS,
        "counterfactual_answer",
        "domain",
        "source_answer",
        "source_counterfactual_answer",
    )
    selection_rule = (
        "highest mean accuracy of the conditions (text, counterfactual, original), each over "
        "every row, among the variants that answer at least "
        f"{SCA_MIN_TEXT_CORRECT_SHARE:.0%} as many items correctly from text alone as the best "
        "variant does (SCF is a ratio over the text-correct items: choosing by it would reward "
        "a variant that shrinks its own denominator); ties to the first variant name"
    )

    def columns(self) -> dict[str, Any]:
        return {
            **mc_columns(),
            "counterfactual_answer": string(),
            "context": string(),
            "counterfactual_context": string(),
            "keyword": string(),
            "counterfactual_keyword": string(),
            "domain": string(),
            "original_audio": audio(),
            "source_answer": string(),
            "source_counterfactual_answer": string(),
        }

    def shown_labels(self, row: Mapping[str, Any], protocol: str = "koala") -> list[str]:
        """The row's ``choice_labels``; under ``published``, ``A``, ``B``, ... instead."""
        from koala.scoring.protocol import check_protocol

        if check_protocol(protocol) == "published":
            n = len(row["choices"])
            if n > 26:
                raise ValueError(f"{n} choices: more than the letters A-Z")
            return [chr(ord("A") + i) for i in range(n)]
        return super().shown_labels(row, protocol)

    def check_prompt(self, variant: Any) -> str | None:
        if variant.prompt_prefix is None and variant.prompt is None:
            missing = [
                f for f in ("prompt_text_only", "prompt_speech") if getattr(variant, f) is None
            ]
            if missing:
                return f"needs {missing} (or one prompt_prefix for all conditions)"
        return None

    def score(
        self,
        recs: Sequence[Mapping[str, Any]],
        protocol: str,
        ci: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        by_cond: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for r in recs:
            by_cond[r["condition"]].append(r)
        out = {m: _scf(by_cond, m, protocol, ci) for m in self.modes(recs)}
        if "logit" in out and "note" not in out["logit"]:
            out["logit"].update(no_logprobs_counts(recs))
        elif "logit" not in out and (unscored := logit_unscored(recs)) is not None:
            out["logit"] = unscored
        return out

    def candidates(
        self, results: Mapping[str, Mapping[str, Any]], select: str
    ) -> list[tuple[float, str]]:
        """Under ``koala``: the mean accuracy of the conditions, among the variants with at
        least :data:`SCA_MIN_TEXT_CORRECT_SHARE` of the best text-correct count."""
        if select != "koala":
            return super().candidates(results, select)
        tc = {n: value_of(r, "num_text_correct") for n, r in results.items()}
        top = max((v for v in tc.values() if v is not None), default=0.0)
        floor = max(1.0, SCA_MIN_TEXT_CORRECT_SHARE * top)
        return [
            (rank, n)
            for n, r in results.items()
            if (tc[n] or 0) >= floor and (rank := _condition_mean(r)) is not None
        ]

    # an item's conditions are drawn and swapped together: SCF's denominator (the items
    # answered right from text alone) is recounted on every draw
    paired_unit = "item"
    paired_test = "permutation"

    def paired(
        self,
        a: Sequence[Mapping[str, Any]],
        b: Sequence[Mapping[str, Any]],
        protocol: str,
        context: Any = None,
    ) -> PairedData | dict[str, str]:
        """SCF: per item (answered right from text alone and follows the counterfactual speech,
        answered right from text alone); SCF = the ratio of the sums, its denominator
        recounted on every resample and swap. Compared under the ``koala`` protocol only."""
        import numpy as np

        if protocol != "koala":
            return {"note": "not compared: SCF is compared under the koala protocol only"}

        def outcomes(recs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[bool, bool]]:
            by_cond: dict[str, dict[str, Mapping[str, Any]]] = {}
            for r in recs:
                by_cond.setdefault(r["condition"], {})[str(r["id"])] = r
            text, cf = by_cond.get("text", {}), by_cond.get("counterfactual", {})
            ids = sorted(set(text) & set(cf))
            t = mc_outcomes([text[i] for i in ids], protocol)
            # the counterfactual answer as the gold: "follows the counterfactual speech"
            as_cf = [
                {
                    **cf[i],
                    "ref": {**cf[i]["ref"], "answer": cf[i]["ref"].get("counterfactual_answer")},
                }
                for i in ids
            ]
            follows = mc_outcomes(as_cf, protocol)
            return {i: (t[i], t[i] and follows[i]) for i in ids if i in t and i in follows}

        oa, ob = outcomes(a), outcomes(b)
        ids = sorted(set(oa) & set(ob))
        xa = np.array([[oa[i][1], oa[i][0]] for i in ids], dtype=float).reshape(len(ids), 2)
        xb = np.array([[ob[i][1], ob[i][0]] for i in ids], dtype=float).reshape(len(ids), 2)
        return PairedData("scf", xa, xb, ratio_of_sums, self.paired_unit, test=self.paired_test)

    def report_table(
        self, results: Mapping[str, Mapping[str, Any]], configs: Sequence[str]
    ) -> tuple[list[str], list[list[str]]]:
        from koala.report_cells import model_rows, pct, pct_ci

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
        rows = model_rows(
            results,
            configs,
            "text_accuracy",
            lambda c, g: [
                pct(g["text_accuracy"]),
                pct(g["counterfactual_accuracy"]),
                pct(g.get("original_accuracy")),
                pct_ci(g, "scf"),
                pct_ci(g, "parametric_proportion"),
                f"{g['num_text_correct']}/{g['total']}",
            ],
        )
        return header, rows

    def plots(self) -> Sequence[TaskPlot]:
        return (
            TaskPlot(
                "scf",
                "SCF",
                scf_data,
                lambda results: figure_scf(scf_data(results)),
                "no SCA-QA config has a defined SCF (no item answered correctly from text alone)",
                order=2,
            ),
        )


def _condition_mean(res: Mapping[str, Any]) -> float | None:
    accs = [
        value_of(res, k) for k in ("text_accuracy", "counterfactual_accuracy", "original_accuracy")
    ]
    got = [a for a in accs if a is not None]
    return sum(got) / len(got) if got else None


def _scf(
    by_cond: Mapping[str, Sequence[Mapping[str, Any]]],
    mode: str,
    protocol: str,
    ci: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """SCF and the conditions' accuracies over the items answered in the text-only and the
    counterfactual condition; an item's conditions are resampled together (one item, one
    draw) for the intervals."""
    from koala.scoring.scf import speech_context_faithfulness

    pick = answer_text if mode == "gen" else label_logprobs
    conds = {c: {str(r["id"]): r for r in by_cond.get(c, [])} for c in CONDITIONS}
    text, cf, orig = conds["text"], conds["counterfactual"], conds["original"]
    ids = sorted(set(text) & set(cf))
    if not ids:
        return {"note": "not scored: no row has both the text-only and the counterfactual answer"}
    refs = [cf[i]["ref"] for i in ids]
    notes: list[str] = []
    published = protocol == "published"
    if published and published_fields(refs, "source_answer", "source_counterfactual_answer"):
        # the published reading: choices shown as (A)-(D), gold = the choice whose text equals
        # the answer text exactly (else A)
        golds = (
            [ref["source_counterfactual_answer"] for ref in refs],
            [ref["source_answer"] for ref in refs],
        )
        kw: dict[str, Any] = {"choices": [list(ref["choices"]) for ref in refs]}
        letters_shown = all(
            str((cf[i].get("shown_labels") or ["?"])[0]).upper() == "A" for i in ids
        )
        if mode == "gen" and not letters_shown:
            notes.append(
                "the model was shown number labels; the published reading expects (A)-(D): "
                "run with --protocol published for parity"
            )
    else:
        if published:
            notes.append(
                "the rows carry no source_answer/source_counterfactual_answer (an older "
                "export): scored from the repaired gold; re-export for exact parity"
            )
        golds = (
            [shown_gold(cf[i], "counterfactual_answer")[1] for i in ids],
            [shown_gold(cf[i])[1] for i in ids],
        )
        kw = {
            "choices": [ref.get("choices") for ref in refs],
            "labels": [shown_gold(cf[i])[0] for i in ids],
        }
    with_orig = bool(orig) and all(i in orig for i in ids)
    try:
        out = speech_context_faithfulness(
            [pick(cf[i]) for i in ids],
            golds[0],
            [pick(text[i]) for i in ids],
            golds[1],
            [pick(orig[i]) for i in ids] if with_orig else None,
            protocol=protocol,
            **kw,
            **interval_options(ci),
        )
    except (TypeError, ValueError) as exc:
        return {"note": f"not scored: {exc}"}
    if not with_orig and orig:  # the original speech exists for some rows only
        oid = sorted(i for i in orig if i in set(ids))
        part = speech_context_faithfulness(
            [pick(cf[i]) for i in oid],
            [golds[0][ids.index(i)] for i in oid],
            [pick(text[i]) for i in oid],
            [golds[1][ids.index(i)] for i in oid],
            [pick(orig[i]) for i in oid],
            protocol=protocol,
            **{k: [v[ids.index(i)] for i in oid] for k, v in kw.items()},
        )
        out["original_accuracy"] = part.get("original_accuracy")
        out["original_total"] = part.get("total")
    out["conditions"] = {
        c: non_ok(list(m.values())) | {"records": len(m)}
        for c, m in (("text", text), ("counterfactual", cf), ("original", orig))
    }
    out["unscored_rows"] = len((set(text) | set(cf)) - set(ids))
    if notes:
        out["notes"] = notes
    return out


def scf_data(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{"model | config": {"scf", "parametric", "other" (fractions), "n"}}`` per SCA-QA
    config (best generation variant)."""
    from koala.report_cells import best_metrics, num

    data: dict[str, dict[str, float]] = {}
    for model, configs in results.items():
        for config, c in sorted(configs.items()):
            if c.get("task") != "sca_qa":
                continue
            m = best_metrics(c)
            if not m or "scf" not in m:
                continue
            data[f"{model} | {config}"] = {
                "scf": num(m["scf"]),
                "parametric": num(m["parametric_proportion"]),
                "other": num(m["other_proportion"]),
                "n": float(m.get("num_text_correct", 0)),
            }
    return data


def figure_scf(data: Mapping[str, Mapping[str, float]]) -> Any:
    """Stacked horizontal bars: SCF, parametric proportion and the rest, per model and set.
    Bars carry ``gid = "label|part"``."""
    from koala.plots import plt as _plt

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


TASK = SCAQA()
