"""What a task is: the :class:`Task` base class, and the record helpers its scoring uses.

A task declares, in one object, everything the generic engine needs (the model is
lm-evaluation-harness's task): the columns of its rows (:meth:`Task.columns`) and how a
published metadata record becomes them (:meth:`Task.row_columns`); its conditions and how a row
becomes one request per condition and prompt variant (:meth:`Task.build_prompt`,
:meth:`Task.shown_labels`, :attr:`Task.ref_fields`); how the answers of one prompt variant are
scored (:meth:`Task.score`, calling :mod:`koala.scoring`); which variant a table shows
(:meth:`Task.candidates`, :attr:`Task.selection_rule`); and its report table and plots
(:meth:`Task.report_table`, :meth:`Task.plots`). The exporter, runner, scorer and reporter loop
over tasks and never name one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from koala.predictions import ABSTAINED, FAILED, OK

__all__ = [
    "Task",
    "TaskPlot",
    "answer_text",
    "has_logits",
    "interval_options",
    "label_logprobs",
    "non_ok",
    "published_fields",
    "shown_gold",
    "sorted_records",
    "value_of",
]


# ------------------------------------------------------------------------ record helpers


def answer_text(rec: Mapping[str, Any]) -> str:
    """The answer of a record: its prediction when answered, else ``""`` (a failed or
    abstained request counts as an empty answer)."""
    return rec.get("prediction") or "" if rec.get("status") == OK else ""


def _labels(rec: Mapping[str, Any]) -> list[str]:
    shown = rec.get("shown_labels")
    return [str(x) for x in (shown or rec["ref"].get("choice_labels") or [])]


def label_logprobs(rec: Mapping[str, Any]) -> dict[str, float] | str:
    """Finite label log-probabilities of an answered record (keyed by the labels it was
    shown), else ``""`` (no usable log-probabilities)."""
    if rec.get("status") != OK or not isinstance(rec.get("logprobs"), Mapping):
        return ""
    labels = {x.upper() for x in _labels(rec)}
    lp: dict[str, float] = {}
    for k, v in rec["logprobs"].items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if str(k).upper() in labels and not math.isnan(f):
            lp[str(k).upper()] = f
    return lp if any(v > -math.inf for v in lp.values()) else ""


def has_logits(recs: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any record carries log-probabilities (then the ``logit`` mode is scored)."""
    return any(isinstance(r.get("logprobs"), Mapping) and r["logprobs"] for r in recs)


