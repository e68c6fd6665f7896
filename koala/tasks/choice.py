"""What the multiple-choice tasks (SQA, SCA-QA, PA-QA) share: labels shown, the prompt, and
reading answers in two modes (``gen``: the generated text; ``logit``: the argmax of the label
log-probabilities, where the model gave them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from koala.tasks.base import (
    PairedData,
    Task,
    answer_text,
    has_logits,
    interval_options,
    label_logprobs,
    non_ok,
    published_fields,
    ratio_of_sums,
    shown_gold,
    sorted_records,
)

__all__ = [
    "NO_LABEL",
    "NO_REASON",
    "ChoiceTask",
    "logit_unscored",
    "mc_counts",
    "mc_inputs",
    "mc_outcomes",
    "no_logprobs_counts",
    "no_logprobs_reason",
]

MC_REF_FIELDS = ("question", "choices", "choice_labels", "answer")

# Why an answer has no label log-probabilities, besides the reasons the model adapter records in
# ``meta["logprobs_off"]`` (``openai:``: "refused", "token_ids", "not_returned"):
NO_LABEL = "no_label"  # log-probabilities came, with none of the labels among the top tokens
NO_REASON = "unknown"  # the record says nothing (a model that never gives them, an old run)


def mc_columns() -> dict[str, Any]:
    """The columns every multiple-choice row has: question, choices, their labels, gold."""
    from koala.tasks._features import list_of, string

    return {
        "question": string(),
        "choices": list_of(string()),
        "choice_labels": list_of(string()),
        "answer": string(),
    }


def mc_inputs(
    recs: Sequence[Mapping[str, Any]], mode: str, protocol: str
) -> tuple[list[Any], dict[str, Any], list[str]]:
    """Predictions, the choice scorer's keyword arguments and notes for one mode.

    Under ``published`` the gold and the choices are the strings as the published metadata
    gives them (``source_answer``, ``source_choices``), parsed by the published rules; without
    those fields (a run on an older export) the exported fields are used and a note says so.
    """
    refs = [r["ref"] for r in recs]
    preds = [answer_text(r) if mode == "gen" else label_logprobs(r) for r in recs]
    notes: list[str] = []
    if protocol == "published" and published_fields(refs, "source_answer", "source_choices"):
        kw = {
            "references": [ref["source_answer"] for ref in refs],
            "choices": [ref["source_choices"] for ref in refs],
        }
    else:
        if protocol == "published":
            notes.append(
                "the rows carry no source_answer/source_choices (an older export): scored "
                "from the repaired gold, so published parity is not exact; re-export"
            )
        shown = [shown_gold(r) for r in recs]
        kw = {
            "references": [gold for _, gold in shown],
            "choices": [ref.get("choices") for ref in refs],
            "labels": [labels for labels, _ in shown],
        }
    return preds, kw, notes


def mc_outcomes(recs: Sequence[Mapping[str, Any]], protocol: str) -> dict[str, bool]:
    """Per item id: answered correctly (generation-based, read as ``koala-bench score`` reads
    it under ``protocol``); invalid items are left out."""
    from koala.scoring.choices import choice_accuracy

    recs = sorted_records(recs)
    preds, kw, _ = mc_inputs(recs, "gen", protocol)
    out = choice_accuracy(preds, protocol=protocol, return_items=True, **kw)
    invalid = set(out.get("invalid_items") or [])
    return {
        str(r["id"]): p is not None and p == g
        for k, (r, p, g) in enumerate(
            zip(recs, out["predicted_labels"], out["gold_labels"], strict=True)
        )
        if k not in invalid
    }


def no_logprobs_reason(rec: Mapping[str, Any]) -> str:
    """Why an answer has no label log-probabilities: the adapter's ``meta["logprobs_off"]``,
    else :data:`NO_LABEL` when the top tokens came without any label
    (``meta["labels_found"] == 0``), else :data:`NO_REASON`."""
    meta = rec.get("meta") if isinstance(rec.get("meta"), Mapping) else {}
    off = meta.get("logprobs_off")
    if isinstance(off, str) and off:
        return off
    if meta.get("labels_found") == 0:
        return NO_LABEL
    return NO_REASON


def no_logprobs_counts(recs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Among the answered (``ok``) records, those without usable label log-probabilities:
    ``no_logprobs`` (how many), ``no_logprobs_reasons`` (reason -> count, see
    :func:`no_logprobs_reason`) and ``no_logprobs_detail`` (reason -> the adapter's words,
    ``meta["logprobs_detail"]``, of its first record), the last two when there are any."""
    from koala.predictions import OK

    missing = [r for r in recs if r.get("status") == OK and label_logprobs(r) == ""]
    out: dict[str, Any] = {"no_logprobs": len(missing)}
    if not missing:
        return out
    reasons = Counter(no_logprobs_reason(r) for r in missing)
    out["no_logprobs_reasons"] = dict(sorted(reasons.items()))
    detail: dict[str, str] = {}
    for r in missing:
        said = (r.get("meta") or {}).get("logprobs_detail")
        if isinstance(said, str) and said:
            detail.setdefault(no_logprobs_reason(r), said[:300])
    if detail:
        out["no_logprobs_detail"] = dict(sorted(detail.items()))
    return out


