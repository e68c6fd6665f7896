"""The numeral-aware CER (preset ``koala_numerals``, :mod:`koala.numerals`) on hand-checked
(reference, hypothesis) pairs: each asserts CER 0 (the two write the same number, or the same
words) or CER > 0 (a different number, or a word that only looks like a numeral), worked out
by hand. The references imitate Zeroth's transcription ("이천 십 팔 년"); the hypotheses how
ASR models write ("2018년"). None is copied from a corpus."""

from __future__ import annotations

import random
import unicodedata
from decimal import Decimal
from pathlib import Path

import pytest
from num2words import num2words
from test_score_honest import make_run, record

from koala import report as rep
from koala.normalize import get_normalizer
from koala.numerals import canonical_number, read_numerals
from koala.scoring.cer import corpus_cer

SAME = True
DIFF = False
# (reference, hypothesis, CER is 0 under koala_numerals)
PAIRS = [
    # --- Sino-Korean numerals spelled with the transcribers' spacing vs digits
    ("이천 십 팔 년 완공을 목표로", "2018년 완공을 목표로", SAME),
    ("이천 십 팔 년", "2018 년", SAME),
    ("이천십팔년", "2018년", SAME),
    ("십 삼 층 집 주인", "13층 집 주인", SAME),
    ("천 이백 십 원대까지 올랐다", "1,210원대까지 올랐다", SAME),
    ("천 이백 십 원대", "1210원대", SAME),
    ("육십 사 년 초임검사로", "64년 초임검사로", SAME),
    ("칠십 사 년 사 월", "74년 4월", SAME),
    ("지난해 삼 월", "지난해 3월", SAME),
    ("천 구백 팔십 일 년", "1981년", SAME),
    ("천 구백 육십 오 년 오 월 십 일", "1965년 5월 10일", SAME),
    ("이천 오 년에 실시된", "2005년에 실시된", SAME),
    ("이천 년만 해도", "2000년만 해도", SAME),
    ("십 이 월", "12월", SAME),
    ("십 일 월 십 구 일", "11월 19일", SAME),
    ("삼십 오 석에 그친", "35석에 그친", SAME),
    ("이십 구 일 한 미 양국이", "29일 한 미 양국이", SAME),
    ("육백 십 오 일째 되는 날", "615일째 되는 날", SAME),
    ("오십 대 여주인을", "50대 여주인을", SAME),
    ("삼십 세나 많았지만", "30세나 많았지만", SAME),
    ("약 십 오 분이", "약 15분이", SAME),
    ("십 육 만 톤에 이르는데", "16만 톤에 이르는데", SAME),
    ("만 육천 칠백 톤 정도", "1만 6,700톤 정도", SAME),
    ("구천 삼백 원선에", "9,300원선에", SAME),
    ("월 백 구십 삼 만 원을", "월 193만 원을", SAME),
    ("삼 억 원 정도의", "3억 원 정도의", SAME),
    ("십 억달러 투자를", "10억달러 투자를", SAME),
    ("오백 만원을 채워", "500만원을 채워", SAME),
    ("이백 만 명의 인명을", "200만 명의 인명을", SAME),
    ("천 만원을 넘을", "1,000만원을 넘을", SAME),
    ("일 조 사천 억원의 현금", "1조 4천억원의 현금", SAME),
    ("천 삼백 사십 사 조 삼천 억원", "1,344조 3,000억원", SAME),
    ("일 조 이천 구백 십 구 억원", "1조 2,919억원", SAME),
    ("이천 만 명 이상의 주민", "2000만 명 이상의 주민", SAME),
    ("삼 년째 과학 연구를", "3년째 과학 연구를", SAME),
    ("일 년 전부터", "1년 전부터", SAME),
    ("이 년 전 피부암을", "2년 전 피부암을", SAME),
    ("사 일 부산 동구", "4일 부산 동구", SAME),
    ("지난 오 일에도", "지난 5일에도", SAME),
    ("십 일부터 재개하고", "10일부터 재개하고", SAME),
    ("육 일부터 구 일까지", "6일부터 9일까지", SAME),
    ("하루 만에 뒤집었다", "하루 만에 뒤집었다", SAME),
    ("십 일 만에 돌아왔다", "10일 만에 돌아왔다", SAME),
    ("삼십 일 일 하루에만", "31일 하루에만", SAME),
    ("이십 대에 대해서만", "20대에 대해서만", SAME),
    ("십 대 자녀가", "10대 자녀가", SAME),
    ("십 대 자녀가", "십대 자녀가", SAME),
    ("삼 차 감염 환자가", "3차 감염 환자가", SAME),
    ("사 차 산업 혁명", "4차 산업 혁명", SAME),
    ("십 칠 권 분량의 수첩", "17권 분량의 수첩", SAME),
    ("칠 종의 검정 교과서", "7종의 검정 교과서", SAME),
    ("삼 분기에만", "3분기에만", SAME),
    ("이십 세기 말", "20세기 말", SAME),
    ("일 세기 전에", "1세기 전에", SAME),
    ("칠십 년만이다", "70년만이다", SAME),
    ("팔 년동안 국내에", "8년동안 국내에", SAME),
    ("사 일 새벽 두 명 더", "4일 새벽 2명 더", SAME),
    ("삼십 에서 사십 세 미만", "30에서 40세 미만", SAME),
    ("백 세 시대잖아요", "100세 시대잖아요", SAME),
    ("이천 십 사 학년부터", "2014학년부터", SAME),
    # approximately: 여
    ("십 여 일간의 진검승부", "10여 일간의 진검승부", SAME),
    ("칠십 여 채가 빈 상태", "70여 채가 빈 상태", SAME),
    ("오백 여명이 참석했다", "500여명이 참석했다", SAME),
    ("십 여년 전", "10여년 전", SAME),
    # --- months with their own readings
    ("유 월 정기주총", "6월 정기주총", SAME),
    ("유월에", "6월에", SAME),
    ("시 월 십 팔 일", "10월 18일", SAME),
    ("시월 일 일", "10월 1일", SAME),
    ("시 월 일 일 에서 십 일 월", "10 월 1 일 에서 11 월", SAME),  # "1 일": the day, not 11
    ("삼월에 개교", "3월에 개교", SAME),
    ("사 월 개교할 예정인", "4월 개교할 예정인", SAME),
    # --- decimals
    ("규모 오 쩜 공 의 인공지진파", "규모 5.0의 인공지진파", SAME),
    ("오 쩜 구 사 시간", "5.94시간", SAME),
    ("백 오십 삼 쩜 삼 삼 제곱킬로미터", "153.33제곱킬로미터", SAME),
    ("영 점 오", "0.5", SAME),
    ("공 점 오 퍼센트", "0.5%", SAME),
    ("삼 점 일 사", "3.14", SAME),
    ("이 점 오 퍼센트", "2.5%", SAME),
    ("일 점 오 배", "1.5배", SAME),
    ("일 점 오 억 원", "1억 5천만 원", SAME),
    # --- native numerals before counters
    ("세 개 사드 포대", "3개 사드 포대", SAME),
    ("두 명이 불구속 입건됐다", "2명이 불구속 입건됐다", SAME),
    ("스무 살", "20살", SAME),
    ("열두 시", "12시", SAME),
    ("열 두 시", "12시", SAME),
    ("서른 두 살", "32살", SAME),
    ("서른두 살", "32살", SAME),
    ("열 명이 인터넷을", "10명이 인터넷을", SAME),
    ("다섯 명과 출장", "5명과 출장", SAME),
    ("네 킬로미터에 달하는", "4킬로미터에 달하는", SAME),
    ("스물 두 마리의 올빼미", "22마리의 올빼미", SAME),
    ("마흔 일곱 주를 사용하면", "47주를 사용하면", SAME),
    ("쉰 일곱 주를", "57주를", SAME),
    ("여든 일곱 채 중", "87채 중", SAME),
    ("열 여덟 개 시 군 가운데", "18개 시 군 가운데", SAME),
    ("열 한 개 시 군만", "11개 시 군만", SAME),
    ("한 명만 지나갔어도", "1명만 지나갔어도", SAME),
    ("일곱 시간에 대해서는", "7시간에 대해서는", SAME),
    ("스물 네 시간이 모자랄", "24시간이 모자랄", SAME),
    ("여섯 개월이라도", "6개월이라도", SAME),
    ("마흔 여섯 명이나", "46명이나", SAME),
    ("쉰 다섯 건을 수임", "55건을 수임", SAME),
    ("오전 아홉 시 삼십 분경", "오전 9시 30분경", SAME),
    ("오후 한 시 육 분부터", "오후 1시 6분부터", SAME),
    ("오전 두 시 십 이 분", "오전 2시 12분", SAME),
    ("오후 일곱 시까지", "오후 7시까지", SAME),
    ("오후 열 시에 방영된다", "오후 10시에 방영된다", SAME),
    ("세 배가량 비싸지만", "3배가량 비싸지만", SAME),
    ("두 살과 네 살짜리", "2살과 4살짜리", SAME),
    ("강남역 열 번 출구", "강남역 10번 출구", SAME),
    ("네 번째 미니앨범", "4번째 미니앨범", SAME),
    ("두 번째는", "2번째는", SAME),
    ("여섯 에서 열 두 개월까지는", "6에서 12개월까지는", SAME),
    ("세 개", "세개", SAME),
    # --- digits, separators, mixed forms
    ("1만 5천 명", "만 오천 명", SAME),
    ("만 오천 원", "15,000원", SAME),
    ("1만 5천원", "15000원", SAME),
    ("2억 5천만 원", "이억 오천만 원", SAME),
    ("일 만 명", "1만 명", SAME),
    ("만 명", "10,000명", SAME),
    ("삼 만 원", "3만 원", SAME),
    ("이 만원 정도를 번다", "2만원 정도를 번다", SAME),
    ("오천만 원", "5천만 원", SAME),
    ("1,000,000원", "백만 원", SAME),
    ("1,000,000원", "100만 원", SAME),
    ("0.5초", "영 점 오 초", SAME),
    ("1.5배", "1.50배", DIFF),
    ("일 만 불이에요", "1만 불이에요", SAME),
    ("1.5억 원", "1억 5천만 원", SAME),
    ("이 점 오 조 원", "2.5조 원", SAME),
    ("요원 007", "요원 7", DIFF),
    # --- percent
    ("오 퍼센트가량 떨어지면서", "5%가량 떨어지면서", SAME),
    ("칠십 퍼센트로 확대하고", "70%로 확대하고", SAME),
    ("팔십 팔 퍼센트 구십 사 퍼센트", "88% 94%", SAME),
    ("5 %", "5퍼센트", SAME),
    ("5％", "5%", SAME),
    ("십 삼 퍼센트가", "13%가", SAME),
    ("일 퍼센트 미만일", "1% 미만일", SAME),
    ("백 퍼센트를", "100%를", SAME),
    ("오십 일 퍼센트는", "51%는", SAME),
    # --- ordinals
    ("제 이 차 세계대전", "제2차 세계대전", SAME),
    ("제2차", "제 이 차", SAME),
    ("제 십 칠 대 국회", "제17대 국회", SAME),
    ("제 일 회 대회", "제1회 대회", SAME),
    ("제 삼 조", "제3조", SAME),
    # --- fractions
    ("삼 분의 일", "3분의 1", SAME),
    ("삼 분의 이 즉", "3분의 2 즉", SAME),
    ("사 분의 삼", "4분의 3", SAME),
    ("삼분의 일", "3분의1", SAME),
    ("이 분의 일", "2분의 1", SAME),
    ("십 분의 일", "10분의 1", SAME),
    # --- several numbers in a row, ranges
    ("칠 월 이 삼 일께 귀국", "7월 2~3일께 귀국", SAME),
    ("십 칠 십 팔 대 국회의원", "17·18대 국회의원", SAME),
    ("이 삼 달러를 더", "2~3달러를 더", SAME),
    ("일 이 순위 중에", "1·2순위 중에", SAME),
    ("팔 월 육 칠 일", "8월 6~7일", SAME),
    (
        "이천 십 육 년 시 월 일 일 에서 이천 십 육 년 십 일 월 십 구 일",
        "2016년 10월 1일에서 2016년 11월 19일",
        SAME,
    ),
    # --- words that only look like numerals stay text
    ("이 노인이", "이 노인이", SAME),
    ("이 노인이", "2 노인이", DIFF),
    ("이 사람", "2 사람", DIFF),
    ("이 사람", "이사람", SAME),
    ("이 사람은", "2사람은", DIFF),
    ("회사 일이 많다", "회사 1이 많다", DIFF),
    ("회사 일", "회사 1", DIFF),
    ("회사 일", "회사일", SAME),
    ("일이 많다", "1이 많다", DIFF),
    ("일이 많다", "12 많다", DIFF),
    ("사과를 먹었다", "4과를 먹었다", DIFF),
    ("사과", "4과", DIFF),
    ("사이에", "42에", DIFF),
    ("이번에 발견된", "2번에 발견된", DIFF),
    ("이분들 정신 못 차리고", "2분들 정신 못 차리고", DIFF),
    ("이 분은 교수님", "2분은 교수님", DIFF),
    ("이 일은 내가 할게", "2일은 내가 할게", DIFF),
    ("이 점이 중요하다", "2점이 중요하다", DIFF),
    ("이 점이 중요하다", "2.2 중요하다", DIFF),
    ("이 대표는 이 자리에서", "2대표는 2자리에서", DIFF),
    ("천 대표는", "1000대표는", DIFF),
    ("백 사장이 아니라", "104장이 아니라", DIFF),
    ("만일 내가", "10001 내가", DIFF),
    ("만일 내가", "만 1 내가", DIFF),
    ("일부 언론", "1부 언론", DIFF),
    ("사건 현장", "4건 현장", DIFF),
    ("구조 작업", "9조 작업", DIFF),
    ("한 잔의 커피", "한잔의 커피", SAME),
    ("한국 사람", "1국 사람", DIFF),
    ("한 온라인 영어학원은", "1 온라인 영어학원은", DIFF),
    ("세계 보건 기구", "3계 보건 기구", DIFF),
    ("열차의 승객들은", "10차의 승객들은", DIFF),
    ("네 그렇습니다", "4 그렇습니다", DIFF),
    ("오늘 오후", "5늘 오후", DIFF),
    ("사실 그분은", "4실 그분은", DIFF),
    ("오만한 태도", "5만한 태도", DIFF),
    ("이만 가보겠습니다", "2만 가보겠습니다", DIFF),
    ("천천히 걸었다", "1000천히 걸었다", DIFF),
    ("오히려 그는", "5히려 그는", DIFF),
    ("삼성 전자", "3성 전자", DIFF),
    ("구월동", "9월동", DIFF),
    # --- a wrong number stays an error
    ("이천 십 팔 년", "2019년", DIFF),
    ("삼 월", "3일", DIFF),
    ("만 원", "1,000원", DIFF),
    ("천 이백 십 원대", "1,200원대", DIFF),
    ("십 삼 층", "31층", DIFF),
    ("오 퍼센트", "50%", DIFF),
    ("세 개", "4개", DIFF),
    ("스무 살", "2살", DIFF),
    ("서른 두 살", "30 2살", DIFF),
    ("오 쩜 구 사 시간", "5.49시간", DIFF),
    ("오 쩜 구 사 시간", "594시간", DIFF),
    ("0.5", "5", DIFF),
    ("만 오천 원", "5000원", DIFF),
    ("1만 5천 명", "1만 5백 명", DIFF),
    ("삼 분의 일", "3분의 2", DIFF),
    ("삼 분의 일", "1분의 3", DIFF),
    ("제 이 차", "제3차", DIFF),
    ("이 년 전", "2일 전", DIFF),
    ("십 일 월", "10월", DIFF),
    ("칠 월 이 삼 일께", "7월 23일께", SAME),
    ("천 구백 팔십 일 년", "1891년", DIFF),
    ("일 조 사천 억원", "1조 400억원", DIFF),
    ("백만 원", "10만 원", DIFF),
    ("열두 시", "12월", DIFF),
    ("시 월", "10일", DIFF),
    ("유 월", "7월", DIFF),
]


