"""Seeded percentile bootstrap intervals that recompute each metric as it is defined.

KoALa-Bench sets are small (K-SAT 85 items, SCA-QA subsets 82-103, PA-QA 327 valid, SCF only
over the text-correct items), so a figure needs its uncertainty. Every interval here resamples
with replacement and recomputes the metric *as it is defined* on each resample:

* accuracy = correct / total;
* CER = sum of edits / sum of reference lengths (the published rule: "the reported figure is
  corpus-level"), never a mean of per-utterance CERs;
* BLEU from the summed sufficient statistics (sacreBLEU's corpus BLEU);
* SCF and the parametric proportion = sum(numerator & denominator) / sum(denominator), where
  the denominator (the text-correct items) varies from resample to resample;
* the judge score = the mean over the rated items (NaN items are not in the mean);
* PA-QA per segment: "an item with evidence in several segments counts once in each".

Where rows are not independent (the questions of one PA-QA passage, the segments of one TED
talk), ``clusters`` gives one key per item and whole clusters are resampled: each draw takes
every item of the drawn cluster. Resampling is seeded (``numpy.random.default_rng(seed)``) and
done as per-cluster draw counts, so 1000 resamples of thousands of items take milliseconds for
the sum-based metrics. A resample whose statistic is NaN (e.g. SCF with no text-correct item)
is dropped and counted (``dropped``); when more than half are NaN the interval is NaN.

An interval is never presented as certain when the bootstrap cannot say anything: with fewer
than :data:`MIN_UNITS` resampling units (items, passages, talks) the bootstrap distribution
has at most C(2n - 1, n) = 35 distinct values and its 2.5/97.5 % percentiles are the extremes
of the sample itself, and when every resample gives the same value (every item right, two
systems that agree on every item) the percentile interval has zero width although the sample
only shows no variation. In both cases the bounds are NaN (``None`` in JSON) and ``note`` says
why; a report then writes "no interval" with the reason instead of ``[1.0, 1.0]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "METHOD",
    "MIN_UNITS",
    "Interval",
    "accuracy_interval",
    "bleu_interval",
    "bootstrap",
    "cer_interval",
    "mean_interval",
    "ratio_interval",
    "segment_intervals",
    "subset_clusters",
]

METHOD = "percentile bootstrap"
MIN_UNITS = 5  # fewer resampling units than this: no interval (see the module docstring)
_CHUNK = 256  # resamples drawn at once (bounds memory to _CHUNK x n_clusters counts)


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval ``[low, high]`` at ``confidence`` and how it was drawn: ``cluster``
    names the unit resampled (``"item"``, ``"passage"``, ``"talk"``, ...), ``n_clusters`` how
    many there were, ``dropped`` how many resamples had no value (NaN). ``note`` says why
    the bounds are NaN when the bootstrap cannot give an interval (too few units, no
    variation, mostly undefined resamples)."""

    low: float
    high: float
    confidence: float
    method: str
    n_resamples: int
    seed: int
    cluster: str | None
    n_clusters: int
    dropped: int = 0
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN bounds become ``None``."""

        def bound(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        out: dict[str, Any] = {
            "low": bound(self.low),
            "high": bound(self.high),
            "confidence": self.confidence,
            "method": self.method,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "cluster": self.cluster,
            "n_clusters": self.n_clusters,
            "dropped": self.dropped,
        }
        if self.note:
            out["note"] = self.note
        return out


# ----------------------------------------------------------------------------------------------
# resampling core


def _check_options(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if isinstance(confidence, bool) or not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _cluster_index(clusters: Sequence[Hashable] | None, n_items: int) -> tuple[np.ndarray, int]:
    """Per item the number of its cluster (0.. in order of first appearance), and how many
    clusters there are. Without ``clusters`` every item is its own cluster."""
    if clusters is None:
        return np.arange(n_items), n_items
    if isinstance(clusters, np.ndarray):
        clusters = clusters.tolist()
    if isinstance(clusters, str | bytes) or not isinstance(clusters, Sequence):
        raise TypeError(f"clusters must be a list (one key per item), got {type(clusters)}")
    if len(clusters) != n_items:
        raise ValueError(f"clusters has {len(clusters)} keys for {n_items} items")
    number: dict[Hashable, int] = {}
    try:
        index = np.fromiter((number.setdefault(c, len(number)) for c in clusters), np.int64)
    except TypeError as exc:
        raise TypeError(f"clusters must be hashable keys: {exc}") from None
    return index, len(number)


def subset_clusters(
    clusters: Sequence[Hashable] | None, n_items: int, keep: Sequence[int]
) -> list[Hashable] | None:
    """The cluster keys of the items ``keep`` after checking there is one key per item of the
    ``n_items`` given (the scorers leave invalid items out before resampling)."""
    if clusters is None:
        return None
    _cluster_index(clusters, n_items)
    return [clusters[k] for k in keep]


def _draw_counts(n_clusters: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of a (resamples x clusters) matrix: how often each cluster is drawn when
    ``n_clusters`` clusters are drawn with replacement, ``n_resamples`` times."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        b = min(_CHUNK, n_resamples - done)
        draws = rng.integers(0, n_clusters, size=(b, n_clusters))
        flat = (draws + np.arange(b)[:, None] * n_clusters).ravel()
        yield np.bincount(flat, minlength=b * n_clusters).reshape(b, n_clusters)
        done += b


def _percentile(
    samples: np.ndarray,
    confidence: float,
    n_resamples: int,
    seed: int,
    cluster: str | None,
    n_clusters: int,
) -> Interval:
    """Percentile interval of ``samples`` with NaN resamples dropped; NaN bounds with a
    ``note`` when there are fewer than :data:`MIN_UNITS` units, when more than half of the
    resamples are NaN, or when every resample gives the same value."""
    finite = samples[~np.isnan(samples)]
    dropped = int(len(samples) - len(finite))
    low = high = math.nan
    note = None
    unit = cluster or "unit"
    if n_clusters < MIN_UNITS:
        note = (
            f"{n_clusters} {unit}{'' if n_clusters == 1 else 's'}: too few for a bootstrap "
            f"interval (at least {MIN_UNITS} needed)"
        )
    elif len(finite) == 0 or dropped * 2 > len(samples):
        note = f"{dropped} of {len(samples)} resamples have no value"
    elif float(np.ptp(finite)) <= 1e-12 * max(1.0, float(np.abs(finite).max())):
        note = (
            f"no variation: every resample gives {float(finite[0]):g}, so the bootstrap "
            "cannot bound it"
        )
    else:
        tail = (1.0 - confidence) / 2.0 * 100.0
        low, high = (float(x) for x in np.percentile(finite, [tail, 100.0 - tail]))
    return Interval(
        low, high, float(confidence), METHOD, n_resamples, seed, cluster, n_clusters, dropped, note
    )


def _name(clusters: Sequence[Hashable] | None, cluster_name: str | None) -> str:
    if cluster_name is not None:
        return cluster_name
    return "item" if clusters is None else "cluster"


def _empty(n_resamples: int, confidence: float, seed: int, cluster: str | None) -> Interval:
    """No item at all: the metric is undefined on every resample."""
    return Interval(
        math.nan,
        math.nan,
        float(confidence),
        METHOD,
        n_resamples,
        seed,
        cluster,
        0,
        n_resamples,
        "no item",
    )


def _resampled_statistics(
    statistic: Callable[[np.ndarray], Any],
    n_items: int,
    clusters: Sequence[Hashable] | None,
    n_resamples: int,
    seed: int,
) -> tuple[np.ndarray, int]:
    """(resamples x outputs) values of ``statistic`` on resampled item indices, and the number
    of clusters."""
    index, n_clusters = _cluster_index(clusters, n_items)
    items = np.arange(n_items)
    rows = []
    for counts in _draw_counts(n_clusters, n_resamples, seed):
        for row in counts:
            # every item of a drawn cluster, as often as its cluster was drawn
            rows.append(np.atleast_1d(np.asarray(statistic(np.repeat(items, row[index])), float)))
    return np.vstack(rows), n_clusters


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n_items: int,
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
) -> Interval:
    """Percentile bootstrap interval of ``statistic``.

    ``statistic(indices)`` recomputes the metric on the items at ``indices`` (an integer array
    with repeats, in item order). Without ``clusters`` the ``n_items`` items are resampled with
    replacement; with ``clusters`` (one hashable key per item) the clusters are, and each draw
    takes all items of the drawn cluster. NaN statistics are dropped and counted; more than
    half NaN gives a NaN interval. ``cluster_name`` names the unit resampled (default
    ``"item"``, or ``"cluster"`` with ``clusters``).
    """
    _check_options(n_resamples, confidence)
    name = _name(clusters, cluster_name)
    if n_items == 0:
        return _empty(n_resamples, confidence, seed, name)
    samples, n_clusters = _resampled_statistics(statistic, n_items, clusters, n_resamples, seed)
    if samples.shape[1] != 1:
        raise ValueError(f"statistic must return one number, got {samples.shape[1]}")
    return _percentile(samples[:, 0], confidence, n_resamples, seed, name, n_clusters)


def _resampled_sums(
    columns: np.ndarray,
    clusters: Sequence[Hashable] | None,
    n_resamples: int,
    seed: int,
) -> tuple[np.ndarray, int]:
    """(resamples x k) column sums over resampled items, vectorised: the per-cluster sums
    weighted by how often each cluster was drawn. The same draws as :func:`bootstrap`."""
    index, n_clusters = _cluster_index(clusters, len(columns))
    per_cluster = np.zeros((n_clusters, columns.shape[1]))
    np.add.at(per_cluster, index, columns)
    sums = [counts @ per_cluster for counts in _draw_counts(n_clusters, n_resamples, seed)]
    return np.vstack(sums), n_clusters


def _sum_interval(
    columns: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    clusters: Sequence[Hashable] | None,
    n_resamples: int,
    confidence: float,
    seed: int,
    cluster_name: str | None,
) -> Interval:
    _check_options(n_resamples, confidence)
    name = _name(clusters, cluster_name)
    if len(columns) == 0:
        return _empty(n_resamples, confidence, seed, name)
    sums, n_clusters = _resampled_sums(columns, clusters, n_resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = np.asarray(score(sums), dtype=float)
    return _percentile(samples, confidence, n_resamples, seed, name, n_clusters)


def _ratio(sums: np.ndarray) -> np.ndarray:
    """sum(column 0) / sum(column 1); NaN where the denominator is 0."""
    return np.where(sums[:, 1] > 0, sums[:, 0] / np.where(sums[:, 1] > 0, sums[:, 1], 1), np.nan)


def _bools(values: Sequence[Any], name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat list of booleans")
    return arr.astype(bool)


# ----------------------------------------------------------------------------------------------
# ready-made intervals


def accuracy_interval(
    correct: Sequence[bool],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
) -> Interval:
    """Interval of accuracy = correct / total over the resampled items."""
    c = _bools(correct, "correct")
    columns = np.column_stack([c, np.ones(len(c))]).astype(float)
    return _sum_interval(columns, _ratio, clusters, n_resamples, confidence, seed, cluster_name)


def cer_interval(
    edits: Sequence[int],
    ref_lengths: Sequence[int],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
    protocol: str = "koala",
) -> Interval:
    """Interval of the corpus CER, recomputed per resample as the published figure is: "sum of
    edits / sum of reference lengths" (not a mean of per-utterance CERs).

    An empty-reference utterance adds its edits (the hypothesis length) and nothing to the
    reference length, as in :mod:`koala.scoring.cer`; a resample whose references are all
    empty scores as the protocol's corpus rule says (:meth:`koala.scoring.cer.CERStats.score`:
    ``koala`` 0 with no edit, else 1; ``published`` 0).
    """
    e = np.asarray(edits, dtype=float)
    r = np.asarray(ref_lengths, dtype=float)
    if e.shape != r.shape or e.ndim != 1:
        raise ValueError(f"edits ({e.shape}) and ref_lengths ({r.shape}) must pair up")
    if (e < 0).any() or (r < 0).any():
        raise ValueError("edits and ref_lengths must be >= 0")

    published_empty = protocol == "published"

    def score(sums: np.ndarray) -> np.ndarray:
        ed, ref = sums[:, 0], sums[:, 1]
        no_ref = np.zeros(len(ed)) if published_empty else (ed > 0).astype(float)
        return np.where(ref > 0, ed / np.where(ref > 0, ref, 1), no_ref)

    columns = np.column_stack([e, r])
    return _sum_interval(columns, score, clusters, n_resamples, confidence, seed, cluster_name)


def bleu_interval(
    stats: np.ndarray,
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
) -> Interval:
    """Interval of corpus BLEU (0-100) recomputed from the summed sufficient statistics of each
    resample. ``stats``: one row per sentence as :mod:`koala.scoring.translation` computes them,
    the matching n-gram counts (1- to N-gram), the hypothesis n-gram totals, the system length
    and the reference length (``2N + 2`` columns)."""
    from koala.scoring.translation import _bleu_from_stats

    s = np.asarray(stats, dtype=float)
    if s.ndim != 2 or s.shape[1] < 4 or s.shape[1] % 2:
        raise ValueError(f"stats must be n_sentences x (2N + 2) statistics, got {s.shape}")
    order = (s.shape[1] - 2) // 2

    def score(sums: np.ndarray) -> np.ndarray:
        return np.array(
            [
                _bleu_from_stats(
                    row[:order], row[order : 2 * order], row[2 * order], row[2 * order + 1]
                )
                for row in np.rint(sums)
            ]
        )

    return _sum_interval(s, score, clusters, n_resamples, confidence, seed, cluster_name)


def ratio_interval(
    numerator: Sequence[bool],
    denominator: Sequence[bool],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
) -> Interval:
    """Interval of sum(numerator & denominator) / sum(denominator), the denominator recounted
    on each resample. SCF is "among the items the model answers correctly from text alone, the
    share whose answer follows the counterfactual speech": numerator = follows the speech,
    denominator = text-correct. A resample without a denominator item is NaN (dropped)."""
    num = _bools(numerator, "numerator")
    den = _bools(denominator, "denominator")
    if num.shape != den.shape:
        raise ValueError(f"numerator ({len(num)}) and denominator ({len(den)}) must pair up")
    columns = np.column_stack([num & den, den]).astype(float)
    return _sum_interval(columns, _ratio, clusters, n_resamples, confidence, seed, cluster_name)


def mean_interval(
    values: Sequence[float | None],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
) -> Interval:
    """Interval of the mean of ``values`` over the resampled items, NaN (or ``None``) items left
    out of the mean as the judge leaves unrated items out; a resample with no rated item is
    NaN (dropped)."""
    v = np.array([math.nan if x is None else float(x) for x in values], dtype=float)
    rated = ~np.isnan(v)
    columns = np.column_stack([np.where(rated, v, 0.0), rated.astype(float)])
    return _sum_interval(columns, _ratio, clusters, n_resamples, confidence, seed, cluster_name)


def segment_intervals(
    correct: Sequence[bool],
    segments: Sequence[Sequence[str]],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_name: str | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Interval]:
    """Per-segment accuracy intervals of PA-QA: "an item with evidence in several segments
    counts once in each"; the clusters (passages) are drawn once per resample for all
    segments. ``segments``: per item the segments of its evidence (an item in none still takes
    part in the draws). ``names``: the segments to report (default: those that occur, in order
    of first appearance); a segment with no item gets a NaN interval."""
    c = _bools(correct, "correct")
    if len(segments) != len(c):
        raise ValueError(f"segments has {len(segments)} items but correct has {len(c)}")
    rows = [{row} if isinstance(row, str) else set(row) for row in segments]
    if names is None:
        names = list(dict.fromkeys(s for row in segments for s in row))
    member = np.array([[s in row for s in names] for row in rows], dtype=bool).reshape(
        len(c), len(names)
    )
    # columns: per segment (correct & in segment, in segment)
    columns = np.concatenate([member & c[:, None], member], axis=1).astype(float)
    _check_options(n_resamples, confidence)
    name = _name(clusters, cluster_name)
    if len(c) == 0:
        return {s: _empty(n_resamples, confidence, seed, name) for s in names}
    sums, n_clusters = _resampled_sums(columns, clusters, n_resamples, seed)
    k = len(names)
    out = {}
    for j, s in enumerate(names):
        samples = _ratio(sums[:, [j, k + j]])
        out[s] = _percentile(samples, confidence, n_resamples, seed, name, n_clusters)
    return out
