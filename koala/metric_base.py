"""The base class of this project's ``evaluate`` modules.

``evaluate.Metric.compute(predictions=..., references=...)`` stores the inputs in an Arrow
cache file and reads them back before scoring. That round trip exists to gather predictions
across processes (``num_process > 1``) and to accumulate ``add_batch`` calls; for a single
process handing over whole lists it only costs time (for ``korean_cer`` it was two thirds of
the total: ``datasets`` encodes every example in Python). :class:`KoalaMetric` skips it in exactly
that case and otherwise defers to evaluate. Inputs are validated either way by the scoring
functions, which name the argument and index of a bad item.
"""

from __future__ import annotations

from typing import Any

import evaluate
from datasets.utils.py_utils import temp_seed

__all__ = ["KOALA_CITATION", "KoalaMetric"]

# The benchmark's citation, shared by every module's ``MetricInfo``.
KOALA_CITATION = """\
@misc{koalabench,
  title = {KoALa-Bench: Evaluating Large Audio Language Models on Korean Speech Understanding
           and Faithfulness},
  note  = {Benchmark and published evaluation code by SCAI Lab}
}
"""


class KoalaMetric(evaluate.Metric):
    """``evaluate.Metric`` with a direct path for single-process, whole-list ``compute``."""

    def compute(
        self, *, predictions: Any = None, references: Any = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Score ``predictions`` against ``references``; keyword arguments are the metric's
        options (documented below)."""
        direct = (
            predictions is not None
            and references is not None
            and self.num_process == 1
            and getattr(self, "writer", None) is None  # nothing accumulated by add_batch
            and set(self._feature_names()) == {"predictions", "references"}
        )
        if not direct:
            return super().compute(predictions=predictions, references=references, **kwargs)
        if len(predictions) != len(references):
            raise ValueError(
                f"Mismatch in the number of predictions ({len(predictions)}) and references "
                f"({len(references)})"
            )
        with temp_seed(self.seed):
            return self._compute(
                predictions=list(predictions), references=list(references), **kwargs
            )
