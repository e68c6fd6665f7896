"""A judge that hangs, is dead, or is named with credentials: ``koala-bench score`` ends in
seconds with a non-zero exit naming the judge, and no password is written anywhere (issue 23).

The hanging judge is a TCP server on 127.0.0.1 that reads each request and never answers: the
outcome asserted is how many requests it saw and the exit status, not the wall time."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from openai_server import Reply, ScriptedServer, completion
from test_score_honest import make_run, record

from koala import report as rep
from koala import score
from koala.openai_client import check_base_url
from koala.scoring.judge import JudgeBreaker, judge_scores


class HangingServer:
    """Accepts connections, reads each request's head, counts it, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.seen: list[str] = []  # "POST /v1/chat/completions", "GET /v1/models"
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            with self._lock:
                self.seen.append(" ".join(data.split(b"\r\n", 1)[0].decode().split()[:2]))
            while conn.recv(65536):  # the body, then nothing until the client gives up
                pass
        except OSError:
            return

    def chat_requests(self) -> int:
        with self._lock:
            return sum(s.startswith("POST") and s.endswith("/chat/completions") for s in self.seen)

    def __enter__(self) -> HangingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        with self._lock:
            for c in self._conns:
                c.close()


def sif_run(path: Path, variants=("k1", "k2"), n: int = 6) -> Path:
    recs = []
    for v in variants:
        for k in range(n):
            r = record("sif_kudge", f"i{k}", f"답 {v} {k}", task="sif", variant=v)
            r["ref"] = {"instruction": f"지시 {k}"}
            recs.append(r)
    return make_run(path, recs)


def test_a_hanging_judge_is_given_up_after_8_requests_and_the_exit_says_so(tmp_path, capsys):
    """12 answers in two variants of 6 against a judge that never answers. Before: no time-out
    option (60 s x 5 attempts per request, variants one after the other: hours). Now, with
    --judge-timeout 2 --judge-retries 1: the 6 requests of variant k1 go out together (the
    default concurrency is 8) and time out twice each; variant k2 then sends one request at a
    time (a failure was seen), and after the 8th consecutive failure (the default breaker)
    nothing more is sent. score exits 5 naming the judge."""
    run = sif_run(tmp_path / "run")
    with HangingServer() as srv:
        rc = score.main(
            [str(run), "--judge-url", srv.url, "--judge-model", "judge-m",
             "--judge-timeout", "2", "--judge-retries", "1", "--st-metrics", "bleu"]
        )  # fmt: skip
        chat = srv.chat_requests()
    err = capsys.readouterr().err
    assert rc == score.EXIT_JUDGE == 5
    assert chat == 8 * 2  # 8 requests of 2 attempts each; the other 4 answers never sent
    host = srv.url.split("//")[1].split("/")[0]
    assert "judge-m" in err and host in err and "circuit breaker" in err
    assert "timed out after 2" in err and "12 SIF answer" in err
    c = json.loads((run / "scores.json").read_text())["models"]["m"]["configs"]["sif_kudge"]
    for v in ("k1", "k2"):
        g = c["variants"][v]["gen"]
        assert g["num_judge_failed"] == 6 and g["score"] is None
    assert c["variants"]["k1"]["gen"]["requests_sent"] == 6
    assert c["variants"]["k2"]["gen"]["requests_sent"] == 2
    assert "circuit breaker" in c["variants"]["k2"]["gen"]["judge"]["breaker"]


def test_the_breaker_spans_calls_and_a_success_resets_it():
    breaker = JudgeBreaker(3)
    for _ in range(2):
        breaker.record("HTTP 500")
    breaker.record(None)
    assert breaker.consecutive == 0 and not breaker.tripped
    for _ in range(3):
        breaker.record("HTTP 500")
    assert breaker.tripped and "3 consecutive" in breaker.message()
    # once tripped, a later call sends nothing: every answer is judge_failed, not sent
    with ScriptedServer(lambda b, n: Reply(body=completion("[[8]]"))) as s:
        out = judge_scores(["지시"], ["답"], base_url=s.url, model="m", progress=False,
                           breaker=breaker)  # fmt: skip
        assert len(s.requests) == 0 and len(s.model_requests) == 0
    assert out["num_judge_failed"] == 1 and "circuit breaker" in out["judge"]["breaker"]
    assert JudgeBreaker(0).tripped is False
    with pytest.raises(ValueError, match="breaker"):
        JudgeBreaker(-1)


