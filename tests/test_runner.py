"""The runner: resumable, concurrent runs over Parquet exports the tests build themselves,
against in-process models and a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from openai_server import Reply, ScriptedServer, completion

from koala.models import Abstain, Answer, ModelBase, Request
from koala.predictions import current_records, load_plan
from koala.prompts import build_prompt, load_prompts
from koala.runner import (
    PREDICTIONS,
    PredictionStore,
    main,
    read_predictions,
    record_key,
    run_model,
    summary,
)
from koala.score import score_run

ROOT = Path(__file__).resolve().parent.parent
SR = 16_000

# ------------------------------------------------------------------------------- helpers


def wav(array: np.ndarray, sr: int = SR) -> dict:
    buf = io.BytesIO()
    sf.write(buf, array, sr, format="WAV", subtype="PCM_16")
    return {"bytes": buf.getvalue(), "path": None}


def tone(seed: int, seconds: float = 0.25) -> np.ndarray:
    """A short clip that differs per seed (so requests can be told apart)."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * np.sin(2 * np.pi * (200 + 37 * seed) * t)).astype(np.float32)


def make_export(root: Path, configs: dict[str, list[dict]]) -> Path:
    """Parquet shards + README.md with a YAML ``configs:`` block, the layout of
    ``koala-bench export``; ``load_dataset(root, name, split="test")`` reads it."""
    from datasets import Audio, Dataset

    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, rows in configs.items():
        cols = {k: [r.get(k) for r in rows] for k in rows[0]}
        for c in ("audio", "original_audio"):
            if c in cols:
                cols[c] = [
                    v if isinstance(v, dict) else (wav(v) if v is not None else None)
                    for v in cols[c]
                ]
        ds = Dataset.from_dict(cols)
        for c in ("audio", "original_audio"):
            if c in cols:
                ds = ds.cast_column(c, Audio(sampling_rate=SR))
        d = root / "data" / name
        d.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(d / "test-00000-of-00001.parquet"))
        entries.append(
            {"config_name": name, "data_files": [{"split": "test", "path": f"data/{name}/*"}]}
        )
    (root / "README.md").write_text(
        "---\n" + yaml.safe_dump({"configs": entries}) + "---\n# test export\n", encoding="utf-8"
    )
    return root


def sqa_rows(n: int, subset: str = "click", noise: str = "clean") -> list[dict]:
    return [
        {
            "id": f"q{i:02d}",
            "audio": tone(i),
            "subset": subset,
            "noise": noise,
            "duration": 0.25,
            "question": f"문항 q{i:02d} 의 답은?",
            "choices": ["사과", "배", "감", "귤"],
            "choice_labels": ["A", "B", "C", "D"],
            "answer": "ABCD"[i % 4],
            "answer_text": "사과",
        }
        for i in range(n)
    ]


def asr_rows(n: int) -> list[dict]:
    return [
        {
            "id": f"a{i:02d}",
            "audio": tone(100 + i),
            "subset": "zeroth",
            "noise": "clean",
            "duration": 0.25,
            "text": "오늘 날씨가 좋습니다",
        }
        for i in range(n)
    ]


def sca_rows(n: int) -> list[dict]:
    return [
        {
            "id": f"s{i}",
            "audio": tone(200 + i),
            "original_audio": tone(300 + i) if i % 2 == 0 else None,
            "subset": "kpop",
            "noise": "clean",
            "duration": 0.25,
            "question": f"그룹 s{i} 의 이름은?",
            "choices": ["하나", "둘", "셋", "넷"],
            "choice_labels": ["1", "2", "3", "4"],
            "answer": "1",
            "counterfactual_answer": "2",
            "context": "원래 문맥",
            "counterfactual_context": "바뀐 문맥",
            "keyword": "하나",
            "counterfactual_keyword": "둘",
            "domain": "kpop",
        }
        for i in range(n)
    ]


def one_variant_prompts(tmp_path: Path) -> Path:
    p = tmp_path / "one.yaml"
    p.write_text(
        'sqa:\n  - name: only\n    prompt_prefix: "고르세요.\\n"\n    answer_suffix: "\\n답: "\n'
        'asr:\n  - name: only\n    prompt: "받아 적으세요."\n'
        'sca_qa:\n  - name: only\n    prompt_text_only: "T\\n"\n    prompt_speech: "S\\n"\n',
        encoding="utf-8",
    )
    return p


def prompt_text(body: dict) -> str:
    return next(c["text"] for c in body["messages"][-1]["content"] if c["type"] == "text")


def det_label(text: str, labels: str = "ABCD") -> str:
    return labels[int(hashlib.md5(text.encode()).hexdigest(), 16) % len(labels)]


def canon(rec: dict) -> dict:
    """A record without the fields that differ between two identical runs (timings)."""
    return {k: v for k, v in rec.items() if k not in ("seconds", "meta")}


def strip_times(obj):
    if isinstance(obj, dict):
        return {k: strip_times(v) for k, v in obj.items() if k != "run_dir"}
    if isinstance(obj, list):
        return [strip_times(v) for v in obj]
    return obj


class Recorder(ModelBase):
    """An in-process model that records what it is given and answers deterministically."""

    def __init__(self, answer=None, tasks=None, logprobs=False):
        self.name = "recorder"
        self.calls: list[tuple] = []
        self.lock = threading.Lock()
        self._answer = answer or (lambda audio, prompt: "(A)")
        self.tasks = tasks
        self.supports_logprobs = logprobs

    def generate(self, audio, prompt):
        with self.lock:
            self.calls.append((audio, prompt))
        return self._answer(audio, prompt)

    def choice_logprobs(self, audio, prompt, labels):
        return {lab: -float(k) for k, lab in enumerate(labels)}


# ------------------------------------------------------------------------------- tests


