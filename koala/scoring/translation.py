"""Speech-translation metrics (English speech -> Korean text): BLEU, METEOR, BERTScore.

The published KoALa-Bench rule for ST (``Translation/korean_normalizer.py`` ``tokenize_korean``):

    "keep Hangul syllables, both jamo blocks, Latin letters a-z A-Z (case kept), digits and
    whitespace; everything else becomes a space; then spaces are removed and the text split into
    characters. [...] BLEU with sacreBLEU over those characters, METEOR (NLTK) over them,
    reported x100; BERTScore with ``xlm-roberta-large``, ``lang="ko"``"

This differs from the CER rule, which deletes Latin letters. The character classes are defined
once, in :mod:`koala.normalize` (presets ``koala_st_published`` and ``koala_st``).

Two protocols (:mod:`koala.scoring.protocol`):

* ``protocol="published"``: the ``koala_st_published`` preset (that rule exactly) and METEOR
  reported x100 (0-100), as the authors report it.
* ``protocol="koala"`` (default): the ``koala_st`` preset (NFC first, then the same rule, so
  NFD-decomposed Hangul is not counted jamo by jamo) and METEOR on its own 0-1 scale.

In both, Latin letters are kept with their case, so names and acronyms count ("TED" vs "ted"
is not a match for BLEU); BLEU is 0-100. An explicit ``normalization=`` wins over the protocol.
The output says which scale METEOR is on (``meteor_scale``), and the signatures record the
preset (``norm:``).

How each part reproduces the rule:

* **BLEU** (``tokenize="char-nospace"``, the default). Both sides go through the preset, all
  whitespace is deleted, and sacreBLEU's own ``tokenize="char"`` splits the result into
  characters. Because the normalised text holds no whitespace and no punctuation, this is
  exactly "sacreBLEU over characters": sacreBLEU's default ``13a`` tokenizer over the
  characters joined by spaces gives the same n-grams and the same number (the tests check
  both). Scores are sacreBLEU's: 0-100, 4-gram, ``exp`` smoothing, brevity penalty, case
  kept. The result keeps the additive sufficient statistics (matching and total n-gram
  counts, system and reference lengths) apart from the score, so shards merge exactly
  (:meth:`BLEUStats.__add__`) and a bootstrap interval resamples sentences exactly; and
  sacreBLEU's signature, extended with ``norm:<preset>|spaces:<removed|kept>``, records every
  option that changes the number.
* ``tokenize="char"`` keeps word spacing: ``koala_spaced`` normalisation (whitespace collapsed,
  not deleted; Latin letters deleted) and every space becomes the token ``▁`` (U+2581) before
  sacreBLEU's ``char`` tokenizer runs, so n-grams across a word boundary must match the
  spacing too. (sacreBLEU's ``char`` tokenizer alone would drop spaces.) Not the published
  number, in either protocol.
* ``tokenize="ko-mecab"``: ``koala_spaced`` normalisation, then sacreBLEU's mecab-ko morpheme
  tokenizer (the ``sacrebleu[ko]`` extra). Not the published number.
* **METEOR**: :func:`nltk.translate.meteor_score.meteor_score` per sentence over the same
  tokens as BLEU (characters by default), averaged over sentences (NLTK's METEOR is
  sentence-level; the published figure is taken to be the mean). NLTK lower-cases tokens
  before matching (its default ``preprocess=str.lower``, kept in both protocols), so METEOR,
  unlike BLEU, does not tell "T" from "t". WordNet is replaced by a stand-in without synsets,
  so nothing is ever downloaded: on single characters WordNet has next to nothing to offer (it
  can list a Latin letter among a digit's lemmas, e.g. ``i`` for ``1``, which the published
  run may match in its synonym stage and this one does not; Hangul and digits alone are
  unaffected).
  Range 0-1 (``koala``) or 0-100 (``published``, "reported x100").
* **BERTScore**: :func:`bert_score.score` with ``model_type="xlm-roberta-large"``,
  ``lang="ko"`` and bert-score's own layer for that model (17), no idf, no baseline rescaling,
  on the raw text (the published code asks for rescaling, but bert-score has no Korean
  baseline file and returns the unrescaled scores, so the number is the same). Precision,
  recall and F1 are sentence means in [-1, 1], in practice 0.8-1 for this model; the
  leaderboard shows F1 x 100. The same in both protocols.

**Groups** (``groups=``, e.g. the subsets of a union config): every function here can score
named groups of the sentences in the same call, from the per-sentence work done once for the
whole set. Each corpus figure is an aggregate of per-sentence values: BLEU is computed from the
summed sufficient statistics (sacreBLEU's ``corpus_score`` is exactly that sum), METEOR and
BERTScore are sentence means. So a group's BLEU and METEOR are bit-identical to a call on that
group alone. A group's BERTScore is the mean of the per-sentence values of the whole-set model
run; bert-score pads sentences in length-sorted batches, so a sentence's value can move in the
last float32 bit (about 1e-7) with the other sentences of its batch, and a call on the group
alone may differ from it, and from itself with other companions, by that much.

BLEU and METEOR never import torch; BERTScore imports it (through bert-score) only when asked.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sacrebleu.metrics import BLEU

from koala.normalize import Step, get_normalizer, normalize_batch
from koala.scoring._validate import check_pairs
from koala.scoring.bootstrap import Interval, bleu_interval
from koala.scoring.protocol import check_protocol

Groups = Mapping[Hashable, Sequence[int]]

__all__ = [
    "DEFAULT_BERTSCORE_MODEL",
    "METEOR_SCALE",
    "METRICS",
    "PROTOCOL_NORMALIZATION",
    "TOKENIZE",
    "BERTScoreModelUnavailable",
    "BERTScoreResult",
    "BLEUResult",
    "BLEUStats",
    "Groups",
    "METEORResult",
    "corpus_bertscore",
    "corpus_bleu",
    "corpus_meteor",
    "translation_scores",
]

METRICS: tuple[str, ...] = ("bleu", "meteor", "bertscore")
# tokenize -> (default normalisation preset, whether spaces survive, sacreBLEU tokenizer)
TOKENIZE: dict[str, tuple[str, bool, str]] = {
    "char-nospace": ("koala_st", False, "char"),
    "char": ("koala_spaced", True, "char"),
    "ko-mecab": ("koala_spaced", True, "ko-mecab"),
}
# the preset each protocol uses for tokenize="char-nospace" when normalization is "default"
PROTOCOL_NORMALIZATION: dict[str, str] = {"koala": "koala_st", "published": "koala_st_published"}
# METEOR's reported scale per protocol: 0-1, or "reported x100" (published)
METEOR_SCALE: dict[str, float] = {"koala": 1.0, "published": 100.0}
SPACE_TOKEN = "\u2581"  # "▁": a visible token for a word boundary under tokenize="char"
DEFAULT_BERTSCORE_MODEL = "xlm-roberta-large"
DEFAULT_SEED = 12345  # sacreBLEU's default bootstrap seed
_WS = re.compile(r"\s+")


# ----------------------------------------------------------------------------------------------
# shared text preparation


def _norm_name(normalization: str | Step | None) -> str:
    if normalization is None:
        return "none"
    if isinstance(normalization, str):
        return normalization
    return getattr(normalization, "__name__", None) or "custom"


def _check_tokenize(tokenize: str) -> None:
    if tokenize not in TOKENIZE:
        raise ValueError(f"tokenize={tokenize!r}: choose one of {sorted(TOKENIZE)}")


def _resolve_normalization(
    tokenize: str, normalization: str | Step | None, protocol: str = "koala"
) -> tuple[Step, str]:
    """``normalization`` left at the sentinel ``"default"`` follows ``tokenize`` and, for
    ``char-nospace``, the protocol (:data:`PROTOCOL_NORMALIZATION`)."""
    check_protocol(protocol)
    if normalization == "default":
        if tokenize == "char-nospace":
            normalization = PROTOCOL_NORMALIZATION[protocol]
        else:
            normalization = TOKENIZE[tokenize][0]
    return get_normalizer(normalization), _norm_name(normalization)


def _prepare(texts: Iterable[str], tokenize: str, norm: Step) -> list[str]:
    """Normalise and lay out spaces for ``tokenize`` (before sacreBLEU's own tokenizer)."""
    keep_spaces = TOKENIZE[tokenize][1]
    out = []
    for text in normalize_batch(norm, list(texts)):
        if not keep_spaces:
            text = _WS.sub("", text)
        else:
            text = _WS.sub(" ", text).strip()
            if tokenize == "char":
                text = text.replace(" ", SPACE_TOKEN)
        out.append(text)
    return out


def _spaces_field(tokenize: str) -> str:
    if not TOKENIZE[tokenize][1]:
        return "removed"
    return f"kept-as-U+{ord(SPACE_TOKEN):04X}" if tokenize == "char" else "kept"


def _check_groups(groups: Groups | None, n: int) -> dict[Hashable, list[int]]:
    """``groups`` as lists of sentence indices; each group non-empty, each index in range."""
    out: dict[Hashable, list[int]] = {}
    for name, idx in (groups or {}).items():
        idx = [int(i) for i in idx]
        if not idx:
            raise ValueError(f"group {name!r} is empty; nothing to score")
        if not all(0 <= i < n for i in idx):
            raise ValueError(f"group {name!r} has an index outside 0..{n - 1}")
        out[name] = idx
    return out


# ----------------------------------------------------------------------------------------------
# BLEU


@dataclass(frozen=True)
class BLEUStats:
    """sacreBLEU's additive sufficient statistics: per n-gram order the matching (``counts``)
    and hypothesis (``totals``) n-grams, and the hypothesis/reference lengths in tokens."""

    counts: tuple[int, ...] = (0, 0, 0, 0)
    totals: tuple[int, ...] = (0, 0, 0, 0)
    sys_len: int = 0
    ref_len: int = 0

    def __add__(self, other: BLEUStats) -> BLEUStats:
        if not isinstance(other, BLEUStats):
            return NotImplemented
        return BLEUStats(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            tuple(a + b for a, b in zip(self.totals, other.totals, strict=True)),
            self.sys_len + other.sys_len,
            self.ref_len + other.ref_len,
        )

    @property
    def score(self) -> float:
        """Corpus BLEU of these statistics (sacreBLEU defaults: 4-gram, ``exp`` smoothing)."""
        return _bleu_from_stats(self.counts, self.totals, self.sys_len, self.ref_len)


def _bleu_from_stats(counts: Sequence[int], totals: Sequence[int], sys_len: int, ref_len: int):
    return BLEU.compute_bleu(
        [int(c) for c in counts],
        [int(t) for t in totals],
        int(sys_len),
        int(ref_len),
        smooth_method="exp",
    ).score


def _bleu_of_rows(rows: np.ndarray) -> Any:
    """sacreBLEU's ``BLEUScore`` of the summed per-sentence rows of :func:`_sentence_stats`:
    exactly what ``corpus_score`` gives for those sentences, which sums the same statistics."""
    c = [int(x) for x in rows.sum(axis=0)]
    return BLEU.compute_bleu(c[0:4], c[4:8], c[8], c[9], smooth_method="exp")


@dataclass(frozen=True)
class BLEUResult:
    """Corpus BLEU (0-100) with its statistics, signature and optional bootstrap intervals:
    the sacreBLEU-style ``ci_low``/``ci_high`` (``n_bootstrap``) and ``interval`` (an
    :class:`~koala.scoring.bootstrap.Interval`, ``bleu_ci`` in :meth:`as_dict`); ``groups``:
    the result of each requested group of sentences (not in :meth:`as_dict`)."""

    score: float
    stats: BLEUStats
    precisions: tuple[float, ...]
    bp: float
    signature: str
    tokenize: str
    normalization: str
    num_sentences: int
    n_bootstrap: int = 0
    seed: int | None = None
    confidence: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    bootstrap_mean: float | None = None
    per_sentence: list[float] | None = field(default=None)
    interval: Interval | None = None
    groups: dict[Hashable, BLEUResult] | None = None

    def as_dict(self, prefix: str = "bleu") -> dict[str, Any]:
        s = self.stats
        out: dict[str, Any] = {
            prefix: self.score,
            f"{prefix}_counts": list(s.counts),
            f"{prefix}_totals": list(s.totals),
            f"{prefix}_sys_len": s.sys_len,
            f"{prefix}_ref_len": s.ref_len,
            f"{prefix}_precisions": list(self.precisions),
            f"{prefix}_bp": self.bp,
            f"{prefix}_signature": self.signature,
        }
        if self.n_bootstrap:
            out.update(
                {
                    f"{prefix}_ci_low": self.ci_low,
                    f"{prefix}_ci_high": self.ci_high,
                    f"{prefix}_bootstrap_mean": self.bootstrap_mean,
                    f"{prefix}_confidence": self.confidence,
                }
            )
        if self.per_sentence is not None:
            out[f"{prefix}_per_sentence"] = self.per_sentence
        if self.interval is not None:
            out[f"{prefix}_ci"] = self.interval.as_dict()
        return out


def _sentence_stats(bleu: BLEU, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """One row per sentence: counts (4), totals (4), sys_len, ref_len; the rows sum to the
    corpus statistics."""
    rows = []
    for h, r in zip(hyps, refs, strict=True):
        s = bleu.corpus_score([h], [[r]])
        rows.append([*s.counts, *s.totals, s.sys_len, s.ref_len])
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), 10)


