"""The circuit breaker: a run against a failing or hung server stops after N consecutive failed
requests, keeps what is committed, leaves the rest pending; and the run's help texts."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter

from openai_server import Reply, ScriptedServer, chat_completion, completion
from test_runner import asr_rows, make_export, one_variant_prompts, sqa_rows

from koala.cli import build_parser
from koala.models import load_model
from koala.runner import PREDICTIONS, main, read_predictions


def _argv(spec, data, prompts, out, *configs, concurrency=1):
    return [
        "--model", spec, "--configs", *(configs or ("sqa_click",)), "--data", str(data),
        "--prompts", str(prompts), "--out", str(out), "--no-progress",
        "--concurrency", str(concurrency),
    ]  # fmt: skip


def test_a_failing_server_trips_the_breaker_and_the_rest_stays_pending(tmp_path, capsys):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(20), "asr_zeroth": asr_rows(2)})
    prompts = one_variant_prompts(tmp_path)
    out = tmp_path / "run"
    state = {"down": True}

    def script(body, n):
        if state["down"]:
            return Reply(status=500, body={"error": "the GPU fell over"})
        return Reply(body=completion("(A)"))

    with ScriptedServer(script) as srv:
        spec = f"openai:m@{srv.url}?timeout=2&retries=1&backoff=0.01&breaker=3"
        rc = main(_argv(spec, data, prompts, out, "sqa_click", "asr_zeroth"))
        err = capsys.readouterr().err
        assert rc == 5
        # one request at a time: 3 failed requests of 2 attempts each, then nothing more
        assert len(srv.requests) == 3 * 2
        assert "circuit breaker" in err and srv.url in err and "HTTP 500" in err
        assert "GPU fell over" in err and "pending" in err and "exit status 5" in err
        assert "asr_zeroth: NOT RUN" in err  # the next config never started
        recs, _ = read_predictions(out / PREDICTIONS)
        assert Counter(r["status"] for r in recs.values()) == Counter({"failed": 3})

        # the server is back: the same command asks the 17 pending and the 3 failed requests
        # (and the ASR config), nothing twice
        state["down"] = False
        n0 = len(srv.requests)
        assert main(_argv(spec, data, prompts, out, "sqa_click", "asr_zeroth")) == 0
        assert len(srv.requests) - n0 == 20 + 2
        recs, st = read_predictions(out / PREDICTIONS)
        assert len(recs) == 22 and {r["status"] for r in recs.values()} == {"ok"}
        assert st.duplicates == 3  # the 3 failed records, superseded
        # the breaker changes how requests travel, not what they answer: nothing is re-asked
        n1 = len(srv.requests)
        other = spec.replace("breaker=3", "breaker=7")
        assert main(_argv(other, data, prompts, out, "sqa_click", "asr_zeroth")) == 0
        assert len(srv.requests) == n1


def test_a_hung_server_ends_the_run_in_seconds(tmp_path, capsys):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(40)})
    out = tmp_path / "run"
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"), delay=5.0)) as srv:
        spec = f"openai:m@{srv.url}?timeout=0.3&retries=0&breaker=2"
        t0 = time.perf_counter()
        rc = main(_argv(spec, data, one_variant_prompts(tmp_path), out, concurrency=2))
        took = time.perf_counter() - t0
        err = capsys.readouterr().err
        # without the breaker: 40 requests x 0.3 s / 2 in flight = 6 s of waiting
        assert rc == 5 and took < 3.0
        assert "timed out after 0.3s" in err and srv.url in err
        assert len(srv.requests) <= 4
    recs, _ = read_predictions(out / PREDICTIONS)
    # the requests cut short in flight are not recorded: they stay pending
    assert 2 <= len(recs) <= 3 and {r["status"] for r in recs.values()} == {"failed"}


def test_breaker_zero_never_stops_and_the_default_is_eight(tmp_path, capsys):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(10)})
    out = tmp_path / "run"
    with ScriptedServer(lambda b, n: Reply(status=503, body={"error": "down"})) as srv:
        spec = f"openai:m@{srv.url}?retries=0&breaker=0"
        assert main(_argv(spec, data, one_variant_prompts(tmp_path), out)) == 2
        assert "circuit breaker" not in capsys.readouterr().err
        assert len(srv.requests) == 10
        recs, _ = read_predictions(out / PREDICTIONS)
        assert len(recs) == 10
        assert load_model(f"openai:m@{srv.url}").breaker == 8


def test_answers_without_text_trip_the_breaker_with_their_reason(tmp_path, capsys):
    """A reasoning model out of tokens: the server answers every request, with no text
    (``content: null``, ``finish_reason: length``). The breaker names that reason and what to
    change, not a server to wait for; run.json keeps the same message."""
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(20)})
    out = tmp_path / "run"
    empty = chat_completion(None, finish_reason="length")
    with ScriptedServer(lambda b, n: Reply(body=empty)) as srv:
        rc = main(
            _argv(f"openai:o4-mini@{srv.url}?retries=0", data, one_variant_prompts(tmp_path), out)
        )
        sent = len(srv.requests)
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 5 and sent == 8  # the default breaker: 8 in a row
    assert "8 consecutive answers without text (finish_reason=length)" in err
    assert "raise max_tokens / max_completion_tokens" in err
    assert "when the server answers" not in err
    stopped = json.loads((out / "run.json").read_text())["invocations"][-1]["breaker"]
    assert "answers without text (finish_reason=length)" in stopped and srv.url in stopped


def test_a_dead_server_keeps_the_breaker_s_message_of_a_server_to_wait_for(tmp_path, capsys):
    """Connection failures (nothing listens on the port), and answers without text broken by
    one connection failure (no shared reason), keep the message about the server."""
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(10)})
    prompts = one_variant_prompts(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    spec = f"openai:m@http://127.0.0.1:{port}/v1?retries=0&breaker=3"
    assert main(_argv(spec, data, prompts, tmp_path / "dead")) == 5
    err = " ".join(capsys.readouterr().err.split())
    assert "3 consecutive requests to" in err and "connection error" in err
    assert "when the server answers" in err and "without text" not in err

    def script(body, n):
        if n == 2:
            return Reply(status=503, body={"error": "overloaded"})
        return Reply(body=chat_completion(None, finish_reason="length"))

    with ScriptedServer(script) as srv:
        spec = f"openai:m@{srv.url}?retries=0&breaker=3"
        assert main(_argv(spec, data, prompts, tmp_path / "mixed")) == 5
    err = " ".join(capsys.readouterr().err.split())
    assert "3 consecutive requests to" in err and "HTTP 503" in err
    assert "when the server answers" in err and "answers without text (" not in err


def _run_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["run"]


def test_run_help_states_the_deadline_the_retry_after_cap_and_every_default():
    run = _run_parser()
    text = " ".join(run.format_help().split())
    # time-out x attempts, the Retry-After cap and the breaker, with the defaults' values
    assert "60 s x 5 = 300 s" in text
    assert "Retry-After is honoured up to 30 s" in text
    assert "after 8 consecutive failed requests" in text and "?breaker=N" in text
    for action in run._actions:
        if action.dest == "help":
            continue
        assert action.help and "default" in action.help.lower(), action.option_strings
    helps = {a.dest: a.help for a in run._actions}
    assert "rows" in helps["limit"] and "requests in flight" in helps["concurrency"]
    assert "1 s silent clip" in helps["sca_text_audio"]
