"""korean_cer: hand-worked cases, an independent edit distance, the published empty-reference
rule, and the evaluate module."""

import math
from pathlib import Path

import evaluate
import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koala.scoring.bootstrap import cer_interval
from koala.scoring.cer import CERStats, cer_stats, corpus_cer

METRICS = Path(__file__).resolve().parent.parent / "metrics"


def levenshtein(a: str, b: str) -> int:
    """Textbook dynamic programme, independent of rapidfuzz."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


hangul = st.text(alphabet=st.characters(min_codepoint=0xAC00, max_codepoint=0xAC20), max_size=25)


@settings(max_examples=300, deadline=None)
@given(hangul, hangul)
def test_counts_match_independent_levenshtein(ref, hyp):
    s = cer_stats(ref, hyp)
    if ref:
        assert s.edits == levenshtein(ref, hyp)
        assert s.hits + s.substitutions + s.deletions == len(ref)
        assert s.hits + s.substitutions + s.insertions == len(hyp)
    else:
        assert (s.edits, s.insertions, s.reference_length) == (len(hyp), len(hyp), 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(hangul, hangul), min_size=1, max_size=8))
def test_corpus_cer_is_edits_over_reference_chars(pairs):
    refs = [r for r, _ in pairs]
    hyps = [h for _, h in pairs]
    edits = sum(levenshtein(r, h) if r else len(h) for r, h in pairs)
    n = sum(len(r) for r in refs)
    res = corpus_cer(hyps, refs)
    if n:
        assert res.cer == pytest.approx(edits / n)
    else:
        assert res.cer == (0.0 if edits == 0 else 1.0)


def test_hand_worked_korean():
    # ref "오늘날씨가좋다" (7 chars) vs hyp "오늘 날씨 좋네!" -> "오늘날씨좋네":
    # delete 가, substitute 다->네: 2 edits / 7
    res = corpus_cer(["오늘 날씨 좋네!"], ["오늘 날씨가 좋다."])
    s = res.stats
    assert (s.substitutions, s.deletions, s.insertions, s.hits) == (1, 1, 0, 5)
    assert res.cer == pytest.approx(2 / 7)


def test_spaces_and_latin_do_not_count_by_default():
    assert corpus_cer(["안녕 하세요"], ["안녕하세요"]).cer == 0.0
    # the published rule deletes Latin letters: "AI" vanishes on both sides
    assert corpus_cer(["AI 반도체"], ["에이아이 반도체"]).cer == pytest.approx(4 / 7)
    # with the latin preset they count: "ai반도체" vs "에이아이반도체"
    res = corpus_cer(["AI 반도체"], ["에이아이 반도체"], normalization="koala_latin")
    assert res.stats.edits == 4 and res.cer == pytest.approx(4 / 7)


def test_numbers_are_not_normalised_as_published():
    # Zeroth spells numbers out; "2018년" against "이천십팔년" is penalised
    res = corpus_cer(["2018년"], ["이천십팔년"])
    assert res.stats.edits == 4 and res.cer == pytest.approx(4 / 5)


def test_corpus_figure_is_not_a_mean_of_utterances_and_can_exceed_one():
    res = corpus_cer(["가나다라마바", "가"], ["가", "가나다라"], return_per_utterance=True)
    # utt 1: 5 insertions / 1; utt 2: 3 deletions / 4 -> corpus 8 / 5
    assert res.per_utterance == [5.0, 0.75]
    assert res.cer == pytest.approx(8 / 5)


def test_empty_reference_rule():
    res = corpus_cer(["", "하나둘", "가"], ["...", "!!", "가"], return_per_utterance=True)
    # refs normalise to "", "", "가": per-utterance 0, 1, 0
    assert res.per_utterance == [0.0, 1.0, 0.0]
    # corpus: the 3 inserted characters count as edits, the empty references add no length
    assert res.stats.edits == 3 and res.stats.reference_length == 1
    assert res.cer == 3.0
    assert res.stats.empty_references == 2


def test_all_empty_references_per_protocol():
    """ "when the sum of reference lengths is 0 the published corpus CER is 0, whatever the
    hypotheses"; koala keeps the per-item rule for the corpus (1 with an edit, 0 without)."""
    preds, refs = ["하나둘", "가"], ["...", "abc"]  # both references normalise to ""
    published = corpus_cer(preds, refs, protocol="published")
    koala = corpus_cer(preds, refs)
    assert published.stats.reference_length == koala.stats.reference_length == 0
    assert published.stats.edits == koala.stats.edits == 4  # all insertions
    assert published.cer == 0.0 and published.as_dict()["cer"] == 0.0
    assert koala.cer == 1.0 and koala.as_dict()["cer"] == 1.0
    # no edit at all: 0 under both
    assert corpus_cer(["", "."], ["...", "abc"]).cer == 0.0
    # the interval follows the same rule: every resample has no reference character
    iv = corpus_cer(preds * 3, refs * 3, protocol="published", confidence=0.9).as_dict()["cer_ci"]
    assert iv["low"] is None and "no variation" in iv["note"]  # every resample is 0
    assert cer_interval([3, 1] * 3, [0, 0] * 3, protocol="published").note
    for edits, lengths, protocol, value in (
        ([3, 0, 0, 0, 0], [0, 0, 0, 0, 0], "published", 0.0),
        ([3, 0, 0, 0, 0], [0, 0, 0, 0, 0], "koala", None),  # 1 or 0 by resample
    ):
        iv = cer_interval(edits, lengths, protocol=protocol, n_resamples=200)
        if value is None:
            assert iv.low == 0.0 and iv.high == 1.0
        else:
            assert math.isnan(iv.low) and "no variation: every resample gives 0" in iv.note


