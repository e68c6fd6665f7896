"""The ``openai:`` adapter against the protocols of real servers: OpenAI's audio models, Gemini's
OpenAI-compatible endpoint, vLLM and SGLang.

Requests are checked against the OpenAI SDK's request types (:func:`openai_server.sdk_request`)
and against vLLM's and SGLang's own ``ChatCompletionRequest`` (:mod:`server_protocol`); answers
are built from the SDK's ``ChatCompletion`` model (:func:`openai_server.chat_completion`). The
error bodies are the ones those servers send (OpenAI: ``{"error": {"message", "type",
"param", "code"}}``; Gemini's OpenAI-compatible endpoint: a list ``[{"error": {"code",
"message", "status"}}]``).

vLLM and SGLang pin a transformers older than the project's (and torch builds with CUDA
kernels), so their Python code is installed apart, without their dependencies:

* vLLM 0.34.0 runs in ``make test``: ``scripts/vllm_protocol.sh`` installs it once with the
  few small packages its protocol module imports (``pip install --no-deps --target
  .venv-protocols/vllm vllm==0.34.0 msgspec pyzmq cachetools prometheus_client cbor2
  py-cpuinfo uvloop openai-harmony``; 575 MB, ~30 s), and the Makefile sets
  ``KOALA_VLLM_PROTOCOL=.venv-protocols/vllm``. The bodies are validated in a subprocess
  whose ``PYTHONPATH`` is that folder alone (its import takes ~10 s), so nothing it brings
  shadows this process's packages; without the variable the test skips and says so.
* SGLang 0.5.23 (1.3 GB, triton being most of it) stays optional: its test runs in this
  process when SGLang is importable, and skips otherwise::

    pip install --no-deps --target /tmp/sglang-protocol sglang==0.5.23 orjson msgspec triton \\
        ipython traitlets decorator jedi parso pexpect prompt_toolkit stack_data \\
        matplotlib-inline wcwidth executing asttokens pure_eval ptyprocess
    PYTHONPATH=$PWD:/tmp/sglang-protocol pytest tests/test_openai_protocols.py
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from openai_server import (
    Reply,
    ScriptedServer,
    chat_completion,
    error_body,
    sdk_request,
    token_logprobs,
)
from server_protocol import parsed, request_model
from test_runner import (
    SR,
    asr_rows,
    make_export,
    one_variant_prompts,
    prompt_text,
    sqa_rows,
    strip_times,
    tone,
)

from koala.models import Request, load_model
from koala.runner import PREDICTIONS, main, read_predictions
from koala.score import score_run

FAST = "timeout=5&retries=1&backoff=0.01"
ROWS = 8  # sqa_click rows (multiple choice, labels A-D)


def run(spec: str, data: Path, out: Path, prompts: Path, configs=("sqa_click",), conc=2) -> int:
    argv = ["--model", spec, "--configs", *configs, "--data", str(data), "--prompts", str(prompts)]
    return main([*argv, "--out", str(out), "--no-progress", "--concurrency", str(conc)])


def by_id(out: Path) -> dict[str, dict]:
    recs, _ = read_predictions(out / PREDICTIONS)
    return {r["id"]: r for r in recs.values()}


def logit_cell(out: Path, model: str) -> tuple[dict, dict | None]:
    """The sqa_click scores in gen and logit mode (no logit mode when no record has
    log-probabilities)."""
    s = score_run(out, write=False, st_metrics=[], confidence=None)
    v = strip_times(s)["models"][model]["configs"]["sqa_click"]["variants"]["only"]
    return v["gen"], v.get("logit")


def rid_of(body: dict) -> str:
    return next(w for w in prompt_text(body).split() if w.startswith("q") and w[1:].isdigit())


def answer_of(body: dict) -> Reply:
    """The right answer for each row ("ABCD"[i % 4], see sqa_rows), with log-probabilities
    when asked; the ASR prompt gets a transcript."""
    text = prompt_text(body)
    if "(A)" not in text:
        return Reply(body=chat_completion("오늘 날씨가 좋습니다", model=body["model"]))
    lab = "ABCD"[int(rid_of(body)[1:]) % 4]
    lp = None
    if body.get("logprobs"):
        lp = token_logprobs([{x: (-0.1 if x == lab else -3.0) for x in "ABCD"}])
    return Reply(body=chat_completion(f"({lab})", logprobs=lp, model=body["model"]))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_export(tmp_path / "data", {"sqa_click": sqa_rows(ROWS), "asr_zeroth": asr_rows(3)})


# ------------------------------------------------------------------ a server refusing logprobs

# what the servers answer to ``logprobs`` on a model that has none (see the module docstring)
REFUSALS = {
    "openai-param": (
        "gpt-4o-audio-preview",
        error_body("This model does not support the 'logprobs' parameter.", param="logprobs"),
    ),
    "openai-unrecognized": (
        "gpt-4o-mini-audio-preview",
        error_body("Unrecognized request argument supplied: logprobs"),
    ),
    "gemini": (
        "gemini-2.0-flash",
        [
            {
                "error": {
                    "code": 400,
                    "message": "Logprobs is not supported for the current model.",
                    "status": "INVALID_ARGUMENT",
                }
            }
        ],
    ),
}


@pytest.mark.parametrize("server", sorted(REFUSALS))
def test_a_server_refusing_logprobs_gets_them_no_more_and_the_run_finishes(
    tmp_path, data, server, caplog
):
    model, refusal = REFUSALS[server]
    refused = []

    def script(body: dict, n: int) -> Reply:
        sdk_request(body)  # every body the adapter sends is a valid OpenAI request
        if "logprobs" in body or "top_logprobs" in body:
            refused.append(n)
            return Reply(status=400, body=refusal)
        return answer_of(body)

    out = tmp_path / "run"
    with ScriptedServer(script) as srv, caplog.at_level(logging.WARNING):
        rc = run(f"openai:{model}@{srv.url}?{FAST}", data, out, one_variant_prompts(tmp_path))
        sent = len(srv.requests)
    assert srv.errors == [] and rc == 0  # no circuit breaker: the run finished
    # a 400 for the requests in flight when the first came back (2), never one per request
    assert 1 <= len(refused) <= 2 and sent == ROWS + len(refused)
    recs = by_id(out)
    assert len(recs) == ROWS and {r["status"] for r in recs.values()} == {"ok"}
    for r in recs.values():
        assert r["logprobs"] is None and r["prediction"] == f"({'ABCD'[int(r['id'][1:]) % 4]})"
        assert r["meta"]["logprobs_off"] == "refused"
        assert "logprobs" in r["meta"]["logprobs_detail"].lower()
    gen, _ = logit_cell(out, f"openai:{model}")
    assert (gen["total"], gen["failed"], gen["correct"]) == (ROWS, 0, ROWS)
    said = [r.getMessage() for r in caplog.records if "logprobs" in r.getMessage()]
    assert len(said) == 1 and "generation" in said[0]  # said once, not per request


def report_of(out: Path) -> tuple[dict, str, str]:
    """``koala-bench score`` then ``report --html`` of a run folder: the shown variant's
    scores from scores.json, results.md and results.html."""
    import html

    from koala import report, score

    assert score.main([str(out), "--st-metrics", "bleu"]) == 0
    scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    (model,) = scores["models"]
    variant = scores["models"][model]["configs"]["sqa_click"]["variants"]["only"]
    assert report.main([str(out), "--html", "--st-metrics", "bleu"]) == 0
    md = (out / "results.md").read_text(encoding="utf-8")
    page = html.unescape((out / "results.html").read_text(encoding="utf-8"))
    return variant, md, page


def test_a_logit_cell_says_the_server_refused_logprobs(tmp_path, data):
    """A server refusing ``logprobs``: no logit figure, and the scores and every table say why
    instead of a bare dash (the 8 answers' records say ``meta.logprobs_off = refused``)."""
    model, refusal = REFUSALS["openai-param"]

    def script(body: dict, n: int) -> Reply:
        if "logprobs" in body:
            return Reply(status=400, body=refusal)
        return answer_of(body)

    out = tmp_path / "run"
    with ScriptedServer(script) as srv:
        assert (
            run(f"openai:{model}@{srv.url}?{FAST}", data, out, one_variant_prompts(tmp_path)) == 0
        )
    variant, md, page = report_of(out)
    assert variant["gen"]["accuracy"] == 1.0
    logit = variant["logit"]
    assert "accuracy" not in logit and logit["note"].startswith("not scored")
    assert (logit["no_logprobs"], logit["no_logprobs_reasons"]) == (ROWS, {"refused": ROWS})
    assert "logprobs" in logit["no_logprobs_detail"]["refused"]
    cell = "/ — (the server refused logprobs: 8 of 8)"
    assert cell in md and cell in page


def test_a_logit_cell_says_why_some_answers_have_no_logprobs(tmp_path, data):
    """Rows 0, 2, 4, 6 get the label log-probabilities (the right label most likely), rows
    1 and 5 none at all, rows 3 and 7 top tokens that hold no label: logit accuracy 4/8, and
    the cell counts the 4 without by reason."""

    def script(body: dict, n: int) -> Reply:
        sdk_request(body)
        i = int(rid_of(body)[1:])
        reply = answer_of(body)
        choice = reply.body["choices"][0]
        if i % 4 == 1:
            choice["logprobs"] = None
        elif i % 4 == 3:
            choice["logprobs"]["content"] = token_logprobs([{"x": -0.1, "y": -2.0}])
        return reply

    out = tmp_path / "run"
    with ScriptedServer(script) as srv:
        assert run(f"openai:m@{srv.url}?{FAST}", data, out, one_variant_prompts(tmp_path)) == 0
    recs = by_id(out)
    assert recs["q01"]["meta"]["logprobs_off"] == "not_returned"
    assert recs["q03"]["meta"]["labels_found"] == 0 and recs["q03"]["logprobs"] is None
    variant, md, page = report_of(out)
    logit = variant["logit"]
    assert (logit["accuracy"], logit["no_logprobs"]) == (0.5, 4)
    assert logit["no_logprobs_reasons"] == {"not_returned": 2, "no_label": 2}
    cell = (
        "/ 50.0 (n=8, 4 without logprobs; the server returned none: 2, no label among the top "
        "tokens: 2)"
    )
    assert cell in md and cell in page


def test_a_server_taking_fewer_top_logprobs_gets_that_many(tmp_path, data):
    """vLLM started with ``--max-logprobs 5`` refuses 20 with a 400 naming its limit (its
    ErrorResponse: ``{"error": {"message", "type", "param", "code"}}``): asked with 5 from
    then on, the logit scores kept."""
    refused = []

    def script(body: dict, n: int) -> Reply:
        sdk_request(body)
        if body.get("top_logprobs", 0) > 5:
            refused.append(n)
            msg = "Requested sample logprobs of 20, which is greater than max allowed: 5"
            return Reply(
                status=400,
                body=error_body(msg, param="logprobs", type="BadRequestError", code=400),
            )
        return answer_of(body)

    out = tmp_path / "run"
    with ScriptedServer(script) as srv:
        spec = f"openai:Qwen/Qwen2-Audio-7B-Instruct@{srv.url}?{FAST}"
        assert run(spec, data, out, one_variant_prompts(tmp_path)) == 0
        tops = [b.get("top_logprobs") for b in srv.requests]
    assert srv.errors == [] and 1 <= len(refused) <= 2
    assert tops.count(5) == ROWS and tops.count(20) == len(refused)
    for r in by_id(out).values():
        lab = "ABCD"[int(r["id"][1:]) % 4]
        assert r["status"] == "ok" and max(r["logprobs"], key=r["logprobs"].get) == lab
        assert r["meta"]["top_logprobs"] == 5 and "logprobs_off" not in r["meta"]
    _, logit = logit_cell(out, "openai:Qwen/Qwen2-Audio-7B-Instruct")
    assert logit is not None and (logit["correct"], logit["no_logprobs"]) == (ROWS, 0)


def test_a_400_about_something_else_is_not_taken_for_a_logprobs_refusal(tmp_path):
    def script(body: dict, n: int) -> Reply:
        return Reply(status=400, body=error_body("Audio file might be corrupted", param="messages"))

    with ScriptedServer(script) as srv:
        m = load_model(f"openai:gpt-4o-audio-preview@{srv.url}?{FAST}")
        with pytest.raises(Exception, match=r"HTTP 400.*corrupted"):
            m.answer(Request(None, "x\n(A) a\n(B) b\n답: ", ("A", "B")))
        assert len(srv.requests) == 1 and srv.requests[0]["logprobs"] is True


# ------------------------------------------------------------------ 200 without any text


EMPTY = {
    "q01": dict(content=None, finish_reason="length"),  # a reasoning model out of tokens
    "q02": dict(content=None, refusal="I can't help with identifying that voice."),
    "q03": dict(
        content=None,
        finish_reason="tool_calls",
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": "{}"},
            }
        ],
    ),
    "q04": dict(content="", finish_reason="length"),
}