def corpus_bleu(
    predictions: Sequence[str],
    references: Sequence[str],
    tokenize: str = "char-nospace",
    normalization: str | Step | None = "default",
    n_bootstrap: int = 0,
    seed: int = DEFAULT_SEED,
    confidence: float | None = None,
    return_per_sentence: bool = False,
    protocol: str = "koala",
    n_resamples: int = 1000,
    clusters: Sequence[Hashable] | None = None,
    groups: Groups | None = None,
) -> BLEUResult:
    """Corpus BLEU of ``predictions`` against ``references`` (one reference per sentence).

    ``tokenize``: ``"char-nospace"`` (default, the published protocol), ``"char"`` (spacing
    kept as ``▁`` tokens) or ``"ko-mecab"``. ``normalization``: a preset of
    :data:`koala.normalize.PRESETS`, a callable or ``None``; ``"default"`` follows the
    protocol for ``char-nospace`` (``koala`` -> ``koala_st``, ``published`` ->
    ``koala_st_published``: Latin letters kept, case kept) and is ``koala_spaced`` otherwise.
    BLEU is 0-100 in both protocols.

    ``n_bootstrap > 0`` adds a percentile bootstrap interval at ``confidence`` (0.95 when
    ``None``): sentences are resampled with replacement (numpy ``default_rng(seed)``) and BLEU
    is recomputed from the summed per-sentence statistics, which is exact because BLEU's
    statistics are additive (``ci_low``/``ci_high``, ``bleu_ci_low``/``bleu_ci_high``).
    ``confidence`` set (e.g. 0.95) adds ``interval`` (``bleu_ci``), the project-wide interval
    of :func:`koala.scoring.bootstrap.bleu_interval` over ``n_resamples`` resamples from
    ``seed``; with ``clusters`` (one key per sentence, e.g. the TED talk: its segments share a
    speaker and a topic) whole clusters are resampled and the unit is named ``"talk"``.
    ``return_per_sentence`` adds each sentence's own BLEU (sacreBLEU ``sentence_score``).

    ``groups`` (name -> sentence indices) adds ``groups``: per name the result of this call on
    those sentences alone without intervals or per-sentence lists, summed from the per-sentence
    statistics computed once here (bit-identical to a separate call).
    """
    check_pairs(predictions, references)
    group_idx = _check_groups(groups, len(predictions))
    _check_tokenize(tokenize)
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    legacy_confidence = 0.95 if confidence is None else confidence
    if not 0.0 < legacy_confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    norm, norm_name = _resolve_normalization(tokenize, normalization, protocol)
    hyps = _prepare(predictions, tokenize, norm)
    refs = _prepare(references, tokenize, norm)

    bleu = BLEU(tokenize=TOKENIZE[tokenize][2])
    rows = _sentence_stats(bleu, hyps, refs)  # the per-sentence work, done once
    sig = bleu.get_signature()

    def result(part: np.ndarray, **extra: Any) -> BLEUResult:
        score = _bleu_of_rows(part)
        return BLEUResult(
            score=float(score.score),
            stats=BLEUStats(tuple(score.counts), tuple(score.totals), score.sys_len, score.ref_len),
            precisions=tuple(float(p) for p in score.precisions),
            bp=float(score.bp),
            signature=f"{sig.format()}|norm:{norm_name}|spaces:{_spaces_field(tokenize)}",
            tokenize=tokenize,
            normalization=norm_name,
            num_sentences=len(part),
            **extra,
        )

    group_results = None
    if groups is not None:  # before the signature gains the bootstrap fields
        group_results = {g: result(rows[idx]) for g, idx in group_idx.items()}
    ci_low = ci_high = bs_mean = None
    per_sentence = None
    if return_per_sentence:  # sacreBLEU's sentence BLEU (effective order, exp smoothing)
        sent = BLEU(tokenize=TOKENIZE[tokenize][2], effective_order=True)
        per_sentence = [sent.sentence_score(h, [r]).score for h, r in zip(hyps, refs, strict=True)]
    interval = None
    if confidence is not None:
        name = None if clusters is None else "talk"
        interval = bleu_interval(rows, clusters, n_resamples, confidence, seed, name)
    if n_bootstrap:
        sig.update("bs", n_bootstrap)
        sig.update("seed", seed)
        rng = np.random.default_rng(seed)
        n = len(rows)
        samples = np.empty(n_bootstrap)
        for b in range(n_bootstrap):
            weights = np.bincount(rng.integers(0, n, n), minlength=n)
            c = weights @ rows
            samples[b] = _bleu_from_stats(c[0:4], c[4:8], c[8], c[9])
        tail = (1.0 - legacy_confidence) / 2.0 * 100.0
        ci_low, ci_high = (float(x) for x in np.percentile(samples, [tail, 100.0 - tail]))
        bs_mean = float(samples.mean())
    return result(
        rows,
        n_bootstrap=n_bootstrap,
        seed=seed if n_bootstrap else None,
        confidence=legacy_confidence if n_bootstrap else None,
        ci_low=ci_low,
        ci_high=ci_high,
        bootstrap_mean=bs_mean,
        per_sentence=per_sentence,
        interval=interval,
        groups=group_results,
    )