def numerals_cer(reference: str, hypothesis: str) -> float:
    return corpus_cer([hypothesis], [reference], normalization="koala_numerals").cer


def test_at_least_150_pairs_and_every_rule_has_both_outcomes():
    assert len(PAIRS) >= 150
    assert len({(r, h) for r, h, _ in PAIRS}) == len(PAIRS)  # no pair twice
    assert sum(same for *_, same in PAIRS) >= 100
    assert sum(not same for *_, same in PAIRS) >= 50


@pytest.mark.parametrize(("reference", "hypothesis", "same"), PAIRS)
def test_pair(reference, hypothesis, same):
    cer = numerals_cer(reference, hypothesis)
    assert (cer == 0) == same, (cer, read_numerals(reference), read_numerals(hypothesis))


def test_the_plain_cer_charges_most_of_the_pairs_the_numerals_cer_does_not():
    # what the preset changes: these pairs cost edits under the headline rule
    fixed = [
        (r, h) for r, h, same in PAIRS if same and corpus_cer([h], [r], normalization="koala").cer
    ]
    assert len(fixed) >= 120


# ---- the canonical form and the reader, against an independent speller (num2words)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (7, "7"),
        (2018, "2018"),
        (10000, "1만"),
        (15000, "1만5000"),
        (10005, "1만0005"),
        (2000000, "200만"),
        (100010000, "1억0001만"),
        (1291900000000, "1조2919억"),
        (1344300000000000, "1344조3000억"),
    ],
)
def test_canonical_number_groups_by_man(value, expected):
    # worked by hand: split into groups of four digits from the right, 만/억/조 after each
    assert canonical_number(value) == expected