def sorted_records(recs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records in row-id order (the order every scorer sees them in)."""
    return sorted(recs, key=lambda r: str(r["id"]))


def non_ok(recs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many records failed and how many were abstained."""
    c = Counter(r.get("status") for r in recs)
    return {"failed": c[FAILED], "abstained": c[ABSTAINED]}


def shown_gold(rec: Mapping[str, Any], field: str = "answer") -> tuple[list[str], str]:
    """The labels the model was shown and the gold ``field`` among them. A run under another
    protocol may show other labels than the row's (SCA-QA as (A)-(D) instead of 1-4): the gold
    label is carried over by its position."""
    ref = rec["ref"]
    labels = [str(x) for x in ref.get("choice_labels") or []]
    gold = str(ref.get(field) or "")
    shown = [str(x) for x in rec.get("shown_labels") or []]
    if shown and shown != labels and len(shown) == len(labels):
        gold = shown[labels.index(gold)] if gold in labels else gold
        labels = shown
    return labels, gold


def published_fields(refs: Sequence[Mapping[str, Any]], *fields: str) -> bool:
    """Whether every reference carries the published string ``fields`` (``source_*``)."""
    return all(isinstance(ref.get(f), str) for ref in refs for f in fields)


def interval_options(
    ci: Mapping[str, Any] | None, clusters: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The interval options of a scorer call: none when ``ci`` is ``None``; ``clusters`` (one
    per item) where items are not independent (PA-QA questions of one passage, ST segments of
    one talk)."""
    if not ci:
        return {}
    out = dict(ci)
    if clusters is not None and len(set(clusters)) < len(clusters):
        out["clusters"] = list(clusters)
    return out


def value_of(res: Mapping[str, Any], key: str) -> float | None:
    """``res[key]`` as a float, ``None`` when absent, not a number or NaN."""
    v = res.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(float(v)):
        return None
    return float(v)


# ------------------------------------------------------------------------ the task


@dataclass(frozen=True)
class TaskPlot:
    """One figure a task adds to the report: ``data(results)`` gives what it plots (empty:
    no plot, and ``why_empty`` says why), ``figure(data)`` the matplotlib figure; plots are
    written in ``order``."""

    name: str
    title: str
    data: Callable[[Mapping[str, Mapping[str, Any]]], Any]
    figure: Callable[[Any], Any]
    why_empty: str
    order: int = 100


class Task:
    """One task of the benchmark (see the module docstring). Subclasses set the class
    attributes and override what differs; the defaults describe a one-condition task whose
    prompt is the variant's instruction and whose rows carry ``ref_fields``."""

    name: str = ""
    #: report section title and position among the tasks
    title: str = ""
    order: int = 100
    #: the metric a table shows and variants are chosen by
    main_metric: str = "accuracy"
    higher_is_better: bool = True
    #: how the main metric is scaled and labelled in plots (accuracy 0-1 -> %)
    plot_scale: float = 100.0
    plot_label: str = "accuracy (%)"
    #: the koala selection rule, in words (printed under the task's table)
    selection_rule: str = ""
    #: the conditions each row is asked in; the audio column each sends (``None``: no audio
    #: of the row, a silent clip or none, as ``--sca-text-audio`` says); conditions skipped
    #: for a row whose audio column is null
    conditions: tuple[str, ...] = ("speech",)
    audio_columns: ClassVar[Mapping[str, str | None]] = {"speech": "audio"}
    optional_conditions: frozenset[str] = frozenset()
    #: row fields copied into every record's ``ref`` (what scoring reads)
    ref_fields: tuple[str, ...] = ()
    multiple_choice: bool = False
    #: rows are segments of longer recordings: :meth:`row_columns` gives ``offset`` and
    #: ``segment_duration`` (seconds) and the builder adds ``talk_id`` (the recording)
    segments_of_recordings: bool = False
    #: whether a union config is also scored per subset
    score_subsets: bool = True
    #: the function of :mod:`koala.builder.rows` that reads a published metadata record
    #: (the built-in tasks; a task of its own overrides :meth:`row_columns` instead)
    row_mapper: str | None = None
    #: prompt variants used when the prompt file has no entry for this task (a task of its
    #: own, outside this package); ``None``: the prompt file must have one
    default_prompts: tuple[Mapping[str, str], ...] | None = None

    # ---- data
    def columns(self) -> dict[str, Any]:
        """The task's own row columns (``datasets`` feature types), after the common ones."""
        raise NotImplementedError(f"task {self.name!r} declares no columns")

    def row_columns(self, rec: dict[str, Any], sub: Any, fix: Callable[[str], None]) -> Any:
        """A published metadata record -> the task's columns (``None``: not part of the
        benchmark); raise :class:`koala.sources.SourceError` for a bad record."""
        if self.row_mapper is None:
            raise NotImplementedError(f"task {self.name!r} cannot read metadata records")
        from koala.builder import rows

        return getattr(rows, self.row_mapper)(rec, sub, fix)

    # ---- requests
    def ref(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of ``row`` that every record of it carries for scoring."""
        return {f: row[f] for f in self.ref_fields if f in row}

    def audio_column(self, condition: str) -> str | None:
        """The audio column a condition sends (``None``: none of the row's)."""
        return self.audio_columns.get(condition)

    def shown_labels(self, row: Mapping[str, Any], protocol: str = "koala") -> list[str] | None:
        """The choice labels a request shows (``None``: not multiple choice)."""
        return None

    def build_prompt(
        self, variant: Any, row: Mapping[str, Any], condition: str, protocol: str = "koala"
    ) -> str:
        """The text prompt of one row in one condition with one prompt variant."""
        return variant.instruction

    def check_prompt(self, variant: Any) -> str | None:
        """What a prompt variant lacks for this task (``None``: usable)."""
        if variant.prompt is None and variant.prompt_prefix is None:
            return "needs a 'prompt'"
        return None

    # ---- scoring
    def score(
        self,
        recs: Sequence[Mapping[str, Any]],
        protocol: str,
        ci: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """Metrics of one prompt variant's records, per mode (``gen``, and ``logit`` where
        the task has it). ``options`` holds the scoring options (``st_metrics``, ``judge``)."""
        raise NotImplementedError(f"task {self.name!r} has no scoring")

    def candidates(
        self, results: Mapping[str, Mapping[str, Any]], select: str
    ) -> list[tuple[float, str]]:
        """``(value, variant)`` pairs the selection rule ``select`` chooses among (best by
        :attr:`main_metric` in the direction of :attr:`higher_is_better`)."""
        return [
            (v, n) for n, r in results.items() if (v := value_of(r, self.main_metric)) is not None
        ]

    # ---- report
    def cell(self, c: Mapping[str, Any], g: Mapping[str, Any]) -> str:
        """The text of a table cell: the main metric of the shown variant ``g``."""
        from koala.report_cells import pct_ci

        return pct_ci(g, self.main_metric)

    def report_table(
        self, results: Mapping[str, Mapping[str, Any]], configs: Sequence[str]
    ) -> tuple[list[str], list[list[str]]]:
        """The task's table: header and rows (default: one row per set and noise, one column
        per model, each cell :meth:`cell` with its caveats)."""
        from koala.report_cells import cell_text

        models = list(results)
        rows = [
            [
                config.removesuffix("_noisy"),
                "noisy" if config.endswith("_noisy") else "clean",
                *[cell_text(self, results[m].get(config)) for m in models],
            ]
            for config in configs
        ]
        return ["set", "noise", *models], rows

    def report_notes(self, table: Mapping[str, Any]) -> list[str]:
        """Lines printed under the task's table beside the selection rule."""
        return []

    def plots(self) -> Sequence[TaskPlot]:
        """The task's own figures (the clean-vs-noisy figure is common to every task)."""
        return ()

    def __repr__(self) -> str:
        return f"<task {self.name}>"
