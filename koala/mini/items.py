"""The items of the embedded mini benchmark, written by this project.

Nothing here is copied or paraphrased from the published KoALa-Bench sets: the sentences,
passages, questions, counterfactual swaps and reference answers were written for this project
(facts in the SCA-QA contexts are common knowledge). :mod:`koala.mini` turns them into a source
tree in the published layout, with speech synthesised by espeak-ng.

Conventions:

* ``speech`` fields hold what is spoken when it differs from the written text: digits and Latin
  letters are spelled out in Hangul (espeak-ng's Korean voice does not read them reliably). The
  build refuses Korean speech text that still contains digits or Latin letters.
* ASR transcripts are written like Zeroth-Korean references: Hangul only, numbers spelled out,
  no punctuation (the published CER does no number normalisation).
* ``answer`` fields of multiple-choice items are 0-based indices into ``choices``.
* SCA-QA counterfactual contexts are made by replacing every occurrence of ``keyword`` with
  ``new_keyword`` in the context (as the published sets do); the two keywords end alike (both
  with or both without a final consonant) so the Korean particles stay correct.
* PA-QA evidence is given as the exact evidence sentences of the passage; positions, segments
  and character spans are computed from the text at build time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ASR",
    "BOOLQ",
    "CLICK",
    "INSTRUCT",
    "KCSAT",
    "PAQA",
    "SCAQA",
    "ST_TALKS",
    "AsrItem",
    "BoolqItem",
    "ClickItem",
    "InstructItem",
    "KcsatItem",
    "PaqaPassage",
    "PaqaQuestion",
    "ScaItem",
    "StTalk",
]


@dataclass(frozen=True)
class AsrItem:
    """A Zeroth-style sentence: the transcript is also what is spoken."""

    text: str


@dataclass(frozen=True)
class StTalk:
    """An English "talk" of a few sentences with Korean reference translations."""

    talk_id: int
    split: str  # "tst-COMMON" or "tst-HE"
    sentences: tuple[tuple[str, str], ...]  # (English source, Korean reference)


@dataclass(frozen=True)
class ClickItem:
    """CLIcK-like 4-way knowledge question; the question is spoken."""

    question: str
    choices: tuple[str, str, str, str]
    answer: int


@dataclass(frozen=True)
class BoolqItem:
    """BoolQ-like yes/no item: the passage is spoken, the question is text."""

    passage: str
    question: str
    answer: bool
    speech: str | None = None


@dataclass(frozen=True)
class KcsatItem:
    """KCSAT-like listening item: a two-speaker dialogue and a numbered 5-way question."""

    item_id: str
    dialogue: tuple[tuple[int, str], ...]  # (speaker 0 or 1, line)
    prompt: str
    choices: tuple[str, str, str, str, str]
    answer: int


@dataclass(frozen=True)
class InstructItem:
    """A spoken instruction with a reference answer."""

    subset: str  # alpaca, kudge, openhermes, vicuna
    question_ko: str
    answer_ko: str
    question_en: str = ""
    answer_en: str = ""
    speech: str | None = None


@dataclass(frozen=True)
class ScaItem:
    """SCA-QA: a context, its counterfactual (keyword swapped), a question and 4 choices."""

    subset: str  # history_before_chosun, history_after_chosun, k-sports, kpop
    context: str
    keyword: str
    new_keyword: str
    question: str
    choices: tuple[str, str, str, str]
    speech: str | None = None  # spoken form of ``context``


@dataclass(frozen=True)
class PaqaQuestion:
    question: str
    choices: tuple[str, str, str, str]
    answer: int
    evidence: tuple[str, ...]  # exact evidence sentences of the passage, in passage order
    parts: tuple[str, ...] = ()  # answer parts each evidence sentence supports (default: answer)


@dataclass(frozen=True)
class PaqaPassage:
    """A long story read aloud; its questions depend on sentences at known positions."""

    text: str
    questions: tuple[PaqaQuestion, ...]


# --------------------------------------------------------------------------------------- ASR
ASR: tuple[AsrItem, ...] = (
    AsrItem("오늘 오후 세 시에 강남역 근처 카페에서 친구를 만나기로 했어요"),
    AsrItem("이천 이십 삼 년 시월 구 일 한글날에 광화문 광장에서 기념 행사가 열렸다"),
    AsrItem("박지훈 교수는 인공지능 스피커의 음성 인식 정확도가 구십오 퍼센트를 넘었다고 밝혔다"),
    AsrItem("이번 주말에는 비가 온다고 하니까 우산 꼭 챙겨 가세요"),
    AsrItem("서울시는 내년부터 전기 버스 삼백 대를 추가로 도입할 계획이다"),
    AsrItem("김민지 씨는 지난달 부산에서 열린 마라톤 대회에서 세 시간 십이 분 만에 완주했다"),
    AsrItem("아 그거요 제가 어제 인터넷으로 주문했는데 아직 배송이 안 왔어요"),
    AsrItem("이 노트북은 무게가 일 점 이 킬로그램이고 가격은 백 이십 구 만 원입니다"),
    AsrItem("유네스코는 한국의 김장 문화를 인류 무형 문화유산으로 등재했다"),
    AsrItem("회의는 다음 주 화요일 오전 열 시 반으로 미뤄졌습니다"),
    AsrItem("최은비 감독의 새 영화가 개봉 첫 주에 관객 오십 만 명을 모았다"),
    AsrItem("편의점에서 샌드위치랑 아메리카노 한 잔 사 올게"),
    AsrItem("스마트폰 배터리가 이십 퍼센트 밑으로 떨어지면 충전해 주세요"),
    AsrItem("네 맞아요 저도 그 드라마 마지막 회까지 다 봤어요"),
)

# ---------------------------------------------------------------------------------------- ST
ST_TALKS: tuple[StTalk, ...] = (
    StTalk(
        9001,
        "tst-COMMON",
        (
            (
                "Most of us do not get enough sleep during the week.",
                "우리 대부분은 주중에 잠을 충분히 자지 못합니다.",
            ),
            (
                "Even one short night can make it harder to remember new words.",
                "단 하룻밤만 잠이 부족해도 새로운 단어를 기억하기가 더 어려워질 수 있습니다.",
            ),
            (
                "So tonight, try going to bed thirty minutes earlier.",
                "그러니 오늘 밤에는 30분 일찍 잠자리에 들어 보세요.",
            ),
        ),
    ),
    StTalk(
        9002,
        "tst-COMMON",
        (
            (
                "When I was a child, our street had no trees at all.",
                "제가 어렸을 때 우리 동네 거리에는 나무가 한 그루도 없었습니다.",
            ),
            (
                "Today, volunteers have planted more than two hundred of them.",
                "지금은 자원봉사자들이 200그루가 넘는 나무를 심었습니다.",
            ),
            (
                "In summer, their shade keeps the whole neighborhood cool.",
                "여름이면 그 그늘 덕분에 동네 전체가 시원합니다.",
            ),
        ),
    ),
    StTalk(
        9003,
        "tst-COMMON",
        (
            (
                "My grandmother taught me to cook without a recipe.",
                "우리 할머니는 요리법 없이 요리하는 법을 가르쳐 주셨습니다.",
            ),
            (
                "She said that good food starts with fresh vegetables.",
                "할머니는 좋은 음식은 신선한 채소에서 시작된다고 말씀하셨습니다.",
            ),
        ),
    ),
    StTalk(
        9004,
        "tst-COMMON",
        (
            (
                "Every morning, I walk to work instead of taking the bus.",
                "저는 매일 아침 버스를 타는 대신 걸어서 출근합니다.",
            ),
            (
                "It takes longer, but I arrive with a clear head.",
                "시간은 더 걸리지만 맑은 정신으로 도착합니다.",
            ),
        ),
    ),
    StTalk(
        9005,
        "tst-COMMON",
        (
            ("Our team lost the first game of the season.", "우리 팀은 시즌 첫 경기에서 졌습니다."),
            (
                "We learned more from that loss than from any win.",
                "우리는 그 패배에서 어떤 승리보다 더 많은 것을 배웠습니다.",
            ),
        ),
    ),
    StTalk(
        9101,
        "tst-HE",
        (
            ("What does it really mean to listen?", "듣는다는 것은 정말 무엇을 의미할까요?"),
            (
                "It means paying attention before you answer.",
                "대답하기 전에 먼저 귀를 기울인다는 뜻입니다.",
            ),
        ),
    ),
)

# ------------------------------------------------------------------------------- SQA: CLIcK
CLICK: tuple[ClickItem, ...] = (
    ClickItem(
        "다음은 한국의 지리에 관한 문제이다. 남한에서 가장 높은 산은 무엇인가?",
        ("설악산", "지리산", "한라산", "태백산"),
        2,
    ),
    ClickItem(
        "다음은 한국어 문법에 관한 문제이다. '먹다'의 높임 표현으로 알맞은 것은 무엇인가?",
        ("드시다", "주무시다", "계시다", "여쭙다"),
        0,
    ),
    ClickItem(
        "다음은 한국의 전통 문화에 관한 문제이다. 음력 팔월 보름에 지내는 명절은 무엇인가?",
        ("설날", "단오", "정월 대보름", "추석"),
        3,
    ),
    ClickItem(
        "다음은 한국의 역사에 관한 문제이다. 훈민정음을 창제한 조선의 임금은 누구인가?",
        ("태조", "세종", "영조", "정조"),
        1,
    ),
)

# ------------------------------------------------------------------------------- SQA: BoolQ
BOOLQ: tuple[BoolqItem, ...] = (
    BoolqItem(
        "제주도는 대한민국에서 가장 큰 섬으로, 한반도 남쪽 바다에 있다. 섬 한가운데에는 "
        "한라산이 솟아 있고, 화산 활동으로 만들어진 오름과 용암 동굴이 곳곳에 있다.",
        "제주도에는 화산 활동으로 생긴 지형이 있나요?",
        True,
    ),
    BoolqItem(
        "김치는 배추나 무 같은 채소를 소금에 절인 뒤 고춧가루, 마늘, 젓갈 등으로 양념해 "
        "발효시킨 음식이다. 고추가 한반도에 널리 퍼진 것은 조선 후기의 일이어서, 그 이전의 "
        "김치는 지금처럼 붉은색을 띠지 않았다.",
        "김치는 처음부터 고춧가루로 양념한 붉은 음식이었나요?",
        False,
    ),
    BoolqItem(
        "서울 지하철 2호선은 시청, 강남, 신촌 등 도심 곳곳을 둥글게 잇는 순환선이다. "
        "열차는 안쪽 선로로 도는 내선과 바깥쪽 선로로 도는 외선으로 나뉘어 운행한다.",
        "서울 지하철 2호선은 순환선인가요?",
        True,
        speech="서울 지하철 이호선은 시청, 강남, 신촌 등 도심 곳곳을 둥글게 잇는 순환선이다. "
        "열차는 안쪽 선로로 도는 내선과 바깥쪽 선로로 도는 외선으로 나뉘어 운행한다.",
    ),
    BoolqItem(
        "오늘날 한글은 자음 열네 자와 모음 열 자, 모두 스물네 자를 기본으로 한다. "
        "세종대왕이 처음 훈민정음을 반포했을 때에는 스물여덟 자였지만, 그중 네 자는 점차 "
        "쓰이지 않게 되었다.",
        "오늘날 한글의 기본 자음은 스무 자인가요?",
        False,
    ),
)

# ------------------------------------------------------------------------------- SQA: KCSAT
KCSAT: tuple[KcsatItem, ...] = (
    KcsatItem(
        "mini_01_1",
        (
            (0, "수진아, 이번 주 토요일에 도서관 봉사 활동 같이 갈래?"),
            (1, "좋아. 그런데 몇 시까지 가면 돼?"),
            (0, "오전 아홉 시까지 가면 돼. 책을 정리하고 어린이 독서 교실을 돕는 일이래."),
            (1, "점심은 어떻게 해?"),
            (0, "끝나고 도서관 앞 분식집에서 같이 먹자. 오후 한 시쯤 끝난대."),
            (1, "알겠어. 그럼 내가 마실 물을 챙겨 갈게."),
        ),
        "두 사람이 봉사 활동 장소에 도착해야 하는 시각은?",
        ("오전 8시", "오전 9시", "오전 10시", "오후 1시", "오후 2시"),
        1,
    ),
    KcsatItem(
        "mini_01_2",
        (
            (1, "민호야, 너 요즘 아침마다 자전거 타고 학교 오더라."),
            (0, "응, 지난달부터 시작했어. 버스로는 삼십 분 걸리는데 자전거로는 이십 분이면 와."),
            (1, "와, 더 빠르네. 힘들지는 않아?"),
            (0, "처음엔 힘들었는데 이제는 괜찮아. 아침 공기를 마시면 기분도 좋아지고."),
            (1, "나도 타 보고 싶은데 헬멧이 없어서 망설여져."),
            (0, "우리 형이 안 쓰는 헬멧이 있으니까 내일 가져다줄게."),
        ),
        "남자가 여자를 위해 하겠다고 한 일로 가장 적절한 것은?",
        (
            "자전거 빌려주기",
            "등굣길 함께 가기",
            "버스 시간 알아봐 주기",
            "헬멧 가져다주기",
            "자전거 타는 법 가르쳐 주기",
        ),
        3,
    ),
)

# ---------------------------------------------------------------------------------- Instruct
INSTRUCT: tuple[InstructItem, ...] = (
    InstructItem(
        "alpaca",
        "비 오는 날 집에서 할 수 있는 놀이를 세 가지 추천해 주세요.",
        "1. 보드게임: 가족이나 친구와 규칙이 간단한 보드게임을 하면 시간 가는 줄 모릅니다.\n"
        "2. 함께 요리하기: 부침개나 쿠키처럼 쉬운 음식을 같이 만들어 먹어 보세요.\n"
        "3. 집 안 영화관: 담요와 간식을 준비하고 불을 끈 뒤 영화를 한 편 골라 보세요.",
        "Suggest three activities to do at home on a rainy day.",
        "1. Board games: a simple board game with family or friends makes the time fly.\n"
        "2. Cook together: make something easy, such as pancakes or cookies, and eat it "
        "together.\n"
        "3. Home cinema: get blankets and snacks, turn off the lights and pick a film.",
    ),
    InstructItem(
        "alpaca",
        "'꾸준함'이라는 말의 뜻을 한 문장으로 설명해 주세요.",
        "꾸준함이란 한 가지 일을 쉽게 그만두지 않고 오랫동안 한결같이 계속해 나가는 태도를 "
        "말합니다.",
        "Explain the meaning of the word 'steadiness' in one sentence.",
        "Steadiness is the attitude of keeping at one thing for a long time without giving up "
        "easily.",
    ),
    InstructItem(
        "openhermes",
        "높은 산에서는 왜 물이 더 낮은 온도에서 끓는지 간단히 설명해 주세요.",
        "높이 올라갈수록 공기가 희박해져 기압이 낮아집니다. 물은 수증기의 압력이 주변 기압과 "
        "같아질 때 끓는데, 기압이 낮으면 더 낮은 온도에서 이 조건에 이릅니다. 그래서 높은 "
        "산에서는 물이 100도보다 낮은 온도에서 끓습니다.",
        "Briefly explain why water boils at a lower temperature on a high mountain.",
        "The higher you go, the thinner the air and the lower the pressure. Water boils when its "
        "vapour pressure equals the surrounding pressure, and at a lower pressure it reaches "
        "that point at a lower temperature. So on a high mountain water boils below 100 "
        "degrees Celsius.",
    ),
    InstructItem(
        "openhermes",
        "다음 수들의 평균을 구해 주세요: 4, 8, 15, 23",
        "네 수의 합은 4 + 8 + 15 + 23 = 50이고, 이를 4로 나누면 평균은 12.5입니다.",
        "Find the average of these numbers: 4, 8, 15, 23",
        "The sum is 4 + 8 + 15 + 23 = 50; divided by 4, the average is 12.5.",
        speech="다음 수들의 평균을 구해 주세요. 사, 팔, 십오, 이십삼.",
    ),
    InstructItem(
        "kudge",
        "김장을 처음 준비하는 사람에게 꼭 필요한 준비물과 주의할 점을 알려 주세요.",
        "김장을 처음 한다면 다음을 챙기세요.\n\n"
        "1. 준비물: 절임 배추(직접 절인다면 배추와 굵은소금), 무, 쪽파, 고춧가루, 다진 마늘과 "
        "생강, 젓갈, 큰 대야, 고무장갑, 김치통.\n"
        "2. 배추 절이기: 너무 짜거나 덜 절여지지 않도록 중간에 한 번 뒤집어 주고, 다 절인 "
        "뒤에는 깨끗이 헹궈 물기를 충분히 빼야 합니다.\n"
        "3. 양념: 고춧가루를 미리 물이나 육수에 불려 두면 색이 곱고 잘 섞입니다. 김치는 "
        "익으면서 맛이 강해지므로 간은 조금 싱겁다 싶을 정도로 맞추는 것이 좋습니다.\n"
        "4. 보관: 김치통은 꽉 채우지 말고 위를 조금 비워 두며, 실온에서 하루쯤 익힌 뒤 냉장 "
        "보관하세요.",
    ),
    InstructItem(
        "kudge",
        "회사에서 처음 만난 동료에게 존댓말과 반말 중 무엇을 써야 할지 고민될 때 어떻게 하면 "
        "좋을까요?",
        "처음 만난 사이라면 나이나 직급과 관계없이 존댓말로 시작하는 것이 가장 무난합니다. "
        "한국어에서 반말은 가까운 사이라는 표시이기 때문에, 상대가 먼저 말을 편하게 하자고 "
        "하거나 서로 합의했을 때 바꾸는 것이 자연스럽습니다. 상대가 나보다 어려 보여도 업무 "
        "자리에서는 존댓말을 유지하고, 충분히 친해진 뒤에 '말 편하게 해도 될까요?'라고 먼저 "
        "물어보는 것도 좋은 방법입니다.",
    ),
    InstructItem(
        "vicuna",
        "재택근무를 할 때 집중력을 유지하는 방법을 알려 주세요.",
        "1. 일하는 자리를 정해 두세요. 침대나 소파가 아닌 책상에서만 일하면 몸이 일할 때와 "
        "쉴 때를 구분하게 됩니다.\n"
        "2. 출퇴근 시간을 정하세요. 시작과 끝이 분명하면 일이 하루 종일 늘어지지 않습니다.\n"
        "3. 할 일을 작게 나누고, 25분 집중한 뒤 5분 쉬는 식으로 시간을 관리해 보세요.\n"
        "4. 휴대폰 알림을 끄고, 업무와 관계없는 웹사이트는 근무 시간에 차단하세요.\n"
        "5. 점심시간에는 잠깐이라도 밖에 나가 걸으며 머리를 식히세요.",
        "How can I stay focused while working from home?",
        "1. Set up a fixed place to work. If you only work at a desk, not in bed or on the sofa, "
        "your body learns when it is time to work and when to rest.\n"
        "2. Keep fixed start and end times, so work does not drag on all day.\n"
        "3. Break tasks into small pieces and work in cycles, such as 25 minutes of focus and "
        "5 minutes of rest.\n"
        "4. Turn off phone notifications and block unrelated websites during working hours.\n"
        "5. At lunch, go outside for a short walk to clear your head.",
    ),
    InstructItem(
        "vicuna",
        "처음 가 보는 도시에서 하루를 알차게 보내려면 여행 계획을 어떻게 세우면 좋을지 "
        "단계별로 설명해 주세요.",
        "1단계: 꼭 가 보고 싶은 곳을 두세 곳만 고르세요. 너무 많이 넣으면 이동하다가 하루가 "
        "지나갑니다.\n"
        "2단계: 고른 곳을 지도에 표시하고, 가까운 곳끼리 묶어 오전과 오후 동선을 짭니다.\n"
        "3단계: 각 장소의 운영 시간과 휴무일을 확인합니다.\n"
        "4단계: 동선 근처에서 그 지역 음식을 먹을 수 있는 식당을 한두 곳 미리 찾아 둡니다.\n"
        "5단계: 날씨가 나쁠 때를 대비해 실내에서 즐길 수 있는 곳을 하나 더 정해 둡니다.\n"
        "6단계: 일정 사이에 여유 시간을 넉넉히 두어, 우연히 발견한 골목이나 가게도 즐길 수 "
        "있게 하세요.",
        "Explain step by step how to plan a full day in a city you are visiting for the first "
        "time.",
        "Step 1: Pick only two or three places you really want to see; with too many, the day "
        "goes by in transit.\n"
        "Step 2: Mark them on a map and group nearby ones into a morning and an afternoon "
        "route.\n"
        "Step 3: Check each place's opening hours and closing days.\n"
        "Step 4: Find one or two restaurants with local food near your route in advance.\n"
        "Step 5: Choose one indoor place in case the weather turns bad.\n"
        "Step 6: Leave generous free time between stops so you can enjoy alleys and shops you "
        "come across by chance.",
    ),
)

# ------------------------------------------------------------------------------------ SCA-QA
SCAQA: tuple[ScaItem, ...] = (
    ScaItem(
        "history_before_chosun",
        "광개토대왕릉비는 고구려의 장수왕이 아버지 광개토대왕의 업적을 기리기 위해 414년에 "
        "세운 비석이다. 지금의 중국 지린성 지안시에 있으며, 높이가 6미터가 넘는 커다란 돌의 "
        "네 면에 1,700여 자의 글자가 새겨져 있다.",
        "광개토대왕릉비",
        "진흥왕 순수비",
        "고구려의 장수왕이 아버지의 업적을 기리기 위해 세웠으며, 지금의 중국 지린성 지안시에 "
        "있는 비석은 무엇인가?",
        ("충주 고구려비", "광개토대왕릉비", "진흥왕 순수비", "사택지적비"),
        speech="광개토대왕릉비는 고구려의 장수왕이 아버지 광개토대왕의 업적을 기리기 위해 "
        "사백십사 년에 세운 비석이다. 지금의 중국 지린성 지안시에 있으며, 높이가 육 미터가 "
        "넘는 커다란 돌의 네 면에 천칠백여 자의 글자가 새겨져 있다.",
    ),
    ScaItem(
        "history_before_chosun",
        "귀주 대첩은 1019년 고려의 강감찬이 이끄는 군대가 소배압이 이끄는 거란의 10만 대군을 "
        "귀주 벌판에서 크게 무찌른 전투이다. 이 승리 이후 거란은 더 이상 고려를 크게 침략하지 "
        "못했고, 두 나라 사이에는 오랫동안 평화가 이어졌다.",
        "귀주 대첩",
        "행주 대첩",
        "1019년 강감찬이 이끄는 고려군이 소배압의 거란군을 크게 무찌른 전투는 무엇인가?",
        ("행주 대첩", "살수 대첩", "귀주 대첩", "처인성 전투"),
        speech="귀주 대첩은 천십구 년 고려의 강감찬이 이끄는 군대가 소배압이 이끄는 거란의 "
        "십만 대군을 귀주 벌판에서 크게 무찌른 전투이다. 이 승리 이후 거란은 더 이상 고려를 "
        "크게 침략하지 못했고, 두 나라 사이에는 오랫동안 평화가 이어졌다.",
    ),
    ScaItem(
        "history_after_chosun",
        "수원 화성은 조선 정조 때인 1796년에 완공된 성곽이다. 정약용이 설계에 참여했으며, "
        "거중기 같은 새로운 기구를 써서 공사 기간을 크게 줄였다. 1997년 유네스코 세계유산으로 "
        "등재되었다.",
        "수원 화성",
        "남한산성",
        "조선 정조 때 완공되었으며, 정약용이 설계에 참여하고 거중기를 써서 공사 기간을 줄인 "
        "성곽은 무엇인가?",
        ("북한산성", "수원 화성", "해미읍성", "남한산성"),
        speech="수원 화성은 조선 정조 때인 천칠백구십육 년에 완공된 성곽이다. 정약용이 설계에 "
        "참여했으며, 거중기 같은 새로운 기구를 써서 공사 기간을 크게 줄였다. 천구백구십칠 년 "
        "유네스코 세계유산으로 등재되었다.",
    ),
    ScaItem(
        "history_after_chosun",
        "거북선은 임진왜란 때 이순신이 이끈 조선 수군의 돌격용 전선이다. 배 윗부분을 덮개로 "
        "덮고 그 위에 날카로운 쇠못을 꽂아 적군이 배에 올라타지 못하게 했다. 1592년 사천 "
        "해전에서 처음 실전에 쓰였다.",
        "거북선",
        "판옥선",
        "임진왜란 때 이순신의 조선 수군이 쓴 돌격용 전선으로, 덮개 위에 쇠못을 꽂아 적군이 "
        "올라타지 못하게 한 배는 무엇인가?",
        ("거북선", "판옥선", "협선", "안택선"),
        speech="거북선은 임진왜란 때 이순신이 이끈 조선 수군의 돌격용 전선이다. 배 윗부분을 "
        "덮개로 덮고 그 위에 날카로운 쇠못을 꽂아 적군이 배에 올라타지 못하게 했다. "
        "천오백구십이 년 사천 해전에서 처음 실전에 쓰였다.",
    ),
    ScaItem(
        "k-sports",
        "잠실야구장은 서울특별시 송파구 잠실동에 있는 야구장으로, 1982년에 문을 열었다. "
        "LG 트윈스와 두산 베어스가 함께 홈구장으로 쓰고 있으며, 2만 3천여 명의 관중이 들어갈 "
        "수 있다.",
        "잠실야구장",
        "고척스카이돔",
        "서울 송파구 잠실동에 있으며, LG 트윈스와 두산 베어스가 함께 홈구장으로 쓰는 야구장은 "
        "무엇인가?",
        ("사직야구장", "고척스카이돔", "잠실야구장", "문학야구장"),
        speech="잠실야구장은 서울특별시 송파구 잠실동에 있는 야구장으로, 천구백팔십이 년에 문을 "
        "열었다. 엘지 트윈스와 두산 베어스가 함께 홈구장으로 쓰고 있으며, 이만 삼천여 명의 "
        "관중이 들어갈 수 있다.",
    ),
    ScaItem(
        "k-sports",
        "김연아는 대한민국의 피겨 스케이팅 선수로, 2010년 밴쿠버 동계 올림픽 여자 싱글에서 "
        "금메달을 땄다. 이때 받은 총점은 한동안 세계 최고 기록으로 남았다. 선수에서 물러난 "
        "뒤에는 2018년 평창 동계 올림픽 유치와 홍보에 힘을 보탰다.",
        "김연아",
        "이상화",
        "2010년 밴쿠버 동계 올림픽 피겨 스케이팅 여자 싱글에서 금메달을 딴 대한민국 선수는 "
        "누구인가?",
        ("최다빈", "유영", "김연아", "이상화"),
        speech="김연아는 대한민국의 피겨 스케이팅 선수로, 이천십 년 밴쿠버 동계 올림픽 여자 "
        "싱글에서 금메달을 땄다. 이때 받은 총점은 한동안 세계 최고 기록으로 남았다. 선수에서 "
        "물러난 뒤에는 이천십팔 년 평창 동계 올림픽 유치와 홍보에 힘을 보탰다.",
    ),
    ScaItem(
        "kpop",
        "방탄소년단은 2013년 빅히트 엔터테인먼트에서 데뷔한 대한민국의 7인조 보이 그룹이다. "
        "2020년 발표한 싱글 〈Dynamite〉로 한국 가수로는 처음으로 미국 빌보드 핫 100 1위에 "
        "올랐다.",
        "방탄소년단",
        "세븐틴",
        "2013년에 데뷔한 7인조 보이 그룹으로, 2020년 싱글 〈Dynamite〉로 한국 가수로는 처음 "
        "빌보드 핫 100 1위에 오른 그룹은 무엇인가?",
        ("엑소", "빅뱅", "세븐틴", "방탄소년단"),
        speech="방탄소년단은 이천십삼 년 빅히트 엔터테인먼트에서 데뷔한 대한민국의 칠인조 보이 "
        "그룹이다. 이천이십 년 발표한 싱글 다이너마이트로 한국 가수로는 처음으로 미국 빌보드 "
        "핫 백 일 위에 올랐다.",
    ),
    ScaItem(
        "kpop",
        "소녀시대는 2007년 SM 엔터테인먼트에서 데뷔한 대한민국의 걸 그룹이다. 2009년 발표한 "
        "〈Gee〉가 큰 사랑을 받아 한 음악 방송에서 9주 연속 1위를 차지했다.",
        "소녀시대",
        "원더걸스",
        "2007년 SM 엔터테인먼트에서 데뷔했으며, 2009년 〈Gee〉로 큰 사랑을 받은 걸 그룹은 "
        "무엇인가?",
        ("원더걸스", "카라", "소녀시대", "투애니원"),
        speech="소녀시대는 이천칠 년 에스엠 엔터테인먼트에서 데뷔한 대한민국의 걸 그룹이다. "
        "이천구 년 발표한 지가 큰 사랑을 받아 한 음악 방송에서 구 주 연속 일 위를 차지했다.",
    ),
)

# ------------------------------------------------------------------------------------- PA-QA
PAQA: tuple[PaqaPassage, ...] = (
    PaqaPassage(
        "민수네 가족은 여름 방학을 맞아 강원도 산골짜기로 캠핑을 떠났다. "
        "아빠는 새벽 여섯 시에 차에 짐을 실었다. "
        "엄마는 전날 밤에 김밥 재료를 미리 준비해 두었다. "
        "민수의 여동생 하은이는 차 안에서 내내 노래를 불렀다. "
        "캠핑장에 도착하니 맑은 계곡물이 흐르고 있었다. "
        "아빠와 민수는 함께 텐트를 쳤다. "
        "텐트는 파란색이었고 네 사람이 넉넉히 잘 수 있을 만큼 컸다. "
        "점심으로는 엄마가 싸 온 김밥을 먹었다. "
        "오후에는 계곡에서 물고기를 잡으려고 했지만 한 마리도 잡지 못했다. "
        "대신 하은이가 예쁜 조약돌을 세 개 주웠다. "
        "저녁이 되자 아빠가 모닥불을 피웠다. "
        "가족은 모닥불 옆에서 감자와 옥수수를 구워 먹었다. "
        "밤하늘에는 별이 쏟아질 듯 많았다. "
        "민수는 별똥별을 보고 소원을 빌었다. "
        "민수의 소원은 내년 여름에도 가족과 함께 이곳에 오는 것이었다.",
        (
            PaqaQuestion(
                "민수가 별똥별을 보고 빈 소원은 무엇이었나요?",
                (
                    "새 자전거를 갖는 것",
                    "물고기를 많이 잡는 것",
                    "동생과 싸우지 않는 것",
                    "내년 여름에도 가족과 이곳에 오는 것",
                ),
                3,
                ("민수의 소원은 내년 여름에도 가족과 함께 이곳에 오는 것이었다.",),
            ),
        ),
    ),
    PaqaPassage(
        "토요일 아침, 지우는 엄마의 심부름으로 동네 빵집에 갔다. "
        "엄마는 지우에게 만 원짜리 지폐 한 장을 주었다. "
        "엄마가 사 오라고 한 것은 식빵 한 봉지와 우유 한 통이었다. "
        "빵집은 지우네 집에서 걸어서 오 분 거리에 있었다. "
        "가는 길에 지우는 같은 반 친구 서연이를 만났다. "
        "서연이는 강아지 몽이를 데리고 산책하는 중이었다. "
        "두 사람은 함께 빵집까지 걸어갔다. "
        "빵집 안에는 갓 구운 빵 냄새가 가득했다. "
        "빵집 아저씨는 오늘은 단팥빵이 특히 맛있다고 말했다. "
        "지우는 먼저 식빵을 고른 뒤 우유를 찾았다. "
        "그런데 우유가 모두 팔리고 없었다. "
        "지우는 바로 옆 편의점에 가서 우유를 샀다. "
        "남은 돈으로 지우는 서연이와 나눠 먹을 단팥빵 두 개를 샀다. "
        "집에 돌아오자 엄마는 지우가 심부름을 잘했다며 칭찬해 주었다.",
        (
            PaqaQuestion(
                "엄마가 지우에게 사 오라고 한 것은 무엇인가요?",
                ("식빵과 우유", "단팥빵과 우유", "식빵과 주스", "케이크와 우유"),
                0,
                ("엄마가 사 오라고 한 것은 식빵 한 봉지와 우유 한 통이었다.",),
            ),
            PaqaQuestion(
                "빵집 아저씨가 특히 맛있다고 한 빵을 지우는 몇 개 샀나요?",
                ("한 개", "세 개", "두 개", "네 개"),
                2,
                (
                    "빵집 아저씨는 오늘은 단팥빵이 특히 맛있다고 말했다.",
                    "남은 돈으로 지우는 서연이와 나눠 먹을 단팥빵 두 개를 샀다.",
                ),
                ("단팥빵", "두 개"),
            ),
        ),
    ),
    PaqaPassage(
        "준호는 방학 동안 시골에 계신 할머니 댁에서 지냈다. "
        "할머니 댁 뒤에는 작은 텃밭이 있었다. "
        "텃밭에는 상추와 고추와 토마토가 자라고 있었다. "
        "할머니는 매일 아침 해가 뜨기 전에 밭에 물을 주셨다. "
        "준호도 할머니를 따라 일찍 일어나 물뿌리개를 들었다. "
        "첫날에는 물을 너무 많이 주어서 할머니께 웃음 섞인 잔소리를 들었다. "
        "할머니는 흙을 손가락으로 눌러 보고 말랐을 때만 물을 주라고 가르쳐 주셨다. "
        "일주일이 지나자 토마토가 빨갛게 익기 시작했다. "
        "준호는 가장 잘 익은 토마토 다섯 개를 따서 바구니에 담았다. "
        "할머니는 그 토마토로 시원한 토마토 주스를 만들어 주셨다. "
        "오후에는 이웃집 할아버지가 수박 한 통을 들고 놀러 오셨다. "
        "할아버지는 준호에게 연 만드는 법을 알려 주셨다. "
        "둘은 대나무와 한지로 커다란 방패연을 만들었다. "
        "바람이 부는 날 준호는 논둑에서 연을 높이 날렸다. "
        "방학이 끝날 무렵 준호는 할머니와 헤어지는 것이 아쉬워 눈물을 글썽였다.",
        (
            PaqaQuestion(
                "할머니는 언제 물을 주라고 가르쳐 주셨나요?",
                ("비가 온 다음 날", "해가 진 뒤", "토마토가 익었을 때", "흙이 말랐을 때"),
                3,
                ("할머니는 흙을 손가락으로 눌러 보고 말랐을 때만 물을 주라고 가르쳐 주셨다.",),
            ),
        ),
    ),
    PaqaPassage(
        "하린이는 매주 수요일 오후마다 구립 도서관에 간다. "
        "도서관은 하린이네 학교 정문 건너편에 있다. "
        "하린이가 가장 좋아하는 곳은 이 층 어린이 열람실이다. "
        "열람실 창가에는 햇볕이 잘 드는 푹신한 의자가 있다. "
        "하린이는 그 의자에 앉아 동화책을 읽는 것을 좋아한다. "
        "사서 선생님은 하린이에게 새로 들어온 책을 자주 추천해 주신다. "
        "지난주에 추천받은 책은 바다거북의 모험 이야기였다. "
        "하린이는 그 책을 이틀 만에 다 읽었다. "
        "이번 주에는 도서관에서 작가와의 만남 행사가 열렸다. "
        "행사에 온 작가는 어린 시절 시골에서 자란 이야기를 들려주었다. "
        "하린이는 작가에게 어떻게 하면 글을 잘 쓸 수 있는지 물었다. "
        "작가는 매일 짧게라도 일기를 써 보라고 대답했다. "
        "그날 저녁부터 하린이는 일기장에 하루 세 줄씩 일기를 쓰기 시작했다. "
        "하린이의 꿈은 언젠가 자기가 쓴 책을 이 도서관 책장에 꽂아 두는 것이다.",
        (
            PaqaQuestion(
                "하린이는 무슨 요일에 도서관에 가나요?",
                ("월요일", "화요일", "수요일", "금요일"),
                2,
                ("하린이는 매주 수요일 오후마다 구립 도서관에 간다.",),
            ),
            PaqaQuestion(
                "작가는 글을 잘 쓰는 방법으로 무엇을 권했나요?",
                (
                    "책을 많이 읽어라",
                    "매일 일기를 써라",
                    "여행을 많이 다녀라",
                    "글쓰기 학원에 다녀라",
                ),
                1,
                ("작가는 매일 짧게라도 일기를 써 보라고 대답했다.",),
            ),
        ),
    ),
    PaqaPassage(
        "도윤이네 반은 금요일에 옆 반과 축구 시합을 하기로 했다. "
        "도윤이는 골키퍼를 맡게 되었다. "
        "도윤이는 사실 공을 차는 공격수를 하고 싶었다. "
        "하지만 반에서 키가 가장 큰 도윤이에게 친구들이 골키퍼를 부탁했다. "
        "시합 전날 체육 선생님은 도윤이에게 공을 잡는 요령을 알려 주셨다. "
        "선생님은 공이 오면 몸을 공 앞으로 옮기고 두 손을 모으라고 하셨다. "
        "시합 날 아침에는 하늘이 흐렸지만 비는 오지 않았다. "
        "경기는 점심시간이 끝난 직후 학교 운동장에서 시작되었다. "
        "전반전에 옆 반이 먼저 한 골을 넣었다. "
        "도윤이는 실망했지만 선생님의 말씀을 떠올리며 마음을 다잡았다. "
        "후반전에 도윤이는 날아오는 공을 두 번이나 막아 냈다. "
        "그사이 도윤이네 반 지호가 연달아 두 골을 넣었다. "
        "경기는 도윤이네 반의 이 대 일 승리로 끝났다. "
        "친구들은 도윤이를 헹가래 치며 기뻐했다. "
        "도윤이는 골키퍼도 공격수만큼 멋진 자리라는 것을 알게 되었다.",
        (
            PaqaQuestion(
                "도윤이가 한 골을 내준 뒤 마음을 다잡으며 떠올린 것은 누구의 말씀이었나요?",
                ("체육 선생님", "담임 선생님", "지호", "아버지"),
                0,
                (
                    "시합 전날 체육 선생님은 도윤이에게 공을 잡는 요령을 알려 주셨다.",
                    "도윤이는 실망했지만 선생님의 말씀을 떠올리며 마음을 다잡았다.",
                ),
                ("체육 선생님", "선생님의 말씀"),
            ),
        ),
    ),
    PaqaPassage(
        "수아네 반은 봄 소풍 대신 국립 과학관으로 견학을 갔다. "
        "버스는 아침 여덟 시 반에 학교를 출발했다. "
        "과학관까지는 한 시간쯤 걸렸다. "
        "처음 들른 곳은 공룡 화석이 전시된 자연사관이었다. "
        "수아는 목이 긴 공룡의 뼈를 보고 깜짝 놀랐다. "
        "해설사 선생님은 그 공룡이 하루에 풀을 수백 킬로그램이나 먹었다고 설명해 주셨다. "
        "다음으로는 우주관에 가서 로켓 모형을 구경했다. "
        "수아의 짝꿍 은채는 우주 비행사 옷을 입고 사진을 찍었다. "
        "점심은 과학관 뒤뜰 잔디밭에서 도시락으로 먹었다. "
        "오후에는 천체 투영관에서 별자리 영상을 보았다. "
        "둥근 천장 가득 별이 펼쳐지자 아이들은 탄성을 질렀다. "
        "수아는 그 영상에서 북극성을 찾는 방법을 배웠다. "
        "돌아오는 길에 선생님은 오늘 본 것 중 하나를 골라 그림일기를 써 오라고 하셨다. "
        "수아는 목이 긴 공룡을 그리기로 마음먹었다.",
        (
            PaqaQuestion(
                "수아네 반은 점심을 어디에서 먹었나요?",
                ("버스 안", "과학관 뒤뜰 잔디밭", "과학관 식당", "학교 교실"),
                1,
                ("점심은 과학관 뒤뜰 잔디밭에서 도시락으로 먹었다.",),
            ),
        ),
    ),
)