# ----------------------------------------------------------------------------------------------
# METEOR


class _NoWordNet:
    """Stands in for ``nltk.corpus.wordnet`` in METEOR: no word has a synset, so the synonym
    stage matches nothing and the WordNet corpus is never loaded or downloaded."""

    def synsets(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def __repr__(self) -> str:
        return "NoWordNet()"


@dataclass(frozen=True)
class METEORResult:
    """Mean sentence METEOR and the settings that produced it. ``scale`` is 1 (0-1) or 100
    (0-100, the published "reported x100"); ``score`` and ``per_sentence`` are on it.
    ``groups``: the result of each requested group of sentences (not in :meth:`as_dict`)."""

    score: float
    signature: str
    num_sentences: int
    per_sentence: list[float] | None = field(default=None)
    scale: float = 1.0
    groups: dict[Hashable, METEORResult] | None = None

    def as_dict(self, prefix: str = "meteor") -> dict[str, Any]:
        out: dict[str, Any] = {
            prefix: self.score,
            f"{prefix}_scale": f"0-{self.scale:g}",
            f"{prefix}_signature": self.signature,
        }
        if self.per_sentence is not None:
            out[f"{prefix}_per_sentence"] = self.per_sentence
        return out


def _tokenizer(tokenize: str) -> Callable[[str], str]:
    return BLEU(tokenize=TOKENIZE[tokenize][2]).tokenizer


def corpus_meteor(
    predictions: Sequence[str],
    references: Sequence[str],
    tokenize: str = "char-nospace",
    normalization: str | Step | None = "default",
    alpha: float = 0.9,
    beta: float = 3.0,
    gamma: float = 0.5,
    return_per_sentence: bool = False,
    protocol: str = "koala",
    groups: Groups | None = None,
) -> METEORResult:
    """Mean over sentences of NLTK's METEOR on the tokens BLEU uses (characters by default).

    NLTK's defaults otherwise: lower-casing, Porter stemmer (a no-op on Hangul and digits),
    ``alpha=0.9, beta=3, gamma=0.5``; an empty side scores 0. WordNet is replaced by a stand-in
    with no synsets, so nothing is ever downloaded (see the module docstring). ``protocol``
    picks the default normalisation as for :func:`corpus_bleu` and the scale: 0-1 under
    ``koala``, x100 under ``published`` (the published figure is "reported x100").

    ``groups`` (name -> sentence indices) adds ``groups``: per name the mean of those
    sentences' scores computed here (``math.fsum`` is exactly rounded, so bit-identical to a
    separate call on them), without per-sentence lists.
    """
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import meteor_score

    check_pairs(predictions, references)
    group_idx = _check_groups(groups, len(predictions))
    _check_tokenize(tokenize)
    norm, norm_name = _resolve_normalization(tokenize, normalization, protocol)
    scale = METEOR_SCALE[protocol]
    tok = _tokenizer(tokenize)
    hyps = [tok(t).split() for t in _prepare(predictions, tokenize, norm)]
    refs = [tok(t).split() for t in _prepare(references, tokenize, norm)]
    stemmer, wordnet = PorterStemmer(), _NoWordNet()
    scores = [
        scale
        * float(
            meteor_score(
                [r], h, stemmer=stemmer, wordnet=wordnet, alpha=alpha, beta=beta, gamma=gamma
            )
        )
        for h, r in zip(hyps, refs, strict=True)
    ]
    signature = (
        f"meteor|nltk:{importlib.metadata.version('nltk')}|tok:{tokenize}|norm:{norm_name}"
        f"|spaces:{_spaces_field(tokenize)}|stem:porter|wordnet:none"
        f"|alpha:{alpha}|beta:{beta}|gamma:{gamma}|avg:sentence-mean|scale:0-{scale:g}"
    )

    def result(values: list[float], **extra: Any) -> METEORResult:
        return METEORResult(
            score=math.fsum(values) / len(values),
            signature=signature,
            num_sentences=len(values),
            scale=scale,
            **extra,
        )

    return result(
        scores,
        per_sentence=scores if return_per_sentence else None,
        groups=None
        if groups is None
        else {g: result([scores[i] for i in idx]) for g, idx in group_idx.items()},
    )


# ----------------------------------------------------------------------------------------------
# BERTScore


class BERTScoreModelUnavailable(RuntimeError):
    """The BERTScore model cannot be loaded (absent offline, or not a model directory)."""


def _hub_offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in truthy:
            return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _how_to_provide(model: str) -> str:
    return (
        f"Provide it in one of these ways: (1) download it once with network access, e.g. "
        f"`hf download {model}` (or `huggingface-cli download {model}`), into the cache that "
        f"HF_HOME / HF_HUB_CACHE point to; (2) pass model_path=<a local directory holding its "
        f"config.json, tokenizer and weights> (num_layers defaults to bert-score's layer for "
        f"model_type={model!r}); (3) pass model_type=<local model directory> with num_layers; "
        f"or (4) unset HF_HUB_OFFLINE to let it download. Or switch BERTScore off with "
        f"metrics=['bleu', 'meteor']."
    )


def _locate_bertscore_model(
    model_type: str | None, model_path: str | os.PathLike[str] | None
) -> tuple[str, str]:
    """(what to load, name to report). Fails before torch is imported when the model cannot
    be there: ``model_path`` without ``config.json``, or offline and not in the Hub cache."""
    name = model_type or DEFAULT_BERTSCORE_MODEL
    load = os.fspath(model_path) if model_path is not None else name
    if model_path is not None or os.path.isdir(load):
        if not os.path.isfile(os.path.join(load, "config.json")):
            raise BERTScoreModelUnavailable(
                f"BERTScore model directory {load!r} has no config.json. " + _how_to_provide(name)
            )
        return load, name
    if _hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(load, "config.json"), str):
            raise BERTScoreModelUnavailable(
                f"BERTScore model {load!r} is not in the local Hugging Face cache and "
                f"HF_HUB_OFFLINE=1 forbids downloading it. " + _how_to_provide(name)
            )
    return load, name


