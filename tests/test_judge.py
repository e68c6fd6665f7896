"""The SIF LLM judge against a scripted OpenAI-compatible server on 127.0.0.1 (real HTTP)."""

import asyncio
import json
import re

import pytest
from conftest import ROOT
from openai_server import Reply, ScriptedServer, completion

from koala.scoring.judge import (
    DEFAULT_PROMPT,
    DEFAULT_REFERENCE_PROMPT,
    PROMPTS,
    JudgeCache,
    judge_scores,
    parse_rating,
)

# Instructions and answers written for these tests.
INSTRUCTIONS = [
    "한국의 수도가 어디인지 알려 주세요.",
    "물이 끓는 온도를 설명해 주세요.",
    "봄에 어울리는 짧은 시를 써 주세요.",
    "김치찌개 만드는 법을 간단히 알려 주세요.",
]
ANSWERS = [
    "한국의 수도는 서울입니다. <R8>",
    "물은 해수면 기압에서 섭씨 100도에서 끓습니다. <R6>",
    "벚꽃 비 내리는 길, 바람이 웃는다. <R9.5>",
    "모르겠습니다. <R3>",
]
FAST = {"backoff": 0.01, "progress": False}


def _user_text(body):
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def rating_script(body, n):
    """Answer with the rating tagged in the answer, e.g. "<R9.5>" -> "... [[9.5]]"."""
    tag = re.search(r"<R([\d.]+)>", _user_text(body))
    verdict = f"도움이 되는 답변입니다.\nGrade: [[{tag.group(1)}]]" if tag else "no tag"
    return Reply(body=completion(verdict))


def score(instructions, answers, url, **kw):
    return judge_scores(instructions, answers, base_url=url, model="judge-m", **{**FAST, **kw})


class Switch:
    """A server script that can be swapped mid-test: the cache key holds the server URL, so
    calls that must share a cache must talk to the same server."""

    def __init__(self, script):
        self.script = script

    def __call__(self, body, n):
        return self.script(body, n)


# ----------------------------------------------------------------------------------------------
# parsing


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("좋습니다. Grade: [[7]]", 7.0),
        ("Rating: [[7.5]]", 7.5),
        ("[[ 10 ]]", 10.0),
        ("[[1]]", 1.0),
        ("처음 [[6]] 그리고 다시 [[6]]", 6.0),
        ("[[04]]", 4.0),
    ],
)
def test_parse_rating_reads_double_brackets(text, rating):
    assert parse_rating(text) == (rating, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Rating: 7", "no [[rating]]"),
        ("Rating: [7]", "no [[rating]]"),
        ("[[seven]]", "no [[rating]]"),
        ("[[7/10]]", "no [[rating]]"),
        ("", "no [[rating]]"),
        ("[[0]]", "outside 1-10"),
        ("[[11]]", "outside 1-10"),
        ("[[10.5]]", "outside 1-10"),
        ("[[-1]]", "outside 1-10"),
        ("first [[3]], finally [[8]]", "several different ratings in the judgement: 3, 8"),
    ],
)
def test_parse_rating_rejects(text, reason):
    rating, error = parse_rating(text)
    assert rating is None and reason in error


# ----------------------------------------------------------------------------------------------
# scoring


def test_ratings_mean_times_ten_and_the_request():
    with ScriptedServer(rating_script) as s:
        out = score(INSTRUCTIONS, ANSWERS, s.url)
        requests = list(s.requests)
    assert out["score"] == pytest.approx((8 + 6 + 9.5 + 3) / 4 * 10)  # 66.25
    assert out["mean_rating"] == pytest.approx(6.625)
    assert [r["rating"] for r in out["records"]] == [8.0, 6.0, 9.5, 3.0]
    counts = ("num_items", "num_scored", "num_judge_failed", "num_unparsable", "num_empty")
    assert [out[k] for k in counts] == [4, 4, 0, 0, 0]
    assert out["num_in_mean"] == 4 and out["not_in_mean"] == {}
    prompt = PROMPTS[DEFAULT_PROMPT]
    assert out["prompt_id"] == DEFAULT_PROMPT and out["prompt_hash"] == prompt.hash
    assert out["judge_model"] == "judge-m" and out["reference_guided"] is False
    assert all(
        r["prompt_hash"] == prompt.hash and r["judge_model"] == "judge-m" for r in out["records"]
    )
    assert len(requests) == 4
    for body in requests:
        assert body["temperature"] == 0
        assert body["model"] == "judge-m"
        assert body["messages"][0] == {"role": "system", "content": prompt.system}
        assert "[[" in prompt.system and "1 (worst) to 10 (best)" in prompt.system
    by_answer = {_user_text(b): b for b in requests}
    for ins, ans in zip(INSTRUCTIONS, ANSWERS, strict=True):
        user = prompt.template.format(instruction=ins, answer=ans)
        assert user in by_answer
        assert ins in user and ans in user