def test_records_keys_resume_and_truncated_tail(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(5), "asr_zeroth": asr_rows(3)})
    out = tmp_path / "run"
    model = Recorder()
    stats = run_model(model, ["sqa_click", "asr_zeroth"], out, data=str(data), progress=False)
    variants = {c: len(load_prompts().variants(c)) for c in ("sqa_click", "asr_zeroth")}
    expected = 5 * variants["sqa_click"] + 3 * variants["asr_zeroth"]
    assert len(model.calls) == expected
    assert sum(stats.written.values()) == expected
    recs, st = read_predictions(out / PREDICTIONS)
    assert len(recs) == expected and st.duplicates == 0 and not st.truncated_tail
    assert {r["status"] for r in recs.values()} == {"ok"}
    # MC records carry what the scorer needs; ids and variants make the key
    r = recs[("recorder", "sqa_click", "k1", "speech", "q03")]
    assert r["ref"]["answer"] == "D" and r["ref"]["choices"] == ["사과", "배", "감", "귤"]
    assert r["logprobs"] is None and r["prediction"] == "(A)"
    # the model saw the row's own audio (q03 -> tone(3)), decoded at 16 kHz
    audio = next(a for a, p in model.calls if "q03" in p)
    assert audio.sampling_rate == SR
    assert np.allclose(audio.array, tone(3), atol=1e-4)

    # re-run: nothing to do
    model2 = Recorder()
    stats2 = run_model(model2, ["sqa_click", "asr_zeroth"], out, data=str(data), progress=False)
    assert model2.calls == [] and sum(stats2.skipped.values()) == expected

    # a killed writer leaves half a line: reading ignores it, the next run cuts it off
    with open(out / PREDICTIONS, "ab") as f:
        f.write(b'{"model": "recorder", "config": "sqa_cl')
    recs_b, st_b = read_predictions(out / PREDICTIONS)
    assert st_b.truncated_tail and recs_b == recs
    model3 = Recorder()
    run_model(model3, ["sqa_click"], out, data=str(data), progress=False)
    assert model3.calls == []
    raw = (out / PREDICTIONS).read_bytes()
    assert raw.endswith(b"\n") and b'"config": "sqa_cl' not in raw
    assert len(raw.splitlines()) == expected

    # another prompt text for a variant of the same name: that variant runs again
    other = tmp_path / "p.yaml"
    other.write_text('sqa:\n  - name: k1\n    prompt_prefix: "다른 지시\\n"\n', encoding="utf-8")
    model4 = Recorder()
    run_model(
        model4, ["sqa_click"], out, data=str(data), progress=False, prompts=load_prompts(other)
    )
    assert len(model4.calls) == 5 and all(p.startswith("다른 지시") for _, p in model4.calls)
    recs_c, st_c = read_predictions(out / PREDICTIONS)
    assert st_c.duplicates == 5 and len(recs_c) == expected  # superseded, not duplicated


def test_bad_samples_are_recorded_not_fatal(tmp_path):
    rows = sqa_rows(6)
    rows[1]["audio"] = {"bytes": b"RIFF not really a wav file", "path": None}
    rows[2]["choices"] = ["사과", "배"]  # 2 choices for 4 labels: cannot build a prompt

    def answer(audio, prompt):
        if "q03" in prompt:
            raise RuntimeError("model exploded on q03")
        if "q04" in prompt:
            raise Abstain("not sure")
        return "(B)"

    data = make_export(tmp_path / "data", {"sqa_click": rows})
    out = tmp_path / "run"
    model = Recorder(answer)
    stats = run_model(
        model,
        ["sqa_click"],
        out,
        data=str(data),
        progress=False,
        prompts=load_prompts(one_variant_prompts(tmp_path)),
    )
    recs, _ = read_predictions(out / PREDICTIONS)
    by_id = {r["id"]: r for r in recs.values()}
    assert len(by_id) == 6  # every row has its record
    assert by_id["q01"]["status"] == "failed" and "q01" in by_id["q01"]["error"]
    assert "'audio'" in by_id["q01"]["error"] and "decode" in by_id["q01"]["error"]
    assert by_id["q02"]["status"] == "failed" and "choices" in by_id["q02"]["error"]
    assert by_id["q03"]["status"] == "failed" and "model exploded" in by_id["q03"]["error"]
    assert by_id["q04"]["status"] == "abstained" and by_id["q04"]["error"] == "not sure"
    assert {by_id[i]["status"] for i in ("q00", "q05")} == {"ok"}
    assert stats.status["sqa_click"] == Counter({"failed": 3, "ok": 2, "abstained": 1})
    assert sum(stats.errors["sqa_click"].values()) == 3

    s = score_run(out)["models"]["recorder"]["configs"]["sqa_click"]
    g = s["variants"]["only"]["gen"]
    # gold: q00 A, q05 B; predictions (B) for both answered rows -> 1 correct; q02's reference
    # is unusable (2 choices, 4 labels): left out of the accuracy and counted
    assert (g["correct"], g["total"], g["failed"], g["abstained"]) == (1, 5, 2, 1)
    assert g["invalid"] == 1 and g["unparsed"] == 0
    assert s["counts"] == {
        "records": 6,
        "ok": 2,
        "failed": 3,
        "abstained": 1,
        "truncated": 0,
        "shared_answer": 0,
    }


def test_tasks_outside_the_model_are_abstained_without_calls(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(2), "asr_zeroth": asr_rows(2)})
    model = Recorder(tasks=frozenset({"asr"}))
    out = tmp_path / "run"
    run_model(
        model,
        ["sqa_click", "asr_zeroth"],
        out,
        data=str(data),
        progress=False,
        prompts=load_prompts(one_variant_prompts(tmp_path)),
    )
    assert len(model.calls) == 2  # the ASR rows only
    recs, _ = read_predictions(out / PREDICTIONS)
    st = Counter((r["config"], r["status"]) for r in recs.values())
    assert st == Counter({("sqa_click", "abstained"): 2, ("asr_zeroth", "ok"): 2})


def test_sca_qa_three_conditions(tmp_path):
    data = make_export(tmp_path / "data", {"sca_qa_kpop": sca_rows(4)})
    model = Recorder(lambda a, p: "(2)" if p.startswith("S") else "(1)", logprobs=True)
    out = tmp_path / "run"
    run_model(
        model,
        ["sca_qa_kpop"],
        out,
        data=str(data),
        progress=False,
        prompts=load_prompts(one_variant_prompts(tmp_path)),
    )
    recs, _ = read_predictions(out / PREDICTIONS)
    conds = Counter(r["condition"] for r in recs.values())
    # original speech exists for s0 and s2 only
    assert conds == Counter({"text": 4, "counterfactual": 4, "original": 2})
    # text-only: a 1 s silent clip with the text-only prompt
    text_audio = [a for a, p in model.calls if p.startswith("T")]
    assert len(text_audio) == 4
    assert all(len(a.array) == SR and not a.array.any() for a in text_audio)
    # counterfactual speech is column audio, original speech column original_audio
    speech = [a.array for a, p in model.calls if p.startswith("S")]
    assert any(np.allclose(x, tone(200), atol=1e-4) for x in speech)
    assert any(np.allclose(x, tone(300), atol=1e-4) for x in speech)
    assert len(speech) == 4 + 2

    m = score_run(out)["models"]["recorder"]["configs"]["sca_qa_kpop"]["variants"]["only"]
    # text answers (1) = gold answer for all 4; speech answers (2) = counterfactual gold
    assert m["gen"]["scf"] == 1.0 and m["gen"]["text_accuracy"] == 1.0
    assert m["gen"]["original_accuracy"] == 0.0 and m["gen"]["original_total"] == 2
    # logprobs {1: 0, 2: -1, ...}: argmax label 1 everywhere -> follows its own knowledge
    assert m["logit"]["scf"] == 0.0 and m["logit"]["parametric_proportion"] == 1.0

    # --sca-text-audio none: no audio at all in the text-only condition
    model2 = Recorder(lambda a, p: "(1)")
    run_model(
        model2,
        ["sca_qa_kpop"],
        tmp_path / "run2",
        data=str(data),
        progress=False,
        text_audio="none",
        prompts=load_prompts(one_variant_prompts(tmp_path)),
    )
    assert all(a is None for a, p in model2.calls if p.startswith("T"))
    assert all(a is not None for a, p in model2.calls if p.startswith("S"))


