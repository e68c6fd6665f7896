"""The two scoring protocols of the choice, SCF, segment and CER scorers: where ``published``
(the authors' code, defects included) and ``koala`` (the default) must differ, and where they
must agree. Every expected value is worked out by hand from the rules in the scorers' docs."""

import math
import unicodedata
from pathlib import Path

import evaluate
import pytest

from koala.scoring.cer import corpus_cer
from koala.scoring.choices import choice_accuracy
from koala.scoring.protocol import PROTOCOLS, check_protocol
from koala.scoring.scf import speech_context_faithfulness
from koala.scoring.segments import segment_accuracy

METRICS = Path(__file__).resolve().parent.parent / "metrics"
CLICK = "(A) 1392년 (B) 1443년 (C) 1592년 (D) 1910년"
BOOLQ = "(A) 아니요\n(B) 예"
KSAT = "(1)도서관 (2)대출 권수 (3) 열람실 (4)반납 연체료 (5)신간 목록"
KSAT_REPEATED = "(1)가 (2)나 (4)다 (4)라 (5)마"  # one published item numbers its choices so
MOUNTAINS = ["한라산", "지리산", "설악산", "백두산"]


def read(predictions, references, choices, protocol, **kw):
    """Predicted labels, methods and the summary of ``choice_accuracy``."""
    n = len(predictions)
    out = choice_accuracy(
        predictions, references, [choices] * n, protocol=protocol, return_items=True, **kw
    )
    return out["predicted_labels"], out["methods"], out


# ----------------------------------------------------------------------------- protocol


def test_check_protocol():
    assert PROTOCOLS == ("koala", "published")
    assert check_protocol("published") == "published"
    for bad in ("Published", "paper", ""):
        with pytest.raises(ValueError, match="'koala', 'published'"):
            check_protocol(bad)
    with pytest.raises(ValueError, match="protocol='paper'"):
        choice_accuracy(["A"], ["A"], protocol="paper")
    with pytest.raises(ValueError, match="protocol"):
        corpus_cer(["가"], ["가"], protocol="paper")


# ----------------------------------------------------------------- letter labels (SQA, PA-QA)


@pytest.mark.parametrize(
    ("answer", "label", "method"),
    [
        ("정답은 (C) 1592년입니다.", "C", "paren"),
        ("답: (c)", "C", "paren"),  # (l) counts too
        ("(C)가 아니라 (A)입니다", "A", "paren"),  # first label in choice order
        ("The answer is B.", "B", "word"),  # \bB\b; "answer" holds an A but no word A
        ("d", "D", "word"),  # any case
        ("정답은 C입니다", "C", "bare"),  # "C입": no word boundary, found upper-cased
    ],
)
def test_letters_protocols_agree(answer, label, method):
    for protocol in PROTOCOLS:
        labels, methods, _ = read([answer], ["A"], CLICK, protocol)
        assert (labels[0], methods[0]) == (label, method), protocol


@pytest.mark.parametrize(
    ("answer", "koala", "published"),
    [
        # nothing readable: koala unparsed (wrong), published the first choice
        ("잘 모르겠습니다", (None, "unparsed"), ("A", "fallback")),
        ("", (None, "unparsed"), ("A", "fallback")),
        # a choice's text: koala reads it, published has no choice-text step
        ("1910년에 일어났습니다", ("D", "text"), ("A", "fallback")),
        # full-width label: koala folds the width for the label search
        ("（Ｃ）", ("C", "paren"), ("A", "fallback")),
        ("Ｃ", ("C", "word"), ("A", "fallback")),
    ],
)
def test_letters_protocols_differ(answer, koala, published):
    k_labels, k_methods, _ = read([answer], ["(D) 1910년"], CLICK, "koala")
    p_labels, p_methods, _ = read([answer], ["(D) 1910년"], CLICK, "published")
    assert (k_labels[0], k_methods[0]) == koala
    assert (p_labels[0], p_methods[0]) == published


