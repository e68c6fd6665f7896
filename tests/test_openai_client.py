"""The OpenAI-compatible client against a scripted server on 127.0.0.1 (real HTTP)."""

import asyncio
import time

import pytest
from openai_server import Reply, ScriptedServer, completion

from koala.openai_client import ChatError, OpenAIClient


def run(coro):
    return asyncio.run(coro)


async def _one(url, **kw):
    async with OpenAIClient(url, "m", **kw) as c:
        return await c.achat([{"role": "user", "content": "hi"}], temperature=0)


def test_text_logprobs_and_request_body(monkeypatch):
    monkeypatch.setenv("KOALA_TEST_KEY", "sk-secret")
    with ScriptedServer(lambda b, n: Reply(body=completion("(B)", [{"A": -2.0, "B": -0.1}]))) as s:
        r = run(_one(s.url, api_key_env="KOALA_TEST_KEY"))
        assert r.text == "(B)"
        assert r.top_logprobs == [{"A": -2.0, "B": -0.1}]
        assert r.attempts == 1
        assert s.requests[0]["model"] == "m" and s.requests[0]["temperature"] == 0
        assert s.headers[0]["Authorization"] == "Bearer sk-secret"
    assert "sk-secret" not in repr(OpenAIClient(s.url, "m", api_key_env="KOALA_TEST_KEY"))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_then_succeeds(status):
    def script(body, n):
        return (
            Reply(status=status, body={"error": "busy"}) if n < 2 else Reply(body=completion("ok"))
        )

    with ScriptedServer(script) as s:
        r = run(_one(s.url, backoff=0.01))
        assert r.text == "ok" and r.attempts == 3 and len(s.requests) == 3


def test_client_error_is_not_retried():
    with ScriptedServer(lambda b, n: Reply(status=400, body={"error": "bad"})) as s:
        with pytest.raises(ChatError) as e:
            run(_one(s.url, backoff=0.01))
        assert e.value.status == 400 and len(s.requests) == 1


def test_timeout_then_gives_up():
    with ScriptedServer(lambda b, n: Reply(body=completion("late"), delay=1.0)) as s:
        t0 = time.perf_counter()
        with pytest.raises(ChatError, match="timed out"):
            run(_one(s.url, timeout=0.2, max_retries=1, backoff=0.01))
        assert len(s.requests) == 2
        assert time.perf_counter() - t0 < 0.9 * 2 + 0.5


def test_malformed_json_is_retried_and_reported():
    with ScriptedServer(lambda b, n: Reply(body=b"{not json")) as s:
        with pytest.raises(ChatError, match="invalid JSON"):
            run(_one(s.url, max_retries=2, backoff=0.01))
        assert len(s.requests) == 3


def test_retry_after_header_is_honoured():
    def script(body, n):
        if n == 0:
            return Reply(status=429, headers={"Retry-After": "0.3"})
        return Reply(body=completion("ok"))

    with ScriptedServer(script) as s:
        t0 = time.perf_counter()
        assert run(_one(s.url, backoff=0.0)).text == "ok"
        assert time.perf_counter() - t0 >= 0.3


def test_concurrency_limit_bounds_requests_in_flight():
    import threading

    live = {"now": 0, "max": 0}
    lock = threading.Lock()

    def script(body, n):
        with lock:
            live["now"] += 1
            live["max"] = max(live["max"], live["now"])
        time.sleep(0.05)
        with lock:
            live["now"] -= 1
        return Reply(body=completion(str(n)))

    async def many():
        async with OpenAIClient(s.url, "m", concurrency=3) as c:
            return await asyncio.gather(
                *(c.achat([{"role": "user", "content": str(i)}]) for i in range(12))
            )

    with ScriptedServer(script) as s:
        out = run(many())
    assert len(out) == 12
    assert live["max"] == 3


KEY = "sk-" + "k9x" * 20  # 63 characters


@pytest.mark.parametrize(
    ("status", "retries"),
    [(401, 0), (500, 1)],  # a client error raised at once; a server error after the retries
)
def test_error_messages_never_carry_the_key_or_an_authorization_value(monkeypatch, status, retries):
    monkeypatch.setenv("KOALA_TEST_KEY", KEY)
    # the key ends at character ~200 of the body, where the message used to cut it: no part
    # of it may be left either
    echo = "x" * 150 + f" {KEY} " + "Authorization: Bearer other-token-777 " + "y" * 50
    with ScriptedServer(lambda b, n: Reply(status=status, body={"error": echo})) as s:
        with pytest.raises(ChatError) as e:
            run(_one(s.url, api_key_env="KOALA_TEST_KEY", max_retries=retries, backoff=0.01))
        assert s.headers[0]["Authorization"] == f"Bearer {KEY}"
    text = str(e.value)
    assert e.value.status == status and f"HTTP {status}" in text
    assert "k9xk9x" not in text and "sk-k9" not in text
    assert "other-token-777" not in text and "[REDACTED]" in text


