"""The ``koala`` and ``published`` protocols of the ST metrics and the SIF judge: hand-worked
cases where they differ and where they agree. The judge runs against the scripted
OpenAI-compatible server on 127.0.0.1 (tests/openai_server.py)."""

import hashlib
import json
import math
import re
import sys
import unicodedata

import pytest
from conftest import ROOT
from openai_server import Reply, ScriptedServer, completion

from koala.normalize import get_normalizer
from koala.scoring.judge import (
    DEFAULT_PROMPT,
    PROMPTS,
    JudgePromptUnavailable,
    cache_key,
    judge_scores,
    load_prompt_file,
    parse_rating,
)
from koala.scoring.translation import corpus_bleu, corpus_meteor, translation_scores

FAST = {"backoff": 0.01, "progress": False}


# ----------------------------------------------------------------------------------------------
# ST: normalisation


def tokenize_korean_by_hand(text: str) -> str:
    """The published ST rule written from its statement: keep Hangul syllables U+AC00-U+D7AF,
    jamo U+1100-U+11FF and U+3130-U+318F, a-z A-Z, 0-9 and whitespace; every other character
    becomes a space; then spaces are removed."""
    spaced = re.sub(r"[^\uac00-\ud7af\u1100-\u11ff\u3130-\u318fa-zA-Z0-9\s]", " ", text)
    return re.sub(r"\s", "", spaced)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TED 강연을 봤다.", "TED강연을봤다"),  # Latin kept, case kept
        ("GPU, CPU & NPU!", "GPUCPUNPU"),
        ("ㅋㅋ 2024년 (웃음)", "ㅋㅋ2024년웃음"),  # jamo, digits kept; brackets dropped
        ("漢字 Ａ１ café", "caf"),  # Hanja, full-width, accented letters dropped
        ("\t줄\n바꿈\u3000끝", "줄바꿈끝"),  # every kind of whitespace removed
    ],
)
def test_st_presets_keep_latin_letters_with_their_case(text, expected):
    assert tokenize_korean_by_hand(text) == expected
    assert get_normalizer("koala_st_published")(text) == expected
    assert get_normalizer("koala_st")(text) == expected  # NFC changes none of these
    # the CER rule differs: it deletes the Latin letters
    assert get_normalizer("koala")(text) == re.sub(r"[a-zA-Z]", "", expected)


def test_st_presets_differ_only_by_nfc():
    nfd = unicodedata.normalize("NFD", "한국 TED")  # 한국 as six conjoining jamo
    assert get_normalizer("koala_st")(nfd) == "한국TED"
    assert get_normalizer("koala_st_published")(nfd) == nfd.replace(" ", "")
    assert len(get_normalizer("koala_st_published")(nfd)) == 6 + 3


def test_latin_letters_count_in_both_protocols_and_the_cer_rule_would_drop_them():
    # GPU반도체시장 vs 반도체시장: matches 5/8, 4/7, 3/6, 2/5; BP = 1 (hypothesis longer)
    expected = (100 * 5 / 8 * 100 * 4 / 7 * 100 * 3 / 6 * 100 * 2 / 5) ** 0.25
    for protocol, preset in (("koala", "koala_st"), ("published", "koala_st_published")):
        r = corpus_bleu(["GPU 반도체 시장"], ["반도체 시장"], protocol=protocol)
        assert r.score == pytest.approx(expected, abs=1e-9)
        assert r.stats.sys_len == 8 and r.stats.ref_len == 5
        assert f"|norm:{preset}|" in r.signature and r.normalization == preset
    # an explicit normalization wins over the protocol: the CER rule drops "GPU"
    cer_rule = corpus_bleu(
        ["GPU 반도체 시장"], ["반도체 시장"], normalization="koala", protocol="published"
    )
    assert cer_rule.score == pytest.approx(100.0) and "|norm:koala|" in cer_rule.signature