def test_canonical_number_keeps_the_fraction_as_written():
    assert canonical_number(0, "5") == "0점5"
    assert canonical_number(153, "33") == "153점33"
    assert canonical_number(5, "0") == "5점0"


def respace(text: str, rng: random.Random) -> str:
    """``text`` with spaces taken out or put in between its syllables, as transcribers do."""
    chars = [c for c in text if not c.isspace()]
    return "".join(c + (" " if rng.random() < 0.5 else "") for c in chars).strip()


def test_spelled_numbers_read_as_num2words_spells_them():
    """num2words (its own Korean speller) writes the number; the reader must give it back,
    whatever the spacing between its syllables, before a counter."""
    rng = random.Random(0)
    values = [rng.randrange(1, 10**k) for k in range(1, 14) for _ in range(40)]
    for value in values:
        spelled = respace(num2words(value, lang="ko"), rng)
        got = get_normalizer("koala_numerals")(f"{spelled} 원")
        assert got == canonical_number(value) + "원", (value, spelled)
        # the same number in digits, with or without separators, reads the same
        assert get_normalizer("koala_numerals")(f"{value:,}원") == got


def test_spelled_decimals_read_as_num2words_spells_them():
    rng = random.Random(1)
    for _ in range(200):
        value = Decimal(rng.randrange(0, 10**5)) / Decimal(10 ** rng.randrange(1, 4))
        if value == value.to_integral_value():
            continue
        text = format(value.normalize(), "f")
        spelled = num2words(float(text), lang="ko")  # "십이 점 삼 사"
        whole, frac = text.split(".")
        expected = canonical_number(int(whole), frac) + "퍼센트"
        assert get_normalizer("koala_numerals")(f"{spelled} 퍼센트") == expected, spelled
        assert get_normalizer("koala_numerals")(f"{text}%") == expected