def test_malformed_judgement_is_reported_and_excluded():
    def script(body, n):
        if "<R3>" in _user_text(body):
            return Reply(body=completion("이 답변은 부족합니다. 점수: 3점"))  # no [[x]]
        return rating_script(body, n)

    with ScriptedServer(script) as s:
        out = score(INSTRUCTIONS, ANSWERS, s.url)
    assert out["num_unparsable"] == 1 and out["num_scored"] == 3
    assert out["score"] == pytest.approx((8 + 6 + 9.5) / 3 * 10)
    bad = out["records"][3]
    assert bad["status"] == "unparsable" and bad["rating"] is None
    assert bad["judgement"] == "이 답변은 부족합니다. 점수: 3점"
    assert "no [[rating]]" in bad["error"]


@pytest.mark.parametrize("status", [429, 500])
def test_busy_server_is_retried_then_scored(status):
    def script(body, n):
        if n < 2:
            return Reply(status=status, body={"error": "busy"})
        return rating_script(body, n)

    with ScriptedServer(script) as s:
        out = score(INSTRUCTIONS[:1], ANSWERS[:1], s.url, concurrency=1)
        assert len(s.requests) == 3
    rec = out["records"][0]
    assert rec["status"] == "ok" and rec["rating"] == 8.0 and rec["attempts"] == 3
    assert out["score"] == 80.0


def test_timeout_then_success():
    def script(body, n):
        return Reply(body=completion("늦음 [[2]]"), delay=1.0) if n == 0 else rating_script(body, n)

    with ScriptedServer(script) as s:
        out = score(INSTRUCTIONS[:1], ANSWERS[:1], s.url, timeout=0.2, concurrency=1)
    rec = out["records"][0]
    assert rec["status"] == "ok" and rec["rating"] == 8.0 and rec["attempts"] == 2


def test_always_failing_item_is_counted_and_excluded(tmp_path):
    def script(body, n):
        user = _user_text(body)
        if "<R6>" in user:
            return Reply(status=500, body={"error": "broken"})
        if "<R9.5>" in user:
            return Reply(body=completion("late [[1]]"), delay=1.0)  # always times out
        return rating_script(body, n)

    cache = tmp_path / "judge.jsonl"
    switch = Switch(script)
    with ScriptedServer(switch) as s:
        out = score(INSTRUCTIONS, ANSWERS, s.url, max_retries=1, timeout=0.3, cache_path=cache)
        assert len(s.requests) == 2 + 2 * 2  # two good items once, two bad ones twice each
        # failures are not cached: the next run asks again for those two only
        switch.script = rating_script
        again = score(INSTRUCTIONS, ANSWERS, s.url, cache_path=cache)
        assert len(s.requests) == 6 + 2
    assert out["num_judge_failed"] == 2 and out["num_scored"] == 2
    assert out["not_in_mean"] == {"judge_failed": 2}
    assert out["score"] == pytest.approx((8 + 3) / 2 * 10)
    failed = {r["index"]: r for r in out["records"] if r["status"] == "judge_failed"}
    assert set(failed) == {1, 2}
    assert "HTTP 500" in failed[1]["error"] and failed[1]["attempts"] == 2
    assert "timed out" in failed[2]["error"]
    assert all(r["rating"] is None and r["judgement"] is None for r in failed.values())
    assert again["num_judge_failed"] == 0 and again["cache_hits"] == 2
    assert again["score"] == pytest.approx(66.25)