def test_the_evaluate_module_passes_the_published_empty_reference_rule():
    cer = evaluate.load(str(METRICS / "korean_cer"))
    out = cer.compute(predictions=["하나둘"], references=["..."], protocol="published")
    assert out["cer"] == 0.0 and out["insertions"] == 3
    assert cer.compute(predictions=["하나둘"], references=["..."])["cer"] == 1.0


def test_decomposed_jamo_count_under_the_published_rule_only():
    import unicodedata

    ref, hyp = "한국어", unicodedata.normalize("NFD", "한국어")  # 3 syllables vs 8 jamo
    # published: no character in common, 3 substitutions + 5 insertions over 3
    published = corpus_cer([hyp], [ref], protocol="published")
    assert published.stats.edits == 8 and published.cer == pytest.approx(8 / 3)
    assert published.normalization == "koala_published"
    assert corpus_cer([hyp], [ref]).cer == 0.0  # koala: NFC first
    assert corpus_cer([hyp], [ref], normalization="koala_nfkc").cer == 0.0


def test_stats_are_additive():
    a = corpus_cer(["가나"], ["가다"]).stats
    b = corpus_cer(["라마바"], ["라마"]).stats
    both = corpus_cer(["가나", "라마바"], ["가다", "라마"]).stats
    assert a + b == both
    assert (a + b).cer == pytest.approx(2 / 4)
    assert CERStats() + a == a


def test_agrees_with_jiwer_on_normalised_text():
    refs = ["오늘은 비가 온다", "내일은 맑겠습니다", "모레는 흐림"]
    hyps = ["오늘 비가 온다고", "내일 맑겠습니다", "모래는 흐림"]
    from koala.normalize import get_normalizer

    norm = get_normalizer("koala")
    expected = jiwer.cer([norm(r) for r in refs], [norm(h) for h in hyps])
    assert corpus_cer(hyps, refs).cer == pytest.approx(expected)


@pytest.mark.parametrize(
    ("preds", "refs", "exc", "needle"),
    [
        (["a"], ["a", "b"], ValueError, "references has 2 items but predictions has 1"),
        ([], [], ValueError, "predictions is empty"),
        (None, ["a"], ValueError, "predictions is None"),
        (["a", None], ["a", "b"], ValueError, r"predictions\[1\] is None"),
        (["a"], [3], TypeError, r"references\[0\] must be a string"),
        ("가나", "가나", TypeError, "predictions must be a list"),
    ],
)
def test_bad_input_names_the_argument(preds, refs, exc, needle):
    with pytest.raises(exc, match=needle):
        corpus_cer(preds, refs)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown normalisation preset"):
        corpus_cer(["가"], ["가"], normalization="nope")


def test_evaluate_module_offline_and_combinable():
    cer = evaluate.load(str(METRICS / "korean_cer"))
    preds, refs = ["오늘 날씨 좋네!", "2018년"], ["오늘 날씨가 좋다.", "이천십팔년"]
    out = cer.compute(predictions=preds, references=refs, return_per_utterance=True)
    direct = corpus_cer(preds, refs, return_per_utterance=True).as_dict()
    assert out == direct
    assert out["cer"] == pytest.approx(6 / 12)
    spaced = cer.compute(
        predictions=["안녕 하세요"], references=["안녕하세요"], normalization="koala_spaced"
    )
    assert spaced["cer"] == pytest.approx(1 / 5)
    combined = evaluate.combine([str(METRICS / "korean_cer")])
    assert combined.compute(predictions=preds, references=refs)["cer"] == out["cer"]
    with pytest.raises(ValueError, match="predictions"):
        cer.compute(predictions=["가"], references=["가", "나"])
    # incremental use through add_batch gives the same corpus figure
    for p, r in zip(preds, refs, strict=True):
        cer.add_batch(predictions=[p], references=[r])
    assert cer.compute()["cer"] == out["cer"]