def test_native_numerals_read_as_num2words_spells_them():
    # num2words' ordinals are native numerals before the counter 번째: "마흔일곱 번째"
    for value in range(2, 100):
        spelled = num2words(value, lang="ko", to="ordinal")
        assert get_normalizer("koala_numerals")(spelled) == f"{value}번째", spelled


# ---- the preset as users call it


def test_preset_composes_nfd_before_reading():
    nfd = unicodedata.normalize("NFD", "이천 십 팔 년")
    assert get_normalizer("koala_numerals")(nfd) == "2018년"


def test_counts_stay_a_dict_with_hits_and_edits():
    # "2019년" against "이천 십 팔 년": 2018년 vs 2019년, one substitution of 5 characters
    out = corpus_cer(["2019년"], ["이천 십 팔 년"], normalization="koala_numerals").as_dict()
    assert (out["substitutions"], out["deletions"], out["insertions"], out["hits"]) == (1, 0, 0, 4)
    assert out["cer"] == pytest.approx(1 / 5)
    assert out["normalization"] == "koala_numerals"


def test_evaluate_module_takes_the_preset():
    import evaluate

    module = evaluate.load(str(Path(__file__).resolve().parent.parent / "metrics" / "korean_cer"))
    refs = ["이천 십 팔 년 완공", "천 이백 십 원대", "이 사람"]
    hyps = ["2018년 완공", "1,210원대", "2 사람"]
    plain = module.compute(predictions=hyps, references=refs)
    numerals = module.compute(predictions=hyps, references=refs, normalization="koala_numerals")
    # plain: 이천십팔 -> 2018 and 천이백십 -> 1210 are 4 substitutions each, 이 -> 2 one;
    # 7 + 6 + 3 reference characters
    assert plain["cer"] == pytest.approx((4 + 4 + 1) / (7 + 6 + 3))
    # numerals: 2018년완공 = 2018년완공, 1210원대 = 1210원대, 이사람/2사람 stays 1 of 3
    assert numerals["cer"] == pytest.approx(1 / (7 + 6 + 3))
    assert numerals["hits"] == 15 and numerals["substitutions"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 사람", "2 사람"),  # digits are read; the 사 of 사람 after them is not a number
        ("이 사람이 세 개를 샀다", "이 사람이 3 개를 샀다"),
        ("이천 십 팔 년 완공", "2018 년 완공"),
        ("오 쩜 구 사 시간", "5점94 시간"),
        ("유 월에", "6 월에"),
        ("월 삼 만 십 만원", "월 3만 10만원"),  # 3만 then 10만, not 3만 10 then 1만
        ("십 일 만에", "10 일 만에"),  # after ten days, not 110,000
    ],
)
def test_read_numerals_hand_worked(text, expected):
    assert read_numerals(text) == expected