def _bertscore_layer(name: str, num_layers: int | None) -> int:
    """``num_layers``, else bert-score's layer for ``name`` (xlm-roberta-large -> 17)."""
    if num_layers is not None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        return int(num_layers)
    from bert_score.utils import model2layers

    if name not in model2layers:
        raise ValueError(
            f"num_layers is required for BERTScore model {name!r}: bert-score knows the layer "
            f"only for the models it lists (e.g. xlm-roberta-large -> 17)"
        )
    return int(model2layers[name])


@dataclass(frozen=True)
class BERTScoreResult:
    """Sentence-mean BERTScore precision, recall and F1, with the model and layer used.
    ``groups``: the result of each requested group of sentences (not in :meth:`as_dict`)."""

    precision: float
    recall: float
    f1: float
    model: str
    num_layers: int
    hash: str
    normalization: str
    num_sentences: int
    per_sentence_f1: list[float] | None = field(default=None)
    groups: dict[Hashable, BERTScoreResult] | None = None

    def as_dict(self, prefix: str = "bertscore") -> dict[str, Any]:
        out: dict[str, Any] = {
            f"{prefix}_precision": self.precision,
            f"{prefix}_recall": self.recall,
            f"{prefix}_f1": self.f1,
            f"{prefix}_model": self.model,
            f"{prefix}_num_layers": self.num_layers,
            f"{prefix}_hash": self.hash,
            f"{prefix}_normalization": self.normalization,
        }
        if self.per_sentence_f1 is not None:
            out[f"{prefix}_per_sentence_f1"] = self.per_sentence_f1
        return out


