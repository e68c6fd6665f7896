"""One function per task: a published metadata record -> the task's typed columns.

The field names come from the subset's YAML (``fields:``); the code holds only what data
cannot say. Each function raises :class:`koala.sources.SourceError` for a bad record (naming
the field and what was expected) and reports the repairs it applied through ``fix(kind)``.
A function returns ``None`` for a record that is not part of the benchmark (PA-QA items not
marked valid).

A gold answer that no rule can read (it names none of the choices; an SCA-QA answer text
that matches no choice; a counterfactual answer that is the world-knowledge answer) does not
stop the build: the published code keeps such items in its denominator (SCA-QA maps an answer
with no exact text match to choice A; a multiple-choice gold without a readable label is
always wrong), so the row is kept with an empty ``answer`` (``counterfactual_answer``) label
and counted (``answer_unreadable``, ``counterfactual_unreadable``,
``counterfactual_is_answer``). The default scorer counts such an item as invalid and reports
it; the published protocol scores it from the row's ``source_*`` fields, which hold the gold
exactly as the metadata gives it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from koala.builder.labels import choices_from_list, gold_label, parse_choice_field
from koala.builder.registry import SubsetSpec
from koala.scoring.choices import compact
from koala.scoring.segments import normalize_segment, segment_of
from koala.sources import SourceError, as_bool, as_float, as_int, as_list, as_text

__all__ = ["MAPPERS", "Fix"]

Fix = Callable[[str], None]



def _source(value: Any) -> str:
    """A published field as the string the metadata gives (JSON for a non-string value)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _gold(answer: Any, choice: Any, original: Any, renumbered: bool, field: str, fix: Fix) -> str:
    """The gold label, or ``""`` (counted as ``answer_unreadable``) when no rule reads it."""
    try:
        label, fixes = gold_label(answer, choice, original, renumbered, field)
    except SourceError:
        fix("answer_unreadable")
        return ""
    for kind in fixes:
        fix(kind)
    return label


def asr_columns(rec: dict[str, Any], sub: SubsetSpec, fix: Fix) -> dict[str, Any]:
    return {"text": as_text(rec, sub.field_name("text")).strip()}


def st_columns(rec: dict[str, Any], sub: SubsetSpec, fix: Fix) -> dict[str, Any]:
    return {
        "source_text": as_text(rec, sub.field_name("source_text")).strip(),
        "reference": as_text(rec, sub.field_name("reference")).strip(),
        "offset": as_float(rec, sub.field_name("offset")),
        "segment_duration": as_float(rec, sub.field_name("duration")),
    }


def sif_columns(rec: dict[str, Any], sub: SubsetSpec, fix: Fix) -> dict[str, Any]:
    return {
        "instruction": as_text(rec, sub.field_name("instruction")).strip(),
        "prompt": as_text(rec, sub.field_name("prompt"), allow_empty=True).strip(),
        "reference_answer": as_text(rec, sub.field_name("reference_answer"), allow_empty=True),
    }


def _choices(rec: dict[str, Any], sub: SubsetSpec, fix: Fix) -> tuple[Any, Any, bool]:
    """The shown choices, the original wording (when the set has one) and whether the labels
    were renumbered."""
    name = sub.field_name("choices")
    if name not in rec or rec[name] is None:
        raise SourceError("the field is missing", field=name, expected="the item's choices")
    choice, fixes = parse_choice_field(rec[name], sub.labels, sub.num_choices, name)
    original = None
    orig_name = sub.fields.get("original_choices")
    if orig_name and isinstance(rec.get(orig_name), str) and rec[orig_name].strip():
        try:
            original, _ = parse_choice_field(rec[orig_name], sub.labels, sub.num_choices, orig_name)
        except SourceError:
            original = None
    if original is not None and len(original.labels) > len(choice.labels):
        # the shown choices lost their last choice(s) (truncated text): use the complete list
        choice, fixes = original, [*fixes, "choices_truncated"]
    for kind in fixes:
        fix(kind)
    return choice, original, "choices_misnumbered" in fixes


