"""Normalisation steps and presets, checked on hand-worked Korean cases."""

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
    normalize_batch,
)


def published_rule(text: str) -> str:
    """The published rule, written independently from its description: keep the syllable block
    U+AC00-U+D7AF, jamo U+1100-U+11FF and U+3130-U+318F, ASCII digits and whitespace, then
    delete all whitespace."""
    kept = "".join(
        c
        for c in text
        if 0xAC00 <= ord(c) <= 0xD7AF
        or 0x1100 <= ord(c) <= 0x11FF
        or 0x3130 <= ord(c) <= 0x318F
        or c in "0123456789"
        or c.isspace()
    )
    return "".join(c for c in kept if not c.isspace())


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
        ("ㆍ아래아", "ㆍ아래아"),  # the whole compatibility-jamo block is kept
        ("(웃음) 진짜?", "웃음진짜"),
    ],
)
def test_koala_preset_hand_worked(text, expected):
    assert get_normalizer("koala")(text) == expected
    assert get_normalizer("koala_published")(text) == expected  # NFC changes none of these


ALPHABET = "가나닭힣\ud7a4ㄱㅎㅏㅣㆎ\u1100\u11ff019aZ.,!?漢１ \t\n\u3000\xa0\u2028\x00\x1f"


@given(st.text(alphabet=st.sampled_from(ALPHABET), max_size=40))
def test_published_preset_equals_keep_then_remove_whitespace(text):
    two_step = Compose([KeepCharacters(), RemoveWhitespace()])
    assert PRESETS["koala_published"](text) == two_step(text) == published_rule(text)


@given(st.lists(st.text(alphabet=st.sampled_from(ALPHABET), max_size=15), max_size=6))
def test_batch_equals_one_by_one_for_every_preset(texts):
    for name, step in PRESETS.items():
        assert normalize_batch(step, texts) == [step(t) for t in texts], name


def test_latin_preset_keeps_letters_with_their_case():
    assert get_normalizer("koala_latin")("AI 반도체, GPU!") == "AI반도체GPU"
    assert get_normalizer("koala_latin")("TED") != get_normalizer("koala_latin")("ted")


def test_spaced_preset_collapses_instead_of_deleting():
    assert get_normalizer("koala_spaced")("  오늘   날씨가,\n좋다 ") == "오늘 날씨가 좋다"


def test_nfkc_preset_keeps_fullwidth_digits():
    assert get_normalizer("koala_nfkc")("１２３ 번") == "123번"


def test_nfc_composes_conjoining_jamo_into_syllables():
    decomposed = "\u1112\u1161\u11ab"  # ᄒ ᅡ ᆫ
    assert UnicodeNormalize("NFC")(decomposed) == "한"
    # the published rule keeps conjoining jamo as they are: three characters, not one
    assert get_normalizer("koala_published")(decomposed) == decomposed
    # the koala preset (and the other default presets) run NFC first
    for name in ("koala", "koala_latin", "koala_spaced", "kspon"):
        assert get_normalizer(name)(decomposed) == "한", name
    assert get_normalizer("koala_nfkc")(decomposed) == "한"


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("이천 십 팔 년 완공, (웃음)", "2018년완공웃음"),
        ("2,018년 완공", "2018년완공"),
        ("천 이백 십 원대", "1210원대"),
        ("5% 인상", "5퍼센트인상"),
        ("만 오천 원", "1만5000원"),
        ("Seoul 에서 0.5초", "에서0점5초"),  # Latin letters still deleted; the point is 점
        ("이 사람", "이사람"),  # the demonstrative stays text
        ("회사 일이 많다", "회사일이많다"),
    ],
)
def test_numerals_preset_hand_worked(text, expected):
    assert get_normalizer("koala_numerals")(text) == expected


# no digit, no numeral syllable, no native numeral, no % : nothing for the reader to read
NO_NUMBER = "가나닭힣강물바람노을 ㄱㅎㅏ,.!?()\t\n"


@given(st.text(alphabet=st.sampled_from(NO_NUMBER), max_size=40))
def test_numerals_preset_is_the_koala_preset_on_text_without_numbers(text):
    assert get_normalizer("koala_numerals")(text) == get_normalizer("koala")(text)