def corpus_bertscore(
    predictions: Sequence[str],
    references: Sequence[str],
    model_type: str | None = DEFAULT_BERTSCORE_MODEL,
    model_path: str | os.PathLike[str] | None = None,
    num_layers: int | None = None,
    lang: str = "ko",
    normalization: str | Step | None = None,
    batch_size: int = 32,
    device: str | None = None,
    return_per_sentence: bool = False,
    groups: Groups | None = None,
) -> BERTScoreResult:
    """BERTScore (bert-score) of ``predictions`` against ``references``.

    Default as published: ``model_type="xlm-roberta-large"``, ``lang="ko"``, bert-score's layer
    for the model (17), no idf, no rescaling, raw text (``normalization=None``).
    ``model_path`` loads the model from a local directory; ``num_layers`` defaults to
    bert-score's layer for ``model_type`` and is required for models bert-score does not list.
    With ``HF_HUB_OFFLINE=1`` and the model not cached, :class:`BERTScoreModelUnavailable` is
    raised at once (no Hub call) saying how to provide it.

    ``groups`` (name -> sentence indices) adds ``groups``: per name the means of those
    sentences' values from this one model run, without per-sentence lists. (A separate call on
    them batches them with other sentences, which can move a value in its last float32 bit.)
    """
    check_pairs(predictions, references)
    group_idx = _check_groups(groups, len(predictions))
    load, name = _locate_bertscore_model(model_type, model_path)
    layers = _bertscore_layer(name, num_layers)
    norm = get_normalizer(normalization)
    cands = normalize_batch(norm, list(predictions))
    refs = normalize_batch(norm, list(references))

    import bert_score

    try:
        (p, r, f), hash_code = bert_score.score(
            cands,
            refs,
            model_type=load,
            num_layers=layers,
            lang=lang,
            batch_size=batch_size,
            device=device,
            idf=False,
            rescale_with_baseline=False,
            return_hash=True,
        )
    except OSError as exc:  # transformers: files missing (offline, gated, wrong directory)
        raise BERTScoreModelUnavailable(
            f"BERTScore model {load!r} could not be loaded ({exc}). " + _how_to_provide(name)
        ) from exc
    f_list = [float(x) for x in f.tolist()]

    def result(p: Any, r: Any, f: Any, **extra: Any) -> BERTScoreResult:
        return BERTScoreResult(
            precision=float(p.mean()),
            recall=float(r.mean()),
            f1=float(f.mean()),
            model=name if model_path is None else f"{name} ({load})",
            num_layers=layers,
            hash=str(hash_code),
            normalization=_norm_name(normalization),
            num_sentences=len(f),
            **extra,
        )

    return result(
        p,
        r,
        f,
        per_sentence_f1=f_list if return_per_sentence else None,
        groups=None
        if groups is None
        else {g: result(p[idx], r[idx], f[idx]) for g, idx in group_idx.items()},
    )