def test_koala_reads_nfd_predictions_as_nfc():
    nfd_yes = unicodedata.normalize("NFD", "예, 맞습니다")  # "예" as two conjoining jamo
    assert read([nfd_yes], ["(B) 예"], BOOLQ, "koala")[0] == ["B"]
    # the published code compares code points: no label, no text step -> the first choice
    assert read([nfd_yes], ["(B) 예"], BOOLQ, "published")[0] == ["A"]


def test_unparsed_accounting_differs():
    preds = ["(C)", "모르겠어요", "모르겠어요"]
    refs = ["(C) 1592년", "(A) 1392년", "(B) 1443년"]
    _, _, koala = read(preds, refs, CLICK, "koala")
    # koala: item 2 and 3 are unparsed and wrong: 1 / 3
    assert (koala["correct"], koala["total"], koala["unparsed"]) == (1, 3, 2)
    assert koala["fallback_used"] == 0 and koala["protocol"] == "koala"
    _, _, published = read(preds, refs, CLICK, "published")
    # published: both fall back to A, which is right for item 2: 2 / 3
    assert (published["correct"], published["total"], published["unparsed"]) == (2, 3, 0)
    assert published["fallback_used"] == 2 and published["accuracy"] == pytest.approx(2 / 3)
    assert published["protocol"] == "published"


# ------------------------------------------------------------------- number labels (K-SAT)


@pytest.mark.parametrize(
    ("answer", "koala"),
    [("답: 4번", "4"), ("5번", "5"), ("정답: 3번", "3")],  # the examples of the published rule
)
def test_numbers_no_bare_number_step_under_published(answer, koala):
    assert read([answer], ["(4)반납 연체료"], KSAT, "koala")[0:2] == ([koala], ["bare"])
    assert read([answer], ["(4)반납 연체료"], KSAT, "published")[0:2] == (["1"], ["fallback"])


@pytest.mark.parametrize(
    ("answer", "label", "method"),
    [("정답은 (5)번입니다", "5", "paren"), ("정답은 3", "3", "word"), ("4", "4", "word")],
)
def test_numbers_protocols_agree(answer, label, method):
    for protocol in PROTOCOLS:
        assert read([answer], ["(4)반납 연체료"], KSAT, protocol)[0:2] == ([label], [method])


def test_repeated_number_labels_collapse_under_published_and_are_invalid_under_koala():
    preds = ["(5)", "3", "(4)"]
    refs = ["(5)마", "(4)다", "(1)가"]
    labels, methods, out = read(preds, refs, KSAT_REPEATED, "published")
    # labels 1, 2, 4, 5: "3" is no label, so it falls back to 1
    assert labels == ["5", "1", "4"] and methods == ["paren", "fallback", "paren"]
    assert (out["correct"], out["total"], out["invalid"]) == (1, 3, 0)
    labels, methods, out = read(preds, refs, KSAT_REPEATED, "koala")
    assert methods == ["invalid"] * 3 and labels == [None] * 3
    assert (out["total"], out["invalid"], out["invalid_items"]) == (0, 3, [0, 1, 2])
    assert math.isnan(out["accuracy"])
    with pytest.raises(ValueError, match=r"references\[0\].*repeats a label"):
        read(preds, refs, KSAT_REPEATED, "koala", strict=True)


# ------------------------------------------------------------------------ malformed golds


def test_gold_naming_no_label():
    preds = ["(A)", "(B)", "(C)"]
    refs = ["(A) 1392년", "(나) 탁치 반대", "(C) 1592년"]  # item 2's gold names no label
    _, _, published = read(preds, refs, CLICK, "published")
    # published: item 2 stays in the denominator, always wrong: 2 / 3
    assert (published["correct"], published["total"]) == (2, 3)
    assert published["invalid_gold"] == 1 and published["invalid"] == 0
    assert published["invalid_items"] == []
    _, _, koala = read(preds, refs, CLICK, "koala")
    # koala: item 2 is left out: 2 / 2
    assert (koala["correct"], koala["total"], koala["accuracy"]) == (2, 2, 1.0)
    assert koala["invalid"] == 1 and koala["invalid_items"] == [1]
    assert koala["invalid_gold"] == 0


