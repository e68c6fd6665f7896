"""Judge drift: who judged (the server's /models), what was sent (prompt hashes, sampling), how
many requests (announced before sending) and whether a second judge agrees. Scripted servers
on 127.0.0.1, real HTTP; the ratings and agreement figures are worked by hand."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import re

import pytest
from openai_server import Reply, ScriptedServer, by_model, completion, model_entry
from test_score_honest import make_run, record

from koala.score import add_arguments, judge_options, score_run
from koala.scoring.judge import (
    DEFAULT_PROMPT,
    PROMPTS,
    agreement_spec,
    judge_scores,
    rating_agreement,
)

FAST = {"backoff": 0.01, "progress": False}
ANNOUNCE = re.compile(
    r"judge: (\d+) requests to (\S+) at (\S+) \((\d+) cached, (\d+) not needing a call\)"
)
INSTRUCTION = "주말에 할 만한 취미를 추천해 주세요."


def _user_text(body):
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def tagged(tag_name):
    """A judge that answers with the rating tagged in the answer: ``<A8>`` -> ``[[8]]`` for tag
    ``A``; no tag: a judgement without a rating (unparsable)."""

    def script(body, n):
        tag = re.search(rf"<{tag_name}([\d.]+)>", _user_text(body))
        text = f"괜찮은 답입니다. [[{tag.group(1)}]]" if tag else "평가하기 어렵습니다."
        return Reply(body=completion(text))

    return script


def score(answers, url, **kw):
    return judge_scores(
        [INSTRUCTION] * len(answers), answers, base_url=url, model="judge-m", **{**FAST, **kw}
    )


def announcements(caplog):
    return [
        ANNOUNCE.fullmatch(r.getMessage())
        for r in caplog.records
        if r.name == "koala.scoring.judge"
        and r.getMessage().startswith("judge: ")
        and " requests to " in r.getMessage()
    ]


# ----------------------------------------------------------------------------------------------
# who judged, with what


def test_judge_block_records_identity_prompt_hashes_and_sampling(monkeypatch):
    monkeypatch.setenv("DRIFT_KEY", "sk-drift-123")
    models = [
        model_entry("other-model", owned_by="someone"),
        model_entry("judge-m", owned_by="koala-lab", created=1700000000, root="/ckpt/judge-m-v2"),
    ]
    with ScriptedServer(tagged("A"), models=models) as s:
        out = score(["<A8>", "<A6>"], s.url, api_key_env="DRIFT_KEY")
        body, gets = s.requests[0], list(s.model_requests)
    block = out["judge"]
    assert len(gets) == 1 and gets[0]["Authorization"] == "Bearer sk-drift-123"
    assert block["model"] == "judge-m" and block["url"] == s.url
    assert block["protocol"] == "koala"
    assert block["identity"] == {
        "models": ["judge-m", "other-model"],
        "requested_listed": True,
        "owned_by": "koala-lab",
        "created": 1700000000,
        "root": "/ckpt/judge-m-v2",
    }
    assert block["identity_error"] is None
    prompt = PROMPTS[DEFAULT_PROMPT]
    assert block["prompt"] == {
        "id": DEFAULT_PROMPT,
        "source": "builtin",
        "hash": prompt.hash,
        "system_sha256": hashlib.sha256(prompt.system.encode("utf-8")).hexdigest(),
        "template_sha256": hashlib.sha256(prompt.template.encode("utf-8")).hexdigest(),
    }
    # every setting sent besides model and messages, as sent
    sent = {k: v for k, v in body.items() if k not in ("model", "messages")}
    assert block["sampling"] == sent == {"temperature": 0.0, "max_tokens": 2048}
    assert block["requests"] == {"sent": 2, "cached": 0, "no_call": 0}
    assert "sk-drift-123" not in json.dumps(out)
    assert out["score"] == pytest.approx(70.0)  # (8 + 6) / 2 x 10


def test_requested_model_not_listed_is_said():
    with ScriptedServer(tagged("A"), models=[model_entry("gpt-4o-mini-2024-07-18")]) as s:
        block = score(["<A8>"], s.url)["judge"]
    assert block["identity"] == {"models": ["gpt-4o-mini-2024-07-18"], "requested_listed": False}


@pytest.mark.parametrize(
    ("models", "error"),
    [
        (Reply(status=401, body={"error": "key sk-drift-456 refused"}), "HTTP 401"),
        (Reply(status=404, body={"error": "no such route"}), "HTTP 404"),
        (Reply(body={"models": "judge-m"}), "malformed model list"),
    ],
)
def test_identity_failure_is_recorded_redacted_and_not_fatal(monkeypatch, models, error):
    monkeypatch.setenv("DRIFT_KEY", "sk-drift-456")
    with ScriptedServer(tagged("A"), models=models) as s:
        out = score(["<A8>"], s.url, api_key_env="DRIFT_KEY", max_retries=1)
        assert len(s.requests) == 1
    assert out["score"] == 80.0 and out["judge"]["identity"] is None
    assert error in out["judge"]["identity_error"]
    assert "sk-drift-456" not in json.dumps(out)
    if "401" in error:
        assert "key [REDACTED] refused" in out["judge"]["identity_error"]


def test_identity_is_not_asked_when_no_request_is_sent(tmp_path):
    cache = tmp_path / "judge.jsonl"
    with ScriptedServer(tagged("A"), models=[model_entry("judge-m")]) as s:
        score(["<A8>"], s.url, cache_path=cache)
        again = score(["<A8>", "  "], s.url, cache_path=cache)
        assert len(s.model_requests) == 1 and len(s.requests) == 1
    assert again["judge"]["identity"] is None
    assert again["judge"]["identity_error"].startswith("not asked")
    assert again["judge"]["requests"] == {"sent": 0, "cached": 1, "no_call": 1}


# ----------------------------------------------------------------------------------------------
# the announced number of requests


def test_announced_count_is_what_the_server_receives(tmp_path, caplog):
    cache = tmp_path / "judge.jsonl"
    seen: list[bool] = []
    judge = tagged("A")

    def script(body, n):
        # the announcement is logged before the first request arrives
        seen.append(bool(announcements(caplog)))
        return judge(body, n)

    with ScriptedServer(script) as s:
        score(["<A9>"], s.url, cache_path=cache)  # fills the cache with one judgement
        before = len(s.requests)
        caplog.clear()
        seen.clear()
        with caplog.at_level(logging.WARNING, logger="koala.scoring.judge"):
            # cached, new, the same again, empty, new, whitespace: 2 requests, 1 cached, 3 not
            out = score(["<A9>", "<A5>", "<A5>", "", "<A7>", " \n"], s.url, cache_path=cache)
        received = len(s.requests) - before
    (line,) = announcements(caplog)
    assert line is not None
    n, model, host, cached, no_call = line.groups()
    assert int(n) == received == 2 == out["requests_sent"]
    assert (model, int(cached), int(no_call)) == ("judge-m", 1, 3)
    assert host == s.url.split("/")[2]  # 127.0.0.1:port
    assert seen and all(seen)
    assert out["judge"]["requests"] == {"sent": 2, "cached": 1, "no_call": 3}


def test_nothing_to_send_is_announced_as_zero(caplog):
    with caplog.at_level(logging.WARNING, logger="koala.scoring.judge"):
        out = score(["", "   "], "http://127.0.0.1:9/v1")  # no server: none is needed
    (line,) = announcements(caplog)
    assert line.groups() == ("0", "judge-m", "127.0.0.1:9", "0", "2")
    assert out["num_empty"] == 2


# ----------------------------------------------------------------------------------------------
# agreement figures, by hand


def test_rating_agreement_hand_worked():
    # a = [8, 6, 10], b = [8, 7, 9]: one of three equal; |diff| 0, 1, 1 -> 2/3.
    # Pearson: deviations (0, -2, 2) and (0, -1, 1): 4 / sqrt(8 x 2) = 1; ranks equal: 1.
    # kappa_w: observed mean (a-b)^2 = (0 + 1 + 1)/3 = 2/3; expected over all 9 pairs (a_i, b_j):
    # a=8: 0+1+1, a=6: 4+1+9, a=10: 4+9+1 -> 30/9; 1 - (2/3)/(30/9) = 1 - 0.2 = 0.8.
    out = rating_agreement([8, 6, 10], [8, 7, 9])
    assert out["n"] == 3
    assert out["exact_agreement"] == pytest.approx(1 / 3)
    assert out["mean_abs_diff"] == pytest.approx(2 / 3)
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    assert out["kappa_quadratic"] == pytest.approx(0.8)


def test_rating_agreement_ranks_ties_and_undefined_figures():
    # a = [1, 2, 3, 10], b = [1, 2, 3, 4]: same order, so Spearman 1; Pearson: deviations
    # (-3, -2, -1, 6) and (-1.5, -0.5, 0.5, 1.5): 14 / sqrt(50 x 5) = 0.885438...
    out = rating_agreement([1, 2, 3, 10], [1, 2, 3, 4])
    assert out["spearman"] == pytest.approx(1.0)
    assert out["pearson"] == pytest.approx(14 / 250**0.5)
    # ties: a = [1, 2, 2, 3] ranks (1, 2.5, 2.5, 4), b = [1, 3, 2, 2] ranks (1, 4, 2.5, 2.5):
    # deviations (-1.5, 0, 0, 1.5), (-1.5, 1.5, 0, 0): 2.25 / 4.5 = 0.5
    assert rating_agreement([1, 2, 2, 3], [1, 3, 2, 2])["spearman"] == pytest.approx(0.5)
    # one judge always says 5, the other 4 or 6: no correlation defined; kappa: observed
    # mean (a-b)^2 = 1, expected = var(a) + var(b) + (mean diff)^2 = 0 + 1 + 0 -> 1 - 1/1 = 0
    flat = rating_agreement([5, 5], [4, 6])
    assert flat["pearson"] is None and flat["spearman"] is None
    assert flat["kappa_quadratic"] == pytest.approx(0.0) and flat["exact_agreement"] == 0.0
    same = rating_agreement([5, 5], [5, 5])
    assert same["exact_agreement"] == 1.0 and same["kappa_quadratic"] is None
    assert rating_agreement([], [])["kappa_quadratic"] is None
    with pytest.raises(ValueError, match="b has 1 items but a has 2"):
        rating_agreement([1, 2], [1])


def test_kappa_matches_scikit_learn_on_consecutive_ratings():
    metrics = pytest.importorskip("sklearn.metrics")
    a, b = [8, 6, 10, 7, 9, 9], [8, 7, 9, 7, 10, 6]
    expected = metrics.cohen_kappa_score(a, b, weights="quadratic")
    assert rating_agreement(a, b)["kappa_quadratic"] == pytest.approx(expected)


# ----------------------------------------------------------------------------------------------
# a second judge


def test_second_judge_rejudges_rated_items_with_its_own_cache(tmp_path, caplog):
    # judge-m reads <A.>, judge-2 reads <B.>; item 3 is empty and item 4 has no rating from
    # judge-m: neither can be compared, so the sample is items 0-2 whatever the seed.
    # Item 5 is rated 7 by judge-m, but judge-2 gives no rating: not compared, not cached.
    answers = ["<A8><B8>", "<A6><B7>", "<A10><B9>", "", "<B5>", "<A7>"]
    cache = tmp_path / "judge.jsonl"
    judges = {"judge-m": tagged("A"), "judge-2": tagged("B")}
    models = [model_entry("judge-m"), model_entry("judge-2", owned_by="second-lab")]
    with ScriptedServer(by_model(judges), models=models) as s:
        with caplog.at_level(logging.WARNING, logger="koala.scoring.judge"):
            out = score(answers, s.url, cache_path=cache, agreement={"n": 10, "model": "judge-2"})
        asked = [b["model"] for b in s.requests]
        assert asked.count("judge-m") == 5 and asked.count("judge-2") == 4
        again = score(answers, s.url, cache_path=cache, agreement={"n": 10, "model": "judge-2"})
        asked = [b["model"] for b in s.requests]
        # rated judgements of both judges come from the cache; the unparsable ones are asked
        # again (judge-m: item 4; judge-2: item 5)
        assert asked.count("judge-m") == 6 and asked.count("judge-2") == 5
    ag = out["judge"]["agreement"]
    assert (ag["eligible"], ag["n_requested"], ag["n_sampled"]) == (4, 10, 4)
    assert ag["not_compared"] == {"unparsable": 1}
    assert sorted((p["index"], p["rating"], p["agreement_rating"]) for p in ag["pairs"]) == [
        (0, 8.0, 8.0),
        (1, 6.0, 7.0),
        (2, 10.0, 9.0),
    ]
    # the hand-worked case above
    assert ag["n"] == 3 and ag["kappa_quadratic"] == pytest.approx(0.8)
    assert ag["exact_agreement"] == pytest.approx(1 / 3)
    assert ag["mean_abs_diff"] == pytest.approx(2 / 3)
    assert ag["judge"]["model"] == "judge-2"
    assert ag["judge"]["identity"]["owned_by"] == "second-lab"
    assert ag["judge"]["requests"] == {"sent": 4, "cached": 0, "no_call": 0}
    # the first judge's figures are its own: (8 + 6 + 10 + 1 + 7) / 5 x 10, item 4 unparsable
    assert out["score"] == pytest.approx(64.0) and out["num_unparsable"] == 1
    lines = [m.groups() for m in announcements(caplog)]
    host = s.url.split("/")[2]
    # (requests, model, host, cached, not needing a call) of each call, first run then again
    assert lines == [
        ("5", "judge-m", host, "0", "1"),
        ("4", "judge-2", host, "0", "0"),
        ("1", "judge-m", host, "4", "1"),
        ("1", "judge-2", host, "3", "0"),
    ]
    assert again["judge"]["agreement"]["judge"]["requests"] == {
        "sent": 1,
        "cached": 3,
        "no_call": 0,
    }
    assert again["judge"]["agreement"]["kappa_quadratic"] == pytest.approx(0.8)


def test_agreement_sample_is_seeded():
    answers = [f"<A{r}><B{r}>" for r in (3, 4, 5, 6, 7, 8, 9)]
    judges = {"judge-m": tagged("A"), "judge-2": tagged("B")}

    def sample(seed):
        with ScriptedServer(by_model(judges)) as s:
            out = score(answers, s.url, agreement={"n": 3, "model": "judge-2", "seed": seed})
            second = [_user_text(b) for b in s.requests if b["model"] == "judge-2"]
        ag = out["judge"]["agreement"]
        assert ag["seed"] == seed and ag["n"] == 3 and ag["exact_agreement"] == 1.0
        chosen = [p["index"] for p in ag["pairs"]]
        # the second judge was asked about those items and no other
        assert len(second) == 3 and all(any(answers[i] in t for t in second) for i in chosen)
        return chosen

    # the rule: the first n of random.Random(seed).sample(rated items, all of them)
    for seed in (1, 2):
        assert sample(seed) == random.Random(seed).sample(range(7), 7)[:3]
    assert sample(1) != sample(2)


def test_agreement_on_another_server_and_a_dead_one():
    with (
        ScriptedServer(tagged("A")) as first,
        ScriptedServer(tagged("B"), models=[model_entry("judge-m")]) as second,
    ):
        out = score(
            ["<A8><B6>"], first.url, agreement={"n": 1, "model": "judge-m", "base_url": second.url}
        )
        assert len(first.requests) == 1 and len(second.requests) == 1
    ag = out["judge"]["agreement"]
    assert ag["judge"]["url"] == second.url and ag["mean_abs_diff"] == 2.0
    # a second judge that never answers leaves the first judge's score as it is
    with ScriptedServer(tagged("A")) as first:
        out = score(
            ["<A8>"],
            first.url,
            max_retries=0,
            agreement={"n": 1, "model": "judge-2", "base_url": "http://127.0.0.1:9/v1"},
        )
    assert out["score"] == 80.0
    ag = out["judge"]["agreement"]
    assert ag["n"] == 0 and ag["not_compared"] == {"judge_failed": 1}
    assert "connection error" in ag["judge"]["identity_error"]


@pytest.mark.parametrize(
    ("agreement", "message"),
    [
        ({"n": 2}, "name the second judge's model"),
        ({"n": 2, "model": "judge-m"}, "the second judge is the first"),
        ({"n": 2, "model": "judge-m", "base_url": "http://127.0.0.1:8000/v1/"}, "is the first"),
        ({"n": -1, "model": "j2"}, "whole number >= 0"),
        ({"n": 2, "model": "j2", "url": "x"}, "unknown keys"),
    ],
)
def test_agreement_spec_refuses(agreement, message):
    with pytest.raises(ValueError, match=message):
        agreement_spec(agreement, "http://127.0.0.1:8000/v1", "judge-m")
    with pytest.raises(ValueError, match=message):  # before any request
        judge_scores(
            ["a"], ["b"], base_url="http://127.0.0.1:8000/v1", model="judge-m", agreement=agreement
        )


# ----------------------------------------------------------------------------------------------
# the command line and scores.json


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["run", *argv])


def test_cli_options_fill_the_second_judge_from_the_first():
    args = parse("--judge-url", "http://h:1/v1", "--judge-key-env", "K1", "--seed", "5")
    assert "agreement" not in judge_options(args)
    args = parse(
        "--judge-url",
        "http://h:1/v1",
        "--judge-key-env",
        "K1",
        "--seed",
        "5",
        "--judge-agreement",
        "20",
        "--agreement-judge-model",
        "judge-2",
    )
    assert judge_options(args)["agreement"] == {
        "n": 20,
        "model": "judge-2",
        "base_url": "http://h:1/v1",
        "api_key_env": "K1",
        "seed": 5,
    }
    args = parse(
        "--judge-url",
        "http://h:1/v1",
        "--judge-agreement",
        "20",
        "--agreement-judge-model",
        "judge-2",
        "--agreement-judge-url",
        "http://h2:2/v1",
        "--agreement-judge-key-env",
        "K2",
    )
    assert judge_options(args)["agreement"] == {
        "n": 20,
        "model": "judge-2",
        "base_url": "http://h2:2/v1",
        "api_key_env": "K2",
        "seed": 0,
    }
    with pytest.raises(SystemExit, match=r"--judge-agreement: .*second judge's model"):
        judge_options(parse("--judge-url", "http://h:1/v1", "--judge-agreement", "3"))
    with pytest.raises(SystemExit, match="is the first"):
        judge_options(
            parse(
                "--judge-url",
                "http://h:1/v1",
                "--judge-model",
                "j",
                "--judge-agreement",
                "3",
                "--agreement-judge-model",
                "j",
            )
        )


def test_scores_json_holds_the_judge_block_and_the_agreement(tmp_path):
    ref = {"instruction": INSTRUCTION}
    recs = [
        record("sif_vicuna", "i0", "<A8><B8>", task="sif", ref=ref),
        record("sif_vicuna", "i1", "<A6><B7>", task="sif", ref=ref),
        record("sif_vicuna", "i2", "<A10><B9>", task="sif", ref=ref),
        record("sif_vicuna", "i3", None, task="sif", status="abstained", ref=ref),
    ]
    run = make_run(tmp_path / "run", recs)
    judges = {"judge-m": tagged("A"), "judge-2": tagged("B")}
    with ScriptedServer(by_model(judges), models=[model_entry("judge-m", root="r1")]) as s:
        args = parse(
            "--judge-url",
            s.url,
            "--judge-model",
            "judge-m",
            "--confidence",
            "0",
            "--judge-agreement",
            "3",
            "--agreement-judge-model",
            "judge-2",
        )
        judge = judge_options(args) | {"progress": False, "backoff": 0.01}
        score_run(run, judge=judge, confidence=None)
    saved = json.loads((run / "scores.json").read_text(encoding="utf-8"))
    sif = saved["models"]["m"]["configs"]["sif_vicuna"]["variants"]["k1"]["gen"]
    block = sif["judge"]
    assert block["identity"] == {"models": ["judge-m"], "requested_listed": True, "root": "r1"}
    assert block["requests"] == {"sent": 3, "cached": 0, "no_call": 1}
    assert block["sampling"] == {"temperature": 0.0, "max_tokens": 2048}
    ag = block["agreement"]
    assert ag["n"] == 3 and ag["kappa_quadratic"] == pytest.approx(0.8)
    assert (
        ag["judge"]["model"] == "judge-2" and ag["judge"]["identity"]["requested_listed"] is False
    )
    # (8 + 6 + 10 + 1) / 4 x 10: the abstention gets the lowest rating (koala)
    assert sif["score"] == pytest.approx(62.5)


def test_identity_request_is_retried_like_a_chat_request():
    def models(n):
        if n == 0:
            return Reply(status=503, body={"error": "warming up"})
        return [model_entry("judge-m", created=1)]

    with ScriptedServer(tagged("A"), models=models) as s:
        block = score(["<A8>"], s.url)["judge"]
        assert len(s.model_requests) == 2
    assert block["identity"]["created"] == 1 and block["identity_error"] is None