# ----------------------------------------------------------------------------------------------
# all together


def translation_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    metrics: Sequence[str] = METRICS,
    *,
    tokenize: str = "char-nospace",
    normalization: str | Step | None = "default",
    n_bootstrap: int = 0,
    seed: int = DEFAULT_SEED,
    confidence: float | None = None,
    n_resamples: int = 1000,
    clusters: Sequence[Hashable] | None = None,
    meteor_alpha: float = 0.9,
    meteor_beta: float = 3.0,
    meteor_gamma: float = 0.5,
    model_type: str | None = DEFAULT_BERTSCORE_MODEL,
    model_path: str | os.PathLike[str] | None = None,
    num_layers: int | None = None,
    lang: str = "ko",
    bertscore_normalization: str | Step | None = None,
    batch_size: int = 32,
    device: str | None = None,
    return_per_sentence: bool = False,
    protocol: str = "koala",
    groups: Groups | None = None,
) -> dict[str, Any]:
    """BLEU, METEOR and BERTScore as one flat dict (the ``korean_translation`` metric).

    ``metrics`` selects the parts (any of ``"bleu"``, ``"meteor"``, ``"bertscore"``); without
    ``"bertscore"`` torch is never imported. Keys: ``bleu`` (0-100) with ``bleu_counts``,
    ``bleu_totals``, ``bleu_sys_len``, ``bleu_ref_len``, ``bleu_precisions``, ``bleu_bp``,
    ``bleu_signature`` (and ``bleu_ci_low``/``bleu_ci_high``/``bleu_bootstrap_mean``/
    ``bleu_confidence`` when ``n_bootstrap > 0``, and ``bleu_ci``, a
    :class:`~koala.scoring.bootstrap.Interval` dict, when ``confidence`` is set: BLEU only,
    ``n_resamples`` resamples of the sentences, or of ``clusters``, from ``seed``; see
    :func:`corpus_bleu`); ``meteor`` with ``meteor_scale`` (``"0-1"``
    under ``koala``, ``"0-100"`` under ``published``) and ``meteor_signature``;
    ``bertscore_precision``/``_recall``/``_f1`` with ``bertscore_model``, ``_num_layers``,
    ``_hash``, ``_normalization``; ``num_sentences``; ``protocol``; per-sentence lists on
    request. ``protocol`` (``"koala"`` or ``"published"``) sets the default BLEU/METEOR
    normalisation (``koala_st`` / ``koala_st_published``) and METEOR's scale; BERTScore is the
    same in both.

    ``groups`` (name -> sentence indices, e.g. the subsets of a union config) adds ``groups``:
    per name the dict this function returns for those sentences alone, without intervals or
    per-sentence lists, aggregated from the per-sentence work done once for the whole set
    (BLEU and METEOR bit-identical to a separate call; BERTScore see the module docstring).
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    chosen = list(dict.fromkeys(metrics))
    unknown = [m for m in chosen if m not in METRICS]
    if unknown or not chosen:
        raise ValueError(f"metrics={list(metrics)!r}: choose one or more of {list(METRICS)}")
    check_protocol(protocol)
    check_pairs(predictions, references)
    group_idx = _check_groups(groups, len(predictions))
    out: dict[str, Any] = {"num_sentences": len(predictions), "protocol": protocol}
    by_group: dict[Hashable, dict[str, Any]] = {
        g: {"num_sentences": len(idx), "protocol": protocol} for g, idx in group_idx.items()
    }

    def add(res: BLEUResult | METEORResult | BERTScoreResult) -> None:
        out.update(res.as_dict())
        for g, part in (res.groups or {}).items():
            by_group[g].update(part.as_dict())

    if "bleu" in chosen:
        add(
            corpus_bleu(
                predictions,
                references,
                tokenize=tokenize,
                normalization=normalization,
                n_bootstrap=n_bootstrap,
                seed=seed,
                confidence=confidence,
                return_per_sentence=return_per_sentence,
                protocol=protocol,
                n_resamples=n_resamples,
                clusters=clusters,
                groups=groups,
            )
        )
    if "meteor" in chosen:
        add(
            corpus_meteor(
                predictions,
                references,
                tokenize=tokenize,
                normalization=normalization,
                alpha=meteor_alpha,
                beta=meteor_beta,
                gamma=meteor_gamma,
                return_per_sentence=return_per_sentence,
                protocol=protocol,
                groups=groups,
            )
        )
    if "bertscore" in chosen:
        add(
            corpus_bertscore(
                predictions,
                references,
                model_type=model_type,
                model_path=model_path,
                num_layers=num_layers,
                lang=lang,
                normalization=bertscore_normalization,
                batch_size=batch_size,
                device=device,
                return_per_sentence=return_per_sentence,
                groups=groups,
            )
        )
    if groups is not None:
        out["groups"] = by_group
    return out
