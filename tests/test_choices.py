"""choice_accuracy: the published extraction order, choice-text answers, unparsed answers,
logit-based argmax, and the evaluate module."""

import math
from pathlib import Path

import evaluate
import pytest

from koala.scoring.choices import (
    argmax_label,
    choice_accuracy,
    extract_choice,
    parse_choices,
    parse_gold,
)

METRICS = Path(__file__).resolve().parent.parent / "metrics"
CLICK = "(A) 1392년 (B) 1443년 (C) 1592년 (D) 1910년"
BOOLQ = "(A) 아니요\n(B) 예"
KSAT = "(1)도서관 이용 시간 (2)대출 권수 (3) 열람실 예약 방법 (4)반납 연체료 (5)신간 목록"


def test_parse_labelled_strings():
    c = parse_choices(CLICK)
    assert c.labels == ("A", "B", "C", "D")
    assert c.texts == ("1392년", "1443년", "1592년", "1910년")
    b = parse_choices(BOOLQ)
    assert b.labels == ("A", "B") and b.texts == ("아니요", "예")
    k = parse_choices(KSAT)
    assert k.labels == ("1", "2", "3", "4", "5") and k.texts[2] == "열람실 예약 방법"


def test_parse_plain_list_with_numbers():
    c = parse_choices(["한라산", "백두산"], labels="numbers")
    assert c.labels == ("1", "2") and c.texts == ("한라산", "백두산")
    with pytest.raises(ValueError, match="repeats a label"):
        parse_choices("(A) 가 (A) 나")
    with pytest.raises(ValueError, match="3 labels"):
        parse_choices(["가", "나"], labels=["1", "2", "3"])


@pytest.mark.parametrize(
    ("gold", "choices", "expected"),
    [
        ("(C) 1592년", CLICK, "C"),
        ("C", CLICK, "C"),
        ("c", CLICK, "C"),
        ("(5)신간 목록", KSAT, "5"),
        ("3", KSAT, "3"),
        ("1592 년", CLICK, "C"),  # the choice's text (spacing ignored)
    ],
)
def test_parse_gold(gold, choices, expected):
    assert parse_gold(gold, parse_choices(choices)) == expected


def test_gold_outside_the_choices_is_left_out_or_with_strict_an_error_naming_the_row():
    out = choice_accuracy(["A", "A"], ["A", "E"], choices=[CLICK, CLICK])
    assert (out["total"], out["correct"], out["invalid"], out["invalid_items"]) == (1, 1, 1, [1])
    with pytest.raises(ValueError, match=r"references\[1\].*'E'"):
        choice_accuracy(["A", "A"], ["A", "E"], choices=[CLICK, CLICK], strict=True)


@pytest.mark.parametrize(
    ("answer", "expected", "method"),
    [
        ("정답은 (C) 1592년입니다.", "C", "paren"),
        ("답: (b)", "B", "paren"),
        ("(C)가 아니라 (A)입니다", "A", "paren"),  # published: first label in choice order
        ("The answer is B.", "B", "word"),
        ("d", "D", "word"),
        ("1592년에 일어났습니다", "C", "text"),
        ("정답은 C입니다", "C", "bare"),  # "C입" has no word boundary: found as a bare letter
        ("잘 모르겠습니다", None, "unparsed"),
        ("   ", None, "unparsed"),
    ],
)
def test_extraction_order(answer, expected, method):
    assert extract_choice(answer, parse_choices(CLICK)) == (expected, method)


def test_longest_choice_text_wins_and_ties_are_unparsed():
    c = parse_choices(["남산공원", "북한산", "서울숲공원", "서울숲"], labels="numbers")
    assert extract_choice("서울숲공원입니다", c) == ("3", "text")
    assert extract_choice("서울숲이요", c) == ("4", "text")
    tie = parse_choices(["가나", "다라"])
    assert extract_choice("가나 다라", tie) == (None, "unparsed")


def test_numbered_labels():
    k = parse_choices(KSAT)
    assert extract_choice("정답은 (5)번입니다", k) == ("5", "paren")
    assert extract_choice("5", k) == ("5", "word")
    assert extract_choice("3번", k) == ("3", "bare")
    assert extract_choice("대출 권수", k) == ("2", "text")