def test_parallel_calls_work_on_different_rows(tmp_path):
    """Requests go out interleaved across rows, so two workers never hold two variants of
    one clip at once (models that cache per clip would decode it twice)."""
    data = make_export(tmp_path / "data", {"asr_zeroth": asr_rows(4)})
    barrier = threading.Barrier(2, timeout=10)
    first_two: list[str] = []

    def answer(audio, prompt):
        if len(first_two) < 2:
            first_two.append(float(audio.array[1]))
            barrier.wait()  # both workers are busy at the same time
        return "오늘"

    model = Recorder(answer)
    run_model(
        model, ["asr_zeroth"], tmp_path / "run", data=str(data), progress=False, concurrency=2
    )
    assert len(model.calls) == 4 * len(load_prompts().variants("asr"))
    assert first_two[0] != first_two[1]  # two different clips


class Batcher(ModelBase):
    name = "batcher"
    batch_size = 4

    def __init__(self):
        self.batches: list[int] = []

    def generate(self, audio, prompt):
        return "(A)"

    def answer_batch(self, requests):
        if not self.batches:
            time.sleep(0.3)  # let the reader queue up the rest
        self.batches.append(len(requests))
        return [Answer("(C)") for _ in requests]


def test_batched_model_gets_batches(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(10)})
    model = Batcher()
    out = tmp_path / "run"
    run_model(
        model,
        ["sqa_click"],
        out,
        data=str(data),
        progress=False,
        concurrency=4,
        prompts=load_prompts(one_variant_prompts(tmp_path)),
    )
    assert sum(model.batches) == 10 and max(model.batches) > 1
    assert all(b <= 4 for b in model.batches)
    recs, _ = read_predictions(out / PREDICTIONS)
    assert {r["prediction"] for r in recs.values()} == {"(C)"}


def test_store_commits_everything_and_lock(tmp_path):
    store = PredictionStore(tmp_path / "p.jsonl")
    store.open()
    threads = [
        threading.Thread(
            target=lambda k=k: [
                store.put(
                    {
                        "format": 2,
                        "model": "m",
                        "config": "c",
                        "task": "asr",
                        "variant": "v",
                        "condition": "x",
                        "id": f"{k}-{i}",
                        "fingerprint": "f",
                        "ref": {},
                        "status": "ok",
                        "prediction": "",
                    }
                )
                for i in range(200)
            ]
        )
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.drain()
    assert store.committed == 800
    store.close()
    recs, st = read_predictions(tmp_path / "p.jsonl")
    assert len(recs) == 800 and st.lines == 800

    # one run directory, one writer
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(2)})
    out = tmp_path / "run"
    out.mkdir()
    import fcntl

    fd = os.open(out / ".lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(RuntimeError, match="another koala-bench run"):
            run_model(Recorder(), ["sqa_click"], out, data=str(data), progress=False)
    finally:
        os.close(fd)


# --------------------------------------------------------------- scripted OpenAI server


def _scripted(body, n, seen):
    text = prompt_text(body)
    rid = next((w for w in text.split() if w.startswith("q") and w[1:].isdigit()), "?")
    seen[rid] += 1
    if rid == "q01" and seen[rid] <= 2:
        return Reply(status=429, body={"error": "slow down"})
    if rid == "q02":
        return Reply(status=500, body={"error": "boom"})
    if rid == "q03":
        return Reply(body=completion("(A)"), delay=2.0)  # past the 0.6 s timeout
    if rid == "q04":
        return Reply(body=b'{"choices": [{"message": ')
    if rid == "q05":
        return Reply(body=completion("잘 모르겠습니다"))
    delay = 0.1 if rid == "q06" else 0.0  # slow, within the timeout
    lab = det_label(rid)
    lp = {x: (-0.05 if x == lab else -4.0) for x in "ABCD"}
    return Reply(body=completion(f"정답은 ({lab})", [lp]), delay=delay)


def test_openai_server_failures_are_counted_and_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("KOALA_TEST_KEY", "sk-do-not-write")
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(8)})
    out = tmp_path / "run"
    prompts = one_variant_prompts(tmp_path)
    seen: Counter = Counter()
    with ScriptedServer(lambda b, n: _scripted(b, n, seen)) as srv:
        spec = f"openai:tiny@{srv.url}?timeout=0.6&retries=2&backoff=0.01&key_env=KOALA_TEST_KEY"
        argv = [
            "--model",
            spec,
            "--configs",
            "sqa_click",
            "--data",
            str(data),
            "--prompts",
            str(prompts),
            "--out",
            str(out),
            "--no-progress",
        ]
        rc = main([*argv, "--concurrency", "4"])
        assert rc == 0
        assert srv.headers[0]["Authorization"] == "Bearer sk-do-not-write"
        # retries: 429 twice then an answer; 3 attempts for what never works
        assert seen["q01"] == 3 and seen["q02"] == 3 and seen["q03"] == 3 and seen["q04"] == 3
        assert seen["q00"] == seen["q05"] == seen["q06"] == seen["q07"] == 1
        recs, st = read_predictions(out / PREDICTIONS)
        by_id = {r["id"]: r for r in recs.values()}
        assert sorted(by_id) == [f"q{i:02d}" for i in range(8)] and st.duplicates == 0
        assert by_id["q01"]["status"] == "ok" and by_id["q01"]["meta"]["attempts"] == 3
        assert "HTTP 500" in by_id["q02"]["error"]
        assert "timed out" in by_id["q03"]["error"]
        assert "invalid JSON" in by_id["q04"]["error"]
        assert by_id["q05"]["status"] == "ok" and by_id["q05"]["logprobs"] is None
        assert by_id["q06"]["status"] == "ok"
        for f in (out / PREDICTIONS, out / "run.json"):
            assert "sk-do-not-write" not in f.read_text(encoding="utf-8")

        # the server recovers: a re-run of the same command (same spec and URL, so the same
        # fingerprints) asks again for the 3 failures only, nothing else
        seen2: Counter = Counter()
        srv.script = lambda b, n: _scripted_ok(b, seen2)
        n_first = len(srv.requests)
        assert main(argv) == 0
        assert len(srv.requests) - n_first == 3
    assert set(seen2) == {"q02", "q03", "q04"}
    recs2, _ = read_predictions(out / PREDICTIONS)
    assert len(recs2) == 8 and {r["status"] for r in recs2.values()} == {"ok"}