def sqa_columns(rec: dict[str, Any], sub: SubsetSpec, fix: Fix) -> dict[str, Any]:
    choice, original, renumbered = _choices(rec, sub, fix)
    answer_field = sub.field_name("answer")
    if answer_field not in rec:
        raise SourceError("the field is missing", field=answer_field, expected="the gold answer")
    label = _gold(rec[answer_field], choice, original, renumbered, answer_field, fix)
    return {
        "question": as_text(rec, sub.field_name("question"), allow_empty=True).strip(),
        "choices": list(choice.texts),
        "choice_labels": list(choice.labels),
        "answer": label,
        "answer_text": choice.texts[choice.labels.index(label)] if label else "",
        "source_answer": _source(rec[answer_field]),
        "source_choices": _source(rec[sub.field_name("choices")]),
    }


def _label_of_text(
    text: str, texts: tuple[str, ...], labels: tuple[str, ...], field: str, fix: Fix
) -> str:
    exact = [k for k, t in enumerate(texts) if compact(t) == compact(text)]
    if exact:
        if len(exact) > 1:
            fix("answer_duplicate_choice")
        return labels[exact[0]]
    target = compact(text)
    contained = [
        k
        for k, t in enumerate(texts)
        if compact(t) and (compact(t) in target or target in compact(t))
    ]
    if len(contained) == 1:
        fix("answer_by_containment")
        return labels[contained[0]]
    raise SourceError(
        f"{text!r:.60} is not among the choices {list(texts)}",
        field=field,
        expected="the text of one choice",
        fix="correct the answer or the choices in the metadata (or pass skip_bad=True)",
    )


def sca_qa_columns(rec: dict[str, Any], sub: SubsetSpec, fix: Fix) -> dict[str, Any]:
    choices_field = sub.field_name("choices")
    choice = choices_from_list(as_list(rec, choices_field), sub.labels or "numbers", choices_field)
    texts, labels = choice.texts or (), choice.labels
    if len({compact(t) for t in texts}) < len(texts):
        fix("duplicate_choice_text")
    answer_field = sub.field_name("answer")
    answer_text = as_text(rec, answer_field, allow_empty=True)
    try:
        answer = _label_of_text(answer_text, texts, labels, answer_field, fix)
    except SourceError:
        answer = ""
        fix("answer_unreadable")
    cf_field = sub.field_name("counterfactual_answer")
    cf_text = as_text(rec, cf_field, allow_empty=True)
    ci_field = sub.field_name("correct_index")
    ci = None
    if ci_field in rec and rec[ci_field] is not None:
        ci = as_int(rec, ci_field)
        if not 0 <= ci < len(texts):
            raise SourceError(
                f"{ci} is outside 0..{len(texts) - 1}",
                field=ci_field,
                expected="the 0-based index of the counterfactual answer among the choices",
                fix="correct the index in the metadata (or pass skip_bad=True)",
            )
    if ci is not None and compact(texts[ci]) == compact(cf_text):
        counterfactual = labels[ci]
    else:
        try:
            counterfactual = _label_of_text(cf_text, texts, labels, cf_field, fix)
            if ci is not None:
                fix("counterfactual_by_text")
        except SourceError:
            counterfactual = ""
            fix("counterfactual_unreadable")
    if counterfactual and counterfactual == answer:
        # the counterfactual answer is the world-knowledge answer: no counterfactual gold
        counterfactual = ""
        fix("counterfactual_is_answer")
    return {
        "question": as_text(rec, sub.field_name("question")).strip(),
        "choices": list(texts),
        "choice_labels": list(labels),
        "answer": answer,
        "counterfactual_answer": counterfactual,
        "context": as_text(rec, sub.field_name("context")),
        "counterfactual_context": as_text(rec, sub.field_name("counterfactual_context")),
        "keyword": as_text(rec, sub.field_name("keyword"), allow_empty=True),
        "counterfactual_keyword": as_text(
            rec, sub.field_name("counterfactual_keyword"), allow_empty=True
        ),
        "domain": sub.domain or sub.name,
        "source_answer": answer_text,
        "source_counterfactual_answer": cf_text,
    }