def logit_unscored(recs: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The ``logit`` entry of records none of which has label log-probabilities, when the
    model was asked for them and its answers say why they have none (a server refusing
    ``logprobs``: ``{"note": "not scored: ...", "no_logprobs": 8, "no_logprobs_reasons":
    {"refused": 8}, ...}``); ``None`` when no answer says why (a model that gives none: no
    logit mode, as before)."""
    from koala.predictions import OK

    ok = [r for r in recs if r.get("status") == OK]
    if not any(no_logprobs_reason(r) != NO_REASON for r in ok):
        return None
    return {"note": "not scored: no answer has label log-probabilities", **no_logprobs_counts(ok)}


def mc_counts(
    out: dict[str, Any], recs: Sequence[Mapping[str, Any]], preds: Sequence[Any], mode: str
) -> dict[str, Any]:
    """Split the scorer's ``unparsed`` count: failed and abstained requests (scored as empty
    answers) are counted apart, as are, in logit mode, answers without log-probabilities
    (with their reasons: :func:`no_logprobs_counts`)."""
    invalid = set(out.get("invalid_items") or [])
    counted = [(r, p) for k, (r, p) in enumerate(zip(recs, preds, strict=True)) if k not in invalid]
    counts = non_ok([r for r, _ in counted])
    out.update(counts)
    if isinstance(out.get("unparsed"), int):
        out["unparsed"] = max(0, out["unparsed"] - counts["failed"] - counts["abstained"])
    if mode == "logit":
        out.update(no_logprobs_counts([r for r, _ in counted]))
        if isinstance(out.get("unparsed"), int):
            out["unparsed"] = max(0, out["unparsed"] - out["no_logprobs"])
    return out


class ChoiceTask(Task):
    """A multiple-choice task: the row's question and labelled choices follow the variant's
    prefix, then its answer cue; scored by ``choice_accuracy`` in each mode."""

    multiple_choice = True
    ref_fields = (*MC_REF_FIELDS, "source_answer", "source_choices")
    # an item is right or wrong and stands alone: exact McNemar over items
    paired_unit = "item"
    paired_test: str | None = "mcnemar"

    def shown_labels(self, row: Mapping[str, Any], protocol: str = "koala") -> list[str]:
        """The row's ``choice_labels``."""
        from koala.scoring.protocol import check_protocol

        check_protocol(protocol)
        return [str(x) for x in row["choice_labels"]]

    def build_prompt(
        self, variant: Any, row: Mapping[str, Any], condition: str, protocol: str = "koala"
    ) -> str:
        """``prefix + ["질문: " + question + "\\n"] + "(L) choice" lines + answer cue``, with
        ``{example}`` replaced by an example answer in the row's own label scheme."""
        from koala.prompts import EXAMPLE, format_choices

        labels = self.shown_labels(row, protocol)
        body = format_choices(row.get("question"), row["choices"], labels)
        example = f"({labels[0]})" if labels else ""
        prefix = variant.prefix(condition).replace(EXAMPLE, example)
        return prefix + body + variant.suffix.replace(EXAMPLE, example)

    def check_prompt(self, variant: Any) -> str | None:
        return None

    def modes(self, recs: Sequence[Mapping[str, Any]]) -> list[str]:
        return ["gen", "logit"] if has_logits(recs) else ["gen"]

    def score(
        self,
        recs: Sequence[Mapping[str, Any]],
        protocol: str,
        ci: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """Each mode's figures; without a logit figure, a ``logit`` entry saying why when the
        answers say it (:func:`logit_unscored`)."""
        out = {m: self.score_mode(recs, m, protocol, ci) for m in self.modes(recs)}
        if "logit" not in out and (unscored := logit_unscored(recs)) is not None:
            out["logit"] = unscored
        return out

    def score_mode(
        self,
        recs: Sequence[Mapping[str, Any]],
        mode: str,
        protocol: str,
        ci: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``choice_accuracy`` of one mode."""
        from koala.scoring.choices import choice_accuracy

        recs = sorted_records(recs)
        preds, kw, notes = mc_inputs(recs, mode, protocol)
        try:
            out = choice_accuracy(preds, protocol=protocol, **kw, **interval_options(ci))
        except (TypeError, ValueError) as exc:
            return {"note": f"not scored: {exc}"}
        if notes:
            out["notes"] = notes
        return mc_counts(out, recs, preds, mode)

    def paired_clusters(
        self, recs: Sequence[Mapping[str, Any]], ids: Sequence[str]
    ) -> list[Any] | None:
        """The unit of each compared item (``None``: the item itself)."""
        return None

    def paired(
        self,
        a: Sequence[Mapping[str, Any]],
        b: Sequence[Mapping[str, Any]],
        protocol: str,
        context: Any = None,
    ) -> PairedData | dict[str, str]:
        """Generation-based accuracy, (right, 1) per item, over the items both runs have a
        valid gold for; unit and test as the task declares (:attr:`paired_unit`,
        :attr:`paired_test`)."""
        import numpy as np

        oa, ob = mc_outcomes(a, protocol), mc_outcomes(b, protocol)
        ids = sorted(set(oa) & set(ob))
        xa = np.array([[float(oa[i]), 1.0] for i in ids]).reshape(len(ids), 2)
        xb = np.array([[float(ob[i]), 1.0] for i in ids]).reshape(len(ids), 2)
        return PairedData(
            "accuracy",
            xa,
            xb,
            ratio_of_sums,
            self.paired_unit,
            self.paired_clusters(a, ids),
            self.paired_test or "mcnemar",
        )

    def cell(self, c: Mapping[str, Any], g: Mapping[str, Any]) -> str:
        """``accuracy [interval] / logit accuracy (n=items)``, with ``, K without logprobs``
        when K answers of the logit-based figure had no label log-probabilities (they count
        wrong there) and their reasons when recorded; without a logit figure, why when the
        answers say it (:func:`koala.report_cells.logit_text`)."""
        from koala.report_cells import logit_metrics, logit_text, pct_ci

        lg = logit_metrics(c)
        if lg:
            return f"{pct_ci(g, 'accuracy')} / {logit_text(lg, g.get('total'))}"
        return f"{pct_ci(g, 'accuracy')} / — (n={g.get('total')})"