def test_case_is_kept_ted_is_not_ted():
    # TED강연 vs ted강연: matches 2/5, 1/4, 0/3, 0/2 -> 40, 25, 100/(2*3), 100/(4*2); BP = 1
    expected = (40.0 * 25.0 * (100 / 6) * 12.5) ** 0.25
    for protocol in ("koala", "published"):
        r = corpus_bleu(["TED 강연"], ["ted 강연"], protocol=protocol)
        assert r.score == pytest.approx(expected, abs=1e-9)
        assert r.score < 100
        assert corpus_bleu(["TED 강연"], ["TED 강연"], protocol=protocol).score == pytest.approx(
            100
        )
    # METEOR lower-cases (NLTK's preprocess): 5 matches in one chunk, penalty 0.5 (1/5)^3
    assert corpus_meteor(["TED 강연"], ["ted 강연"]).score == pytest.approx(0.996, abs=1e-12)


def test_nfd_text_matches_under_koala_but_not_under_published():
    nfd = unicodedata.normalize("NFD", "한국 사람")  # 한국사람 as 3 + 3 + 2 + 3 jamo
    koala = corpus_bleu(["한국 사람"], [nfd], protocol="koala")
    assert koala.score == pytest.approx(100.0)
    published = corpus_bleu(["한국 사람"], [nfd], protocol="published")
    assert published.stats.counts == (0, 0, 0, 0) and published.stats.ref_len == 11
    assert published.score == 0.0


# ----------------------------------------------------------------------------------------------
# ST: METEOR scale, outputs, module


def test_meteor_scale_per_protocol():
    # chars 고양이잔다 vs 고양이가잔다: P = 1, R = 5/6, Fmean = 50/59, 2 chunks: 0.5 (2/5)^3
    one = (1 - 0.032) * 50 / 59
    koala = corpus_meteor(["고양이 잔다!"], ["고양이가 잔다."], return_per_sentence=True)
    published = corpus_meteor(
        ["고양이 잔다!"], ["고양이가 잔다."], protocol="published", return_per_sentence=True
    )
    assert koala.score == pytest.approx(one, abs=1e-12)
    assert published.score == pytest.approx(100 * one, abs=1e-10)
    assert published.per_sentence == pytest.approx([100 * one], abs=1e-10)
    assert "|scale:0-1" in koala.signature and "|scale:0-100" in published.signature
    out = {
        p: translation_scores(
            ["고양이 잔다!"], ["고양이가 잔다."], metrics=["bleu", "meteor"], protocol=p
        )
        for p in ("koala", "published")
    }
    assert out["koala"]["meteor_scale"] == "0-1" and out["published"]["meteor_scale"] == "0-100"
    assert out["published"]["meteor"] == pytest.approx(100 * out["koala"]["meteor"])
    # BLEU stays 0-100 and, on Hangul-only text, the two protocols agree
    assert out["koala"]["bleu"] == out["published"]["bleu"] == pytest.approx(50 * math.exp(-0.2))
    assert out["koala"]["protocol"] == "koala" and out["published"]["protocol"] == "published"


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="protocol='paper'"):
        translation_scores(["가"], ["가"], metrics=["bleu"], protocol="paper")
    with pytest.raises(ValueError, match="protocol='paper'"):
        corpus_meteor(["가"], ["가"], protocol="paper")


def test_translation_module_passes_the_protocol():
    import evaluate

    metric = evaluate.load(str(ROOT / "metrics" / "korean_translation"))
    kw = {"predictions": ["TED 강연"], "references": ["TED 강연을"], "metrics": ["bleu", "meteor"]}
    default = metric.compute(**kw)
    published = metric.compute(protocol="published", **kw)
    assert default == translation_scores(**kw)
    assert default["protocol"] == "koala" and published["protocol"] == "published"
    assert published["meteor"] == pytest.approx(100 * default["meteor"])
    assert "norm:koala_st_published" in published["bleu_signature"]


# ----------------------------------------------------------------------------------------------
# judge: parsing