def test_malformed_body_echoing_the_key_is_redacted(monkeypatch):
    monkeypatch.setenv("KOALA_TEST_KEY", KEY)
    with ScriptedServer(lambda b, n: Reply(body={"unexpected": KEY})) as s:
        with pytest.raises(ChatError, match="malformed") as e:
            run(_one(s.url, api_key_env="KOALA_TEST_KEY", max_retries=0))
    assert "k9xk9x" not in str(e.value)


def test_redact_helper():
    from koala.openai_client import redact

    assert redact("key sk-1 and sk-1", ["sk-1", None, ""]) == "key [REDACTED] and [REDACTED]"
    assert redact('{"Authorization": "Bearer abc.def"}') == '{"Authorization": "[REDACTED]"}'
    assert redact("authorization=Basic dXNlcg==, next") == "authorization=[REDACTED], next"
    assert redact("got bearer tok123 here") == "got bearer [REDACTED] here"


@pytest.mark.parametrize(
    "url", ["http://user:pw-777@127.0.0.1:1/v1", "https://sk-abc@host/v1", "ftp://host/v1", "host"]
)
def test_base_url_with_credentials_or_without_host_is_refused(url):
    with pytest.raises(ValueError, match=r"key_env|not an http") as e:
        OpenAIClient(url, "m")
    assert "pw-777" not in str(e.value) and "sk-abc" not in str(e.value)


def test_deadline_and_the_retry_after_cap():
    from koala.openai_client import MAX_BACKOFF, deadline

    assert deadline() == 60.0 * 5 == 300.0  # the defaults: 60 s x (4 retries + 1)
    assert deadline(0.5, 2) == 1.5
    assert MAX_BACKOFF == 30.0

    def script(body, n):
        if n == 0:
            return Reply(status=503, headers={"Retry-After": "3600"})
        return Reply(body=completion("ok"))

    with ScriptedServer(script) as s:
        t0 = time.perf_counter()
        assert run(_one(s.url, max_backoff=0.2)).text == "ok"
        assert 0.2 <= time.perf_counter() - t0 < 2.0  # an hour asked, 0.2 s waited


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_names_its_target(status):
    """aiohttp follows redirects by default: a POST answered 307 went, with the audio, the
    prompt and the key, to whatever host the server named."""
    with ScriptedServer(lambda b, n: Reply(body=completion("elsewhere"))) as other:
        port = other.url.split(":")[2].split("/")[0]
        target = f"http://user:pw-777@127.0.0.1:{port}/v1/chat/completions"
        with ScriptedServer(lambda b, n: Reply(status=status, headers={"Location": target})) as s:
            with pytest.raises(ChatError) as e:
                run(_one(s.url, max_retries=2, backoff=0.01))
            assert len(s.requests) == 1  # not retried: the server will say the same
        assert other.requests == [] and other.model_requests == []
    text = str(e.value)
    assert e.value.status == status and "redirect" in text
    assert f"127.0.0.1:{port}/v1/chat/completions" in text and "pw-777" not in text


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ({"content": None, "finish_reason": "length"}, "finish_reason 'length'"),
        ({"content": None, "refusal": "I cannot do that."}, "I cannot do that."),
        ({"content": "", "finish_reason": "content_filter"}, "finish_reason 'content_filter'"),
    ],
)
def test_an_answer_without_text_raises_at_once(message, why):
    from openai_server import chat_completion

    from koala.openai_client import EmptyAnswer

    with ScriptedServer(lambda b, n: Reply(body=chat_completion(**message))) as s:
        with pytest.raises(EmptyAnswer) as e:
            run(_one(s.url, max_retries=3, backoff=0.01))
        assert len(s.requests) == 1  # the server answered: asking again gives the same
    assert why in str(e.value) and e.value.status == 200


def test_an_empty_text_that_stopped_is_an_answer():
    from openai_server import chat_completion

    with ScriptedServer(lambda b, n: Reply(body=chat_completion("", finish_reason="stop"))) as s:
        r = run(_one(s.url))
    assert r.text == "" and r.finish_reason == "stop"


@pytest.mark.parametrize(
    "url",
    [
        "user:pw-777@127.0.0.1:8000/v1",  # no scheme
        "sk-pw-777@127.0.0.1:8000/v1",
        "http://user:pw-777@127.0.0.1:8000/v1",
        "HTTP://user:pw-777@host/v1",
        "http://us@er:pw-777@host/v1",  # an unescaped "@" in the password
    ],
)
def test_no_error_about_a_url_repeats_its_password(url, monkeypatch):
    from koala.models.openai import OpenAIChatModel

    for build in (
        lambda: OpenAIClient(url, "m"),
        lambda: OpenAIChatModel("m", base_url=f"http://127.0.0.1:1/v1,{url}"),
    ):
        with pytest.raises(ValueError) as e:
            build()
        assert "pw-777" not in str(e.value)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(ValueError) as e:
        OpenAIChatModel("m")
    assert "pw-777" not in str(e.value) and "OPENAI_BASE_URL" in str(e.value)


def test_a_url_s_scheme_and_host_are_compared_without_case():
    from koala.openai_client import check_base_url

    assert check_base_url("HTTP://LocalHost:8000/V1") == "http://localhost:8000/V1"
    assert check_base_url("https://api.openai.com:443/v1") == "https://api.openai.com/v1"
    assert check_base_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"