def test_openai_server_failures_are_scored(tmp_path):
    """The scores of a run with failures (split from the test above: the scorer is being
    rewritten against the plan; this part asserts its figures)."""
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(8)})
    out = tmp_path / "run"
    seen: Counter = Counter()
    with ScriptedServer(lambda b, n: _scripted(b, n, seen)) as srv:
        spec = f"openai:tiny@{srv.url}?timeout=0.6&retries=2&backoff=0.01"
        argv = ["--model", spec, "--configs", "sqa_click", "--data", str(data)]
        argv += ["--prompts", str(one_variant_prompts(tmp_path)), "--out", str(out)]
        assert main([*argv, "--concurrency", "4", "--no-progress"]) == 0
    s = score_run(out)["models"]["openai:tiny"]["configs"]["sqa_click"]["variants"]["only"]
    gold = {f"q{i:02d}": "ABCD"[i % 4] for i in range(8)}
    answered = ["q00", "q01", "q06", "q07"]  # q05 answered but unreadable
    correct = sum(det_label(i) == gold[i] for i in answered)
    g, lg = s["gen"], s["logit"]
    assert (g["total"], g["failed"], g["abstained"], g["unparsed"]) == (8, 3, 0, 1)
    assert g["correct"] == correct and g["accuracy"] == correct / 8
    assert lg["correct"] == correct and lg["no_logprobs"] == 1 and lg["failed"] == 3


def _scripted_ok(body, seen):
    text = prompt_text(body)
    rid = next((w for w in text.split() if w.startswith("q") and w[1:].isdigit()), "?")
    seen[rid] += 1
    return Reply(body=completion(f"({det_label(rid)})"))


def test_concurrency_keeps_requests_in_flight(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(16)})
    inflight = [0, 0]
    lock = threading.Lock()
    all_eight = threading.Barrier(8, timeout=20)  # the first 8 answers wait for each other

    def script(body, n):
        with lock:
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
        if n < 8:
            all_eight.wait()
        time.sleep(0.05)
        with lock:
            inflight[0] -= 1
        return Reply(body=completion("(A)"))

    with ScriptedServer(script) as srv:
        main(
            [
                "--model",
                f"openai:m@{srv.url}",
                "--configs",
                "sqa_click",
                "--data",
                str(data),
                "--prompts",
                str(one_variant_prompts(tmp_path)),
                "--out",
                str(tmp_path / "r"),
                "--concurrency",
                "8",
                "--no-progress",
            ]
        )
        assert len(srv.requests) == 16
    assert inflight[1] == 8  # never more than --concurrency, and that many at once


# ----------------------------------------------------------------------- SIGKILL + resume


