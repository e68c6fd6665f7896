"""Read Korean numbers the same way whatever way they are written (the ``koala_numerals`` preset).

Zeroth's references spell numbers out as read aloud, with a space between the parts
("이천 십 팔 년", "천 이백 십 원대", "오 퍼센트"), while most ASR models write digits
("2018년", "1,210원대", "5%"). :func:`read_numerals` rewrites every number it recognises, on
either side, as one canonical digit string, so that the CER compares the numbers and not the
way they are written. Everything it does not recognise is left as it is.

What is read
------------
* Sino-Korean numerals, spaced or not: "이천 십 팔", "천 이백 십", "육십 사", "일 조 사천 억";
  the value, never the spelling, is kept (a wrong number stays an error: "2019년" against
  "이천 십 팔 년" is one substitution).
* native numerals before a counter: "세 개", "두 명", "스무 살", "열두 시", "서른 두 살";
* digits, with thousands separators and decimals ("1,210", "0.5"), and mixed forms
  ("1만 5천", "만 오천", "2억 5천만");
* "%" as "퍼센트"; decimals "오 쩜 구", "영 점 오"; ordinals "제 이 차" / "제2차"; fractions
  "삼 분의 일" / "3분의 1"; "유 월" / "시 월" (June, October); ranges "이 삼 일" (2-3 days),
  "여섯 에서 열 두 개월".

The canonical form
------------------
Integers are written in digits grouped by 만 as Korean orthography writes numbers
(한글 맞춤법 제44항: "수를 적을 적에는 '만(萬)' 단위로 띄어 쓴다"): 2018 -> ``2018``,
15000 -> ``1만5000``, 1,291,900,000,000 -> ``1조2919억``; a decimal point is ``점``
(0.5 -> ``0점5``); "%" is ``퍼센트``. The counter after a number is left as written.

When a spelled word is a number
-------------------------------
A word that only looks like a numeral stays text; these rules decide, in this order:

1. A number starts at the start of a word (after a space, punctuation or the start of the
   text): "회사 일" keeps its "사 일". Digits are always numbers.
2. A spelled number is read only when what follows makes it one: a counter of its kind
   (Sino-Korean "년 월 일 층 원 퍼센트 ...", native "개 명 살 시 마리 ..."), then nothing but
   particles and suffixes to the end of the word ("년이었다", "원대까지", "층으로"); or a
   decimal point; or "분의" (a fraction); or, for a Sino-Korean number of two or more
   syllables with 십/백/천 in it ("삼십", "천 이백"), the end of the word. So "이 노인",
   "이 사람", "일이 많다", "사과" and "이 대표는" stay text.
3. A Sino-Korean digit of one syllable joined to its counter is a word, as Korean writes it:
   "이번", "일부", "사건", "구조" stay text, "이 번", "일 부" are numbers; months ("삼월",
   "유월") and "삼분의 일" are the exceptions. Joined forms that are words are also kept for
   the one-syllable 십/백/천/만 and native numerals ("만일", "천장", "세대", "두통", "열대");
   other joined forms are numbers ("십대", "만원", "세개", "한번").
4. "이" alone (not after "제") is read only before counters that do not follow the
   demonstrative "this" in speech (년, 월, 퍼센트, 원, 개월, ...): "이 분", "이 번", "이 일",
   "이 층" stay text ("this person", "this time", "this matter", "this floor").

Known limits: a spaced "이 번" ('number two') against a hypothesis "이번" counts as an error;
"하나, 둘, 셋" without a counter are not read; units written in Latin letters ("4km") are
deleted by the character rule as before, so they do not match "4킬로미터"; a spoken date such
as "사 십 육" (4.16) reads as 46.

Why a reader of its own: the Korean analysers that tag numerals and counters (kiwipiepy,
mecab-ko) cost 0.16-1.8 ms a sentence here, 20-250 times the whole plain CER, and still tag
"이 층", "이 기", "이 분의 일" inconsistently; NeMo's Korean inverse normaliser reads "이 사람"
as "2 사람", "회사 일이" as "회사 1 2" and leaves "이천 십 팔" as "2000 10 8"; the
digit<->Hangul converters on PyPI convert a number already cut out of the text, which is the
easy half. The rules above are checked on 220+ hand-written pairs (``tests/test_numerals.py``)
and the spelled numbers against num2words' own Korean speller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["ReadNumerals", "canonical_number", "read_numerals"]

SINO_DIGITS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9}
ZERO = {"영": 0, "공": 0}
SMALL_UNITS = {"십": 10, "백": 100, "천": 1000}
BIG_UNITS = {"만": 10**4, "억": 10**8, "조": 10**12}
NATIVE_ONES = {
    "한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9,
}  # fmt: skip
NATIVE_TENS = {
    "열": 10, "스물": 20, "서른": 30, "마흔": 40, "쉰": 50, "예순": 60, "일흔": 70, "여든": 80,
    "아흔": 90,
}  # fmt: skip

# counters after a spelled Sino-Korean number
SINO_COUNTERS = """
년 월 일 분 초 층 원 달러 불 엔 위안 유로 파운드 퍼센트 세 대 차 회 호 번 번째 권 석 위 등
등급 주 주년 주일 개월 개국 개 명 인 건 톤 킬로그램 킬로미터 킬로 미터 센티미터 센티
밀리미터 밀리 그램 리터 제곱킬로미터 제곱미터 평 헥타르 도 배 배럴 학년 교시 종 강 승 패
골 단계 쪽 페이지 절 항 편 화 호선 번지 동 분기 세기 시간 마리 가구 표 순위 기압 포인트
""".split()
# counters after a native number (units of measure too: speech says "네 킬로미터")
NATIVE_COUNTERS = """
개 명 살 시 시간 마리 번 번째 권 대 달 가지 주 주일 개월 채 잔 병 벌 켤레 곳 군데 배 건 장 줄
통 그루 송이 포기 자루 척 쌍 분 끼 판 차례 해 걸음 마디 칸 개국 팀 표 컵 그릇 가구 군
킬로미터 미터 센티미터 밀리미터 킬로그램 그램 리터 톤 시즌 종류 과목 문제
""".split()
# a lone "이" is also the demonstrative "this" (이 분, 이 번, 이 일, 이 층, 이 차 ...): read it
# only before counters that "this" does not take in speech
I_COUNTERS = """
년 월 퍼센트 원 달러 엔 위안 유로 파운드 세 학년 호선 톤 킬로그램 킬로미터 킬로 미터
센티미터 센티 밀리미터 그램 리터 개월 주년 세기 분기 교시
""".split()
# particles, suffixes and copula endings that may follow a counter up to the end of the word
# ("년이었다", "원대까지", "층으로", "일께", "년째", "분의", "퍼센트가량", "년동안")
TAIL = """
은 는 이 가 을 를 에 에서 에게 께 께서 의 도 만 까지 부터 와 과 로 으로 나 이나 보다 처럼 밖에
뿐 마다 만큼 라도 든 면 고 며 다 였 었 인 인데 인가 입니다 에요 예요 야 란 라 라는 씩 째 간 여
가량 쯤 경 정도 동안 이상 이하 미만 남짓 안팎 내외 대 짜리 당 초 말 중 초반 중반 후반 말경 전
후 뒤 치 엔 지 지만 선 랑 요 죠 네 서
""".split()
# one-syllable numbers joined to a counter that are words, not numbers
JOINED_WORDS = frozenset(
    """
    만일 만세 천장 십분 백인 만점 천사 만년 세대 세배 세분 두통 열대 열병 한배 한팀 한대 한시
    세시
    """.split()
)

_HANGUL = "가-힣"
_NUMERAL_SYLLABLES = "".join([*SINO_DIGITS, *SMALL_UNITS, *BIG_UNITS])


def _alternation(words: list[str]) -> str:
    """A regex matching any of ``words``, longest first, written as a trie ("개(?:월|국)?")
    so that the regex engine does not try a hundred counters one by one."""
    trie: dict = {}
    for word in set(words):
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict) -> str:
        ends = "" in node
        branches = [re.escape(ch) + pattern(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:  # the word may stop here: the longer words first, then nothing
            return "(?:" + body + ")?" if len(branches) == 1 else body + "?"
        return body

    return pattern(trie)


_TAIL_END = f"(?:{_alternation(TAIL)})*(?![{_HANGUL}])"
_SINO_COUNTER = re.compile(rf"(\s*)(여\s*)?({_alternation(SINO_COUNTERS)})(?={_TAIL_END})")
_NATIVE_COUNTER = re.compile(rf"(\s*)(여\s*)?({_alternation(NATIVE_COUNTERS)})(?={_TAIL_END})")
_ANY_COUNTER = re.compile(
    rf"(\s*)(여\s*)?({_alternation(SINO_COUNTERS + NATIVE_COUNTERS)})(?={_TAIL_END})"
)
_WORD_END = re.compile(_TAIL_END)
_RANGE = re.compile(r"\s*(?:에서|부터|내지|~|∼|〜|-|–)\s*")
_FRACTION_OF = re.compile(r"의\s*")
_NATIVE = re.compile(
    rf"(?:({_alternation(list(NATIVE_TENS))})\s*({_alternation(list(NATIVE_ONES))})?"
    rf"|(스무)|({_alternation(list(NATIVE_ONES))}))"
)
_MONTH = re.compile(rf"(유|시)(\s*)월(?={_TAIL_END})")
# one token of a Sino-Korean or digit number: digits (decimal point kept), a numeral syllable,
# or a decimal point word
_TOKEN = re.compile(rf"(\s*)(\d+(?:\.\d+)?|[{_NUMERAL_SYLLABLES}영공]|쩜|점)")
# a run of such tokens, the first with no space before it
_RUN = re.compile(rf"(?:\d+(?:\.\d+)?|[{_NUMERAL_SYLLABLES}영공]|쩜|점)(?:{_TOKEN.pattern})*")
# where a number may start: digits anywhere; at the start of a word, numeral syllables that
# reach a counter, two numeral syllables, a native numeral and its counter, a month, a decimal
# (a cheap filter run by the regex engine; :class:`_Reader` decides)
_SYL = f"[{_NUMERAL_SYLLABLES}영공]"
_START = re.compile(
    # digits that the reader would change: a decimal, five digits or more, or digits before a
    # numeral ("1만", "5천"); "2018" and "3" stay as they are
    rf"(?<![\d.])\d+(?:\.\d|(?<=\d{{5}})|(?=\s*(?:{_SYL}|쩜|점)))"
    rf"|(?<![{_HANGUL}])(?=[{_NUMERAL_SYLLABLES}영공한두세네다여아열스서마쉰예유시제])"
    # numeral syllables and a counter; one syllable joined to its counter only as rule 3 allows
    rf"(?=(?:제\s+)?(?:{_SYL}(?:\s*{_SYL})*\s+(?:여\s*)?(?:{_alternation(SINO_COUNTERS)})"
    rf"|{_SYL}(?:\s*{_SYL})+(?:여\s*)?(?:{_alternation(SINO_COUNTERS)})"
    rf"|[십백천만](?:여\s*)?(?:{_alternation(SINO_COUNTERS)})|{_SYL}(?:월|분의)"
    rf"|{_SYL}\s*(?:{_SYL}|쩜|점)"
    rf"|(?:{_alternation(list(NATIVE_TENS) + list(NATIVE_ONES) + ['스무'])})\s*"
    rf"(?:{_alternation(list(NATIVE_ONES))})?\s*(?:{_alternation(NATIVE_COUNTERS)}|{_RANGE.pattern})"
    rf"|[유시]\s*월))"
)
# digits with no numeral after them: their canonical form needs no scanning
_DIGITS_ONLY = re.compile(rf"(\d+)(?!\d)(?:\.(\d+)(?!\d))?(?![.\d]|\s*(?:{_SYL}|쩜|점))")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_PERCENT = re.compile(r"\s*[%％]")


def canonical_number(value: int | Decimal, fraction: str | None = None) -> str:
    """The canonical digits of a number: groups of four by 만/억/조 (zero groups left out,
    the others after the first zero-padded), then ``점`` and the ``fraction`` digits as written.

    >>> canonical_number(2018), canonical_number(15000), canonical_number(1291900000000)
    ('2018', '1만5000', '1조2919억')
    """
    n = int(value)
    if n < 10**4:
        return str(n) if fraction is None else f"{n}점{fraction}"
    groups: list[str] = []
    for unit, size in (("조", 10**12), ("억", 10**8), ("만", 10**4), ("", 1)):
        group, n = divmod(n, size)
        if group:
            groups.append((f"{group:04d}" if groups and group < 10**4 else str(group)) + unit)
    head = "".join(groups) or "0"
    return head if fraction is None else f"{head}점{fraction}"


@dataclass
class _Number:
    """One number being read. Its value is ``total`` (the part with 만/억/조) + ``section``
    (below 만) + ``pending`` (a digit, or digits, not yet multiplied by a unit); ``decimal`` holds
    a number written with a point ("0.5", or "일 점 오" once a unit follows it)."""

    start: int
    end: int = 0
    total: int = 0
    section: int = 0
    pending: int | None = None
    fraction: str | None = None  # the digits after a spelled point: "오 쩜 구 사" -> "94"
    decimal: str | None = None  # "0.5", or digits with leading zeros kept as written ("007.")
    last_small: int = 10**5  # units appear in decreasing order: 천 백 십, then 조 억 만
    last_big: int = 10**20
    syllables: int = 0  # numeral syllables read (digits count none)
    small: bool = False  # 십/백/천 read: "삼십", "천 이백"
    digits: bool = False  # written in digits, wholly or partly ("1만 5천")
    last: str = ""  # the last token read
    part_start: int = -1  # where the part after the last 만/억/조 starts
    big_end: int = -1  # where the last 만/억/조 ends

    def value(self) -> str:
        if self.decimal is not None:
            whole, frac = self.decimal.split(".")
            return canonical_number(int(whole), frac or None)
        return canonical_number(self.total + self.section + (self.pending or 0), self.fraction)

    def times(self, unit: int) -> None:
        """A decimal times a unit: "1.5억", "일 점 오 억"."""
        if self.fraction is not None:
            self.decimal = f"{self.total + self.section + (self.pending or 0)}.{self.fraction}"
        assert self.decimal is not None
        value = Decimal(self.decimal) * unit
        self.fraction, self.decimal, self.pending, self.section = None, None, None, 0
        self.total = int(value)
        if value != value.to_integral_value():
            self.decimal = f"{int(value)}.{str(value).split('.')[1].rstrip('0')}"


class _SinoScan:
    """Sino-Korean and digit numbers read from ``pos`` (:func:`_read_sino`)."""

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos
        self.numbers: list[_Number] = []
        self.cur: _Number | None = None

    def open(self, start: int, gap: str) -> _Number | None:
        """Close the current number and open one at ``start``; a second number of a phrase
        needs a space before it ("이 삼 일": 2, 3; "이사": no)."""
        if self.cur is not None:
            if not gap:
                return None
            self.numbers.append(self.cur)
        self.cur = _Number(start=start)
        return self.cur

    def run(self) -> list[_Number]:
        text = self.text
        run = _RUN.match(text, self.pos)
        if run is None:
            return []
        # the tokens as (space before, token, start, end)
        tokens = []
        at = self.pos
        for gap, tok in _TOKEN.findall(text, self.pos, run.end()):
            start = at + len(gap)
            at = start + len(tok)
            tokens.append((gap, tok, start, at))
        k = 0
        while k < len(tokens):
            gap, tok, start, end = tokens[k]
            k += 1
            if tok[0].isdigit():
                cur = self.digits(tok, gap, start)
            elif tok in SINO_DIGITS:
                cur = self.digit(SINO_DIGITS[tok], gap, start)
            elif tok in SMALL_UNITS:
                cur = self.small_unit(SMALL_UNITS[tok], gap, start)
            elif tok in BIG_UNITS:
                if tok == "만" and text.startswith("에", end):
                    break  # "십 일 만에": "after ten days", not 110,000
                cur = self.big_unit(tok, gap, start, end)
            else:  # 영/공, 점/쩜
                k = self.point(tokens, k - 1)
                cur = self.cur if k else None
                end = tokens[k - 1][3]
            if cur is None:
                break
            if cur.part_start < 0 and cur.big_end >= 0 and tok not in BIG_UNITS:
                cur.part_start = start
            cur.end = end
            cur.last = tok
        if self.cur is not None:
            self.numbers.append(self.cur)
        return self.numbers

    def digits(self, tok: str, gap: str, start: int) -> _Number | None:
        cur = self.cur
        if cur is not None and not gap:
            return None  # "이3": no number goes on into digits
        if (
            cur is not None
            and cur.total
            and cur.section == 0
            and cur.pending is None
            and cur.decimal is None
            and "." not in tok
            and int(tok) < 10**4
        ):
            cur.pending = int(tok)  # "1만 5000"
        else:
            cur = self.open(start, gap)
            if cur is None:
                return None
            if "." in tok:
                cur.decimal = tok
            elif len(tok) > 1 and tok[0] == "0":
                cur.decimal = f"{tok}."  # leading zeros: kept as written
            else:
                cur.pending = int(tok)
        cur.digits = True
        return cur

    def digit(self, value: int, gap: str, start: int) -> _Number | None:
        cur = self.cur
        if cur is not None and cur.pending is None and cur.decimal is None:
            if not (gap or cur.syllables or cur.digits):
                return None
            cur.pending = value  # "이 천", "천 이"
        else:
            cur = self.open(start, gap)
            if cur is None:
                return None
            cur.pending = value
        cur.syllables += 1
        return cur

    def small_unit(self, unit: int, gap: str, start: int) -> _Number | None:
        cur = self.cur
        if not (
            cur is not None
            and cur.decimal is None
            and unit < cur.last_small
            and (cur.pending is None or cur.pending < 10)
        ):
            cur = self.open(start, gap)  # "십 칠 십 팔": 17, then 18
            if cur is None:
                return None
        cur.section += (cur.pending if cur.pending is not None else 1) * unit
        cur.pending = None
        cur.last_small = unit
        cur.small = True
        cur.syllables += 1
        return cur

    def big_unit(self, tok: str, gap: str, start: int, end: int) -> _Number | None:
        unit = BIG_UNITS[tok]
        cur = self.cur
        part = cur is not None and (cur.section or cur.pending is not None)
        if cur is not None and (cur.fraction is not None or cur.decimal):
            if cur.decimal is not None and cur.decimal.endswith("."):
                return None
            cur.times(unit)  # "1.5억", "일 점 오 억"
        elif cur is not None and part and unit < cur.last_big and (cur.pending or 0) < 10**4:
            cur.total += (cur.section + (cur.pending or 0)) * unit  # "이천 만", "1조 2919억"
        elif cur is not None and part and cur.total and self.text[cur.part_start - 1].isspace():
            # "삼 만 십 만 원": 3만, then 10만 (not 3만 10, then 1만)
            nxt = _Number(start=cur.part_start, syllables=1, small=cur.section > 0)
            nxt.total = (cur.section + (cur.pending or 0)) * unit
            cur.section, cur.pending, cur.end = 0, None, cur.big_end
            self.numbers.append(cur)
            self.cur = cur = nxt
        elif cur is not None and not part and cur.total and unit < cur.last_big and tok == "만":
            cur.total += unit  # "일억 만": 1억 1만
        elif tok == "만":
            cur = self.open(start, gap)  # "만 오천": a number may start with 만
            if cur is None:
                return None
            cur.total = unit
        else:
            return None  # 억/조 start no number
        cur.section, cur.pending = 0, None
        cur.big_end, cur.part_start = end, -1
        cur.last_big, cur.last_small = unit, 10**5
        cur.syllables += 1
        return cur

    def point(self, tokens: list[tuple[str, str, int, int]], k: int) -> int:
        """A decimal point and its digits, one syllable each ("오 쩜 구 사", "영 점 오",
        "삼 점 일 사") from ``tokens[k]``; the index after the fraction, 0 when there is none."""
        cur = self.cur
        tok, start = tokens[k][1], tokens[k][2]
        if tok in ZERO:  # "영 점 오": a number that starts with zero
            if cur is not None or k + 1 >= len(tokens) or tokens[k + 1][1] not in ("점", "쩜"):
                return 0
            head = _Number(start=start, pending=0, syllables=1)
            k += 1
        else:
            head = cur
        if head is None or head.fraction is not None or head.decimal is not None:
            return 0
        point = tokens[k][1]
        digits = []
        k += 1
        while k < len(tokens) and (tokens[k][1] in SINO_DIGITS or tokens[k][1] in ZERO):
            if not digits and point == "점" and not tokens[k][0]:
                return 0  # "이 점이": the demonstrative and a particle, not 2.x
            digits.append(str(SINO_DIGITS.get(tokens[k][1], 0)))
            k += 1
        if not digits:
            return 0
        self.cur = head
        head.fraction = "".join(digits)
        head.syllables += 1 + len(digits)
        return k


def _read_sino(text: str, pos: int) -> list[_Number]:
    """Sino-Korean and digit numbers from ``pos``: one or more, each after a space (a range
    "이 삼", "십 칠 십 팔"); stops at the first token that is no part of a number."""
    return _SinoScan(text, pos).run()


_Phrase = tuple[list[_Number], int, str | None]


def _joined(text: str, end: int, counter: re.Match[str]) -> bool:
    return not counter.group(1) and counter.start() == end


class _Reader:
    """Finds and rewrites the numbers of one text (see the module docstring for the rules)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def native(self, pos: int) -> tuple[int, str, int] | None:
        """A native number read at ``pos``: (end of the numeral, digits, end of the phrase)."""
        text = self.text
        m = _NATIVE.match(text, pos)
        if m is None or m.end() == pos:
            return None
        tens, ones, twenty, alone = m.group(1), m.group(2), m.group(3), m.group(4)
        value = (
            NATIVE_TENS.get(tens or "", 0)
            + NATIVE_ONES.get(ones or alone or "", 0)
            + (20 if twenty else 0)
        )
        end = max(m.end(k) for k in range(1, 5) if m.group(k))
        c = _NATIVE_COUNTER.match(text, end)
        if c is not None:
            if end - pos == 1 and _joined(text, end, c) and text[pos] + c.group(3) in JOINED_WORDS:
                return None  # "세대", "두통", "열대": words
            return end, str(value), c.end()
        r = _RANGE.match(text, end)
        if r is not None and r.group().strip() and self.native(r.end()) is not None:
            return end, str(value), end  # "여섯 에서 열 두 개월"
        return None

    def sino(self, pos: int, ordinal: bool) -> _Phrase | None:
        """The Sino-Korean or digit numbers read at ``pos`` that the rules accept."""
        numbers = _read_sino(self.text, pos)
        # "칠 일 이 후보자는": a phrase that is no number may start with one
        for k in range(len(numbers), 0, -1):
            got = self.accept(numbers[:k], ordinal)
            if got is not None:
                return got
        return None

    def accept(self, numbers: list[_Number], ordinal: bool) -> _Phrase | None:
        """``(numbers, end of the phrase, counter)`` when ``numbers`` are numbers here (rules
        2-4 of the module docstring), else ``None``."""
        text = self.text
        end = numbers[-1].end
        digits = any(n.digits for n in numbers)
        counters = _ANY_COUNTER if all(n.digits for n in numbers) else _SINO_COUNTER
        c = counters.match(text, end)
        weak = len(numbers) == 1 and numbers[0].syllables == 1 and not digits
        if c is not None:
            word = c.group(3)
            if weak:
                syllable = text[numbers[0].start : numbers[0].end]
                if _joined(text, end, c):
                    fraction = word == "분" and text.startswith("의", c.end())
                    if not (
                        word == "월"
                        or fraction
                        or (
                            (syllable in SMALL_UNITS or syllable == "만")
                            and syllable + word not in JOINED_WORDS
                        )
                    ):
                        return None
                fraction = word == "분" and _FRACTION_OF.match(text, c.end()) is not None
                if syllable == "이" and not ordinal and word not in I_COUNTERS and not fraction:
                    return None
            return numbers, c.end(), word
        if all(n.digits for n in numbers) and not ordinal:
            return numbers, end, None  # digits are numbers; a spelled one after them is not
        if any(n.fraction is not None for n in numbers):
            if _WORD_END.match(text, end):
                return numbers, end, None
        last = numbers[-1]
        if (
            last.last == "일"
            and (last.syllables >= 2 or len(numbers) >= 2)
            and last.fraction is None
            and not last.digits
        ):
            # "십 일부터", "오 일": the day, not 11 / a range "5, 1"
            cut = _trim_last_il(text, numbers)
            if cut is not None:
                return self.accept(cut, ordinal)
        if ordinal:
            # "제 삼 조": the article counter is the unit 조 (the digits read "제3조" the same)
            if last.last in BIG_UNITS and _WORD_END.match(text, end):
                return numbers, end, None
            return None
        if any(n.small and n.syllables >= 2 for n in numbers) and _WORD_END.match(text, end):
            if all(n.syllables > 1 for n in numbers):
                return numbers, end, None
        r = _RANGE.match(text, end)
        if r is not None and r.end() > end:
            nxt = _read_sino(text, r.end())
            if nxt and self.accept(nxt, False) is not None:
                return numbers, end, None  # "삼십 에서 사십 세"
        return None

    def read(self, first: re.Match[str]) -> str:
        """The text with its numbers rewritten; ``first`` is the first match of ``_START``."""
        text = self.text
        out: list[str] = []
        i = 0
        m: re.Match[str] | None = first
        while m is not None:
            p = m.start()
            got = self.read_at(p)
            if got is None:
                m = _START.search(text, p + 1)
                continue
            pieces, end, resume = got
            out.append(text[i:p])
            out.extend(pieces)
            i = end
            m = _START.search(text, max(end, resume))
        out.append(text[i:])
        return "".join(out)

    def read_at(self, p: int) -> tuple[list[str], int, int] | None:
        """Pieces replacing ``text[p:end]``, ``end`` and where the phrase (its counter) ends,
        or ``None`` when no number starts at ``p``."""
        text = self.text
        if text[p].isdigit() and (d := _DIGITS_ONLY.match(text, p)) is not None:
            whole, frac = d.groups()
            if len(whole) > 1 and whole[0] == "0":
                return [d.group()], d.end(), d.end()  # leading zeros: kept as written
            return [canonical_number(int(whole), frac)], d.end(), d.end()
        ordinal = False
        q = p
        if text.startswith("제", p) and not text[p + 1 : p + 2].isdigit():
            ordinal = True
            q = p + 1
            while q < len(text) and text[q].isspace():
                q += 1
        ch = text[q]
        if not ordinal and ch in "유시":
            mm = _MONTH.match(text, q)
            if mm is None:
                return None
            return ["6" if mm.group(1) == "유" else "10"], mm.start(2), mm.end()
        if not ordinal and not ch.isdigit():
            nat = self.native(q)
            if nat is not None:
                num_end, digits, phrase_end = nat
                return [digits], num_end, phrase_end
        got = self.sino(q, ordinal)
        if got is None:
            return None
        numbers, phrase_end, counter = got
        pieces = [text[p:q]] if ordinal else []
        last = q
        for k, num in enumerate(numbers):
            if k:
                pieces.append(text[last : num.start])
            pieces.append(num.value())
            last = num.end
        if counter == "분" and text.startswith("의", phrase_end):
            # a fraction: "삼 분의 일" - the numerator needs no counter
            f = _FRACTION_OF.match(text, phrase_end)
            assert f is not None
            top = _read_sino(text, f.end())
            if top and len(top) == 1 and _WORD_END.match(text, top[0].end):
                pieces.append(text[last : top[0].start])
                pieces.append(top[0].value())
                last = phrase_end = top[0].end
        return pieces, last, phrase_end