def test_gold_given_as_choice_text():
    # koala reads the gold "1592년" as C; the published code reads labels only
    _, _, koala = read(["(C)"], ["1592년"], CLICK, "koala")
    _, _, published = read(["(C)"], ["1592년"], CLICK, "published")
    assert koala["accuracy"] == 1.0 and koala["invalid"] == 0
    assert published["accuracy"] == 0.0 and published["invalid_gold"] == 1


def test_labels_choices_mismatch_is_invalid_under_koala():
    out = choice_accuracy(
        ["A", "(B)"], ["A", "B"], choices=[["가", "나"], ["가", "나"]], labels=["A", "B", "C"]
    )
    assert (out["total"], out["invalid"], out["invalid_items"]) == (0, 2, [0, 1])
    with pytest.raises(ValueError, match=r"references\[0\].*3 labels"):
        choice_accuracy(["A"], ["A"], choices=[["가", "나"]], labels=["A", "B", "C"], strict=True)


# ---------------------------------------------------------------------------- SCF (SCA-QA)

# Three items, choices shown (A)-(D) = MOUNTAINS; golds are answer texts.
SCA = {
    "text_references": ["한라산", "지리산", "백두산 정상"],  # A, B, and no exact choice text
    "references": ["설악산", "백두산", "지리산"],  # C, D, B
    "text_predictions": ["(A)", "B", "모르겠다"],
    "predictions": ["The answer is C.", "(D)", "(B)"],
    "choices": [MOUNTAINS] * 3,
}


def test_scf_published_reading_hand_worked():
    out = speech_context_faithfulness(**SCA, protocol="published")
    # golds: text A, B, A (item 2's text is no choice's exact text -> index 0);
    # counterfactual C, D, B. Readings: text A, B, A (nothing read -> A): all text-correct.
    # Speech: "The answer is C." -> A (the upper-cased text holds an A), D, B.
    # Follows speech on items 1, 2; keeps its own answer (A == A) on item 0.
    assert out["num_text_correct"] == 3 and out["total"] == 3 and out["invalid"] == 0
    assert out["scf"] == pytest.approx(2 / 3)
    assert out["parametric_proportion"] == pytest.approx(1 / 3)
    assert out["fallback_used"]["text"] == 1 and out["unparsed"]["text"] == 0
    assert out["protocol"] == "published"


def test_scf_koala_reading_hand_worked():
    out = speech_context_faithfulness(**SCA)
    # item 2's text gold names no choice: left out. Items 0, 1: text-correct (A, B); speech
    # "The answer is C." -> C (a standalone C) and D: both follow the speech.
    assert out["invalid_items"] == [2] and out["total"] == 2
    assert out["num_text_correct"] == 2 and out["scf"] == 1.0
    assert out["parametric_proportion"] == 0.0
    assert out["protocol"] == "koala"


@pytest.mark.parametrize(
    ("answer", "koala", "published"),
    [
        ("The answer is C.", "C", "A"),
        ("정답은 (c)", "C", "C"),
        ("(D) 백두산", "D", "D"),
        ("백두산", "D", "A"),  # choice text: koala reads it; published finds no letter
        ("모르겠다", None, "A"),
    ],
)
def test_scf_answer_reading(answer, koala, published):
    """The speech answer's reading, seen through ``scf`` on one text-correct item whose
    counterfactual gold is D (백두산): it follows the speech iff it is read as D, keeps its own
    knowledge iff it is read as A (the text answer)."""
    args = {
        "predictions": [answer],
        "references": ["백두산"],
        "text_predictions": ["(A)"],
        "text_references": ["한라산"],
        "choices": [MOUNTAINS],
    }
    for protocol, label in (("koala", koala), ("published", published)):
        out = speech_context_faithfulness(**args, protocol=protocol)
        assert out["num_text_correct"] == 1, protocol
        assert out["scf"] == float(label == "D"), protocol
        assert out["parametric_proportion"] == float(label == "A"), protocol