def _kill_script(body, n):
    text = prompt_text(body)
    time.sleep(0.03)
    if "(A)" not in text:  # an ASR prompt
        return Reply(body=completion("오늘 날씨가 " + ("좋습니다" if len(text) % 2 else "좋다")))
    lab = det_label(text)
    lp = {x: (-0.1 if x == lab else -2.5 - "ABCD".index(x)) for x in "ABCD"}
    return Reply(body=completion(f"({lab})", [lp]))


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(24), "asr_zeroth": asr_rows(8)})
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with ScriptedServer(_kill_script) as srv:
        args = [
            "--model",
            f"openai:m@{srv.url}",
            "--configs",
            "sqa_click",
            "asr_zeroth",
            "--data",
            str(data),
            "--concurrency",
            "3",
            "--no-progress",
        ]
        proc = subprocess.Popen(
            [sys.executable, "-m", "koala.runner", *args, "--out", str(killed)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        pred = killed / PREDICTIONS
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if pred.exists() and pred.read_bytes().count(b"\n") >= 20:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        n_before = pred.read_bytes().count(b"\n")
        total = 24 * 3 + 8 * 3
        assert 20 <= n_before < total  # killed mid-way
        n_requests_first = -1
        while n_requests_first != len(srv.requests):  # requests sent before the kill land
            n_requests_first = len(srv.requests)
            time.sleep(0.3)

        res = subprocess.run(
            [sys.executable, "-m", "koala.runner", *args, "--out", str(killed)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        # the killed run lost only what was in flight (answered, not yet on disk)
        assert n_requests_first - n_before <= 2 * 3
        # the resumed run asks for exactly what is not on disk
        assert len(srv.requests) - n_requests_first == total - n_before

        assert main([*args, "--out", str(clean)]) == 0

    lines = pred.read_bytes().splitlines()
    keys = [record_key(json.loads(x)) for x in lines]
    assert len(keys) == len(set(keys)) == total  # no duplicates, nothing lost
    a, _ = read_predictions(pred)
    b, _ = read_predictions(clean / PREDICTIONS)
    assert {k: canon(v) for k, v in a.items()} == {k: canon(v) for k, v in b.items()}
    sa, sb = score_run(killed, st_metrics=[]), score_run(clean, st_metrics=[])
    assert strip_times(sa["models"]) == strip_times(sb["models"])
    assert sa["models"]["openai:m"]["configs"]["sqa_click"]["counts"]["ok"] == 72


# ----------------------------------------------------------------------------- prompts

PUBLISHED_FORMAT = """\
asr:
  - name: a1
    prompt: "전사하세요."
translation:
  - name: t1
    prompt: "번역하세요."
instruct:
  - name: i1
    prompt_prefix: "요청에 답하세요."
sqa:
  - name: s1
    prompt_prefix: "고르세요.\\n\\n"
    answer_suffix: "\\n답: "
  - name: s2
    prompt_prefix: null
    answer_suffix: "\\n정답: "
lsqa:
  - name: l1
    prompt_prefix: "긴 음성.\\n"
    answer_suffix: "\\n답: "
ksat:
  - name: k1
    prompt_prefix: "수능 듣기.\\n"
    answer_suffix: "\\n답: "
kdisentqa:
  - name: d1
    prompt_text_only: "글만.\\n"
    prompt_speech: "음성만 근거로.\\n"
    answer_suffix: "\\n답: "
"""


def test_prompts_default_and_published_format(tmp_path):
    from koala.prompts import task_of

    default = load_prompts()
    for config in ("asr_zeroth", "st_tst_he", "sqa_click", "sif_vicuna", "sca_qa_kpop", "pa_qa"):
        variants = default.variants(config)
        assert len(variants) >= 3 and len({v.name for v in variants}) == len(variants)
    assert task_of("sca_qa_k_sports_noisy") == "sca_qa" and task_of("pa_qa_noisy") == "pa_qa"
    assert task_of("sqa") == "sqa" and task_of("st_tst_common") == "st"

    path = tmp_path / "prompts.yaml"
    path.write_text(PUBLISHED_FORMAT, encoding="utf-8")
    p = load_prompts(path)
    assert [v.name for v in p.variants("st_tst_common")] == ["t1"]
    assert [v.name for v in p.variants("sif_kudge_noisy")] == ["i1"]
    assert [v.name for v in p.variants("pa_qa")] == ["l1"]
    assert [v.name for v in p.variants("sqa_kcsat_noisy")] == ["k1"]  # ksat -> sqa_kcsat
    assert [v.name for v in p.variants("sqa_click")] == ["s1", "s2"]
    row = {"question": "누구?", "choices": ["갑", "을"], "choice_labels": ["1", "2"]}
    d1 = p.variants("sca_qa_kpop")[0]
    assert build_prompt("sca_qa", d1, row, "text") == "글만.\n질문: 누구?\n(1) 갑\n(2) 을\n답: "
    assert build_prompt("sca_qa", d1, row, "counterfactual").startswith("음성만 근거로.\n질문")
    assert build_prompt("sca_qa", d1, row, "original").startswith("음성만 근거로.\n")
    s2 = p.variants("sqa_click")[1]  # a null prefix is empty; its own answer cue
    assert build_prompt("sqa", s2, {**row, "question": ""}, "speech") == "(1) 갑\n(2) 을\n정답: "
    assert build_prompt("sif", p.variants("sif_alpaca")[0], {}, "speech") == "요청에 답하세요."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nosuch:\n  - name: a\n    prompt: x\n", "unknown task or config 'nosuch'"),
        ("asr:\n  - name: a\n    promt: x\n", r"asr\[0\]: unknown field\(s\) \['promt'\]"),
        ("asr:\n  - prompt: x\n", r"asr\[0\]: field 'name' must be a non-empty string"),
        ("asr:\n  - name: a\n    prompt: x\n  - name: a\n    prompt: y\n", r"\['a'\] used more"),
        ("asr:\n  - name: a\n", "asr variant 'a': needs a 'prompt'"),
        ("kdisentqa:\n  - name: a\n    prompt_speech: x\n", r"needs \['prompt_text_only'\]"),
        ("asr: []\n", "asr: expected a non-empty list"),
        ("- a\n- b\n", "expected a mapping from task names"),
    ],
)
def test_bad_prompt_files_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as e:
        load_prompts(path)
    assert str(path) in str(e.value)


UPSTREAM_PROMPTS = ROOT.parent / "shared" / "upstream" / "koala-bench" / "prompts.yaml"


@pytest.mark.skipif(not UPSTREAM_PROMPTS.exists(), reason="../shared (published files) absent")
def test_the_published_prompts_file_loads():
    p = load_prompts(UPSTREAM_PROMPTS)
    for config in (
        "asr_zeroth",
        "st_tst_common",
        "sqa_click",
        "sqa_kcsat",
        "sif_alpaca",
        "sca_qa_kpop",
        "pa_qa",
    ):
        assert len(p.variants(config)) == 4, config
    row = {"question": "q", "choices": ["a", "b"], "choice_labels": ["A", "B"]}
    for v in p.variants("sca_qa_kpop"):
        text = build_prompt("sca_qa", v, row, "text")
        speech = build_prompt("sca_qa", v, row, "counterfactual")
        assert text != speech and text.endswith("(B) b\n답: ") and speech.endswith("\n답: ")


# ------------------------------------------------- fingerprints, the plan, exit status, losses


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canon_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def calls_by_id(model: Recorder) -> list[str]:
    """The row ids (q00, s1, ...) of the prompts a Recorder was given, sorted."""
    return sorted(
        next(w for w in p.split() if w[:1] in "qsa" and w[1:].isdigit()) for _, p in model.calls
    )


def test_the_plan_lists_every_request_with_its_fingerprint_before_any_is_sent(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(3)})
    out = tmp_path / "run"
    plan_file = out / "plan" / "sqa_click.json"
    plan_there: list[bool] = []

    def answer(audio, prompt):
        plan_there.append(plan_file.exists())
        return "(A)"

    prompts = load_prompts(one_variant_prompts(tmp_path))
    spec = "recorder?temperature=0"
    run_model(
        Recorder(answer), ["sqa_click"], out, data=str(data), progress=False, prompts=prompts,
        spec=spec,
    )  # fmt: skip
    assert plan_there == [True, True, True]
    plans = load_plan(out)
    recs, _ = read_predictions(out / PREDICTIONS)
    plan = plans["sqa_click"]
    assert (plan.config, plan.task, plan.planned) == ("sqa_click", "sqa", 3)
    assert plan.requests == {k: r["fingerprint"] for k, r in recs.items()}
    # q01 by hand: prompt, labels, model spec and options, audio digest (what can change the
    # answer); the reference's digest beside it in the plan, not in the fingerprint
    ref = {
        "question": "문항 q01 의 답은?",
        "choices": ["사과", "배", "감", "귤"],
        "choice_labels": ["A", "B", "C", "D"],
        "answer": "B",
    }
    parts = {
        "format": 2,
        "fingerprint": 2,
        "model": {
            "name": "recorder",
            "spec": {"kind": "recorder", "target": None, "url": None},
            "options": {"temperature": 0},
        },
        "prompt": "고르세요.\n질문: 문항 q01 의 답은?\n(A) 사과\n(B) 배\n(C) 감\n(D) 귤\n답: ",
        "condition": "speech",
        "text_audio": None,
        "labels": ["A", "B", "C", "D"],
        "audio": sha(wav(tone(1))["bytes"]),
    }
    key = ("recorder", "sqa_click", "only", "speech", "q01")
    assert plan.requests[key] == sha(canon_json(parts).encode())
    assert plan.refs[key] == sha(canon_json(ref).encode())
    r = recs[key]
    assert r["format"] == 2 and r["shown_labels"] == ["A", "B", "C", "D"] and r["ref"] == ref
    s = plan.settings
    assert (s["model"], s["spec"], s["options"]) == ("recorder", spec, {"temperature": 0})
    assert (s["protocol"], s["sca_text_audio"], s["limit"], s["data"]) == (
        "koala",
        "silence",
        None,
        str(data),
    )
    assert s["prompts"]["variants"] == {"sqa": ["only"], "asr": ["only"], "sca_qa": ["only"]}
    assert len(s["prompts"]["sha256"]) == 64


def test_changed_audio_reruns_exactly_those_rows_changed_gold_or_fields_rerun_none(tmp_path):
    rows = sqa_rows(4)
    prompts = load_prompts(one_variant_prompts(tmp_path))

    def run_on(rows, name):
        data = make_export(tmp_path / name, {"sqa_click": rows})
        model = Recorder()
        run_model(
            model, ["sqa_click"], tmp_path / "run", data=str(data), progress=False,
            prompts=prompts,
        )  # fmt: skip
        return model

    assert len(run_on(rows, "d1").calls) == 4
    assert run_on(rows, "d1b").calls == []  # the same rows in another export: nothing to do
    rows[1] = {**rows[1], "answer": "C"}  # a re-export that fixes one gold answer: the same
    assert run_on(rows, "d2").calls == []  # request, its record rewritten with the new gold
    recs, _ = read_predictions(tmp_path / "run" / PREDICTIONS)
    r = recs[("recorder", "sqa_click", "only", "speech", "q01")]
    assert r["ref"]["answer"] == "C" and r["reused"] == "reference"
    rows[2] = {**rows[2], "audio": tone(50)}  # ... one clip: that request again
    m = run_on(rows, "d3")
    assert calls_by_id(m) == ["q02"] and np.allclose(m.calls[0][0].array, tone(50), atol=1e-4)
    # the published raw fields reach the record's ref (a new ref, the same requests)
    raw = {"source_choices": "(A) 사과"}
    rows = [{**r, **raw, "source_answer": f"({r['answer']})사과"} for r in rows]
    assert run_on(rows, "d4").calls == []
    assert run_on(rows, "d4").calls == []
    recs, _ = read_predictions(tmp_path / "run" / PREDICTIONS)
    r = recs[("recorder", "sqa_click", "only", "speech", "q01")]
    assert r["ref"]["source_answer"] == "(C)사과" and r["ref"]["source_choices"] == "(A) 사과"
    current, ignored = current_records(recs, load_plan(tmp_path / "run"))
    assert len(current["sqa_click"]) == 4 and not ignored["sqa_click"]


def test_sca_text_audio_original_audio_and_protocol_rerun_exactly_what_they_change(tmp_path):
    prompts = load_prompts(one_variant_prompts(tmp_path))
    out = tmp_path / "run"
    rows = sca_rows(4)  # original speech for s0 and s2: 4 + 4 + 2 requests

    def go(data, **kw):
        model = Recorder(lambda a, p: "(1)", logprobs=True)
        run_model(
            model, ["sca_qa_kpop"], out, data=str(data), progress=False, prompts=prompts, **kw
        )
        return model

    d1 = make_export(tmp_path / "d1", {"sca_qa_kpop": rows})
    assert len(go(d1).calls) == 10
    m = go(d1, text_audio="none")  # only the text-only condition sends something else
    assert len(m.calls) == 4 and all(p.startswith("T") and a is None for a, p in m.calls)
    assert go(d1, text_audio="none").calls == []
    rows[0] = {**rows[0], "original_audio": tone(77)}
    d2 = make_export(tmp_path / "d2", {"sca_qa_kpop": rows})
    m = go(d2, text_audio="none")
    assert len(m.calls) == 1 and np.allclose(m.calls[0][0].array, tone(77), atol=1e-4)
    assert calls_by_id(m) == ["s0"] and m.calls[0][1].startswith("S")

    # the published protocol shows (A)-(D): every request again, with those labels
    m = go(d2, text_audio="none", protocol="published")
    assert len(m.calls) == 10 and all("(A) 하나\n(B) 둘" in p for _, p in m.calls)
    recs, _ = read_predictions(out / PREDICTIONS)
    assert {tuple(r["shown_labels"]) for r in recs.values()} == {("A", "B", "C", "D")}
    assert {tuple(r["logprobs"]) for r in recs.values()} == {("A", "B", "C", "D")}
    assert {r["ref"]["choice_labels"][0] for r in recs.values()} == {"1"}  # the row's own
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["protocol"] == "published"
    assert load_plan(out)["sca_qa_kpop"].settings["protocol"] == "published"
    assert go(d2, text_audio="none", protocol="published").calls == []


def test_one_variant_prompts_after_the_defaults_leave_the_old_variants_unplanned(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(2)})
    out = tmp_path / "run"
    run_model(Recorder(), ["sqa_click"], out, data=str(data), progress=False)
    n_default = 2 * len(load_prompts().variants("sqa_click"))
    m = Recorder()
    prompts = load_prompts(one_variant_prompts(tmp_path))
    run_model(m, ["sqa_click"], out, data=str(data), progress=False, prompts=prompts)
    assert len(m.calls) == 2
    recs, _ = read_predictions(out / PREDICTIONS)
    assert len(recs) == n_default + 2
    current, ignored = current_records(recs, load_plan(out))
    assert sorted((r["variant"], r["id"]) for r in current["sqa_click"]) == [
        ("only", "q00"),
        ("only", "q01"),
    ]
    assert ignored["sqa_click"] == Counter({"not in the plan": n_default})


