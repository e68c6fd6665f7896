"""Korean character error rate (KoALa-Bench ASR) as an ``evaluate`` metric."""

from koala import metric_base
from koala.scoring.cer import corpus_cer

_DESCRIPTION = """\
Corpus-level character error rate over normalised Korean text, as KoALa-Bench scores ASR:
"normalise both sides by keeping only Hangul syllables and jamo, digits and whitespace (Latin
letters are deleted), then delete all whitespace; plain Levenshtein over characters; the
reported figure is corpus-level: sum of edits / sum of reference lengths (can exceed 1)."
`protocol="published"` applies that rule exactly; the default `koala` protocol runs NFC
first (the identity on normal text; NFD-decomposed syllables are composed).
`normalization="koala_numerals"` is the numeral-aware CER shown beside it: numbers are read
the same way on both sides first ("이천 십 팔 년", "2018년" and "2,018년" are all 2018년;
"이 사람" stays text), so a model that writes digits where the reference spells numbers out is
not charged for it.
Unlike the canonical `cer` metric, spaces are not characters and the result is a dict with
substitutions, deletions, insertions and hits.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): transcripts produced by the model.
    references (`list` of `str`): reference transcripts.
    normalization (`str`, default: the protocol's): a preset of `koala.normalize.PRESETS`
        (`koala`, `koala_published`, `koala_numerals`, `koala_nfkc`, `koala_latin`,
        `koala_spaced`, `kspon`, `nfc`, `none`); it wins over `protocol`.
    protocol (`str`, default `"koala"`): `"koala"` (preset `koala`) or `"published"`
        (preset `koala_published`).
    return_per_utterance (`bool`, default `False`): also return `per_utterance_cer`.
    confidence (`float`, optional): e.g. `0.95` adds `cer_ci` (sum of edits / sum of
        reference lengths of each resample, never a mean of per-utterance CERs): a seeded
        percentile bootstrap interval (`low`, `high`, `confidence`, `method`, `n_resamples`, `seed`,
        `cluster`, `n_clusters`, `dropped`; `null` bounds when undefined) that recomputes the
        metric on every resample.
    n_resamples (`int`, default 1000), seed (`int`, default 0): the bootstrap draws.
    clusters (`list`, optional): one key per item; whole clusters are resampled.
Returns:
    cer (`float`): sum of edits / sum of normalised reference characters (>= 0, may exceed 1).
    substitutions, deletions, insertions, hits, reference_length, hypothesis_length,
    num_utterances, empty_references (`int`), normalization, protocol (`str`),
    per_utterance_cer (`list` of `float`, on request), cer_ci (`dict`, with `confidence`).
Examples:
    >>> cer = evaluate.load("metrics/korean_cer")
    >>> cer.compute(predictions=["안녕하세요."], references=["안녕 하세요"])["cer"]
    0.0
"""


class KoreanCER(metric_base.KoalaMetric):
    scorer = staticmethod(corpus_cer)
    description = _DESCRIPTION
    kwargs_description = _KWARGS_DESCRIPTION
    reference_urls = ("https://github.com/scai-research/KoALa-Bench",)

    def _compute(self, **kwargs) -> dict:  # corpus_cer returns a CERResult
        return super()._compute(**kwargs).as_dict()