def test_an_answer_without_text_is_a_failure_that_says_why_and_is_asked_again(tmp_path, data):
    seen: Counter = Counter()

    def script(body: dict, n: int) -> Reply:
        rid = rid_of(body)
        seen[rid] += 1
        if rid in EMPTY:
            return Reply(body=chat_completion(**EMPTY[rid], model=body["model"]))
        return answer_of(body)

    out = tmp_path / "run"
    prompts = one_variant_prompts(tmp_path)
    with ScriptedServer(script) as srv:
        spec = f"openai:o4-mini@{srv.url}?{FAST}&max_completion_tokens=64"
        assert run(spec, data, out, prompts) == 0
        assert all(seen[r] == 1 for r in EMPTY)  # not retried within the run
        recs = by_id(out)
        failed = {k for k, r in recs.items() if r["status"] == "failed"}
        assert failed == set(EMPTY)
        assert "finish_reason 'length'" in recs["q01"]["error"]
        assert "max_completion_tokens" in recs["q01"]["error"]  # what to raise
        assert "I can't help with identifying that voice." in recs["q02"]["error"]
        assert "refusal" in recs["q02"]["error"]
        assert "tool_calls" in recs["q03"]["error"] and "lookup" in recs["q03"]["error"]
        assert "finish_reason 'length'" in recs["q04"]["error"]
        gen, _ = logit_cell(out, "openai:o4-mini")
        assert (gen["failed"], gen["correct"]) == (4, ROWS - 4)
        # the next run asks exactly those four again
        seen.clear()
        srv.script = lambda body, n: (seen.update([rid_of(body)]), answer_of(body))[1]
        assert run(spec, data, out, prompts) == 0
    assert set(seen) == set(EMPTY) and sum(seen.values()) == 4
    assert {r["status"] for r in by_id(out).values()} == {"ok"}


