"""Character error rate over normalised Korean text.

The published KoALa-Bench rule: normalise both sides with the ``koala`` preset (keep Hangul
syllables and jamo, digits and whitespace, then delete all whitespace), align by plain
Levenshtein over characters, and report the corpus figure

    CER = sum of edits / sum of reference lengths      (can exceed 1)

An empty normalised reference is scored as the published code does: its own CER is 0 if the
hypothesis is empty too, else 1; in the corpus figure it adds the hypothesis length to the edits
(all insertions) and nothing to the reference length.

Counts are kept as additive sufficient statistics (:class:`CERStats`), so shards and corpora
merge exactly (``a + b``) and the score is derived from them, never averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

from koala.normalize import Step, get_normalizer
from koala.scoring._validate import check_pairs

__all__ = ["CERResult", "CERStats", "cer_stats", "corpus_cer"]


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
        """sum of edits / sum of reference lengths; an all-empty reference side follows the
        empty-reference rule (0 when there is no edit, else 1)."""
        if self.reference_length == 0:
            return 0.0 if self.edits == 0 else 1.0
        return self.edits / self.reference_length

    def __add__(self, other: CERStats) -> CERStats:
        if not isinstance(other, CERStats):
            return NotImplemented
        return CERStats(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class CERResult:
    """Corpus CER with its counts, and the per-utterance CERs when asked for."""

    stats: CERStats
    normalization: str
    per_utterance: list[float] | None = field(default=None)

    @property
    def cer(self) -> float:
        return self.stats.cer

    def as_dict(self) -> dict[str, object]:
        s = self.stats
        out: dict[str, object] = {
            "cer": s.cer,
            "substitutions": s.substitutions,
            "deletions": s.deletions,
            "insertions": s.insertions,
            "hits": s.hits,
            "reference_length": s.reference_length,
            "hypothesis_length": s.hypothesis_length,
            "num_utterances": s.utterances,
            "empty_references": s.empty_references,
            "normalization": self.normalization,
        }
        if self.per_utterance is not None:
            out["per_utterance_cer"] = self.per_utterance
        return out


def cer_stats(reference: str, hypothesis: str) -> CERStats:
    """Edit counts of one already-normalised pair (Levenshtein via rapidfuzz's C++ core)."""
    n, m = len(reference), len(hypothesis)
    if n == 0:
        return CERStats(insertions=m, hypothesis_length=m, utterances=1, empty_references=1)
    distance = Levenshtein.distance(reference, hypothesis)
    if distance == 0:
        return CERStats(hits=n, reference_length=n, hypothesis_length=m, utterances=1)
    s = d = i = 0
    for tag, _, _ in Levenshtein.editops(reference, hypothesis):
        if tag == "replace":
            s += 1
        elif tag == "delete":
            d += 1
        else:
            i += 1
    return CERStats(
        substitutions=s,
        deletions=d,
        insertions=i,
        hits=n - s - d,
        reference_length=n,
        hypothesis_length=m,
        utterances=1,
    )


def corpus_cer(
    predictions: Sequence[str],
    references: Sequence[str],
    normalization: str | Step | None = "koala",
    return_per_utterance: bool = False,
) -> CERResult:
    """Corpus-level CER of ``predictions`` against ``references`` after ``normalization``.

    ``normalization`` is a preset name from :data:`koala.normalize.PRESETS` (default ``"koala"``,
    the published rule), a callable, or ``None`` for raw text.
    """
    check_pairs(predictions, references)
    norm = get_normalizer(normalization)
    per_utt: list[float] | None = [] if return_per_utterance else None
    s = d = i = h = n_ref = n_hyp = empty = 0
    for ref_raw, hyp_raw in zip(references, predictions, strict=True):
        st = cer_stats(norm(ref_raw), norm(hyp_raw))
        s += st.substitutions
        d += st.deletions
        i += st.insertions
        h += st.hits
        n_ref += st.reference_length
        n_hyp += st.hypothesis_length
        empty += st.empty_references
        if per_utt is not None:
            per_utt.append(st.cer)
    total = CERStats(s, d, i, h, n_ref, n_hyp, len(references), empty)
    name = normalization if isinstance(normalization, str) else repr(normalization)
    return CERResult(stats=total, normalization=name, per_utterance=per_utt)