def test_read_numerals_leaves_text_without_numbers_alone():
    text = "그 바람에 나의 몸도 겹쳐 쓰러지며 노란 동백꽃 속으로 폭 파묻혀 버렸다"
    assert read_numerals(text) == text
    assert get_normalizer("koala_numerals")(text) == get_normalizer("koala")(text)


# ---- the ASR scores and report: the numeral-aware CER beside the plain one


ASR_ROWS = [
    # (reference, hypothesis): plain edits / numeral edits, worked by hand below
    ("이천 십 팔 년 완공", "2018년 완공"),  # 이천십팔년완공 vs 2018년완공: 4 / 0 of 7
    ("이 사람", "이 사람"),  # 0 / 0 of 3
    ("삼 월", "3일"),  # 삼월 vs 3일: 2 / 3월 vs 3일: 1, of 2
]


def test_asr_scores_carry_the_numeral_aware_cer_beside_the_plain(tmp_path):
    recs = [
        record("asr_zeroth", f"a{k}", hyp, task="asr", ref={"text": ref})
        for k, (ref, hyp) in enumerate(ASR_ROWS)
    ]
    run = make_run(tmp_path / "r", recs)
    from koala.score import score_run

    g = score_run(run)["models"]["m"]["configs"]["asr_zeroth"]["variants"]["k1"]["gen"]
    assert g["cer"] == pytest.approx(6 / 12)  # the headline is unchanged
    assert g["cer_numerals"] == pytest.approx(1 / 12)
    assert g["numerals"]["substitutions"] == 1 and g["numerals"]["hits"] == 11
    assert g["numerals"]["reference_length"] == 12
    assert g["numerals"]["normalization"] == "koala_numerals"
    assert (g["references_with_numbers"], g["num_utterances"]) == (2, 3)
    assert "cer_numerals_ci" in g  # intervals as for the headline

    rep.write_report(rep.collect([run]), tmp_path / "out", [str(run)], html=True)
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| set | noise | m | m: numerals | refs with a number (%) |" in md
    row = next(line for line in md.splitlines() if line.startswith("| asr_zeroth | clean |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("50.00 [") and cells[3].startswith("8.33 [")
    assert cells[4] == "66.7 (2/3)"
    assert "numerals* column is the same CER after numbers are read" in md
    page = (tmp_path / "out" / "results.html").read_text(encoding="utf-8")
    assert "m: numerals" in page and "66.7 (2/3)" in page


def test_asr_table_says_so_when_a_score_has_no_numeral_figures():
    from koala.tasks import find_task

    g = {"cer": 0.25, "num_utterances": 4}  # a scores.json written before the numerals
    c = {"task": "asr", "best": {"gen": {"variant": "k1"}}, "variants": {"k1": {"gen": g}}}
    header, rows = find_task("asr").report_table({"m": {"asr_zeroth": c}}, ["asr_zeroth"])
    assert header == ["set", "noise", "m", "m: numerals", "refs with a number (%)"]
    assert rows == [["asr_zeroth", "clean", "25.00", "—", "—"]]
