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
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from koala.predictions import ABSTAINED, FAILED, OK

__all__ = [
    "PairedData",
    "RunConfig",
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


# ------------------------------------------------------------------------ paired statistics


def ratio_of_sums(sums: Any) -> Any:
    """``sums[:, 0] / sums[:, 1]`` per row, NaN where the denominator is 0: accuracy
    (right, 1), SCF (text-correct and follows, text-correct), a mean rating (rating, 1)."""
    import numpy as np

    den = sums[:, 1]
    return np.where(den > 0, sums[:, 0] / np.where(den > 0, den, 1), np.nan)


@dataclass(frozen=True)
class RunConfig:
    """One run's side of a comparison of one config: the run folder, the config's entry of
    :func:`koala.score.score_run` (scored without a judge) and its current records (every
    variant and condition)."""

    run_dir: Path
    scored: Mapping[str, Any]
    records: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class PairedData:
    """What ``koala-bench compare`` needs of one config, as the task declares it: per item
    (the items both runs scored) additive columns of each run whose sums give the metric
    through ``score`` (``(m, k)`` sums -> ``m`` values, NaN where undefined), the unit that is
    resampled and swapped (``clusters``: one key per item; ``None``: the item) and the paired
    test (:data:`koala.scoring.paired.TESTS`). ``info`` holds figures the task adds to the
    comparison (a judge, a second test, a note)."""

    metric: str
    a: Any
    b: Any
    score: Callable[[Any], Any]
    unit: str = "item"
    clusters: Sequence[Hashable] | None = None
    test: str = "permutation"
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> int:
        return len(self.a)


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
    #: how ``koala-bench compare`` pairs two runs: the unit resampled for the interval and
    #: swapped by the permutation test (items of one unit are not independent), and the
    #: paired test (``"mcnemar"``: exact McNemar, right/wrong outcomes with the item as unit;
    #: ``"permutation"``: the paired permutation test over the units; ``None``: McNemar when
    #: the per-item values are 0/1, else the permutation test; see :meth:`paired`)
    paired_unit: str = "item"
    paired_test: str | None = None

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

    # ---- comparing two runs (koala-bench compare)
    def paired_choice(
        self, runs: Sequence[RunConfig], protocol: str, select: str
    ) -> dict[str, Any]:
        """Which variant of each run is compared: ``{"shown": [(variant, records), ...]}``
        (records of that variant), or ``{"note": ...}`` / ``{"refused": ...}``. Default: the
        variant each run's table shows (its ``best`` generation variant)."""
        shown = []
        for run in runs:
            best = ((run.scored.get("best") or {}).get("gen") or {}).get("variant")
            if not best:
                return {"note": "not compared: no scored variant"}
            shown.append((best, [r for r in run.records if r["variant"] == best]))
        return {"shown": shown}

    def paired(
        self,
        a: Sequence[Mapping[str, Any]],
        b: Sequence[Mapping[str, Any]],
        protocol: str,
        context: Any = None,
    ) -> PairedData | dict[str, str]:
        """The paired statistics of two runs' records of the compared variant (the same items).

        Default, for a task of one's own whose main metric is the mean of its per-item values
        (accuracy, a mean rating): each record is scored alone by :meth:`score`, the columns
        are (value, 1), the unit the item; the test is exact McNemar when every value is 0 or 1,
        else the paired permutation test. When the mean of the per-item values is not the
        figure :meth:`score` gives for all records (a corpus ratio such as CER or BLEU), the
        task must declare its own :meth:`paired`: the comparison is refused with a note."""
        import numpy as np

        def per_item(recs: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], float | None]:
            by_id = {str(r["id"]): r for r in recs}
            values = {}
            for i, r in by_id.items():
                v = value_of(self.score([r], protocol, None, {}).get("gen", {}), self.main_metric)
                if v is None:
                    return {}, None
                values[i] = v
            whole = self.score(list(recs), protocol, None, {}).get("gen", {})
            return values, value_of(whole, self.main_metric)

        (va, wa), (vb, wb) = per_item(a), per_item(b)
        ids = sorted(set(va) & set(vb))
        means_match = bool(ids) and all(
            w is not None
            and math.isclose(sum(v[i] for i in ids) / len(ids), w, rel_tol=1e-9, abs_tol=1e-12)
            for v, w in ((va, wa), (vb, wb))
        )
        if not ids or not means_match:
            return {
                "note": f"not compared: the {self.main_metric} of task {self.name} is not the "
                "mean of its per-item values; the task must declare its paired statistics "
                "(Task.paired)"
            }
        xa = np.array([[va[i], 1.0] for i in ids])
        xb = np.array([[vb[i], 1.0] for i in ids])
        test = self.paired_test
        if test is None:
            binary = all(v in (0.0, 1.0) for v in [*xa[:, 0], *xb[:, 0]])
            test = "mcnemar" if binary else "permutation"
        return PairedData(self.main_metric, xa, xb, ratio_of_sums, self.paired_unit, test=test)

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