@pytest.mark.parametrize(
    ("text", "koala", "published"),
    [
        ("좋습니다. Rating: [[7]]", 7.0, 7.0),  # the protocols agree
        ("[[7.5]]", 7.5, 7.5),
        ("[[1]]", 1.0, 1.0),  # both ends of 1-10 are ratings
        ("[[10]]", 10.0, 10.0),
        ("first [[3]], finally [[8]]", None, 3.0),  # several: unparsable vs the first
        ("[[6]] and again [[6]]", 6.0, 6.0),
        # published: the first [[x]] of the pattern, then 1-10 or no rating
        ("[[11]]", None, None),  # out of range (it used to be 11, i.e. 110 points)
        ("[[0]]", None, None),
        ("[[10.5]]", None, None),
        ("[[0.5]]", None, None),
        ("[[-3]]", None, None),  # no match of \[\[\s*(\d+(?:\.\d+)?)\s*\]\]: no sign
        ("[[11]] then [[7]]", None, None),  # the first match wins, out of range or not
        ("[[0]] then [[8]]", None, None),
        # "[[-3]]" is no match at all, so the first match is [[7]]; koala sees two values
        ("[[-3]] then [[7]]", None, 7.0),
        ("[[ 7 ]]", 7.0, 7.0),  # spaces inside the brackets are read by both
        ("Rating: 7", None, None),  # no [[x]]
    ],
)
def test_rating_parsing_per_protocol(text, koala, published):
    assert parse_rating(text)[0] == koala
    assert parse_rating(text, protocol="published")[0] == published


# ----------------------------------------------------------------------------------------------
# judge: the prompt

# This test's own stand-in prompts (not MT-bench's text).
TEXT_PROMPT = "Judge this.\nQ: {question}\nA: {answer}\nEnd with [[rating]]."
JSONL_LINES = [
    {"name": "pair-v2", "type": "pairwise", "system_prompt": "P", "prompt_template": "{question}"},
    {
        "name": "single-v1",
        "type": "single",
        "system_prompt": "You judge.",
        "prompt_template": "[Q]\n{question}\n[A]\n{answer}\nRate as [[rating]].",
        "output_format": "[[rating]]",
    },
]


def prompt_hash(system: str, template: str) -> str:
    return hashlib.sha256(json.dumps([system, template]).encode("utf-8")).hexdigest()[:16]


@pytest.fixture
def text_prompt(tmp_path):
    path = tmp_path / "single.txt"
    path.write_text(TEXT_PROMPT, encoding="utf-8")
    return path