def test_boolq_text_answers():
    b = parse_choices(BOOLQ)
    assert extract_choice("예", b) == ("B", "text")
    assert extract_choice("아니요, 그렇지 않습니다.", b) == ("A", "text")


def test_unparsed_is_wrong_and_reported_and_fallback_reproduces_published():
    preds = ["(C)", "모르겠어요", "1910년"]
    refs = ["(C) 1592년", "(A) 1392년", "(D) 1910년"]
    ours = choice_accuracy(preds, refs, choices=[CLICK] * 3, return_items=True)
    assert ours["correct"] == 2 and ours["unparsed"] == 1 and ours["total"] == 3
    assert ours["accuracy"] == pytest.approx(2 / 3)
    assert ours["predicted_labels"] == ["C", None, "D"]
    assert ours["methods"] == ["paren", "unparsed", "text"]
    published = choice_accuracy(
        preds, refs, choices=[CLICK] * 3, fallback="first", return_items=True
    )
    # the published code picks the first choice when nothing matches (lucky on item 2) and has
    # no choice-text step (so "1910년" falls back to A too)
    assert published["predicted_labels"] == ["C", "A", "A"]
    assert (
        published["correct"] == 2 and published["fallback_used"] == 2 and published["unparsed"] == 0
    )


def test_labels_inferred_without_choices():
    out = choice_accuracy(["(3)", "정답: 1"], ["(3)열람실 예약 방법", "2"])
    assert out["correct"] == 1 and out["total"] == 2


def test_logit_based_argmax():
    assert argmax_label({"A": -2.0, "B": -0.5, "C": -1.0}, ("A", "B", "C", "D")) == "B"
    assert argmax_label([-1.0, -1.0, -3.0], ("A", "B", "C")) == "A"  # tie -> earlier label
    with pytest.raises(ValueError, match="NaN"):
        argmax_label([math.nan, 0.0], ("A", "B"))
    with pytest.raises(ValueError, match="not among"):
        argmax_label({"Z": 0.0}, ("A", "B"))
    with pytest.raises(ValueError, match="2 scores for 3 labels"):
        argmax_label([0.0, 1.0], ("A", "B", "C"))
    out = choice_accuracy(
        [{"A": -3.0, "B": -0.1}, [-0.2, -1.0, -2.0, -3.0]],
        ["B", "(C) 1592년"],
        choices=[BOOLQ, CLICK],
        return_items=True,
    )
    assert out["predicted_labels"] == ["B", "A"] and out["methods"] == ["logit", "logit"]
    assert out["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "exc", "needle"),
    [
        ({"predictions": ["A"], "references": ["A", "B"]}, ValueError, "references has 2"),
        ({"predictions": [], "references": []}, ValueError, "predictions is empty"),
        ({"predictions": [None], "references": ["A"]}, ValueError, r"predictions\[0\] is None"),
        ({"predictions": [5], "references": ["A"]}, TypeError, r"predictions\[0\]"),
        ({"predictions": ["A"], "references": [None]}, TypeError, r"references\[0\]"),
        ({"predictions": ["A"], "references": ["A"], "fallback": "x"}, ValueError, "fallback"),
        (
            {"predictions": ["A", "B"], "references": ["A", "B"], "choices": [CLICK]},
            ValueError,
            "choices has 1",
        ),
    ],
)
def test_bad_input(kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        choice_accuracy(**kwargs)


def test_evaluate_module_generation_and_logits():
    acc = evaluate.load(str(METRICS / "choice_accuracy"))
    out = acc.compute(
        predictions=["정답은 (C)입니다", "1443년"],
        references=["(C) 1592년", "B"],
        choices=[CLICK, CLICK],
    )
    assert out["accuracy"] == 1.0 and out["unparsed"] == 0
    logit = acc.compute(predictions=[[-1.0, -0.2], [-0.1, -2.0]], references=["B", "B"])
    assert logit["correct"] == 1 and logit["total"] == 2
    parity = acc.compute(predictions=["?"], references=["A"], choices=[CLICK], fallback="first")
    assert parity["accuracy"] == 1.0 and parity["fallback_used"] == 1
