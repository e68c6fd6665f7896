"""The row schema of every task: the ``datasets.Features`` the builder writes.

Every row has ``id`` (stable, unique within the config; the clean and noisy variants of an item
share it), ``audio`` (16 kHz mono), ``subset``, ``noise`` (``clean``/``noisy``) and ``duration``
(seconds of ``audio``), then the task's own typed columns (lists are lists, never strings).

The multiple-choice tasks also keep the published fields the published scoring protocol
reads, as strings exactly as the metadata gives them: ``source_answer`` (the gold, e.g.
``"(5)사막화의 해결 방안"``) and ``source_choices`` (the labelled choices string) for SQA and
PA-QA; ``source_answer`` and ``source_counterfactual_answer`` (the answer texts) for SCA-QA,
whose ``choices`` list is the published list itself (neither stripped nor deduplicated).
"""

from __future__ import annotations

from typing import Any

import datasets

from koala.builder.registry import TASKS

__all__ = ["COMMON_COLUMNS", "TASKS", "TASK_COLUMNS", "features_for"]

SAMPLING_RATE = 16_000
COMMON_COLUMNS = ("id", "audio", "subset", "noise", "duration")

# datasets >= 4 has List; 3.x spells it Sequence (also accepted by 4/5, where it is deprecated)
_List: Any = getattr(datasets, "List", None) or datasets.Sequence


def _string() -> datasets.Value:
    return datasets.Value("string")


def _task_columns(task: str) -> dict[str, Any]:
    s, f64 = _string, lambda: datasets.Value("float64")
    if task == "asr":
        return {"text": s()}
    if task == "st":
        return {
            "source_text": s(),
            "reference": s(),
            "talk_id": s(),
            "offset": f64(),
            "segment_duration": f64(),
        }
    if task == "sqa":
        return {
            "question": s(),
            "choices": _List(s()),
            "choice_labels": _List(s()),
            "answer": s(),
            "answer_text": s(),
            "source_answer": s(),
            "source_choices": s(),
        }
    if task == "sif":
        return {"instruction": s(), "prompt": s(), "reference_answer": s()}
    if task == "sca_qa":
        return {
            "question": s(),
            "choices": _List(s()),
            "choice_labels": _List(s()),
            "answer": s(),
            "counterfactual_answer": s(),
            "context": s(),
            "counterfactual_context": s(),
            "keyword": s(),
            "counterfactual_keyword": s(),
            "domain": s(),
            "original_audio": datasets.Audio(sampling_rate=SAMPLING_RATE),
            "source_answer": s(),
            "source_counterfactual_answer": s(),
        }
    if task == "pa_qa":
        return {
            "passage": s(),
            "question": s(),
            "choices": _List(s()),
            "choice_labels": _List(s()),
            "answer": s(),
            "evidence_sentences": _List(s()),
            "evidence_positions": _List(f64()),
            "evidence_segments": _List(s()),
            "evidence_char_spans": _List(_List(datasets.Value("int32"))),
            "source_answer": s(),
            "source_choices": s(),
        }
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


TASK_COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(_task_columns(t)) for t in TASKS}


def features_for(task: str) -> datasets.Features:
    """The ``Features`` of a task's rows (common columns first, then the task's)."""
    return datasets.Features(
        {
            "id": _string(),
            "audio": datasets.Audio(sampling_rate=SAMPLING_RATE),
            "subset": _string(),
            "noise": _string(),
            "duration": datasets.Value("float64"),
            **_task_columns(task),
        }
    )
