"""Export speed and memory: ``koala-bench export`` of a config of 2,000 five-second clips.

Writes a KoALA tree with one SIF set (``Instruct/kudge_clean.jsonl`` + ``audio/kudge/*.wav``,
16 kHz 16-bit mono, white noise so nothing compresses away), then, in the same run:

* the baseline: a plain ``soundfile.read`` of every clip (examples per second);
* the export of ``sif_kudge`` (resolve, check or decode each clip, 16 kHz mono WAV bytes,
  Parquet shards written with pyarrow, the card), in a fresh process, for 500 and for 2,000
  rows: examples per second and the peak resident memory of that process.

With ``--format wav`` the clips are already 16 kHz mono 16-bit WAV and are embedded as is; with
``--format flac`` each is decoded and re-encoded. Library imports are outside both timings.
Each timing is the best of ``--repeat`` runs (the machine is shared; the minimum is the least
disturbed run). Targets: export speed at least 0.5x the plain read; peak memory that does not
grow with the number of rows (rows are generated and written one batch at a time).

    .venv/bin/python benchmarks/bench_export.py [--rows 2000] [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from koala import export
export.builder_class()  # library imports (datasets, ...) are not part of either timing
start = time.perf_counter()
result = export.export({src!r}, {out!r}, ["sif_kudge"], metadata_dir={meta!r})
elapsed = time.perf_counter() - start
print(json.dumps({{"rows": result.rows["sif_kudge"], "seconds": elapsed,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def write_tree(root: Path, rows: int, seconds: float, fmt: str = "wav") -> list[Path]:
    rng = np.random.default_rng(0)
    paths, records = [], []
    for k in range(rows):
        idx = f"{k:06d}"
        path = root / "audio" / "kudge" / f"{idx}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        clip = (0.1 * rng.standard_normal(round(seconds * 16_000))).astype(np.float32)
        sf.write(str(path), clip, 16_000, subtype="PCM_16")
        paths.append(path)
        records.append(
            {
                "index": idx,
                "raw": f"audio/kudge/{idx}.{fmt}",
                "prompt": "질문에 답하세요.",
                "question_ko": f"질문 {k}",
                "answer_ko": f"답 {k}",
            }
        )
    for n in (rows // 4, rows):
        meta = root / f"meta{n}" / "Instruct"
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "kudge_clean.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[:n]), "utf-8"
        )
    return paths


def plain_read(paths: list[Path]) -> float:
    start = time.perf_counter()
    total = 0
    for p in paths:
        data, _ = sf.read(str(p), dtype="float32")
        total += len(data)
    assert total > 0
    return time.perf_counter() - start


def run_export(root: Path, n: int) -> dict:
    out = root.parent / f"out{n}"  # beside the source tree: never inside --data-dir
    shutil.rmtree(out, ignore_errors=True)
    code = CHILD.format(repo=str(REPO), src=str(root), out=str(out), meta=str(root / f"meta{n}"))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "PATH": "/usr/bin:/bin",
            "HOME": str(root),
        },
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--format",
        choices=("wav", "flac"),
        default="wav",
        help="clip format: 16 kHz mono WAV is embedded as is; FLAC is decoded and re-encoded",
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--keep", help="write the tree here and keep it")
    args = parser.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="koala-bench-export-"))
    try:
        print(f"writing {args.rows} {args.format} clips of {args.seconds} s under {tmp} ...")
        src = tmp / "src"
        paths = write_tree(src, args.rows, args.seconds, args.format)
        plain_read(paths)  # warm the page cache, as the export will find it
        base = min(plain_read(paths) for _ in range(args.repeat))
        small = run_export(src, args.rows // 4)
        full = min(
            (run_export(src, args.rows) for _ in range(args.repeat)), key=lambda r: r["seconds"]
        )
        base_rate = args.rows / base
        rate = full["rows"] / full["seconds"]
        print(f"plain soundfile read : {base_rate:8.1f} examples/s ({base:.2f} s)")
        print(
            f"export {full['rows']:5d} rows    : {rate:8.1f} examples/s ({full['seconds']:.2f} s)"
            f"  -> {rate / base_rate:.2f}x the plain read (target >= 0.5x)"
        )
        print(f"peak RSS, {small['rows']:5d} rows : {small['peak_rss_mb']:8.1f} MB")
        growth = full["peak_rss_mb"] / small["peak_rss_mb"]
        print(
            f"peak RSS, {full['rows']:5d} rows : {full['peak_rss_mb']:8.1f} MB"
            f"  (x{growth:.2f} for x{full['rows'] / small['rows']:.0f} rows)"
        )
        exported = sum(f.stat().st_size for f in (tmp / f"out{args.rows}").rglob("*.parquet"))
        print(f"Parquet written      : {exported / 1e6:8.1f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