# ------------------------------------------------------------------ max_completion_tokens


def test_max_completion_tokens_is_sent_instead_of_max_tokens(tmp_path):
    with ScriptedServer(lambda b, n: answer_of(b)) as srv:
        m = load_model(f"openai:o4-mini@{srv.url}?{FAST}&max_completion_tokens=2048")
        m.answer(Request(None, "q00\n(A) a\n(B) b\n답: ", ("A", "B")))
        m2 = load_model(f"openai:m@{srv.url}?{FAST}")
        m2.answer(Request(None, "q00 hi"))
    body, default = srv.requests
    assert sdk_request(body)["max_completion_tokens"] == 2048 and "max_tokens" not in body
    assert sdk_request(default)["max_tokens"] == 512 and "max_completion_tokens" not in default
    with pytest.raises(ValueError, match=r"max_tokens.*max_completion_tokens"):
        load_model("openai:m@http://127.0.0.1:1/v1?max_tokens=10&max_completion_tokens=10")


def test_a_server_refusing_max_tokens_gets_max_completion_tokens(tmp_path, data):
    """OpenAI's reasoning models answer ``max_tokens`` with a 400 naming it; the same limit is
    sent as ``max_completion_tokens`` from then on (no 400 per request)."""
    refused = []

    def script(body: dict, n: int) -> Reply:
        sdk_request(body)
        if "max_tokens" in body:
            refused.append(n)
            msg = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return Reply(
                status=400, body=error_body(msg, param="max_tokens", code="unsupported_parameter")
            )
        assert body["max_completion_tokens"] == 300
        return answer_of(body)

    out = tmp_path / "run"
    with ScriptedServer(script) as srv:
        spec = f"openai:o4-mini@{srv.url}?{FAST}&max_tokens=300"
        assert run(spec, data, out, one_variant_prompts(tmp_path)) == 0
    assert srv.errors == [] and 1 <= len(refused) <= 2
    assert {r["status"] for r in by_id(out).values()} == {"ok"}