def test_model_options_rerun_every_request_the_protocol_none_of_sqa(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(3)})
    out = tmp_path / "run"
    prompts = one_variant_prompts(tmp_path)
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"))) as srv:

        def go(spec, *extra):
            n0 = len(srv.requests)
            argv = ["--model", spec, "--configs", "sqa_click", "--data", str(data)]
            argv += ["--prompts", str(prompts), "--out", str(out), "--no-progress", *extra]
            assert main(argv) == 0
            return len(srv.requests) - n0

        assert go(f"openai:m@{srv.url}?temperature=0") == 3
        assert go(f"openai:m@{srv.url}?temperature=0") == 0  # the same command: nothing
        assert go(f"openai:m@{srv.url}?temperature=0.5") == 3  # same name, other options
        assert srv.requests[-1]["temperature"] == 0.5
        # SQA shows the same labels and prompt under the published protocol: nothing again
        assert go(f"openai:m@{srv.url}?temperature=0.5", "--protocol", "published") == 0
        # how a request travels (time-out, retries) changes no answer: nothing is re-asked
        spec = f"openai:m@{srv.url}?temperature=0.5&timeout=90&retries=7"
        assert go(spec, "--protocol", "published") == 0
    settings = load_plan(out)["sqa_click"].settings
    assert settings["options"] == {"temperature": 0.5} and settings["protocol"] == "published"


