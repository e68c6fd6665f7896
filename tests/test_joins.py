"""Joins never call a partial run complete (issue 23): whole-ness per config in merge, score
and report; a shard run into another plan's folder; imports that never replace what they did
not write; duplicate row ids; a fingerprint of what can change the answer, and only that."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from openai_server import Reply, ScriptedServer, completion
from test_runner import (
    ROOT,
    Recorder,
    asr_rows,
    canon,
    det_label,
    make_export,
    one_variant_prompts,
    prompt_text,
    sca_rows,
    sqa_rows,
    tone,
    wav,
)

from koala.cli import main as cli_main
from koala.integrations.run_writer import write_run
from koala.merge import MergeError, merge_runs
from koala.predictions import PREDICTIONS, load_plan, read_predictions
from koala.prompts import load_prompts
from koala.runner import main, run_model
from koala.score import score_run

BOTH = ["sqa_click", "asr_zeroth"]


def labeller() -> Recorder:
    """A model whose answer is decided by the prompt alone (the same in every run)."""
    return Recorder(lambda audio, prompt: f"({det_label(prompt)})")


def go(out: Path, data: Path, configs=BOTH, model=None, **kw) -> Recorder:
    model = model or labeller()
    run_model(model, configs, out, data=str(data), progress=False, **kw)
    return model


def configs_of(out: Path) -> dict:
    res = score_run(out, write=False, st_metrics=[], confidence=None)
    (model,) = res["models"].values()
    return model["configs"]


def records(out: Path) -> dict:
    recs, _ = read_predictions(out / PREDICTIONS)
    return {k: canon(r) for k, r in recs.items()}


def requests(out: Path) -> dict:
    return {c: p.requests for c, p in load_plan(out).items()}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_export(tmp_path / "data", {"sqa_click": sqa_rows(12), "asr_zeroth": asr_rows(6)})


# ------------------------------------------------------------------ merge: whole per config


def test_merge_decides_wholeness_per_config_not_over_all_runs(tmp_path, data):
    """Shard 3/3 never planned sqa_click (killed by a time limit, a shorter --configs): the
    merge of 1/3, 2/3 and 3/3 is whole for asr_zeroth only."""
    for k in (1, 2):
        go(tmp_path / f"s{k}", data, shard=(k, 3))
    go(tmp_path / "s3", data, ["asr_zeroth"], shard=(3, 3))
    go(tmp_path / "full", data)
    res = merge_runs([tmp_path / f"s{k}" for k in (1, 2, 3)], tmp_path / "m")
    assert not res["whole"]
    assert res["partial"] == {"sqa_click": ["3/3"]}
    plans = load_plan(tmp_path / "m")
    assert "shard" not in plans["asr_zeroth"].settings
    assert plans["sqa_click"].settings["shard"] == "1/3+2/3"

    got = configs_of(tmp_path / "m")
    full = configs_of(tmp_path / "full")
    assert got["asr_zeroth"]["status"] == "complete"
    assert got["asr_zeroth"]["coverage"] == full["asr_zeroth"]["coverage"]
    sqa = got["sqa_click"]
    assert sqa["status"] == "partial"
    k = len(load_prompts().variants("sqa_click"))
    cov = sqa["coverage"]
    # planned: the config's full plan (12 rows x k variants), not the union of two shards
    assert cov["planned"] == full["sqa_click"]["coverage"]["planned"] == 12 * k
    recorded = len(plans["sqa_click"].requests)
    assert 0 < recorded < 12 * k and cov["records"] == recorded
    assert cov["missing"] == 12 * k - recorded and not cov["complete"]
    assert cov["shards"] == {"of": 3, "present": ["1/3", "2/3"], "missing": ["3/3"]}
    # no variant is whole, so whichever is shown says it is partial
    assert sqa["best"] and all(b.get("partial") for b in sqa["best"].values())


def test_merge_cli_names_the_partial_config_and_missing_shards(tmp_path, data, capsys):
    go(tmp_path / "s1", data, shard=(1, 3))
    go(tmp_path / "s2", data, ["asr_zeroth"], shard=(2, 3))
    argv = ["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")]
    assert cli_main(argv) == 0
    err = capsys.readouterr().err
    assert "sqa_click: PARTIAL, shard(s) 2/3, 3/3 missing" in err
    assert "asr_zeroth: PARTIAL, shard(s) 3/3 missing" in err


def test_two_of_three_shards_or_one_shard_alone_score_partial(tmp_path, data, capsys):
    for k in (1, 2, 3):
        go(tmp_path / f"s{k}", data, shard=(k, 3))
    go(tmp_path / "full", data)
    full = configs_of(tmp_path / "full")
    merge_runs([tmp_path / "s1", tmp_path / "s3"], tmp_path / "m13")
    for run, missing in (("m13", ["2/3"]), ("s2", ["1/3", "3/3"])):
        got = configs_of(tmp_path / run)
        for config in BOTH:
            c = got[config]
            assert c["status"] == "partial", (run, config)
            assert c["coverage"]["shards"]["missing"] == missing
            assert c["coverage"]["planned"] == full[config]["coverage"]["planned"]
            assert c["coverage"]["records"] < c["coverage"]["planned"]
    # the three shards together are whole again, and score as the unsharded run
    merge_runs([tmp_path / f"s{k}" for k in (1, 2, 3)], tmp_path / "all")
    assert configs_of(tmp_path / "all") == full
    # ... as the partial merge with the shard it lacks
    res = merge_runs([tmp_path / "m13", tmp_path / "s2"], tmp_path / "all2")
    assert res["whole"] and res["shards"] == ["1/3", "2/3", "3/3"]
    assert configs_of(tmp_path / "all2") == full
    # the score command says it
    assert cli_main(["score", str(tmp_path / "s2"), "--confidence", "0"]) == 0
    out = capsys.readouterr().out
    assert "PARTIAL" in out and "shard(s) 1/3, 3/3 missing" in out
    # and so does the report, in each cell of the shard's configs
    rep = tmp_path / "rep"
    argv = ["report", str(tmp_path / "s2"), "--out", str(rep), "--confidence", "0", "--rescore"]
    assert cli_main(argv) == 0
    table = (rep / "results.md").read_text(encoding="utf-8")
    sqa = full["sqa_click"]["coverage"]["planned"]
    n = configs_of(tmp_path / "s2")["sqa_click"]["coverage"]["records"]
    assert f"partial: {n}/{sqa} requests; shard(s) 1/3, 3/3 missing" in table


# ------------------------------------------------------------- run --shard into another plan


def test_a_shard_run_into_a_whole_runs_folder_is_refused_and_shrinks_nothing(tmp_path, data):
    out = tmp_path / "run"
    go(out, data)
    before = (configs_of(out), requests(out), (out / "run.json").read_bytes())
    model = labeller()
    with pytest.raises(RuntimeError, match="plans every request of sqa_click") as exc:
        go(out, data, model=model, shard=(1, 3))
    msg = str(exc.value)
    assert "without --shard" in msg and "koala-bench merge" in msg
    assert model.calls == []
    assert (configs_of(out), requests(out), (out / "run.json").read_bytes()) == before


def test_a_shard_run_into_another_shards_folder_is_refused_the_same_shard_resumes(tmp_path, data):
    out = tmp_path / "run"
    go(out, data, shard=(1, 3))
    shard1 = requests(out)
    with pytest.raises(RuntimeError, match="holds shard 1/3 of sqa_click"):
        go(out, data, shard=(2, 3))
    with pytest.raises(RuntimeError, match="holds shard 1/3"):
        go(out, data, shard=(1, 2))
    assert requests(out) == shard1
    assert go(out, data, shard=(1, 3)).calls == []  # the same shard resumes
    # an unsharded run grows the plan to the whole config (nothing is dropped)
    m = go(out, data)
    assert len(m.calls) == sum(len(r) for r in requests(out).values()) - sum(
        len(r) for r in shard1.values()
    )
    assert all(c["status"] == "complete" for c in configs_of(out).values())


def test_run_shard_cli_into_a_whole_run_exits_1(tmp_path, data, capsys):
    prompts = one_variant_prompts(tmp_path)
    out = tmp_path / "run"
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"))) as srv:
        argv = ["--model", f"openai:m@{srv.url}", "--configs", *BOTH, "--data", str(data)]
        argv += ["--prompts", str(prompts), "--out", str(out), "--no-progress"]
        assert main(argv) == 0
        n = len(srv.requests)
        assert main([*argv, "--shard", "1/3"]) == 1
        assert len(srv.requests) == n
    assert "without --shard" in capsys.readouterr().err
    assert all(c["status"] == "complete" for c in configs_of(out).values())


# ----------------------------------------------------------------------------------- import


def mc(config: str, rid: str, prediction: str = "(A)", task: str = "sqa", **over) -> dict:
    rec = {
        "task": task,
        "config": config,
        "variant": "v1",
        "condition": "speech",
        "id": rid,
        "ref": {
            "question": "",
            "choices": ["가", "나"],
            "choice_labels": ["A", "B"],
            "answer": "A",
        },
        "status": "ok",
        "prediction": prediction,
        "shown_labels": ["A", "B"],
    }
    return rec | over


def test_import_never_replaces_a_real_runs_records(tmp_path, data):
    out = tmp_path / "run"
    go(out, data, ["sqa_click"])
    k = len(load_prompts().variants("sqa_click"))
    before = (out / PREDICTIONS).read_bytes(), requests(out), (out / "run.json").read_bytes()
    assert len(records(out)) == 12 * k
    with pytest.raises(ValueError, match="not an import") as exc:
        write_run(out, "recorder", [mc("sqa_click", "q00")], source={"harness": "lmms-eval"})
    assert str(out) in str(exc.value)
    after = (out / PREDICTIONS).read_bytes(), requests(out), (out / "run.json").read_bytes()
    assert after == before


def test_import_over_another_harnesss_import_is_refused_the_same_harness_replaces(tmp_path):
    out = tmp_path / "imp"
    write_run(out, "m", [mc("sqa_click", "1"), mc("sqa_kcsat", "9")], source={"harness": "a"})
    with pytest.raises(ValueError, match="an import of 'a'"):
        write_run(out, "m", [mc("sqa_click", "1", "(B)")], source={"harness": "b"})
    assert {k[4]: r["prediction"] for k, r in records(out).items()} == {"1": "(A)", "9": "(A)"}
    # the same harness again (another log): its configs are replaced, the others kept
    write_run(out, "m", [mc("sqa_click", "2", "(B)")], source={"harness": "a", "path": "y"})
    assert sorted((k[1], k[4]) for k in records(out)) == [("sqa_click", "2"), ("sqa_kcsat", "9")]


@pytest.mark.parametrize(
    "recs, match",
    [
        ([mc("../..", "1")], "config '../..'"),
        ([mc("sqa\x00click", "1")], "config 'sqa\\\\x00click'"),
        ([mc("sqa/click", "1")], "config 'sqa/click'"),
        ([mc("sqa_click", "1"), mc("sqa_click", "2", task="asr")], "record 1: task 'asr'"),
        ([mc("sqa_click", "1", task="asr")], "config sqa_click is a sqa config"),
        ([mc("sqa_nosuch", "1")], "unknown config 'sqa_nosuch'"),
    ],
)
def test_a_refused_import_writes_nothing(tmp_path, recs, match):
    out = tmp_path / "new"
    with pytest.raises(ValueError, match=match):
        write_run(out, "m", recs, source={"harness": "t"})
    assert not out.exists()
    # nor into an earlier import of the same harness
    old = tmp_path / "old"
    write_run(old, "m", [mc("sqa_click", "9")], source={"harness": "t"})
    files = {p: p.read_bytes() for p in old.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=match):
        write_run(old, "m", recs, source={"harness": "t"})
    assert {p: p.read_bytes() for p in old.rglob("*") if p.is_file()} == files


def test_import_cli_refuses_a_real_run(tmp_path, data, capsys):
    out = tmp_path / "run"
    go(out, data, ["sqa_click"])
    before = (out / PREDICTIONS).read_bytes()
    logs = tmp_path / "logs" / "m"
    logs.mkdir(parents=True)
    line = {"doc_id": 0, "koala": mc("sqa_click", "q00", variant="k1")}
    (logs / "20250101_samples_koala_sqa_click.jsonl").write_text(json.dumps(line) + "\n")
    argv = ["import", "lmms-eval", str(tmp_path / "logs"), "--out", str(out)]
    assert cli_main([*argv, "--model", "recorder"]) == 1
    assert "not an import" in capsys.readouterr().err
    assert (out / PREDICTIONS).read_bytes() == before


# ------------------------------------------------------------------------- duplicate row ids


def test_duplicate_row_ids_are_refused_with_the_id(tmp_path, capsys):
    rows = sqa_rows(3)
    rows[2]["id"] = "q01"
    data = make_export(tmp_path / "data", {"sqa_click": rows})
    out = tmp_path / "run"
    model = labeller()
    stats = run_model(model, ["sqa_click"], out, data=str(data), progress=False)
    err = stats.config_errors["sqa_click"]
    assert "'q01'" in err and "rows 1 and 2" in err and "test-00000-of-00001.parquet" in err
    assert model.calls == [] and "sqa_click" not in load_plan(out)
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"))) as srv:
        argv = ["--model", f"openai:m@{srv.url}", "--configs", "sqa_click", "--data", str(data)]
        assert main([*argv, "--out", str(tmp_path / "cli"), "--no-progress"]) == 2
        assert srv.requests == []
    assert "row id 'q01' appears twice" in capsys.readouterr().err


# ------------------------------------------------------------------------------- fingerprint


def test_protocol_published_reasks_only_what_it_shows_differently(tmp_path):
    """SQA shows its own labels under both protocols: nothing is asked again; SCA-QA shows
    (A)-(D) under published: every SCA-QA request is asked again."""
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(4), "sca_qa_kpop": sca_rows(4)})
    out = tmp_path / "run"
    configs = ["sqa_click", "sca_qa_kpop"]
    first = go(out, data, configs)
    koala = configs_of(out)
    m = go(out, data, configs, protocol="published")
    k_sca = len(load_prompts().variants("sca_qa_kpop"))
    assert len(m.calls) == (4 + 4 + 2) * k_sca  # every SCA-QA request, no SQA one
    assert all("(A) 하나\n(B) 둘" in p for _, p in m.calls)
    assert len(first.calls) == len(m.calls) + 4 * len(load_prompts().variants("sqa_click"))
    # the SQA records are those of the first run; scored the same
    assert configs_of(out)["sqa_click"] == koala["sqa_click"]
    assert go(out, data, configs, protocol="published").calls == []
    assert go(out, data, ["sqa_click"]).calls == []  # and back


def test_protocol_cli_on_the_same_requests_asks_nothing(tmp_path, data):
    prompts = one_variant_prompts(tmp_path)
    out = tmp_path / "run"
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"))) as srv:
        argv = ["--model", f"openai:m@{srv.url}", "--configs", *BOTH, "--data", str(data)]
        argv += ["--prompts", str(prompts), "--out", str(out), "--no-progress"]
        assert main(argv) == 0
        n = len(srv.requests)
        assert main([*argv, "--protocol", "published"]) == 0
        assert len(srv.requests) == n


class Ears(Recorder):
    max_audio_s: float | None = None


def test_max_audio_s_asks_nothing_again_and_the_flag_follows_the_latest_limit(tmp_path):
    rows = sqa_rows(4)
    for r, seconds in zip(rows, (0.25, 2.0, 1.0, 3.5), strict=True):
        r["audio"] = tone(int(seconds * 10), seconds)
    data = make_export(tmp_path / "data", {"sqa_click": rows})
    prompts = load_prompts(one_variant_prompts(tmp_path))
    out = tmp_path / "run"

    def run_with(limit):
        model = Ears()
        model.max_audio_s = limit
        spec = f"recorder?max_audio_s={limit:g}" if limit else "recorder"
        go(out, data, ["sqa_click"], model=model, prompts=prompts, spec=spec)
        return model, configs_of(out)["sqa_click"]

    m, c = run_with(1.0)
    assert len(m.calls) == 4 and c["counts"]["truncated"] == 2  # 2 s and 3.5 s
    m, c = run_with(3.0)
    assert m.calls == [] and c["counts"]["truncated"] == 1  # 3.5 s only
    m, c = run_with(None)
    assert m.calls == [] and c["counts"]["truncated"] == 0  # no known limit
    m, c = run_with(1.0)
    assert m.calls == [] and c["counts"]["truncated"] == 2


def test_a_gold_fix_asks_nothing_again_and_scores_with_the_new_gold(tmp_path):
    rows = sqa_rows(4)
    prompts = load_prompts(one_variant_prompts(tmp_path))
    out = tmp_path / "run"
    model = Recorder(lambda a, p: "(A)")  # right on q00 only (gold A B C D)
    go(
        out,
        make_export(tmp_path / "d1", {"sqa_click": rows}),
        ["sqa_click"],
        model,
        prompts=prompts,
    )
    acc = configs_of(out)["sqa_click"]["variants"]["only"]["gen"]["accuracy"]
    assert acc == pytest.approx(1 / 4)
    rows[1] = {**rows[1], "answer": "A"}  # a re-export fixes q01's gold
    d2 = make_export(tmp_path / "d2", {"sqa_click": rows})
    model = Recorder(lambda a, p: "(A)")
    go(out, d2, ["sqa_click"], model, prompts=prompts)
    assert model.calls == []
    c = configs_of(out)["sqa_click"]
    assert c["variants"]["only"]["gen"]["accuracy"] == pytest.approx(2 / 4)
    assert c["status"] == "complete" and not c["ignored"]
    recs = read_predictions(out / PREDICTIONS)[0]
    assert recs[("recorder", "sqa_click", "only", "speech", "q01")]["ref"]["answer"] == "A"
    # a record whose reference is not the plan's is not scored as current
    lines = (out / PREDICTIONS).read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1])
    last["ref"] = {**last["ref"], "answer": "D"}
    lines.append(json.dumps(last, ensure_ascii=False))
    (out / PREDICTIONS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    c = configs_of(out)["sqa_click"]
    assert c["ignored"] == {"stale: reference differs": 1} and c["status"] == "partial"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canon_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def legacy_fingerprint(rec: dict, prompt: str, options: dict, protocol: str) -> str:
    """The fingerprint before this change, written out: the protocol and a digest of the
    reference were part of it, and every option of the spec but transport."""
    parts = {
        "format": 2,
        "model": {
            "name": "recorder",
            "spec": {"kind": "recorder", "target": None, "url": None},
            "options": options,
        },
        "prompt": prompt,
        "condition": "speech",
        "text_audio": None,
        "labels": ["A", "B", "C", "D"],
        "protocol": protocol,
        "audio": sha(wav(tone(int(rec["id"][1:])))["bytes"]),
        "ref": sha(canon_json(rec["ref"]).encode()),
    }
    return sha(canon_json(parts).encode())


@pytest.mark.parametrize("protocol", ["koala", "published"])
def test_records_of_the_old_fingerprint_are_reused_not_asked_again(tmp_path, protocol):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(3)})
    prompts = load_prompts(one_variant_prompts(tmp_path))
    out = tmp_path / "run"
    spec = "recorder?max_audio_s=30"
    model = Ears()
    model.max_audio_s = 30.0
    go(out, data, ["sqa_click"], model=model, prompts=prompts, spec=spec)
    scored = configs_of(out)
    new = records(out)
    # the folder as the previous version wrote it: records and plan with the old fingerprint
    recs = [json.loads(x) for x in (out / PREDICTIONS).read_text("utf-8").splitlines()]
    old = {}
    for r in recs:
        prompt = f"고르세요.\n질문: 문항 {r['id']} 의 답은?\n(A) 사과\n(B) 배\n(C) 감\n(D) 귤\n답: "
        old[r["id"]] = r["fingerprint"] = legacy_fingerprint(
            r, prompt, {"max_audio_s": 30}, protocol
        )
    (out / PREDICTIONS).write_text("".join(json.dumps(r) + "\n" for r in recs), "utf-8")
    plan_file = out / "plan" / "sqa_click.json"
    plan = json.loads(plan_file.read_text("utf-8"))
    plan["requests"] = [[*e[:5], old[e[4]]] for e in plan["requests"]]
    plan["settings"]["protocol"] = protocol
    plan_file.write_text(json.dumps(plan), "utf-8")
    assert len(set(old.values())) == 3 and not set(old.values()) & {
        r["fingerprint"] for r in new.values()
    }
    # scored as it lies (a plan of 6-entry requests, no reference digests): the same scores
    assert configs_of(out) == scored

    model = Ears()
    model.max_audio_s = 30.0
    go(out, data, ["sqa_click"], model=model, prompts=prompts, spec=spec)
    assert model.calls == []  # the same requests: their answers are kept
    assert records(out) == {k: {**r, "reused": "fingerprint v1"} for k, r in new.items()}
    assert configs_of(out) == scored


# ------------------------------------------------------------------------------- low items


def test_merge_joins_identical_prompt_files_at_other_paths_and_names_a_real_difference(
    tmp_path, data
):
    text = one_variant_prompts(tmp_path).read_text("utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pa, pb = tmp_path / "a" / "p.yaml", tmp_path / "b" / "p.yaml"
    pa.write_text(text, "utf-8")
    pb.write_text(text, "utf-8")
    go(tmp_path / "s1", data, shard=(1, 2), prompts=load_prompts(pa))
    go(tmp_path / "s2", data, shard=(2, 2), prompts=load_prompts(pb))
    go(tmp_path / "whole", data, prompts=load_prompts(pa))
    res = merge_runs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "m")
    assert res["whole"] and records(tmp_path / "m") == records(tmp_path / "whole")

    pb.write_text(text.replace("받아 적으세요.", "받아 쓰세요."), "utf-8")
    go(tmp_path / "s2b", data, shard=(2, 2), prompts=load_prompts(pb))
    with pytest.raises(MergeError) as exc:
        merge_runs([tmp_path / "s1", tmp_path / "s2b"], tmp_path / "m2")
    msg = str(exc.value)
    sha_a, sha_b = load_prompts(pa).sha256, load_prompts(pb).sha256  # of the parsed prompts
    assert "prompts differ" in msg and "..." not in msg
    assert str(pa) in msg and str(pb) in msg and sha_a in msg and sha_b in msg
    assert not (tmp_path / "m2").exists()


def test_run_out_a_file_or_predictions_a_folder_is_a_message_not_a_traceback(
    tmp_path, data, capsys
):
    afile = tmp_path / "afile"
    afile.write_text("x")
    odd = tmp_path / "odd"
    (odd / PREDICTIONS).mkdir(parents=True)
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"))) as srv:
        argv = ["--model", f"openai:m@{srv.url}", "--configs", "asr_zeroth", "--data", str(data)]
        assert main([*argv, "--out", str(afile), "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert f"--out {afile}: is a file, not a run folder" in err
        assert main([*argv, "--out", str(odd), "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert f"{odd / PREDICTIONS}: is not a file" in err
        assert srv.requests == []
    assert afile.read_text() == "x" and not (odd / "run.json").exists()


def _slow(body, n):
    time.sleep(0.05)
    return Reply(body=completion(f"({det_label(prompt_text(body))})"))


def test_ctrl_c_records_the_invocation_as_interrupted(tmp_path, data):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with ScriptedServer(_slow) as srv:
        args = ["--model", f"openai:m@{srv.url}", "--configs", *BOTH, "--data", str(data)]
        args.append("--no-progress")
        proc = subprocess.Popen(
            [sys.executable, "-m", "koala.runner", *args, "--concurrency", "2", "--out", str(out)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        pred = out / PREDICTIONS
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if pred.exists() and pred.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "interrupted" in err.decode()
    inv = json.loads((out / "run.json").read_text("utf-8"))["invocations"][-1]
    assert inv["interrupted"] is True and inv["exit_status"] == 130 and inv["finished"]
    n = pred.read_bytes().count(b"\n")
    assert sum(Counter(inv["written"]).values()) == n
