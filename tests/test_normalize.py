"""Normalisation steps and presets, checked on hand-worked Korean cases."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koala.normalize import (
    PRESETS,
    CollapseWhitespace,
    Compose,
    KeepCharacters,
    RemoveWhitespace,
    StripKsponAnnotations,
    UnicodeNormalize,
    get_normalizer,
)


def published_rule(text: str) -> str:
    """The published rule written independently: keep 가-힣, ㄱ-ㅣ, 0-9 and \\s, then drop \\s."""
    kept = re.sub(r"[^가-힣ㄱ-ㅣ0-9\s]", "", text)
    return re.sub(r"\s", "", kept)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("안녕하세요, 여러분!", "안녕하세요여러분"),
        ("2018년 평창 올림픽", "2018년평창올림픽"),
        ("AI 반도체는 GPU다", "반도체는다"),  # Latin letters are deleted, as published
        ("ㅋㅋㅋ ㅠㅠ", "ㅋㅋㅋㅠㅠ"),  # compatibility jamo are kept
        ("漢字 한자", "한자"),  # Hanja is deleted
        ("  \t\n", ""),
        ("１２３", ""),  # full-width digits are not ASCII digits: deleted by the published rule
        ("(웃음) 진짜?", "웃음진짜"),
    ],
)
def test_koala_preset_hand_worked(text, expected):
    assert get_normalizer("koala")(text) == expected


@given(st.text(alphabet=st.sampled_from("가나닭힣ㄱㅎㅏㅣ019aZ.,!? \t\n漢１"), max_size=40))
def test_koala_preset_equals_keep_then_remove_whitespace(text):
    two_step = Compose([KeepCharacters(), RemoveWhitespace()])
    assert PRESETS["koala"](text) == two_step(text) == published_rule(text)


def test_latin_preset_keeps_lowercased_letters():
    assert get_normalizer("koala_latin")("AI 반도체, GPU!") == "ai반도체gpu"


def test_spaced_preset_collapses_instead_of_deleting():
    assert get_normalizer("koala_spaced")("  오늘   날씨가,\n좋다 ") == "오늘 날씨가 좋다"


def test_nfkc_preset_keeps_fullwidth_digits():
    assert get_normalizer("koala_nfkc")("１２３ 번") == "123번"


def test_nfc_composes_conjoining_jamo_into_syllables():
    decomposed = "\u1112\u1161\u11ab"  # ᄒ ᅡ ᆫ
    assert UnicodeNormalize("NFC")(decomposed) == "한"
    # without NFC the published rule deletes conjoining jamo: the syllable is lost
    assert get_normalizer("koala")(decomposed) == ""


@pytest.mark.parametrize("form", ["NFD", "NFKD", "nfc"])
def test_decomposing_forms_are_refused(form):
    with pytest.raises(ValueError, match="NFC"):
        UnicodeNormalize(form)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(3G)/(쓰리 쥐) 폰 샀어", "쓰리 쥐 폰 샀어"),
        ("b/ 아/ 그거 n/ 진짜야 l/", "아 그거 진짜야"),
        ("o/ 음/ 뭐 u/ 했어+ 했어*", "음 뭐 했어 했어"),
        ("(70%)/(칠십 퍼센트) 정도", "칠십 퍼센트 정도"),
    ],
)
def test_kspon_annotations_keep_pronunciation(text, expected):
    assert StripKsponAnnotations()(text) == expected


def test_kspon_spelling_side_and_preset():
    assert StripKsponAnnotations(keep="spelling")("(3G)/(쓰리 쥐) 폰") == "3G 폰"
    assert get_normalizer("kspon")("b/ (2개)/(두 개) 주세요.") == "두개주세요"


def test_kspon_does_not_eat_words_ending_in_tag_letters():
    # "n/" is a tag only as a standalone token
    assert StripKsponAnnotations()("run/ 해") == "run 해"


def test_collapse_and_remove_whitespace():
    assert CollapseWhitespace()(" a \t b\n") == "a b"
    assert RemoveWhitespace()(" a \t b\n") == "ab"


def test_get_normalizer_errors_and_callables():
    with pytest.raises(ValueError, match="koala"):
        get_normalizer("klingon")
    with pytest.raises(TypeError):
        get_normalizer(3)  # type: ignore[arg-type]
    assert get_normalizer(str.upper)("ab") == "AB"
    assert get_normalizer(None)(" x ") == " x "
    with pytest.raises(TypeError, match="step 1"):
        Compose([str.strip, 5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="keeps nothing"):
        KeepCharacters(hangul=False, jamo=False, digits=False, whitespace=False)
