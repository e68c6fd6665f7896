"""Korean speech-translation metrics (KoALa-Bench ST): BLEU, METEOR, BERTScore."""

from koala import metric_base
from koala.scoring.translation import translation_scores

_DESCRIPTION = """\
English-to-Korean speech translation scored as KoALa-Bench publishes it: text normalised by the
published `tokenize_korean` (Hangul, jamo, Latin letters with case kept, digits; everything
else and all spaces removed), BLEU with sacreBLEU over the characters, METEOR (NLTK) over them,
BERTScore with xlm-roberta-large, lang="ko". `protocol="published"` reproduces the authors'
scoring exactly (no NFC, METEOR x100); the default `protocol="koala"` applies NFC first and
reports METEOR on 0-1 (`meteor_scale` says which). BLEU keeps its sufficient statistics and a
sacreBLEU signature extended with the normalisation, so two runs can be compared; an optional
seeded bootstrap gives a confidence interval. METEOR runs without WordNet (nothing is
downloaded). Each part can be switched off (`metrics=["bleu"]`); without BERTScore torch is not
imported.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): Korean translations produced by the model.
    references (`list` of `str`): reference Korean translations (one per prediction).
    metrics (`list` of `str`, default `["bleu", "meteor", "bertscore"]`): parts to compute.
    protocol (`str`, default `"koala"`): `"published"` = the authors' scoring exactly
        (`koala_st_published` normalisation, METEOR x100); `"koala"` = `koala_st` (NFC first),
        METEOR 0-1.
    tokenize (`str`, default `"char-nospace"`): BLEU/METEOR tokens. `"char-nospace"` is the
        published protocol (the protocol's preset, spaces removed, characters); `"char"` keeps
        word spacing as `▁` tokens (`koala_spaced`); `"ko-mecab"` uses mecab-ko morphemes.
    normalization (`str`, default follows `tokenize` and `protocol`): a `koala.normalize`
        preset for BLEU/METEOR; an explicit value wins over the protocol.
    confidence (`float`, optional): e.g. `0.95` adds `bleu_ci`: a seeded percentile
        bootstrap interval of BLEU (`low`, `high`, `confidence`, `method`, `n_resamples`,
        `seed`, `cluster`, `n_clusters`, `dropped`), recomputed from the summed sufficient
        statistics of every resample. BLEU only.
    n_resamples (`int`, default 1000), seed (`int`, default 12345): the bootstrap draws.
    clusters (`list`, optional): one key per sentence (the TED talk); whole talks are
        resampled.
    n_bootstrap (`int`, default 0): the older sacreBLEU-style interval (`bleu_ci_low`,
        `bleu_ci_high`) over `n_bootstrap` resampled sentences, at `confidence` (0.95 unset).
    model_type (`str`, default `"xlm-roberta-large"`), model_path (`str`, a local model
        directory), num_layers (`int`, default bert-score's layer for `model_type`), lang
        (`str`, `"ko"`), batch_size (`int`, 32), device (`str`), bertscore_normalization
        (default none: raw text): BERTScore settings.
    return_per_sentence (`bool`, default `False`): also return per-sentence scores.
Returns:
    bleu (`float`, 0-100), bleu_counts, bleu_totals (`list` of `int`, 1- to 4-grams),
    bleu_sys_len, bleu_ref_len (`int`), bleu_precisions (`list` of `float`), bleu_bp (`float`),
    bleu_signature (`str`), and with a bootstrap bleu_ci_low, bleu_ci_high,
    bleu_bootstrap_mean, bleu_confidence; with `confidence` bleu_ci (`dict`);
    meteor (`float`, 0-1 under `koala`, 0-100 under `published`), meteor_scale (`str`,
    `"0-1"` or `"0-100"`), meteor_signature (`str`);
    bertscore_precision, bertscore_recall, bertscore_f1 (`float`, sentence means),
    bertscore_model (`str`), bertscore_num_layers (`int`), bertscore_hash (`str`);
    num_sentences (`int`), protocol (`str`).
Examples:
    >>> st = evaluate.load("metrics/korean_translation")
    >>> r = st.compute(predictions=["고양이 잔다!"], references=["고양이가 잔다."],
    ...                metrics=["bleu", "meteor"])
    >>> round(r["bleu"], 2), round(r["meteor"], 4)
    (40.94, 0.8203)
"""


class KoreanTranslation(metric_base.KoalaMetric):
    scorer = staticmethod(translation_scores)
    description = _DESCRIPTION
    kwargs_description = _KWARGS_DESCRIPTION
    reference_urls = (
        "https://github.com/scai-research/KoALa-Bench",
        "https://github.com/mjpost/sacrebleu",
        "https://www.nltk.org/api/nltk.translate.meteor_score.html",
        "https://github.com/Tiiiger/bert_score",
    )