def write_jsonl(path):
    path.write_text("\n".join(json.dumps(x) for x in JSONL_LINES) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def no_fastchat(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastchat", None)  # find_spec -> None


@pytest.fixture
def fake_fastchat(tmp_path, monkeypatch):
    """A stand-in ``fastchat`` package holding llm_judge/data/judge_prompts.jsonl."""
    pkg = tmp_path / "site" / "fastchat"
    (pkg / "llm_judge" / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    write_jsonl(pkg / "llm_judge" / "data" / "judge_prompts.jsonl")
    monkeypatch.delitem(sys.modules, "fastchat", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return pkg


def rate_tagged(body, n):
    """Rate with the tag in the answer: "<R8>" -> "... [[8]]"; "<none>" -> no rating."""
    user = body["messages"][-1]["content"]
    if "<none>" in user:
        return Reply(body=completion("평가할 수 없습니다."))
    tag = re.search(r"<R([\d.]+)>", user)
    return Reply(body=completion(f"설명.\nRating: [[{tag.group(1)}]]"))


def run(answers, url, **kw):
    instructions = [f"지시 {i}" for i in range(len(answers))]
    return judge_scores(instructions, answers, base_url=url, model="judge-m", **{**FAST, **kw})


def test_published_prompt_from_a_text_file(text_prompt, no_fastchat):
    with ScriptedServer(rate_tagged) as s:
        out = run(["서울입니다. <R8>"], s.url, protocol="published", judge_prompt_file=text_prompt)
        body = s.requests[0]
    assert body["messages"] == [
        {
            "role": "user",
            "content": "Judge this.\nQ: 지시 0\nA: 서울입니다. <R8>\nEnd with [[rating]].",
        }
    ]
    assert body["max_tokens"] == 512 and body["temperature"] == 0
    assert out["prompt_source"] == str(text_prompt) and out["prompt_id"] == "single.txt"
    assert out["prompt_hash"] == prompt_hash("", TEXT_PROMPT)
    assert out["max_tokens"] == 512 and out["protocol"] == "published"
    assert out["score"] == 80.0


def test_published_prompt_from_a_jsonl_file_and_from_fastchat(tmp_path, fake_fastchat):
    single = JSONL_LINES[1]
    expected_messages = [
        {"role": "system", "content": "You judge."},
        {"role": "user", "content": "[Q]\n지시 0\n[A]\n답 <R7>\nRate as [[rating]]."},
    ]
    path = write_jsonl(tmp_path / "mine.jsonl")
    with ScriptedServer(rate_tagged) as s:
        from_fastchat = run(["답 <R7>"], s.url, protocol="published")
        from_file = run(["답 <R7>"], s.url, protocol="published", judge_prompt_file=path)
        assert [b["messages"] for b in s.requests] == [expected_messages] * 2
    assert from_fastchat["prompt_source"] == "fastchat"
    assert from_file["prompt_source"] == str(path)  # an explicit file wins over FastChat
    for out in (from_fastchat, from_file):
        assert out["prompt_id"] == "single-v1" and out["score"] == 70.0
        assert out["prompt_hash"] == prompt_hash(single["system_prompt"], single["prompt_template"])


def test_published_without_fastchat_or_file_says_how_to_provide_the_prompt(no_fastchat):
    with pytest.raises(JudgePromptUnavailable) as e:
        run(["답"], "http://127.0.0.1:9/v1", protocol="published")
    msg = str(e.value)
    assert "single-v1" in msg and "pip install fschat" in msg
    assert "judge_prompt_file=" in msg and "{question}" in msg and "{answer}" in msg


def test_bad_prompt_files_are_refused(tmp_path):
    (tmp_path / "no_answer.txt").write_text("Q: {question}", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\{question\} and \{answer\}"):
        load_prompt_file(tmp_path / "no_answer.txt")
    (tmp_path / "extra.txt").write_text("{question} {answer} {score}", encoding="utf-8")
    with pytest.raises(ValueError, match="other than"):
        load_prompt_file(tmp_path / "extra.txt")
    (tmp_path / "other.jsonl").write_text(json.dumps(JSONL_LINES[0]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="single-v1"):
        load_prompt_file(tmp_path / "other.jsonl")
    with pytest.raises(FileNotFoundError):
        load_prompt_file(tmp_path / "missing.txt")


def test_koala_uses_the_builtin_prompt(no_fastchat):
    with ScriptedServer(rate_tagged) as s:
        out = run(["답 <R8>"], s.url)
        assert s.requests[0]["max_tokens"] == 2048
    assert out["prompt_source"] == "builtin" and out["prompt_id"] == DEFAULT_PROMPT
    assert out["prompt_hash"] == PROMPTS[DEFAULT_PROMPT].hash and out["protocol"] == "koala"


def test_published_grades_without_a_reference(text_prompt):
    with pytest.raises(ValueError, match="no reference answer"):
        run(
            ["답"],
            "http://127.0.0.1:9/v1",
            protocol="published",
            judge_prompt_file=text_prompt,
            reference_answers=["참고"],
            reference_guided=True,
        )


# ----------------------------------------------------------------------------------------------
# judge: what goes into the mean

ANSWERS = ["답 하나 <R8>", "답 둘 <R6>", "답 셋 <none>", "", "   "]


def test_no_rating_and_empty_answers_per_protocol(text_prompt):
    with ScriptedServer(rate_tagged) as s:
        koala = run(ANSWERS, s.url, judge_prompt_file=text_prompt)
        assert len(s.requests) == 3  # the two empty answers are never sent
        published = run(ANSWERS, s.url, protocol="published", judge_prompt_file=text_prompt)
        assert len(s.requests) == 3 + 3
    # koala: 8, 6, unparsable (left out), empty rated 1 twice -> (8 + 6 + 1 + 1) / 4
    assert koala["score"] == pytest.approx(40.0)
    assert [r["status"] for r in koala["records"]] == ["ok", "ok", "unparsable", "empty", "empty"]
    assert [r["rating"] for r in koala["records"]] == [8.0, 6.0, None, 1.0, 1.0]
    assert (koala["num_in_mean"], koala["num_empty"], koala["num_unparsable"]) == (4, 2, 1)
    assert koala["not_in_mean"] == {"unparsable": 1} and "unparsable" in koala["mean_rule"]
    # published: 8, 6; the judgement without a rating and the empty answers leave the mean
    # -> 10 x (8 + 6) / 2 (it is not 0.0: that would be 10 x 14 / 3)
    assert published["score"] == pytest.approx(70.0)
    assert [r["status"] for r in published["records"]] == [
        "ok",
        "ok",
        "no_rating",
        "empty",
        "empty",
    ]
    assert [r["rating"] for r in published["records"]] == [8.0, 6.0, None, None, None]
    assert (published["num_in_mean"], published["num_no_rating"]) == (2, 1)
    assert published["not_in_mean"] == {"no_rating": 1, "empty": 2}


def test_published_out_of_range_and_negative_ratings_leave_the_mean(text_prompt):
    """Hand-worked: judgements [[9]], [[11]], [[0]], [[-3]], [[4]] then [[10]] -> rated 9 and
    4 (the first match of the last one); 10 x (9 + 4) / 2 = 65. The old rule took 11 and 0 as
    they are and counted [[-3]] as 0.0: 10 x (9 + 11 + 0 + 0 + 4) / 5 = 48."""
    verdicts = {
        "a": "[[9]]",
        "b": "점수 [[11]]",
        "c": "[[0]]",
        "d": "[[-3]]",
        "e": "[[4]] 아니 [[10]]",
    }

    def script(body, n):
        key = re.search(r"답 (\w)", body["messages"][-1]["content"]).group(1)
        return Reply(body=completion(verdicts[key]))

    with ScriptedServer(script) as s:
        out = run([f"답 {k}" for k in verdicts], s.url, protocol="published",
                  judge_prompt_file=text_prompt)  # fmt: skip
    assert [r["rating"] for r in out["records"]] == [9.0, None, None, None, 4.0]
    assert [r["status"] for r in out["records"]] == ["ok", *["no_rating"] * 3, "ok"]
    assert out["score"] == pytest.approx(65.0) and out["num_in_mean"] == 2
    assert out["not_in_mean"] == {"no_rating": 3}


def test_published_nothing_rated_is_zero_but_koala_has_no_figure(text_prompt):
    """ "only when no item at all has a rating is the score 0.0" (published); koala gives no
    figure (``None``)."""
    with ScriptedServer(lambda b, n: Reply(body=completion("점수를 줄 수 없습니다"))) as s:
        published = run(["답", "답 둘"], s.url, protocol="published",
                        judge_prompt_file=text_prompt)  # fmt: skip
        koala = run(["답", "답 둘"], s.url, judge_prompt_file=text_prompt)
    assert published["score"] == 0.0 and published["num_in_mean"] == 0
    assert published["num_no_rating"] == 2 and published["mean_rating"] is None
    assert koala["score"] is None and koala["num_unparsable"] == 2


def test_first_of_several_ratings_vs_unparsable(text_prompt):
    def script(body, n):
        return Reply(body=completion("처음엔 [[3]]이라 했지만 최종 점수는 [[9]]"))

    with ScriptedServer(script) as s:
        koala = run(["답"], s.url, judge_prompt_file=text_prompt)
        published = run(["답"], s.url, protocol="published", judge_prompt_file=text_prompt)
    assert koala["score"] is None and koala["num_unparsable"] == 1
    assert published["score"] == 30.0 and published["num_scored"] == 1


def test_judge_failure_is_counted_apart_in_both_protocols(text_prompt):
    with ScriptedServer(lambda b, n: Reply(status=400, body={"error": "bad"})) as s:
        for protocol, nothing_rated in (("koala", None), ("published", 0.0)):
            out = run(
                ["답"], s.url, protocol=protocol, judge_prompt_file=text_prompt, max_retries=0
            )
            assert out["num_judge_failed"] == 1 and out["score"] == nothing_rated
            assert out["not_in_mean"] == {"judge_failed": 1}
            assert out["records"][0]["status"] == "judge_failed"


def test_all_answers_empty(text_prompt):
    with ScriptedServer(rate_tagged) as s:
        koala = run(["", ""], s.url)
        published = run(["", ""], s.url, protocol="published", judge_prompt_file=text_prompt)
        assert len(s.requests) == 0
    assert koala["score"] == 10.0 and koala["num_empty"] == 2
    # published: empty answers are not sent and leave the mean; nothing rated -> 0.0
    assert published["score"] == 0.0 and published["num_in_mean"] == 0


# ----------------------------------------------------------------------------------------------
# judge: the cache


class Switch:
    def __init__(self, script):
        self.script = script

    def __call__(self, body, n):
        return self.script(body, n)


def test_cache_retries_no_rating_and_unparsable(tmp_path, text_prompt):
    cache = tmp_path / "judge.jsonl"
    switch = Switch(lambda b, n: Reply(body=completion("점수 없음")))
    with ScriptedServer(switch) as s:
        for protocol in ("koala", "published"):
            run(
                ["답 <R8>"],
                s.url,
                protocol=protocol,
                judge_prompt_file=text_prompt,
                cache_path=cache,
            )
        assert len(s.requests) == 2 and not cache.exists()  # nothing cached
        switch.script = rate_tagged
        for protocol in ("koala", "published"):
            out = run(
                ["답 <R8>"],
                s.url,
                protocol=protocol,
                judge_prompt_file=text_prompt,
                cache_path=cache,
            )
            assert out["score"] == 80.0 and out["cache_hits"] == 0
        assert len(s.requests) == 4
        lines = [json.loads(x) for x in cache.read_text(encoding="utf-8").splitlines()]
        assert [e["protocol"] for e in lines] == ["koala", "published"]
        assert {e["judge_url"] for e in lines} == {s.url}
        for protocol in ("koala", "published"):
            out = run(
                ["답 <R8>"],
                s.url,
                protocol=protocol,
                judge_prompt_file=text_prompt,
                cache_path=cache,
            )
            assert out["cache_hits"] == 1 and out["score"] == 80.0
        assert len(s.requests) == 4


def test_cache_key_changes_with_the_server_url(tmp_path):
    cache = tmp_path / "judge.jsonl"
    with ScriptedServer(rate_tagged) as a, ScriptedServer(rate_tagged) as b:
        run(["답 <R8>"], a.url, cache_path=cache)
        assert run(["답 <R8>"], a.url, cache_path=cache)["cache_hits"] == 1
        assert run(["답 <R8>"], a.url + "/", cache_path=cache)["cache_hits"] == 1
        other = run(["답 <R8>"], b.url, cache_path=cache)
        assert other["cache_hits"] == 0 and len(b.requests) == 1 and len(a.requests) == 1


def test_cache_key_covers_model_prompt_protocol_and_sampling():
    p = PROMPTS[DEFAULT_PROMPT]
    base = {"base_url": "http://h:1/v1", "protocol": "koala", "temperature": 0.0, "max_tokens": 512}
    key = cache_key("m", p, "지시", "답", None, **base)
    assert key == cache_key("m", p, "지시", "답", None, **{**base, "base_url": "http://h:1/v1/"})
    for change in (
        {"base_url": "http://h:2/v1"},
        {"protocol": "published"},
        {"temperature": 0.7},
        {"max_tokens": 2048},
    ):
        assert cache_key("m", p, "지시", "답", None, **{**base, **change}) != key
    assert cache_key("m2", p, "지시", "답", None, **base) != key
    assert cache_key("m", PROMPTS["koala-sif-single-ref-v1"], "지시", "답", None, **base) != key
    # max_tokens=None is the protocol's default (koala: 2048)
    default = cache_key("m", p, "지시", "답", None, base_url="http://h:1/v1")
    assert default == cache_key("m", p, "지시", "답", None, **{**base, "max_tokens": 2048})


def test_judge_module_passes_protocol_and_prompt_file(text_prompt):
    import evaluate

    judge = evaluate.load(str(ROOT / "metrics" / "llm_judge"))
    with ScriptedServer(rate_tagged) as s:
        out = judge.compute(
            predictions=["답 <R9>", ""],
            instructions=["지시", "지시 둘"],
            base_url=s.url,
            model="judge-m",
            protocol="published",
            judge_prompt_file=str(text_prompt),
            **FAST,
        )
        assert len(s.requests) == 1 and s.requests[0]["max_tokens"] == 512
    assert out["protocol"] == "published" and out["prompt_source"] == str(text_prompt)
    assert out["score"] == 90.0 and out["num_empty"] == 1