# ------------------------------------------------------------------ temperature refused

# what OpenAI answers to temperature=0 on its reasoning models (o1, o3, o4-mini, gpt-5): a
# value the model does not take, or (older models) the parameter itself
TEMPERATURE_REFUSALS = {
    "unsupported-value": error_body(
        "Unsupported value: 'temperature' does not support 0 with this model. Only the "
        "default (1) value is supported.",
        param="temperature",
        code="unsupported_value",
    ),
    "unsupported-parameter": error_body(
        "Unsupported parameter: 'temperature' is not supported with this model.",
        param="temperature",
        code="unsupported_parameter",
    ),
}


@pytest.mark.parametrize("refusal", sorted(TEMPERATURE_REFUSALS))
def test_a_server_refusing_temperature_is_asked_without_it(tmp_path, data, refusal, caplog):
    """OpenAI's reasoning models refuse ``temperature=0`` with a 400 naming it: the request is
    asked again without it, and no later request sends it (a 400 for the requests in flight
    when the first came back at most); said once; each record says so
    (``meta.temperature_off``)."""
    refused = []

    def script(body: dict, n: int) -> Reply:
        sdk_request(body)
        if "temperature" in body:
            refused.append(n)
            return Reply(status=400, body=TEMPERATURE_REFUSALS[refusal])
        return answer_of(body)

    out = tmp_path / "run"
    with ScriptedServer(script) as srv, caplog.at_level(logging.WARNING):
        rc = run(f"openai:o4-mini@{srv.url}?{FAST}", data, out, one_variant_prompts(tmp_path))
        sent = len(srv.requests)
    assert srv.errors == [] and rc == 0
    assert 1 <= len(refused) <= 2 and sent == ROWS + len(refused)
    recs = by_id(out)
    assert {r["status"] for r in recs.values()} == {"ok"} and len(recs) == ROWS
    for r in recs.values():
        assert r["meta"]["temperature_off"] == "refused"
        assert max(r["logprobs"], key=r["logprobs"].get) == "ABCD"[int(r["id"][1:]) % 4]
    said = [x.getMessage() for x in caplog.records if "temperature" in x.getMessage()]
    assert len(said) == 1 and "without" in said[0]


