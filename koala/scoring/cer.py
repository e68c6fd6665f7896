"""Character error rate over normalised Korean text.

The published KoALa-Bench rule: "normalise both sides by keeping only Hangul syllables and
jamo, digits and whitespace (Latin letters are deleted), then delete all whitespace; plain
Levenshtein over characters; the reported figure is corpus-level"

    CER = sum of edits / sum of reference lengths      (can exceed 1)

An empty normalised reference is scored as the published code does: its own CER is 0 if the
hypothesis is empty too, else 1; in the corpus figure it adds the hypothesis length to the edits
(all insertions) and nothing to the reference length. When every normalised reference is empty
(the sum of reference lengths is 0) the corpus CER is, under ``published``, 0 "whatever the
hypotheses" (the authors divide by no reference length); under ``koala`` the per-utterance rule
carries over to the corpus: 0 when there is no edit, else 1.

Otherwise the two protocols (:mod:`koala.scoring.protocol`) differ only in the default
normalisation:
``published`` uses the ``koala_published`` preset (that rule exactly), ``koala`` the ``koala``
preset (NFC first, then that rule), so NFD-decomposed Hangul identical to the reference scores
0 instead of counting every conjoining jamo as a character. An explicit ``normalization=``
wins over the protocol.

Counts are kept as additive sufficient statistics (:class:`CERStats`), so shards and corpora
merge exactly (``a + b``) and the score is derived from them, never averaged.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

from koala.normalize import Step, get_normalizer, normalize_batch
from koala.scoring._validate import check_pairs
from koala.scoring.bootstrap import Interval, cer_interval
from koala.scoring.protocol import check_protocol

__all__ = ["PROTOCOL_NORMALIZATION", "CERResult", "CERStats", "cer_stats", "corpus_cer"]

# the normalisation preset each protocol uses when ``normalization`` is left at "default"
PROTOCOL_NORMALIZATION: dict[str, str] = {"koala": "koala", "published": "koala_published"}


@dataclass(frozen=True)
class CERStats:
    """Additive edit counts of one or more (reference, hypothesis) pairs."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    reference_length: int = 0
    hypothesis_length: int = 0
    utterances: int = 0
    empty_references: int = 0

    @property
    def edits(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def cer(self) -> float:
        """sum of edits / sum of reference lengths under the ``koala`` rule (:meth:`score`)."""
        return self.score("koala")

    def score(self, protocol: str = "koala") -> float:
        """sum of edits / sum of reference lengths. An all-empty reference side: ``koala``
        follows the per-utterance empty-reference rule (0 when there is no edit, else 1);
        ``published`` gives 0, "when the sum of reference lengths is 0 the published corpus
        CER is 0, whatever the hypotheses"."""
        if self.reference_length == 0:
            if check_protocol(protocol) == "published":
                return 0.0
            return 0.0 if self.edits == 0 else 1.0
        return self.edits / self.reference_length

    def __add__(self, other: CERStats) -> CERStats:
        if not isinstance(other, CERStats):
            return NotImplemented
        return CERStats(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class CERResult:
    """Corpus CER with its counts, the per-utterance CERs when asked for, and a bootstrap
    interval (``interval``, ``cer_ci`` in :meth:`as_dict`) when one was asked for."""

    stats: CERStats
    normalization: str
    per_utterance: list[float] | None = field(default=None)
    protocol: str = "koala"
    interval: Interval | None = None

    @property
    def cer(self) -> float:
        """The corpus CER under the result's protocol (:meth:`CERStats.score`)."""
        return self.stats.score(self.protocol)

    def as_dict(self) -> dict[str, object]:
        s = self.stats
        out: dict[str, object] = {
            "cer": self.cer,
            "substitutions": s.substitutions,
            "deletions": s.deletions,
            "insertions": s.insertions,
            "hits": s.hits,
            "reference_length": s.reference_length,
            "hypothesis_length": s.hypothesis_length,
            "num_utterances": s.utterances,
            "empty_references": s.empty_references,
            "normalization": self.normalization,
            "protocol": self.protocol,
        }
        if self.per_utterance is not None:
            out["per_utterance_cer"] = self.per_utterance
        if self.interval is not None:
            out["cer_ci"] = self.interval.as_dict()
        return out


def _sdi(reference: str, hypothesis: str) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of one normalised pair, via rapidfuzz (C++).

    Only the substitutions need the alignment: with ``E`` edits, ``D + I = E - S`` and
    ``I - D = len(hypothesis) - len(reference)``.
    """
    n, m = len(reference), len(hypothesis)
    if n == 0:
        return 0, 0, m
    edits = Levenshtein.distance(reference, hypothesis)
    if edits == abs(m - n):  # identical, or pure insertions/deletions
        s = 0
    else:
        s = [op[0] for op in Levenshtein.editops(reference, hypothesis).as_list()].count("replace")
    rest = edits - s
    return s, (rest - (m - n)) // 2, (rest + (m - n)) // 2


def cer_stats(reference: str, hypothesis: str) -> CERStats:
    """Edit counts of one already-normalised pair."""
    s, d, i = _sdi(reference, hypothesis)
    n = len(reference)
    return CERStats(
        substitutions=s,
        deletions=d,
        insertions=i,
        hits=n - s - d,
        reference_length=n,
        hypothesis_length=len(hypothesis),
        utterances=1,
        empty_references=int(n == 0),
    )


def corpus_cer(
    predictions: Sequence[str],
    references: Sequence[str],
    normalization: str | Step | None = "default",
    return_per_utterance: bool = False,
    protocol: str = "koala",
    confidence: float | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
) -> CERResult:
    """Corpus-level CER of ``predictions`` against ``references`` after ``normalization``.

    ``normalization`` is a preset name from :data:`koala.normalize.PRESETS`, a callable,
    ``None`` for raw text, or ``"default"``: the protocol's preset (``koala`` -> ``"koala"``,
    the published rule after NFC; ``published`` -> ``"koala_published"``, the rule exactly).

    ``confidence`` (e.g. 0.95) adds a seeded percentile bootstrap interval of the corpus CER
    (:func:`koala.scoring.bootstrap.cer_interval`: sum of edits / sum of reference lengths of
    each resample of ``n_resamples``, never a mean of per-utterance CERs); ``clusters`` (one
    key per utterance) resamples clusters instead of utterances.
    """
    if normalization == "default":
        normalization = PROTOCOL_NORMALIZATION[check_protocol(protocol)]
    else:
        check_protocol(protocol)
    check_pairs(predictions, references)
    norm = get_normalizer(normalization)
    refs = normalize_batch(norm, references)
    hyps = normalize_batch(norm, predictions)
    per_utt: list[float] | None = [] if return_per_utterance else None
    edits: list[int] = []
    s = d = i = n_ref = empty = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        ps, pd, pi = _sdi(ref, hyp)
        s += ps
        d += pd
        i += pi
        n = len(ref)
        n_ref += n
        if n == 0:
            empty += 1
        edits.append(ps + pd + pi)
        if per_utt is not None:
            per_utt.append((ps + pd + pi) / n if n else float(ps + pd + pi > 0))
    total = CERStats(
        substitutions=s,
        deletions=d,
        insertions=i,
        hits=n_ref - s - d,
        reference_length=n_ref,
        hypothesis_length=sum(map(len, hyps)),
        utterances=len(refs),
        empty_references=empty,
    )
    name = normalization if isinstance(normalization, str) else repr(normalization)
    interval = None
    if confidence is not None:
        interval = cer_interval(
            edits,
            [len(r) for r in refs],
            clusters,
            n_resamples,
            confidence,
            seed,
            protocol=protocol,
        )
    return CERResult(
        stats=total,
        normalization=name,
        per_utterance=per_utt,
        protocol=protocol,
        interval=interval,
    )
