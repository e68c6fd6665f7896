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

from koala.constants import SAMPLE_RATE
from koala.tasks import BUILTIN_TASKS, get_task

__all__ = ["COMMON_COLUMNS", "TASKS", "TASK_COLUMNS", "features_for"]

TASKS = BUILTIN_TASKS
COMMON_COLUMNS = ("id", "audio", "subset", "noise", "duration")


def _task_columns(task: str) -> dict[str, Any]:
    """The task's own columns (:meth:`koala.tasks.Task.columns`)."""
    return get_task(task).columns()


TASK_COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(_task_columns(t)) for t in TASKS}


def features_for(task: str) -> datasets.Features:
    """The ``Features`` of a task's rows (common columns first, then the task's)."""
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=SAMPLE_RATE),
            "subset": datasets.Value("string"),
            "noise": datasets.Value("string"),
            "duration": datasets.Value("float64"),
            **_task_columns(task),
        }
    )