def test_temperature_none_never_sends_it_and_is_part_of_the_fingerprint(tmp_path, data):
    from koala.runner import model_identity

    with ScriptedServer(lambda body, n: (sdk_request(body), answer_of(body))[1]) as srv:
        spec = f"openai:o4-mini@{srv.url}?{FAST}&temperature=none"
        out = tmp_path / "run"
        assert run(spec, data, out, one_variant_prompts(tmp_path)) == 0
        assert len(srv.requests) == ROWS and all("temperature" not in b for b in srv.requests)
        # what is sent changed: the default spec asks every request again, with temperature 0
        default = spec.removesuffix("&temperature=none")
        assert run(default, data, out, one_variant_prompts(tmp_path)) == 0
        assert len(srv.requests) == 2 * ROWS
        assert all(b["temperature"] == 0 for b in srv.requests[ROWS:])
    a, b = (model_identity(load_model(x), x) for x in (spec, default))
    assert a != b and a["options"]["temperature"] == "none"
    for bad in ("hot", "-1"):
        with pytest.raises(ValueError, match="temperature"):
            load_model(f"openai:m@http://127.0.0.1:1/v1?temperature={bad}")


# ------------------------------------------------------------------ vLLM token_id:N tokens


def server_request_model(server: str):
    """The server's own ``ChatCompletionRequest`` pydantic model, or a skip."""
    try:
        return request_model(server)
    except ImportError:
        pytest.skip(
            f"{server} is not importable in this process (see the module docstring for how to "
            "install it apart)"
        )