def test_a_dead_judge_url_is_a_non_zero_exit_naming_it(tmp_path, capsys):
    """Nothing listens on port 9: before, score exited 0 with SIF "not scored"."""
    run = sif_run(tmp_path / "run", variants=("k1",), n=2)
    rc = score.main([str(run), "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "jm",
                     "--judge-retries", "0", "--st-metrics", "bleu"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 5 and "jm" in err and "127.0.0.1:9" in err and "connection" in err
    # report takes the same options and says the same
    rc = rep.main([str(run), "--out", str(tmp_path / "r"), "--judge-url", "http://127.0.0.1:9/v1",
                   "--judge-model", "jm", "--judge-retries", "0", "--judge-timeout", "2",
                   "--st-metrics", "bleu"])  # fmt: skip
    assert rc == 5 and "127.0.0.1:9" in capsys.readouterr().err
    # a judge URL that is no http(s) URL is a usage error, before anything is scored
    (run / "scores.json").unlink()
    assert score.main([str(run), "--judge-url", "localhost:8001/v1", "--st-metrics", "bleu"]) == 1
    assert "not an http(s) URL" in capsys.readouterr().err and not (run / "scores.json").exists()


def test_a_judge_that_answers_exits_zero(tmp_path, capsys):
    run = sif_run(tmp_path / "run", variants=("k1",), n=2)
    with ScriptedServer(lambda b, n: Reply(body=completion("[[7]]"))) as s:
        rc = score.main([str(run), "--judge-url", s.url, "--judge-timeout", "5",
                         "--st-metrics", "bleu"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    c = json.loads((run / "scores.json").read_text())["models"]["m"]["configs"]["sif_kudge"]
    assert c["variants"]["k1"]["gen"]["score"] == 70.0


@pytest.mark.parametrize(
    "url",
    [
        "user:s3cret@127.0.0.1:8001/v1",  # no scheme: used to land in scores.json 12 times
        "http://user:s3cret@127.0.0.1:8001/v1",
        "https://:s3cret@judge.example/v1",
        "s3cret@127.0.0.1:8001",
    ],
)
def test_credentials_in_a_judge_url_are_refused_and_never_written(tmp_path, capsys, url):
    run = sif_run(tmp_path / "run", variants=("k1",), n=2)
    rc = score.main([str(run), "--judge-url", url, "--st-metrics", "bleu"])
    out = capsys.readouterr()
    assert rc == 1 and "credentials" in out.err
    assert "s3cret" not in out.err + out.out
    assert not (run / "scores.json").exists()
    # the library refuses them too, and neither its message nor scores.json repeats them
    with pytest.raises(ValueError) as e:
        judge_scores(["지시"], ["답"], base_url=url, model="m", progress=False)
    assert "credentials" in str(e.value) and "s3cret" not in str(e.value)
    got = score.score_run(run, judge={"base_url": url, "model": "m", "progress": False})
    assert "s3cret" not in json.dumps(got) + (run / "scores.json").read_text()


@pytest.mark.parametrize(
    "url",
    ["http://user:s3cret@127.0.0.1:8001/v1", "user:s3cret@127.0.0.1:8001/v1", "s3cret@h"],
)
def test_a_judge_url_is_held_to_the_one_rule_of_every_url(tmp_path, capsys, url):
    """The judge refuses a URL with credentials by the rule and in the words every base URL
    gets (:func:`koala.openai_client.check_base_url`: the masked URL, where the key goes),
    on the command line and in the library alike."""
    with pytest.raises(ValueError) as rule:
        check_base_url(url, "--judge-url")
    said = str(rule.value)
    assert "***@" in said and "--judge-key-env" in said and "s3cret" not in said
    run = sif_run(tmp_path / "run", variants=("k1",), n=2)
    assert score.main([str(run), "--judge-url", url, "--st-metrics", "bleu"]) == 1
    assert said in capsys.readouterr().err
    with pytest.raises(ValueError) as lib:
        judge_scores(["지시"], ["답"], base_url=url, model="m", progress=False)
    with pytest.raises(ValueError) as rule:
        check_base_url(url, "judge URL")
    assert str(lib.value) == str(rule.value)