def test_a_run_directory_holds_one_model(tmp_path, capsys):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(1)})
    out = tmp_path / "run"
    prompts = load_prompts(one_variant_prompts(tmp_path))
    run_model(Recorder(), ["sqa_click"], out, data=str(data), progress=False, prompts=prompts)
    other = Recorder()
    other.name = "another"
    with pytest.raises(RuntimeError, match="holds the run of model 'recorder'"):
        run_model(other, ["sqa_click"], out, data=str(data), progress=False, prompts=prompts)
    assert set(load_plan(out)) == {"sqa_click"}
    assert load_plan(out)["sqa_click"].settings["model"] == "recorder"


def test_the_rows_subset_chooses_the_prompt_in_the_union_config(tmp_path):
    prompts = tmp_path / "p.yaml"
    prompts.write_text(
        'sqa:\n  - name: s1\n    prompt_prefix: "SQA\\n"\n'
        'sqa_kcsat:\n  - name: k1\n    prompt_prefix: "KSAT\\n"\n',
        encoding="utf-8",
    )
    click = sqa_rows(1)
    ksat = [
        {**r, "id": f"q{i + 5:02d}", "subset": "kcsat", "choice_labels": ["1", "2", "3", "4"]}
        for i, r in enumerate(sqa_rows(1))
    ]
    data = make_export(tmp_path / "data", {"sqa": click + ksat, "sqa_kcsat": ksat})
    m = Recorder()
    run_model(
        m, ["sqa", "sqa_kcsat"], tmp_path / "run", data=str(data), progress=False,
        prompts=load_prompts(prompts),
    )  # fmt: skip
    recs, _ = read_predictions(tmp_path / "run" / PREDICTIONS)
    assert sorted((k[1], k[2], k[4]) for k in recs) == [
        ("sqa", "k1", "q05"),
        ("sqa", "s1", "q00"),
        ("sqa_kcsat", "k1", "q05"),
    ]
    ksat_prompts = [p for _, p in m.calls if "(1) 사과" in p]
    assert len(ksat_prompts) == 2 and ksat_prompts[0] == ksat_prompts[1]
    assert ksat_prompts[0].startswith("KSAT\n")


def test_a_config_that_does_not_run_exits_3(tmp_path, capsys):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(2)})
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"))) as srv:
        argv = ["--model", f"openai:m@{srv.url}", "--configs", "sqa_click", "sqa_nosuch"]
        argv += ["--data", str(data), "--prompts", str(one_variant_prompts(tmp_path))]
        rc = main([*argv, "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 3
    assert "sqa_nosuch: NOT RUN" in err and "did not run" in err and "exit status 3" in err
    recs, _ = read_predictions(tmp_path / "run" / PREDICTIONS)
    assert len(recs) == 2  # the config that could run did


class FullDisk(PredictionStore):
    """The disk fills up after the first committed group of records."""

    ok = 1

    def _write_batch(self, blob):
        if self.ok <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.ok -= 1
        time.sleep(0.05)  # let answers pile up behind the first group
        super()._write_batch(blob)


def test_a_full_disk_stops_the_run_says_what_was_lost_and_exits_4(tmp_path, capsys, monkeypatch):
    import koala.runner

    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(12), "asr_zeroth": asr_rows(3)})
    out = tmp_path / "run"
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"), delay=0.01)) as srv:
        argv = ["--model", f"openai:m@{srv.url}", "--configs", "sqa_click", "asr_zeroth"]
        argv += ["--data", str(data), "--prompts", str(one_variant_prompts(tmp_path))]
        argv += ["--out", str(out), "--no-progress", "--concurrency", "2"]
        monkeypatch.setattr(koala.runner, "PredictionStore", FullDisk)
        assert main(argv) == 4
        err = capsys.readouterr().err
        lost = int(re.search(r"(\d+) answer\(s\) were lost", err).group(1))
        committed = int(re.search(r"The (\d+) record\(s\) committed", err).group(1))
        lines = (out / PREDICTIONS).read_bytes().count(b"\n")
        assert committed == lines >= 1 and lost >= 1
        assert "No space left on device" in err and "safe on disk" in err
        assert "asr_zeroth: NOT RUN" in err  # the run stopped: the next config never started
        assert all("(A) 사과" in prompt_text(b) for b in srv.requests)
        assert len(srv.requests) >= committed + lost
        manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
        assert manifest["invocations"][-1]["lost"] == lost

        monkeypatch.setattr(koala.runner, "PredictionStore", PredictionStore)
        n0 = len(srv.requests)
        assert main(argv) == 0  # the disk has room again: the rest, and nothing twice
        assert len(srv.requests) - n0 == 12 + 3 - lines
    recs, st = read_predictions(out / PREDICTIONS)
    assert len(recs) == 15 and st.duplicates == 0


class AsyncBatcher:
    """An asynchronous model that also declares a batch size: it answers one request per
    call all the same."""

    name = "abatch"
    batch_size = 4

    def __init__(self):
        self.requests: list[object] = []

    async def aanswer(self, request):
        self.requests.append(request)
        await asyncio.sleep(0.005)
        return Answer("(B)")


def test_an_async_model_with_a_batch_size_answers_every_request(tmp_path):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(10)})
    model = AsyncBatcher()
    stats = run_model(
        model, ["sqa_click"], tmp_path / "run", data=str(data), progress=False, concurrency=3,
        prompts=load_prompts(one_variant_prompts(tmp_path)),
    )  # fmt: skip
    assert stats.config_errors == {}
    assert len(model.requests) == 10 and all(isinstance(r, Request) for r in model.requests)
    recs, _ = read_predictions(tmp_path / "run" / PREDICTIONS)
    assert len(recs) == 10 and {r["prediction"] for r in recs.values()} == {"(B)"}


class Fatal(BaseException):
    pass


class AsyncFatal:
    """Raises a fatal error (not an ``Exception``: it is not recorded) on row q03."""

    name = "afatal"

    def __init__(self):
        self.started: list[float] = []
        self.fatal_at = None

    async def aanswer(self, request):
        self.started.append(time.monotonic())
        if "q03" in request.prompt:
            await asyncio.sleep(0.02)
            self.fatal_at = time.monotonic()
            raise Fatal("boom")
        await asyncio.sleep(0.01)
        return Answer("(A)")


class SlowDisk(PredictionStore):
    def _write_batch(self, blob):
        time.sleep(0.3)
        super()._write_batch(blob)


