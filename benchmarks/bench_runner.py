"""Runner throughput against a local OpenAI-compatible server, and the runner's own overhead.

    .venv/bin/python benchmarks/bench_runner.py [--latency 0.2] [--seconds 5] [--json OUT]

1. Throughput: the scripted server of the tests (``tests/openai_server.py``, on 127.0.0.1, in a
   child process with TCP_NODELAY and a listen backlog of 256, as a real server has)
   answers every request after a fixed ``--latency`` (200 ms). The runner runs one config at
   concurrency 1, 8 and 32, with enough requests for about ``--seconds`` of ideal work each;
   throughput = requests / time from the first request to the last record fsynced, against the
   ideal ``concurrency / latency``. Target: at least 0.9 of the ideal at 32.
2. Overhead: the same runner with a model that answers at once (an async no-op and a
   thread-pool no-op), so everything measured is the runner: reading rows, decoding audio,
   building prompts, scheduling, writing and fsyncing records. Target: well under 1 ms per
   request. For scale, a zero-latency HTTP server at concurrency 32 (client + server cost), with
   the adapter's default of connection pools of 8 and with one pool of 32.

Every run writes real predictions to a temporary run directory, as ``koala-bench run`` does;
each request carries a 1 s clip as base64 WAV (43 kB of JSON).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import multiprocessing as mp  # noqa: E402

from openai_server import Reply, ScriptedServer, completion  # noqa: E402

from koala.models import Answer, ModelBase, load_model  # noqa: E402
from koala.prompts import load_prompts  # noqa: E402
from koala.runner import run_model  # noqa: E402

PROMPTS = 'asr:\n  - name: only\n    prompt: "받아 적으세요."\n'


def make_export(root: Path, n: int, seconds: float = 1.0) -> Path:
    """An ``asr_zeroth`` config of ``n`` distinct clips, as ``koala-bench export`` writes it."""
    import soundfile as sf
    import yaml
    from datasets import Audio, Dataset

    t = np.arange(int(seconds * 16000)) / 16000
    clips = []
    for i in range(n):
        buf = io.BytesIO()
        sf.write(
            buf,
            (0.2 * np.sin(2 * np.pi * (150 + i) * t)).astype(np.float32),
            16000,
            format="WAV",
            subtype="PCM_16",
        )
        clips.append({"bytes": buf.getvalue(), "path": None})
    ds = Dataset.from_dict(
        {
            "id": [f"u{i:05d}" for i in range(n)],
            "audio": clips,
            "subset": ["bench"] * n,
            "noise": ["clean"] * n,
            "duration": [seconds] * n,
            "text": ["오늘 날씨가 좋습니다"] * n,
        }
    ).cast_column("audio", Audio(sampling_rate=16000))
    (root / "data" / "asr_zeroth").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / "asr_zeroth" / "test-00000-of-00001.parquet"))
    cfg = {
        "configs": [
            {
                "config_name": "asr_zeroth",
                "data_files": [{"split": "test", "path": "data/asr_zeroth/*"}],
            }
        ]
    }
    (root / "README.md").write_text("---\n" + yaml.safe_dump(cfg) + "---\n", encoding="utf-8")
    return root


def _serve(latency: float, urls: mp.Queue, stop: mp.Event) -> None:
    # socketserver's default listen backlog is 5: opening 32 connections at once would have
    # some SYNs dropped and retried a second later (real servers use a backlog of hundreds).

    def script(body, n):
        return Reply(body=completion("오늘 날씨가 좋습니다"), delay=latency)

    with ScriptedServer(script) as srv:  # TCP_NODELAY and a deep accept queue, as real servers
        urls.put(srv.url)
        stop.wait()


class served:
    """The scripted server in its own process, as a real server would be (in-process, its
    threads would compete with the runner for the GIL)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    def __enter__(self) -> str:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        urls = ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(self.latency, urls, self.stop), daemon=True)
        self.proc.start()
        return urls.get(timeout=60)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(10)


class AsyncNoop:
    name = "noop-async"

    async def aanswer(self, request):
        return Answer("오늘 날씨가 좋습니다")


class SyncNoop(ModelBase):
    name = "noop-threads"

    def generate(self, audio, prompt):
        return "오늘 날씨가 좋습니다"


def timed_run(model, data: Path, n: int, concurrency: int, workdir: Path) -> dict:
    prompts_file = workdir / "prompts.yaml"
    prompts_file.write_text(PROMPTS, encoding="utf-8")
    out = Path(tempfile.mkdtemp(dir=workdir))
    t0 = time.perf_counter()
    stats = run_model(
        model,
        ["asr_zeroth"],
        out,
        data=str(data),
        limit=n,
        concurrency=concurrency,
        progress=False,
        prompts=load_prompts(prompts_file),
    )
    wall = time.perf_counter() - t0
    written = stats.written["asr_zeroth"]
    assert written == n and stats.status["asr_zeroth"]["ok"] == n, stats.status
    secs = stats.seconds["asr_zeroth"]
    return {"requests": n, "seconds": secs, "wall_seconds": wall, "per_second": n / secs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--seconds", type=float, default=5.0, help="ideal seconds per point")
    ap.add_argument("--overhead-requests", type=int, default=3000)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    levels = (1, 8, 32)
    sizes = {c: max(c, round(args.seconds * c / args.latency)) for c in levels}
    n_rows = max(max(sizes.values()), args.overhead_requests)
    results: dict = {"latency_s": args.latency, "throughput": {}, "overhead": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_export(work / "export", n_rows)

        with served(args.latency) as url:
            for c in levels:
                r = timed_run(load_model(f"openai:bench@{url}"), data, sizes[c], c, work)
                r["ideal_per_second"] = c / args.latency
                r["ratio"] = r["per_second"] / r["ideal_per_second"]
                results["throughput"][c] = r
                print(
                    f"concurrency {c:>2}: {r['per_second']:7.2f} req/s, ideal "
                    f"{r['ideal_per_second']:6.1f}, ratio {r['ratio']:.3f} "
                    f"({r['requests']} requests in {r['seconds']:.2f} s)",
                    flush=True,
                )

        n = args.overhead_requests
        for label, model, c in (
            ("async no-op model", AsyncNoop(), 32),
            ("thread-pool no-op model", SyncNoop(), 8),
        ):
            r = timed_run(model, data, n, c, work)
            r["ms_per_request"] = 1000 * r["seconds"] / n
            results["overhead"][label] = r
            print(
                f"{label:>26}: {r['ms_per_request']:.3f} ms per request "
                f"({n} requests, {r['per_second']:.0f} req/s)",
                flush=True,
            )

        with served(0.0) as url:
            m = min(n, 1000)
            for pool in (8, 32):
                model = load_model(f"openai:bench@{url}?pool_size={pool}")
                r = timed_run(model, data, m, 32, work)
                r["ms_per_request"] = 1000 * r["seconds"] / m
                label = f"zero-latency HTTP, pool {pool}"
                results["overhead"][f"{label}, concurrency 32"] = r
                print(
                    f"{label:>26}: {r['ms_per_request']:.3f} ms per request ({m} requests, "
                    f"{r['per_second']:.0f} req/s; client + test server)"
                )

    ratio32 = results["throughput"][32]["ratio"]
    overhead = results["overhead"]["async no-op model"]["ms_per_request"]
    print(
        f"\ntarget: ratio at 32 >= 0.9 -> {ratio32:.3f} "
        f"{'MET' if ratio32 >= 0.9 else 'NOT MET'}; runner overhead well under 1 ms -> "
        f"{overhead:.3f} ms {'MET' if overhead < 0.5 else 'NOT MET'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