TOKEN_IDS = {"A": 32, "B": 33, "C": 34, "D": 35}


def vllm_answer(body: dict, as_ids: bool) -> Reply:
    """A vLLM answer; with ``as_ids`` its tokens are ``token_id:N`` (vLLM started with
    ``--return-tokens-as-token-ids``: the token text is not sent, its ``bytes`` are those of
    the placeholder)."""
    reply = answer_of(body)
    if not as_ids or not body.get("logprobs"):
        return reply
    for tok in reply.body["choices"][0]["logprobs"]["content"]:
        for entry in [tok, *tok["top_logprobs"]]:
            entry["token"] = f"token_id:{TOKEN_IDS[entry['token']]}"
            entry["bytes"] = list(entry["token"].encode())
    return reply


@pytest.mark.parametrize("honours_override", [True, False])
def test_vllm_token_ids_are_asked_as_text_or_said_to_be_unusable(
    tmp_path, data, honours_override, caplog
):
    """vLLM takes ``return_tokens_as_token_ids`` per request (0.34.0 read): the adapter, told by a
    ``token_id:N`` token, asks for text tokens from then on. A server that keeps sending ids
    (an older vLLM) cannot be read without its tokenizer: logit scores are given up, said
    once, and each record says why."""

    def script(body: dict, n: int) -> Reply:
        override = body.get("return_tokens_as_token_ids")
        if override is None:
            sdk_request(body)
        as_ids = override is not False or not honours_override
        return vllm_answer(body, as_ids)

    out = tmp_path / "run"
    with ScriptedServer(script) as srv, caplog.at_level(logging.WARNING):
        rc = run(
            f"openai:Qwen/Qwen2-Audio-7B-Instruct@{srv.url}?{FAST}",
            data,
            out,
            one_variant_prompts(tmp_path),
        )
        bodies = list(srv.requests)
    assert srv.errors == [] and rc == 0
    recs = by_id(out)
    assert {r["status"] for r in recs.values()} == {"ok"}
    with_ids = [b for b in bodies if "return_tokens_as_token_ids" not in b and b.get("logprobs")]
    assert 1 <= len(with_ids) <= 2  # the answers in flight when the first came back
    if honours_override:
        for r in recs.values():
            lab = "ABCD"[int(r["id"][1:]) % 4]
            assert max(r["logprobs"], key=r["logprobs"].get) == lab
            assert r["meta"]["labels_found"] == 4 and "logprobs_off" not in r["meta"]
        assert len(bodies) == ROWS + len(with_ids)
    else:
        for r in recs.values():
            assert r["logprobs"] is None and r["meta"]["logprobs_off"] == "token_ids"
            assert "--return-tokens-as-token-ids" in r["meta"]["logprobs_detail"]
        said = [x.getMessage() for x in caplog.records if "token_id" in x.getMessage()]
        assert len(said) == 1 and "--return-tokens-as-token-ids" in said[0]
        # once given up, logprobs are no longer asked
        assert not bodies[-1].get("logprobs")


def adapter_bodies(as_ids: bool) -> list[dict]:
    """The bodies the adapter sends for a multiple-choice request with a clip (with ``as_ids``,
    a vLLM answering ``token_id:N`` first: asked again with ``return_tokens_as_token_ids:
    false``), a text-only request, and one under ``max_completion_tokens`` without logprobs."""

    def script(body: dict, n: int) -> Reply:
        return vllm_answer(body, as_ids and body.get("return_tokens_as_token_ids") is None)

    with ScriptedServer(script) as srv:
        m = load_model(f"openai:Qwen/Qwen2-Audio-7B-Instruct@{srv.url}?{FAST}&system=S")
        clip = tone(1)
        m.answer(Request((clip, SR), "q01\n(A) a\n(B) b\n답: ", ("A", "B")))  # ids, then text
        m.answer(Request(None, "q02 text only"))
        m3 = load_model(f"openai:x@{srv.url}?{FAST}&max_completion_tokens=9&top_logprobs=0")
        m3.answer(Request((clip, SR), "q03\n(A) a\n(B) b\n답: ", ("A", "B")))
        bodies = list(srv.requests)
    assert srv.errors == []
    overrides = [b.get("return_tokens_as_token_ids") for b in bodies]
    assert overrides == ([None, False, None, None] if as_ids else [None, None, None])
    return bodies


