"""The runner: resumable, concurrent runs over Parquet exports the tests build themselves,
against in-process models and a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import os
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

from koala.models import Abstain, Answer, ModelBase
from koala.prompts import build_prompt, load_prompts
from koala.runner import (
    PREDICTIONS,
    PredictionStore,
    main,
    read_predictions,
    record_key,
    run_model,
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
    assert g["invalid_rows"] == 1 and g["unparsed"] == 0
    assert s["counts"] == {"records": 6, "ok": 2, "failed": 3, "abstained": 1}


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
                        "model": "m",
                        "config": "c",
                        "variant": "v",
                        "condition": "x",
                        "id": f"{k}-{i}",
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
        rc = main(
            [
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
                "--concurrency",
                "4",
                "--no-progress",
            ]
        )
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

    s = score_run(out)["models"]["openai:tiny"]["configs"]["sqa_click"]["variants"]["only"]
    gold = {f"q{i:02d}": "ABCD"[i % 4] for i in range(8)}
    answered = ["q00", "q01", "q06", "q07"]  # q05 answered but unreadable
    correct = sum(det_label(i) == gold[i] for i in answered)
    g, lg = s["gen"], s["logit"]
    assert (g["total"], g["failed"], g["abstained"], g["unparsed"]) == (8, 3, 0, 1)
    assert g["correct"] == correct and g["accuracy"] == correct / 8
    assert lg["correct"] == correct and lg["no_logprobs"] == 1 and lg["failed"] == 3

    # the server recovers: a re-run asks again for the 3 failures only, nothing else
    seen2: Counter = Counter()
    with ScriptedServer(lambda b, n: _scripted_ok(b, seen2)) as srv:
        spec = f"openai:tiny@{srv.url}?timeout=0.6&retries=2&backoff=0.01"
        assert (
            main(
                [
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
            )
            == 0
        )
        assert len(srv.requests) == 3
    assert set(seen2) == {"q02", "q03", "q04"}
    recs2, _ = read_predictions(out / PREDICTIONS)
    assert len(recs2) == 8 and {r["status"] for r in recs2.values()} == {"ok"}


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