def test_a_crashing_worker_stops_its_siblings(tmp_path, monkeypatch):
    import koala.runner

    monkeypatch.setattr(koala.runner, "PredictionStore", SlowDisk)
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(40)})
    model = AsyncFatal()
    with pytest.raises(Fatal):
        run_model(
            model, ["sqa_click"], tmp_path / "run", data=str(data), progress=False,
            concurrency=4, prompts=load_prompts(one_variant_prompts(tmp_path)),
        )  # fmt: skip
    late = [t for t in model.started if t > model.fatal_at]
    assert len(late) <= 3, f"{len(late)} calls started after the fatal error"
    assert len(model.started) < 20


# ------------------------------------------------------------ input limits, shared answers


class ShortEars(Recorder):
    """A model that hears the first second of a clip only (and says so)."""

    max_audio_s = 1.0


def test_clips_longer_than_the_models_limit_are_flagged_truncated(tmp_path):
    rows = sqa_rows(4)
    for r, seconds in zip(rows, (0.25, 2.0, 1.0, 3.5), strict=True):
        r["audio"] = tone(int(seconds * 10), seconds)
    data = make_export(tmp_path / "data", {"sqa_click": rows})
    out = tmp_path / "run"
    model = ShortEars()
    prompts = load_prompts(one_variant_prompts(tmp_path))
    stats = run_model(model, ["sqa_click"], out, data=str(data), progress=False, prompts=prompts)
    assert len(model.calls) == 4  # the model is still asked, as the user's server would be
    recs, _ = read_predictions(out / PREDICTIONS)
    by_id = {r["id"]: r for r in recs.values()}
    # 1.0 s is not longer than the 1 s limit; 2 s and 3.5 s are
    assert {i: r["truncated"] for i, r in by_id.items()} == {
        "q00": False,
        "q01": True,
        "q02": False,
        "q03": True,
    }
    assert {i: r["audio_seconds"] for i, r in by_id.items()} == {
        "q00": 0.25,
        "q01": 2.0,
        "q02": 1.0,
        "q03": 3.5,
    }
    assert stats.truncated == Counter({"sqa_click": 2})
    text = summary(stats)
    assert "2 request(s) TRUNCATED" in text and "input limit of 1 s" in text
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_json["invocations"][-1]["truncated"] == {"sqa_click": 2}

    # a model with no known limit flags nothing
    plain = Recorder()
    run_model(plain, ["sqa_click"], tmp_path / "run2", data=str(data), progress=False,
              prompts=prompts)  # fmt: skip
    recs2, _ = read_predictions(tmp_path / "run2" / PREDICTIONS)
    assert not any(r["truncated"] for r in recs2.values())


def test_a_servers_input_limit_comes_from_the_spec(tmp_path, capsys):
    rows = sqa_rows(3)
    rows[1]["audio"] = tone(1, 1.5)
    data = make_export(tmp_path / "data", {"sqa_click": rows})
    out = tmp_path / "run"
    with ScriptedServer(lambda b, n: Reply(body=completion("(A)"))) as srv:
        argv = ["--model", f"openai:m@{srv.url}?max_audio_s=0.5", "--configs", "sqa_click"]
        argv += ["--data", str(data), "--prompts", str(one_variant_prompts(tmp_path))]
        assert main([*argv, "--out", str(out), "--no-progress"]) == 0
        assert len(srv.requests) == 3
    assert "1 request(s) TRUNCATED" in capsys.readouterr().err
    recs, _ = read_predictions(out / PREDICTIONS)
    assert sorted(r["id"] for r in recs.values() if r["truncated"]) == ["q01"]


class Deafish(Recorder):
    """Answers from the audio alone, as an ASR model does."""

    ignores_prompt = True


def test_a_model_that_ignores_the_prompt_is_asked_once_per_clip_and_condition(tmp_path):
    from koala.models.vosk_ko import VoskKorean

    assert VoskKorean.ignores_prompt is True
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(3), "sca_qa_kpop": sca_rows(4)})
    out = tmp_path / "run"
    k_sqa = len(load_prompts().variants("sqa_click"))
    k_sca = len(load_prompts().variants("sca_qa_kpop"))
    assert k_sqa > 1 and k_sca > 1  # else nothing would be shared
    model = Deafish(lambda a, p: f"{len(a.array) if a is not None else 0}")
    stats = run_model(model, ["sqa_click", "sca_qa_kpop"], out, data=str(data), progress=False)
    # 3 SQA clips; SCA-QA: 4 silent clips (text), 4 counterfactual, 2 original
    assert len(model.calls) == 3 + (4 + 4 + 2)
    recs, _ = read_predictions(out / PREDICTIONS)
    assert len(recs) == 3 * k_sqa + 10 * k_sca
    assert all(r["shared_answer"] is True for r in recs.values())
    by_clip: dict = {}
    for r in recs.values():
        by_clip.setdefault((r["config"], r["condition"], r["id"]), []).append(r)
    assert len(by_clip) == 13
    for group in by_clip.values():
        assert len({r["variant"] for r in group}) == len(group)
        assert len({r["fingerprint"] for r in group}) == len(group)  # each its own
        assert len({r["prediction"] for r in group}) == 1  # the one answer
    assert stats.calls == Counter({"sqa_click": 3, "sca_qa_kpop": 10})
    assert "one answer per clip and condition" in summary(stats)
    again = Deafish()
    run_model(again, ["sqa_click", "sca_qa_kpop"], out, data=str(data), progress=False)
    assert again.calls == []


def test_a_source_tree_is_refused_with_the_export_command(tmp_path, capsys):
    import shlex

    from koala.data import load_config, open_rows

    tree = tmp_path / "KoALA"
    (tree / "SQA").mkdir(parents=True)
    (tree / "SQA" / "click_clean.jsonl").write_text('{"index": 0}\n', encoding="utf-8")
    (tree / "README.md").write_text("# KoALA\n", encoding="utf-8")  # a card without configs
    for configs in (["sqa_click"], ["all"]):
        argv = ["--model", "cascade", "--configs", *configs, "--data", str(tree)]
        assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert "BuilderConfig" not in err and "source tree" in err
        out = tmp_path / "KoALA_parquet"
        command = f"koala-bench export --data-dir {shlex.quote(str(tree))} --out {out}"
        assert command in err and f"--data {out}" in err
    for read in (load_config, open_rows):
        with pytest.raises(ValueError, match="Export it first"):
            read(str(tree), "sqa_click")
    # an export beside metadata folders is still an export
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(1)})
    (data / "SQA").mkdir()
    (data / "SQA" / "click_clean.jsonl").write_text("{}\n", encoding="utf-8")
    assert len(load_config(str(data), "sqa_click")) == 1
    assert len(open_rows(str(data), "sqa_click")) == 1