def check_parsed(bodies: list[dict], held: list[dict]) -> None:
    """What the server holds after parsing each body (:func:`server_protocol.parsed`) is what
    was sent: model, messages, logprobs, the token limit, and the clip, which decodes to the
    row's samples (16-bit rounding only)."""
    assert len(held) == len(bodies)
    for body, req in zip(bodies, held, strict=True):
        assert req["model"] == body["model"] and req["messages"] == len(body["messages"])
        if body.get("logprobs"):
            assert req["logprobs"] is True and req["top_logprobs"] == 20
        if "(A)" in prompt_text(body):  # each one but the text-only request has the clip
            wav = base64.b64decode(req["audio"], validate=True)
            samples, sr = sf.read(io.BytesIO(wav), dtype="float32")
            assert sr == SR and np.abs(samples - tone(1)).max() <= 1 / 32768
        else:
            assert req["audio"] is None
    assert held[-1]["max_completion_tokens"] == 9


def test_request_bodies_validate_against_sglang_s_own_request_model():
    """SGLang 0.5.23's ``ChatCompletionRequest``, in this process when SGLang is importable
    (1.3 GB with triton: not installed by ``make test``, so this skips there)."""
    R = server_request_model("sglang")
    bodies = adapter_bodies(as_ids=False)  # only vLLM sends token_id:N and takes the override
    check_parsed(bodies, [parsed(R, b) for b in bodies])


def vllm_protocol_folder() -> Path:
    """The folder holding vLLM 0.34.0's protocol module (``$KOALA_VLLM_PROTOCOL``, relative to
    the repository or absolute), or a skip when the variable is unset."""
    folder = os.environ.get("KOALA_VLLM_PROTOCOL")
    if not folder:
        pytest.skip(
            "$KOALA_VLLM_PROTOCOL is not set: `make test` sets it to .venv-protocols/vllm, "
            "where scripts/vllm_protocol.sh installs vLLM 0.34.0's protocol module"
        )
    path = Path(folder)
    path = path if path.is_absolute() else Path(__file__).resolve().parent.parent / path
    assert (path / "vllm").is_dir(), f"$KOALA_VLLM_PROTOCOL={folder}: no vllm package in {path}"
    return path


def test_request_bodies_validate_against_vllm_s_own_request_model(tmp_path):
    """vLLM 0.34.0's ``ChatCompletionRequest`` parses every body the adapter sends (the
    ``return_tokens_as_token_ids`` override included) and holds the clip that was sent. vLLM
    is imported in a subprocess whose ``PYTHONPATH`` is its folder alone, so nothing there
    shadows this process's packages."""
    folder = vllm_protocol_folder()
    bodies = adapter_bodies(as_ids=True)
    # and one body vLLM must refuse, so that the check is not vacuous
    bad = {**bodies[0], "top_logprobs": "many"}
    (tmp_path / "bodies.json").write_text(json.dumps([*bodies, bad]), encoding="utf-8")
    script = Path(__file__).resolve().parent / "server_protocol.py"
    proc = subprocess.run(
        [sys.executable, str(script), "vllm", str(tmp_path / "bodies.json"), str(tmp_path / "o")],
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp_path / "o").read_text(encoding="utf-8"))
    assert out["version"] == "0.34.0" and out["module"].startswith("vllm.entrypoints.openai")
    *held, refused = out["requests"]
    assert all("error" not in h for h in held), held
    check_parsed(bodies, held)
    assert "top_logprobs" in refused["error"]


# ------------------------------------------------------------------ the audio arrives