def _trim_last_il(text: str, numbers: list[_Number]) -> list[_Number] | None:
    """``numbers`` with their last "일" made the counter "day": "십 일" -> 10 + 일,
    "오 일" (read as 5 and 1) -> 5 + 일."""
    last = numbers[-1]
    if last.syllables == 1:  # a number of its own: "오 일" -> drop it
        return numbers[:-1] or None
    il = last.end - 1
    again = _read_sino(text[:il], last.start)
    if len(again) != 1 or text[again[0].end : il].strip():
        return None
    return [*numbers[:-1], again[0]]


def read_numerals(text: str) -> str:
    """``text`` with every number it holds rewritten in canonical digits (module docstring).

    >>> read_numerals("이천 십 팔 년 완공"), read_numerals("2018년 완공")
    ('2018 년 완공', '2018년 완공')
    >>> read_numerals("이 사람이 세 개를 샀다")
    '이 사람이 3 개를 샀다'
    """
    if not text:
        return text
    if "," in text:
        text = _THOUSANDS.sub("", text)
    if "%" in text or "％" in text:
        text = _PERCENT.sub("퍼센트", text)
    first = _START.search(text)
    return text if first is None else _Reader(text).read(first)


@dataclass(frozen=True)
class ReadNumerals:
    """Normalisation step: :func:`read_numerals` (before characters and spaces are deleted)."""

    def __call__(self, text: str) -> str:
        return read_numerals(text)

    def batch(self, texts: Sequence[str]) -> list[str]:
        """``[self(t) for t in texts]``."""
        return [read_numerals(t) for t in texts]