def test_scf_gold_text_must_match_exactly_under_published():
    choices = [["살수대첩", "안시성", "귀주대첩", "행주대첩"]]
    args = {
        "predictions": ["(C)"],
        "references": ["귀주대첩"],  # C
        "text_predictions": ["(B)"],
        "text_references": ["안시성 전투"],  # not a choice's exact text
        "choices": choices,
    }
    out = speech_context_faithfulness(**args, protocol="published")
    # the text gold is A, so the text answer B is wrong and nothing is text-correct
    assert out["num_text_correct"] == 0 and out["text_accuracy"] == 0.0
    assert math.isnan(out["scf"])
    args["text_predictions"] = ["(A)"]
    out = speech_context_faithfulness(**args, protocol="published")
    assert out["num_text_correct"] == 1 and out["scf"] == 1.0
    koala = speech_context_faithfulness(**args)
    assert koala["invalid_items"] == [0] and koala["total"] == 0  # names no choice


def test_scf_equal_golds_are_invalid_under_koala_only():
    out = speech_context_faithfulness(["1"], ["1"], ["1"], ["1"])
    assert out["invalid"] == 1 and out["invalid_items"] == [0] and out["total"] == 0
    assert math.isnan(out["scf"]) and "invalid" in out["note"]
    with pytest.raises(ValueError, match=r"references\[0\].*original answer"):
        speech_context_faithfulness(["1"], ["1"], ["1"], ["1"], strict=True)
    # one equal-gold item among valid ones is left out of every figure
    out = speech_context_faithfulness(
        ["2", "1"], ["2", "1"], ["1", "1"], ["1", "1"], labels="numbers"
    )
    assert out["invalid_items"] == [1] and out["total"] == 1 and out["scf"] == 1.0
    # published keeps it: "1" holds no letter -> A on both sides, gold A on both sides
    published = speech_context_faithfulness(
        ["1"], ["1"], ["1"], ["1"], choices=[["1", "2", "3", "4"]], protocol="published"
    )
    assert published["scf"] == 1.0 and published["total"] == 1 and published["invalid"] == 0


def test_scf_published_needs_choice_texts():
    with pytest.raises(ValueError, match="choices="):
        speech_context_faithfulness(["A"], ["x"], ["A"], ["y"], protocol="published")
    with pytest.raises(TypeError, match=r"choices\[0\]"):
        speech_context_faithfulness(
            ["A"], ["x"], ["A"], ["y"], choices=["(A) x (B) y"], protocol="published"
        )


# ------------------------------------------------------------------------ segments (PA-QA)


def test_empty_segment_is_nan_under_koala_and_zero_under_published():
    args = {"predictions": ["A", "(B)"], "references": ["A", "B"], "positions": [[0.1], [0.9]]}
    koala = segment_accuracy(**args)
    published = segment_accuracy(**args, protocol="published")
    for seg in ("front-middle", "middle-late"):
        assert math.isnan(koala["segment_accuracy"][seg])
        assert published["segment_accuracy"][seg] == 0.0
        assert koala["segment_count"][seg] == published["segment_count"][seg] == 0
    for out in (koala, published):  # filled segments and the spread agree
        assert out["segment_accuracy"]["front"] == out["segment_accuracy"]["late"] == 1.0
        assert out["spread"] == 0.0


def test_segment_reading_follows_the_protocol():
    args = {
        "predictions": ["모르겠다", "(B)", "(C)"],
        "references": ["A", "B", "E"],  # item 2's gold names none of A-D
        "positions": [[0.1], [0.9], [0.1]],
        "choices": ["(A) 가 (B) 나 (C) 다 (D) 라"] * 3,
    }
    koala = segment_accuracy(**args)
    # koala: item 0 unparsed (wrong), item 2 left out: front 0 / 1, late 1 / 1
    assert koala["segment_accuracy"]["front"] == 0.0 and koala["segment_count"]["front"] == 1
    assert (koala["correct"], koala["total"], koala["invalid_items"]) == (1, 2, [2])
    published = segment_accuracy(**args, protocol="published")
    # published: item 0 falls back to A (right), item 2 stays and is wrong: front 1 / 2
    assert published["segment_accuracy"]["front"] == 0.5
    assert published["segment_count"]["front"] == 2
    assert (published["correct"], published["total"], published["invalid_gold"]) == (2, 3, 1)


# ------------------------------------------------------------------------------------ CER