def test_nothing_scored_gives_no_score():
    with ScriptedServer(lambda b, n: Reply(body=completion("잘 모르겠네요"))) as s:
        out = score(INSTRUCTIONS[:2], ANSWERS[:2], s.url)
    assert out["score"] is None and out["mean_rating"] is None and out["num_unparsable"] == 2


# ----------------------------------------------------------------------------------------------
# cache


def test_cache_makes_rescoring_free(tmp_path):
    cache = tmp_path / "sub" / "judge.jsonl"
    with ScriptedServer(rating_script) as s:
        first = score(INSTRUCTIONS, ANSWERS, s.url, cache_path=cache)
        assert len(s.requests) == 4
        second = score(INSTRUCTIONS, ANSWERS, s.url, cache_path=cache)
        assert len(s.requests) == 4  # zero new requests
    assert second["requests_sent"] == 0 and second["cache_hits"] == 4
    assert second["score"] == first["score"] == pytest.approx(66.25)
    assert all(r["cached"] for r in second["records"])
    lines = cache.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    entry = json.loads(lines[0])
    assert entry["judge_model"] == "judge-m" and entry["prompt_id"] == DEFAULT_PROMPT
    # another judge model on the same server never reuses these judgements
    with ScriptedServer(rating_script) as s:
        score(INSTRUCTIONS, ANSWERS, s.url, cache_path=cache)
        assert len(s.requests) == 4  # another server URL: asked again (see test_protocol_st_judge)
        other = judge_scores(
            INSTRUCTIONS, ANSWERS, base_url=s.url, model="judge-2", cache_path=cache, **FAST
        )
        assert len(s.requests) == 8 and other["cache_hits"] == 0


def test_duplicate_items_are_asked_once():
    with ScriptedServer(rating_script) as s:
        out = score(INSTRUCTIONS[:1] * 3, ANSWERS[:1] * 3, s.url)
        assert len(s.requests) == 1
    assert [r["rating"] for r in out["records"]] == [8.0, 8.0, 8.0]
    assert out["num_scored"] == 3


def test_truncated_last_line_is_tolerated(tmp_path):
    cache = tmp_path / "judge.jsonl"
    with ScriptedServer(rating_script) as s:
        score(INSTRUCTIONS, ANSWERS, s.url, cache_path=cache)
        data = cache.read_bytes()
        # the run was killed in the middle of writing its last record, inside a UTF-8 character
        last_start = data.rstrip(b"\n").rfind(b"\n") + 1
        cut = last_start + data[last_start:].find("답".encode()) + 1
        cache.write_bytes(data[:cut])
        assert len(JudgeCache(cache).entries) == 3 and JudgeCache(cache).skipped_lines == 1
        out = score(INSTRUCTIONS, ANSWERS, s.url, cache_path=cache)
        assert len(s.requests) == 4 + 1
        assert out["cache_hits"] == 3 and out["score"] == pytest.approx(66.25)
        # the new record landed on its own line: the file now reads back whole, garbage skipped
        reread = JudgeCache(cache)
        assert len(reread.entries) == 4 and reread.skipped_lines == 1
        assert score(INSTRUCTIONS, ANSWERS, s.url, cache_path=cache)["cache_hits"] == 4
        assert len(s.requests) == 5


def test_unparsable_is_not_cached_and_asked_again(tmp_path):
    # (behaviour change: unparsable judgements used to be cached and kept unless
    # recheck_unparsable=True; now only rated judgements are cached)
    cache = tmp_path / "judge.jsonl"
    switch = Switch(lambda b, n: Reply(body=completion("점수 없음")))
    with ScriptedServer(switch) as s:
        assert score(INSTRUCTIONS[:1], ANSWERS[:1], s.url, cache_path=cache)["num_unparsable"] == 1
        assert not cache.exists() or cache.read_text(encoding="utf-8") == ""
        switch.script = rating_script
        fresh = score(INSTRUCTIONS[:1], ANSWERS[:1], s.url, cache_path=cache)
        assert len(s.requests) == 2 and fresh["cache_hits"] == 0
        assert score(INSTRUCTIONS[:1], ANSWERS[:1], s.url, cache_path=cache)["cache_hits"] == 1
        assert len(s.requests) == 2
    assert fresh["num_scored"] == 1 and fresh["score"] == 80.0


