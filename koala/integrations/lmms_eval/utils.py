"""The functions the KoALa-Bench task YAMLs name (``!function utils.<name>``); lmms-eval loads
this file by its path, so it only re-exports :mod:`koala.integrations.lmms_eval.core`.

``process_docs_<task>`` (one per lmms-eval task, e.g. ``process_docs_koala_sca_qa_kpop_text``)
tags each row with its task and keeps the rows asked in its condition.
"""

from __future__ import annotations

from typing import Any

from koala.integrations.lmms_eval.core import (
    METRICS,
    aggregate,
    aggregate_audio_dependent,
    doc_to_audio,
    doc_to_messages,
    doc_to_target,
    doc_to_text,
    process_docs_for,
    process_results,
)

__all__ = [
    "aggregate_audio_dependent",
    "doc_to_audio",
    "doc_to_messages",
    "doc_to_target",
    "doc_to_text",
    "process_results",
]

# one aggregation per metric name: aggregate_cer, aggregate_accuracy, aggregate_accuracy_late...
for _metric in {m for metrics in METRICS.values() for m, _ in metrics}:
    globals()[f"aggregate_{_metric}"] = aggregate(_metric)
    __all__.append(f"aggregate_{_metric}")


def __getattr__(name: str) -> Any:
    if name.startswith("process_docs_"):
        return process_docs_for(name.removeprefix("process_docs_"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