def pa_qa_columns(rec: dict[str, Any], sub: SubsetSpec, fix: Fix) -> dict[str, Any] | None:
    if not as_bool(rec, sub.field_name("valid")):
        fix("not_valid")
        return None
    choice, _original, renumbered = _choices(rec, sub, fix)
    answer_field = sub.field_name("answer")
    if answer_field not in rec:
        raise SourceError("the field is missing", field=answer_field, expected="the gold answer")
    label = _gold(rec[answer_field], choice, None, renumbered, answer_field, fix)
    passage = as_text(rec, sub.field_name("passage"))
    sent_field = sub.field_name("evidence_sentences")
    pos_field = sub.field_name("evidence_positions")
    seg_field = sub.field_name("evidence_segments")
    span_field = sub.field_name("evidence_char_spans")
    sentences = as_list(rec, sent_field)
    positions_raw = as_list(rec, pos_field)
    segments_raw = as_list(rec, seg_field)
    spans_raw = as_list(rec, span_field)
    if not all(isinstance(s, str) for s in sentences):
        raise SourceError("a sentence is not a string", field=sent_field, expected="strings")
    positions = []
    for p in positions_raw:
        if (
            isinstance(p, bool)
            or not isinstance(p, int | float)
            or not math.isfinite(p)
            or not 0 <= p <= 1
        ):
            raise SourceError(
                f"position {p!r} is not a number in [0, 1]",
                field=pos_field,
                expected="relative positions in [0, 1]",
                fix="correct the evidence positions in the metadata (or pass skip_bad=True)",
            )
        positions.append(float(p))
    try:
        segments = [normalize_segment(s) for s in segments_raw]
    except (TypeError, ValueError) as exc:
        raise SourceError(
            str(exc),
            field=seg_field,
            expected="segment names front, front-middle (or middle-front), middle-late, late",
            fix="correct the evidence segments in the metadata (or pass skip_bad=True)",
        ) from None
    if any(
        str(s).strip().lower().replace("_", "-").replace(" ", "-") == "middle-front"
        for s in segments_raw
    ):
        fix("segment_alias_middle_front")
    if not (len(positions) == len(segments) == len(sentences)):
        raise SourceError(
            f"{len(sentences)} sentences, {len(positions)} positions, {len(segments)} segments",
            field=pos_field,
            expected="one position and one segment per evidence sentence",
            fix="correct the evidence lists in the metadata (or pass skip_bad=True)",
        )
    if any(segment_of(p) != s for p, s in zip(positions, segments, strict=True)):
        fix("segment_disagrees_with_position")
    spans = []
    for span in spans_raw:
        ok = (
            isinstance(span, list | tuple)
            and len(span) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in span)
            and 0 <= span[0] <= span[1] <= len(passage)
        )
        if not ok:
            raise SourceError(
                f"span {span!r:.40} is not [start, end] inside the passage",
                field=span_field,
                expected=f"[start, end] character offsets with 0 <= start <= end <= {len(passage)}",
                fix="correct the spans in the metadata (or pass skip_bad=True)",
            )
        spans.append([int(span[0]), int(span[1])])
    return {
        "passage": passage,
        "question": as_text(rec, sub.field_name("question")).strip(),
        "choices": list(choice.texts),
        "choice_labels": list(choice.labels),
        "answer": label,
        "evidence_sentences": list(sentences),
        "evidence_positions": positions,
        "evidence_segments": segments,
        "evidence_char_spans": spans,
        "source_answer": _source(rec[answer_field]),
        "source_choices": _source(rec[sub.field_name("choices")]),
    }


MAPPERS: dict[str, Callable[[dict[str, Any], SubsetSpec, Fix], dict[str, Any] | None]] = {
    "asr": asr_columns,
    "st": st_columns,
    "sqa": sqa_columns,
    "sif": sif_columns,
    "sca_qa": sca_qa_columns,
    "pa_qa": pa_qa_columns,
}