# ----------------------------------------------------------------------------------------------
# reference-guided grading, inputs, entry points


def test_reference_guided_prompt_carries_the_reference():
    refs = ["서울", "100도", "자유 형식", "재료를 넣고 끓인다"]
    with ScriptedServer(rating_script) as s:
        out = score(INSTRUCTIONS, ANSWERS, s.url, reference_answers=refs)
        bodies = list(s.requests)
    prompt = PROMPTS[DEFAULT_REFERENCE_PROMPT]
    assert out["reference_guided"] is True and out["prompt_id"] == DEFAULT_REFERENCE_PROMPT
    assert out["prompt_hash"] == prompt.hash != PROMPTS[DEFAULT_PROMPT].hash
    users = {_user_text(b) for b in bodies}
    for ins, ans, ref in zip(INSTRUCTIONS, ANSWERS, refs, strict=True):
        assert prompt.template.format(instruction=ins, answer=ans, reference=ref) in users
    assert all(b["messages"][0]["content"] == prompt.system for b in bodies)
    # reference answers present but grading without them: the plain prompt, no reference sent
    with ScriptedServer(rating_script) as s:
        plain = score(INSTRUCTIONS, ANSWERS, s.url, reference_answers=refs, reference_guided=False)
        assert not any("재료를 넣고 끓인다" in _user_text(b) for b in s.requests)
    assert plain["prompt_id"] == DEFAULT_PROMPT


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="answers has 1 items but instructions has 2"):
        judge_scores(["a", "b"], ["x"], base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ValueError, match="reference_answers has 1 items"):
        judge_scores(
            ["a", "b"],
            ["x", "y"],
            base_url="http://127.0.0.1:9/v1",
            model="m",
            reference_answers=["r"],
        )
    with pytest.raises(ValueError, match="needs reference_answers"):
        judge_scores(
            ["a"], ["x"], base_url="http://127.0.0.1:9/v1", model="m", reference_guided=True
        )
    with pytest.raises(ValueError, match=r"answers\[0\] is None"):
        judge_scores(["a"], [None], base_url="http://127.0.0.1:9/v1", model="m")


def test_api_key_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("KOALA_JUDGE_KEY", "sk-judge")
    with ScriptedServer(rating_script) as s:
        out = score(INSTRUCTIONS[:1], ANSWERS[:1], s.url, api_key_env="KOALA_JUDGE_KEY")
        assert s.headers[0]["Authorization"] == "Bearer sk-judge"
    assert "sk-judge" not in json.dumps(out)


def test_sync_entry_point_works_inside_a_running_event_loop():
    async def caller(url):
        return score(INSTRUCTIONS[:2], ANSWERS[:2], url)

    with ScriptedServer(rating_script) as s:
        out = asyncio.run(caller(s.url))
    assert out["score"] == pytest.approx(70.0)


def test_evaluate_module(tmp_path):
    import evaluate

    judge = evaluate.load(str(ROOT / "metrics" / "llm_judge"))
    with ScriptedServer(rating_script) as s:
        out = judge.compute(
            predictions=ANSWERS,
            instructions=INSTRUCTIONS,
            base_url=s.url,
            model="judge-m",
            cache_path=str(tmp_path / "c.jsonl"),
            **FAST,
        )
        assert len(s.requests) == 4
        with pytest.raises(ValueError, match="no `references`"):
            judge.compute(predictions=ANSWERS, references=INSTRUCTIONS, base_url=s.url, model="m")
        with pytest.raises(ValueError, match="needs the judge server and model"):
            judge.compute(predictions=ANSWERS, instructions=INSTRUCTIONS)
        # add_batch keeps answers and instructions paired
        judge.add_batch(predictions=ANSWERS[:2], instructions=INSTRUCTIONS[:2])
        judge.add_batch(predictions=ANSWERS[2:], instructions=INSTRUCTIONS[2:])
        batched = judge.compute(
            base_url=s.url, model="judge-m", cache_path=str(tmp_path / "c.jsonl"), **FAST
        )
        assert len(s.requests) == 4  # all from the cache
    assert out["score"] == pytest.approx(66.25) and batched["score"] == out["score"]
    assert out["prompt_hash"] == PROMPTS[DEFAULT_PROMPT].hash
