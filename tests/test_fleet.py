"""A fleet of servers (``openai:MODEL@URL1,URL2,...``), shards (``--shard K/N``) and
``koala-bench merge``, against scripted OpenAI-compatible servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from openai_server import Reply, ScriptedServer, completion
from test_runner import (
    asr_rows,
    canon,
    det_label,
    make_export,
    one_variant_prompts,
    prompt_text,
    sqa_rows,
    strip_times,
    tone,
)

from koala.cli import main as cli_main
from koala.merge import MergeError, merge_runs
from koala.models import Request, load_model
from koala.plan import parse_shard
from koala.predictions import load_plan
from koala.prompts import load_prompts
from koala.runner import PREDICTIONS, main, read_predictions, summary
from koala.runner import run_model as _run_model
from koala.score import score_run

CONFIGS = ["sqa_click", "asr_zeroth"]
FAST = "timeout=5&retries=0&backoff=0.01"


def answer(body: dict, n: int) -> Reply:
    """An answer decided by the request body alone (the same on every server)."""
    text = prompt_text(body)
    if "(A)" not in text:  # the ASR prompt
        return Reply(body=completion("오늘 날씨가 " + ("좋습니다" if len(text) % 2 else "좋다")))
    lab = det_label(text)
    lp = {x: (-0.1 if x == lab else -2.5 - "ABCD".index(x)) for x in "ABCD"}
    return Reply(body=completion(f"({lab})", [lp]))


def failing_after(k: int, status: int = 500):
    """``answer`` for the first ``k`` requests, then ``status`` for every request."""

    def script(body: dict, n: int) -> Reply:
        return answer(body, n) if n < k else Reply(status=status, body={"error": "down"})

    return script


def host_port(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_export(tmp_path / "data", {"sqa_click": sqa_rows(12), "asr_zeroth": asr_rows(6)})


def go(spec: str, data: Path, out: Path, prompts: Path, *extra: str) -> int:
    argv = ["--model", spec, "--configs", *CONFIGS, "--data", str(data), "--prompts", str(prompts)]
    return main([*argv, "--out", str(out), "--no-progress", "--concurrency", "3", *extra])


def scores(out: Path) -> dict:
    return strip_times(score_run(out, write=False, st_metrics=[], confidence=None))


def records(out: Path) -> dict:
    recs, _ = read_predictions(out / PREDICTIONS)
    return {k: canon(r) for k, r in recs.items()}


# ------------------------------------------------------------------------------- the fleet


def test_fleet_spec_parses_every_url_and_refuses_a_bad_one():
    m = load_model("openai:m@http://127.0.0.1:1/v1,http://127.0.0.1:2/v1/?per_server=3&cooloff=5")
    assert m.base_urls == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    assert (m.per_server, m.cooloff, m.name) == (3, 5.0, "openai:m")
    assert m.server == "http://127.0.0.1:1/v1,http://127.0.0.1:2/v1"  # what the breaker names
    for bad, match in [
        ("openai:m@http://127.0.0.1:1/v1,http://u:sk-x@127.0.0.1:2/v1", "credentials"),
        ("openai:m@http://127.0.0.1:1/v1,127.0.0.1:2/v1", "not an http"),
        ("openai:m@http://127.0.0.1:1/v1,,http://127.0.0.1:2/v1", "empty URL"),
        ("openai:m@http://127.0.0.1:1/v1,http://127.0.0.1:1/v1", "twice"),
        ("openai:m@http://127.0.0.1:1/v1?per_server=0", "per_server"),
        ("openai:m@http://127.0.0.1:1/v1?cooloff=-1", "cooloff"),
    ]:
        with pytest.raises(ValueError, match=match) as exc:
            load_model(bad)
        assert "sk-x" not in str(exc.value)


def test_a_failing_server_is_taken_out_nothing_lost_nothing_duplicated(tmp_path, data):
    prompts = one_variant_prompts(tmp_path)
    k = 2  # the third server answers its first 2 requests, then only HTTP 500
    with (
        ScriptedServer(answer) as a,
        ScriptedServer(answer) as b,
        ScriptedServer(failing_after(k)) as c,
    ):
        spec = f"openai:m@{a.url},{b.url},{c.url}?{FAST}&cooloff=0.2"
        assert go(spec, data, tmp_path / "fleet", prompts) == 0
        sent = {host_port(s.url): s.requests for s in (a, b, c)}
    with ScriptedServer(answer) as one:
        assert go(f"openai:m@{one.url}?{FAST}", data, tmp_path / "single", prompts) == 0
        n = len(one.requests)
    assert n == 12 + 6

    lines = (tmp_path / "fleet" / PREDICTIONS).read_text(encoding="utf-8").splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == n and all(r["status"] == "ok" for r in recs)  # none failed
    keys = [(r["config"], r["variant"], r["condition"], r["id"]) for r in recs]
    assert len(set(keys)) == n  # each request recorded exactly once
    # every request answered exactly once over the fleet: each 200 of a/b, c's first k
    answered = Counter(r["meta"]["server"] for r in recs)
    ca = host_port(c.url)
    assert answered[ca] == k and len(sent[ca]) > k  # c failed later requests, retried later
    assert answered == {h: len(reqs) for h, reqs in sent.items()} | {ca: k}
    assert sum(len(reqs) for reqs in sent.values()) == n + len(sent[ca]) - k
    # the same answers and scores as one server, and the same fingerprints (URLs are transport)
    assert records(tmp_path / "fleet") == records(tmp_path / "single")
    assert scores(tmp_path / "fleet") == scores(tmp_path / "single")
    fleet_plan, single_plan = load_plan(tmp_path / "fleet"), load_plan(tmp_path / "single")
    assert {c: p.requests for c, p in fleet_plan.items()} == {
        c: p.requests for c, p in single_plan.items()
    }
    # per-server counts in run.json and in the summary
    inv = json.loads((tmp_path / "fleet" / "run.json").read_text())["invocations"][-1]
    counts = inv["servers"]
    assert counts[ca] == {
        "answered": k,
        "failed": len(sent[ca]) - k,
        "taken_out": len(sent[ca]) - k,
    }
    for h in (host_port(a.url), host_port(b.url)):
        assert counts[h] == {"answered": len(sent[h]), "failed": 0, "taken_out": 0}


@pytest.mark.parametrize(
    "bad",
    [
        Reply(status=404, body={"error": {"message": "The model `m` does not exist."}}),
        Reply(body=b"<html><body>502 Bad Gateway</body></html>"),  # 200, not JSON
        Reply(body={"detail": "not a chat completion"}),  # 200, JSON without choices
        Reply(status=307, headers={"Location": "http://10.0.0.9/v1/chat/completions"}),
    ],
    ids=["404", "200-html", "200-json-without-choices", "307"],
)
def test_a_replica_answering_404_garbage_or_a_redirect_is_taken_out(tmp_path, data, bad):
    prompts = one_variant_prompts(tmp_path)
    with ScriptedServer(answer) as good, ScriptedServer(lambda b, n: bad) as wrong:
        spec = f"openai:m@{wrong.url},{good.url}?{FAST}&cooloff=30"
        assert go(spec, data, tmp_path / "run", prompts) == 0
        assert len(good.requests) == 18  # every request, once
        n_wrong = len(wrong.requests)
    recs = [json.loads(x) for x in (tmp_path / "run" / PREDICTIONS).read_text().splitlines()]
    assert len(recs) == 18 and {r["status"] for r in recs} == {"ok"}
    assert {r["meta"]["server"] for r in recs} == {host_port(good.url)}
    counts = json.loads((tmp_path / "run" / "run.json").read_text())["invocations"][-1]["servers"]
    # taken out at its first failures (one per request in flight), then left alone
    assert counts[host_port(wrong.url)]["answered"] == 0
    assert 1 <= counts[host_port(wrong.url)]["taken_out"] <= 3 and n_wrong <= 3 * 2


@pytest.mark.parametrize(
    "spec",
    [
        "openai:m@http://127.0.0.1:1/v1,user:pw-777@127.0.0.1:2/v1",  # an entry without scheme
        "openai:m@http://127.0.0.1:1/v1,http://user:pw-777@127.0.0.1:2/v1",
        "openai:m@user:pw-777@127.0.0.1:8000/v1",  # no scheme at all
        "openai:m@user:pw-777@myhost/v1",  # no scheme, no port: was taken for a model name
    ],
)
def test_credentials_anywhere_in_a_spec_are_refused_and_never_repeated(spec):
    with pytest.raises(ValueError, match=r"credentials|scheme") as exc:
        load_model(spec)
    assert "pw-777" not in str(exc.value)


def test_http_and_HTTP_name_one_server():
    with pytest.raises(ValueError, match="twice"):
        load_model("openai:m@HTTP://127.0.0.1:1/v1,http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="twice"):
        load_model("openai:m@http://LOCALHOST:1/v1,http://localhost:1/v1/")
    m = load_model("openai:m@HTTPS://Example.COM:443/v1,http://example.com:80/Other")
    assert m.base_urls == ["https://example.com/v1", "http://example.com/Other"]


def test_a_dead_server_in_the_list_costs_nothing_and_is_counted(tmp_path, data):
    prompts = one_variant_prompts(tmp_path)
    dead = closed_port_url()
    with ScriptedServer(answer) as live:
        spec = f"openai:m@{dead},{live.url}?{FAST}&cooloff=30"
        stats = _run_model(
            load_model(spec),
            CONFIGS,
            tmp_path / "run",
            data=str(data),
            prompts=load_prompts(prompts),
            concurrency=2,
            spec=spec,
            progress=False,
        )
        assert len(live.requests) == 18  # every request, once
    assert sum(st["ok"] for st in stats.status.values()) == 18
    dead_hp, live_hp = host_port(dead), host_port(live.url)
    # the dead server failed the requests it got before it was taken out (at most one per
    # request in flight), and no other
    assert 1 <= stats.servers[dead_hp]["failed"] <= 2
    assert stats.servers[live_hp] == {"answered": 18, "failed": 0, "taken_out": 0}
    text = summary(stats)
    assert f"{live_hp}: 18 answered, 0 failed" in text and f"{dead_hp}: 0 answered" in text


def test_every_server_down_fails_the_request_as_one_server_does():
    dead1, dead2 = closed_port_url(), closed_port_url()
    m = load_model(f"openai:m@{dead1},{dead2}?{FAST}")
    with pytest.raises(Exception, match="connection error"):
        m.answer(Request(None, "x"))


def test_per_server_concurrency_and_least_busy_routing():
    lock = threading.Lock()
    peak: dict[str, int] = Counter()
    now: dict[str, int] = Counter()

    def script_for(name):
        def script(body, n):
            with lock:
                now[name] += 1
                peak[name] = max(peak[name], now[name])
            time.sleep(0.05)
            with lock:
                now[name] -= 1
            return Reply(body=completion("ok"))

        return script

    with ScriptedServer(script_for("a")) as a, ScriptedServer(script_for("b")) as b:

        async def burst(model, conc):
            await model.aopen(conc)
            try:
                calls = (model.aanswer(Request(None, "x")) for _ in range(12))
                return await asyncio.gather(*calls)
            finally:
                await model.aclose()

        m = load_model(f"openai:m@{a.url},{b.url}?{FAST}")
        answers = asyncio.run(burst(m, 4))  # 4 in flight over 2 servers: 2 each
        assert (peak["a"], peak["b"]) == (2, 2)
        assert Counter(x.meta["server"] for x in answers) == {
            host_port(a.url): 6,
            host_port(b.url): 6,
        }
        peak.clear()
        m = load_model(f"openai:m@{a.url},{b.url}?{FAST}&per_server=1")
        asyncio.run(burst(m, 8))  # ?per_server=1 caps each server whatever the concurrency
        assert (peak["a"], peak["b"]) == (1, 1)


# ------------------------------------------------------------------------------- shards


def expected_shard(config, variant, condition, rid, n):
    """The rule written out: sha256 of the canonical JSON of the key, first 8 bytes
    big-endian, modulo N, plus one."""
    text = json.dumps(
        [config, variant, condition, rid], ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % n + 1


def test_parse_shard():
    assert parse_shard("2/3") == (2, 3) and parse_shard("1/1") == (1, 1)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)


def test_shards_merged_equal_an_unsharded_run(tmp_path, data, capsys):
    prompts = one_variant_prompts(tmp_path)
    with ScriptedServer(answer) as srv:
        spec = f"openai:m@{srv.url}?{FAST}"
        assert go(spec, data, tmp_path / "full", prompts) == 0
        for k in (1, 2, 3):
            assert go(spec, data, tmp_path / f"s{k}", prompts, "--shard", f"{k}/3") == 0
        assert len(srv.requests) == 2 * 18  # the shards together sent each request once
        assert go(spec, data, tmp_path / "bad", prompts, "--shard", "4/3") == 1
    full = load_plan(tmp_path / "full")
    shard_plans = [load_plan(tmp_path / f"s{k}") for k in (1, 2, 3)]
    for config in CONFIGS:
        parts = [p[config].requests for p in shard_plans]
        assert sum(len(p) for p in parts) == len(full[config].requests)  # disjoint
        assert {k: v for p in parts for k, v in p.items()} == full[config].requests  # union
        for k, part in enumerate(parts, 1):
            assert shard_plans[k - 1][config].settings["shard"] == f"{k}/3"
            assert shard_plans[k - 1][config].planned == len(part)
            assert all(expected_shard(*key[1:], 3) == k for key in part)
    assert all(len(p["sqa_click"].requests) for p in shard_plans)  # 12 rows: none empty
    assert "summary (shard 2/3)" in capsys.readouterr().err

    assert (
        cli_main(
            [
                "merge",
                *(str(tmp_path / f"s{k}") for k in (1, 2, 3)),
                "--out",
                str(tmp_path / "merged"),
            ]
        )
        == 0
    )
    merged = tmp_path / "merged"
    assert records(merged) == records(tmp_path / "full")
    assert scores(merged) == scores(tmp_path / "full")
    mp = load_plan(merged)
    assert {c: (p.requests, p.planned) for c, p in mp.items()} == {
        c: (p.requests, p.planned) for c, p in full.items()
    }
    assert "shard" not in mp["sqa_click"].settings
    manifest = json.loads((merged / "run.json").read_text())
    assert manifest["merged"]["shards"] == ["1/3", "2/3", "3/3"] and manifest["merged"]["whole"]
    # a merged run resumes as a run: nothing left to ask
    with ScriptedServer(answer) as srv:
        assert go(f"openai:m@{srv.url}?{FAST}", data, merged, prompts) == 0
        assert srv.requests == []
    # two shards of three make a partial run, said so in the plan
    res = merge_runs([tmp_path / "s1", tmp_path / "s3"], tmp_path / "partial")
    assert not res["whole"] and res["shards"] == ["1/3", "3/3"]
    assert load_plan(tmp_path / "partial")["asr_zeroth"].settings["shard"] == "1/3+3/3"
    # a run and its shard: the same records once
    res = merge_runs([tmp_path / "full", tmp_path / "s2"], tmp_path / "again")
    assert res["whole"] and res["duplicates"] == sum(
        len(p.requests) for p in shard_plans[1].values()
    )
    assert records(tmp_path / "again") == records(tmp_path / "full")


# ------------------------------------------------------------------------------- refusals


def test_merge_refuses_other_models_settings_and_fingerprints(tmp_path, data, capsys):
    prompts = one_variant_prompts(tmp_path)
    redone = tmp_path / "redone"
    rows = {"sqa_click": sqa_rows(12), "asr_zeroth": asr_rows(6)}
    make_export(tmp_path / "copy", rows)  # the same rows at another path
    with ScriptedServer(answer) as srv:
        spec = f"openai:m@{srv.url}?{FAST}"
        assert go(spec, data, tmp_path / "s1", prompts, "--shard", "1/2") == 0
        assert go(f"openai:m2@{srv.url}?{FAST}", data, tmp_path / "m2", prompts) == 0
        assert go(spec, data, tmp_path / "pub", prompts, "--protocol", "published") == 0
        assert go(spec, tmp_path / "copy", tmp_path / "cp", prompts, "--shard", "2/2") == 0
        make_export(redone, rows)
        assert go(spec, redone, tmp_path / "v1", prompts) == 0
        for i, row in enumerate(rows["sqa_click"]):
            row["audio"] = tone(50 + i)  # the same ids, other audio: other fingerprints
        make_export(redone, rows)
        assert go(spec, redone, tmp_path / "v2", prompts) == 0

    def refused(runs, match):
        out = tmp_path / "out"
        with pytest.raises(MergeError, match=match) as exc:
            merge_runs([tmp_path / r for r in runs], out)
        assert not out.exists()  # nothing written
        return str(exc.value)

    msg = refused(["s1", "m2"], "different models")
    assert "'openai:m'" in msg and "'openai:m2'" in msg and str(tmp_path / "m2") in msg
    msg = refused(["s1", "pub"], "setting 'protocol' differs")
    assert str(tmp_path / "s1") in msg and str(tmp_path / "pub") in msg and "published" in msg
    msg = refused(["s1", "cp"], "setting 'data' differs")
    assert str(tmp_path / "copy") in msg
    msg = refused(["v1", "v2"], "different fingerprints")
    assert str(tmp_path / "v1") in msg and str(tmp_path / "v2") in msg
    assert "'sqa_click'" in msg and "'asr_zeroth'" not in msg  # the ASR rows did not change
    argv = ["merge", str(tmp_path / "s1"), str(tmp_path / "m2"), "--out", str(tmp_path / "x")]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "different models" in err and not (tmp_path / "x").exists()
    # merging into a run folder, or a folder twice, is refused too
    with pytest.raises(MergeError, match="not an empty folder"):
        merge_runs([tmp_path / "s1"], tmp_path / "pub")
    with pytest.raises(MergeError, match="twice"):
        merge_runs([tmp_path / "s1", tmp_path / "s1"], tmp_path / "y")