def test_cer_nfd_hangul():
    ref = "한국어"
    hyp = unicodedata.normalize("NFD", ref)  # 8 conjoining jamo
    assert corpus_cer([hyp], [ref]).cer == 0.0
    published = corpus_cer([hyp], [ref], protocol="published")
    # nothing in common: 3 substitutions + 5 insertions over 3 reference characters
    assert published.stats.edits == 8 and published.cer == pytest.approx(8 / 3)
    # an explicit normalization wins over the protocol
    assert corpus_cer([hyp], [ref], normalization="koala", protocol="published").cer == 0.0
    raw = corpus_cer([hyp], [ref], normalization=None, protocol="koala")
    assert raw.stats.edits == 8  # no normalisation at all


def test_cer_protocols_agree_on_normal_text():
    for protocol in PROTOCOLS:
        res = corpus_cer(["오늘 날씨 좋네!"], ["오늘 날씨가 좋다."], protocol=protocol)
        assert res.cer == pytest.approx(2 / 7), protocol  # delete 가, 다 -> 네
        assert res.normalization == {"koala": "koala", "published": "koala_published"}[protocol]
        assert res.as_dict()["protocol"] == protocol


def test_cer_latin_preset_keeps_case():
    res = corpus_cer(["ted 강연"], ["TED 강연"], normalization="koala_latin")
    assert res.stats.substitutions == 3 and res.cer == pytest.approx(3 / 5)


# -------------------------------------------------------------------------- evaluate modules


def test_choice_accuracy_module_protocol():
    acc = evaluate.load(str(METRICS / "choice_accuracy"))
    args = {
        "predictions": ["답: 4번", "(2)", "5번"],
        "references": ["(4)반납 연체료", "(2)대출 권수", "(1)도서관"],
        "choices": [KSAT] * 3,
    }
    koala = acc.compute(**args)
    # koala: 4 (right), 2 (right), 5 (wrong): 2 / 3
    assert koala["accuracy"] == pytest.approx(2 / 3) and koala["protocol"] == "koala"
    published = acc.compute(**args, protocol="published")
    # published: 1 (wrong), 2 (right), 1 (right by luck): 2 / 3 with other items; item 0 alone
    assert published["correct"] == 2 and published["fallback_used"] == 2
    one = {k: v[:1] for k, v in args.items()}
    assert acc.compute(**one)["accuracy"] == 1.0
    assert acc.compute(**one, protocol="published")["accuracy"] == 0.0
    with pytest.raises(ValueError, match=r"references\[0\]"):
        acc.compute(predictions=["A"], references=["E"], choices=[CLICK], strict=True)


def test_scf_module_protocol():
    scf = evaluate.load(str(METRICS / "scf"))
    args = dict(SCA)
    koala = scf.compute(**args)
    published = scf.compute(**args, protocol="published")
    assert koala["scf"] == 1.0 and published["scf"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="original answer"):
        scf.compute(
            predictions=["1"],
            references=["1"],
            text_predictions=["1"],
            text_references=["1"],
            strict=True,
        )


def test_segment_accuracy_module_protocol():
    seg = evaluate.load(str(METRICS / "segment_accuracy"))
    args = {"predictions": ["모르겠다", "B"], "references": ["A", "B"], "positions": [[0.1], [0.9]]}
    koala = seg.compute(**args)
    published = seg.compute(**args, protocol="published")
    assert koala["segment_accuracy"]["front"] == 0.0 and koala["accuracy"] == 0.5
    assert published["segment_accuracy"]["front"] == 1.0 and published["accuracy"] == 1.0
    assert math.isnan(koala["segment_accuracy"]["middle-late"])
    assert published["segment_accuracy"]["middle-late"] == 0.0


def test_korean_cer_module_protocol():
    cer = evaluate.load(str(METRICS / "korean_cer"))
    args = {"predictions": [unicodedata.normalize("NFD", "한국어")], "references": ["한국어"]}
    assert cer.compute(**args)["cer"] == 0.0
    published = cer.compute(**args, protocol="published")
    assert published["cer"] == pytest.approx(8 / 3)
    assert published["normalization"] == "koala_published"
    assert cer.compute(**args, protocol="published", normalization="koala")["cer"] == 0.0