def stored_audio(data: Path, config: str) -> dict[str, bytes]:
    """The WAV bytes the export stores for each row id of ``config``."""
    import pyarrow.parquet as pq

    (path,) = (data / "data" / config).glob("*.parquet")
    rows = pq.read_table(path, columns=["id", "audio"]).to_pylist()
    return {r["id"]: r["audio"]["bytes"] for r in rows}


SEEDS = {**{f"q{i:02d}": i for i in range(ROWS)}, **{f"a{i:02d}": 100 + i for i in range(3)}}


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gpt-4o-audio-preview", "/v1"),  # OpenAI: input_audio, format "wav"; no logprobs
        ("gemini-2.5-flash", "/v1beta/openai"),  # Gemini's OpenAI-compatible endpoint
    ],
)
def test_each_item_s_own_audio_arrives_under_concurrency(tmp_path, data, model, path):
    """The stand-in server decodes every request's ``input_audio`` and finds which exported row
    it is by its bytes alone; the answer names that row, so a record holding another row's
    answer, a clip sent twice or one never sent would show."""
    stored = {**stored_audio(data, "sqa_click"), **stored_audio(data, "asr_zeroth")}
    assert len(set(stored.values())) == len(stored)  # every clip differs
    owner = {wav: rid for rid, wav in stored.items()}
    heard: list[tuple[str | None, str]] = []
    lock = threading.Lock()
    first_four = threading.Barrier(4, timeout=20)  # four requests in flight at once

    def script(body: dict, n: int) -> Reply:
        sdk_request(body)
        audio, text = body["messages"][-1]["content"]
        assert audio["type"] == "input_audio" and audio["input_audio"]["format"] == "wav"
        wav = base64.b64decode(audio["input_audio"]["data"], validate=True)
        rid = owner.get(wav)
        samples, sr = sf.read(io.BytesIO(wav), dtype="float32")
        # the clip the row was made from, independently of the export: 16-bit rounding only
        assert sr == SR and rid is not None
        assert np.abs(samples - tone(SEEDS[rid])).max() <= 1 / 32768
        with lock:
            heard.append((rid, text["text"]))
        if n < 4:
            first_four.wait()
        if model.startswith("gpt-4o-audio") and body.get("logprobs"):
            msg = "This model does not support the 'logprobs' parameter."
            return Reply(status=400, body=error_body(msg, param="logprobs"))
        reply = answer_of(body)
        reply.body["choices"][0]["message"]["content"] += f" [heard {rid}]"
        reply.delay = 0.01 * (n % 3)  # answers come back out of order
        return reply

    out = tmp_path / "run"
    with ScriptedServer(script) as srv:
        base = srv.url.removesuffix("/v1") + path
        rc = run(
            f"openai:{model}@{base}?{FAST}",
            data,
            out,
            one_variant_prompts(tmp_path),
            configs=("sqa_click", "asr_zeroth"),
            conc=4,
        )
        paths = set(srv.paths)
    assert srv.errors == [] and rc == 0 and paths == {f"{path}/chat/completions"}
    # each row's clip arrived, for an SQA row with that row's own question
    got = Counter(rid for rid, _ in heard)
    assert set(got) == set(stored)
    assert all(rid in text for rid, text in heard if rid.startswith("q"))
    recs, _ = read_predictions(out / PREDICTIONS)
    assert len(recs) == len(stored)
    for r in recs.values():
        assert r["status"] == "ok" and r["prediction"].endswith(f"[heard {r['id']}]")


# ------------------------------------------------------------------ the SDK's own request check


def test_the_sdk_request_check_catches_what_a_server_would_refuse():
    ok = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    {"type": "text", "text": "hi"},
                ],
            }
        ],
        "max_completion_tokens": 5,
    }
    assert sdk_request(ok) == ok
    bad_format = json.loads(json.dumps(ok))
    bad_format["messages"][0]["content"][0]["input_audio"]["format"] = "flac"
    unknown = {**ok, "max_token": 5}
    for bad in (bad_format, unknown, {**ok, "logprobs": "yes"}):
        with pytest.raises(ValueError):
            sdk_request(bad)
