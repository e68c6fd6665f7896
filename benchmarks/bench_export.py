"""Export speed and memory: ``koala-bench export`` of short clips and of PA-QA-like long ones.

For each case this writes a KoALA tree with one SIF set (``Instruct/kudge_clean.jsonl`` +
``audio/kudge/*.wav``, 16 kHz 16-bit mono, white noise so nothing compresses away), then:

* the baseline: a plain ``soundfile.read`` of every clip (examples per second);
* the export of ``sif_kudge`` (resolve, check or decode each clip, 16 kHz mono WAV bytes,
  Parquet shards written with pyarrow, the card), in a fresh process, for a quarter of the rows
  and for all of them: examples per second and the peak resident memory of that process.

Cases (``--case``): ``short``, 2,000 clips of 5 s (ASR, SQA); ``long``, 160 clips of 60 to
120 s (PA-QA passages, whose row groups are capped by bytes, not rows); ``both`` (default).
``--rows N --seconds S`` (or ``--seconds 60-120``) runs one case of your own instead.

With ``--format wav`` the clips are already 16 kHz mono 16-bit WAV and are embedded as is; with
``--format flac`` each is decoded and re-encoded. Library imports are outside both timings (in
the export's process: ``datasets``, and the first builder, whose streaming patches import
``scipy.io``). Each timing is the best of ``--repeat`` runs (the machine is shared; the minimum
is the least disturbed run). ``--compare DIR`` also times the export of another checkout (e.g.
``git archive HEAD | tar -x -C DIR``), alternating with this one run by run. Targets: export
speed at least 0.8x the plain read; peak memory at most 400 MB, whatever the number or the
length of the clips.

    .venv/bin/python benchmarks/bench_export.py [--case both] [--repeat 3] [--compare DIR]
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
TARGET_RATIO = 0.8
TARGET_RSS_MB = 400.0
CASES = {"short": (2000, 5.0, 5.0), "long": (160, 60.0, 120.0)}

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from koala import export
# library imports are not part of either timing: datasets, and the first builder's (its
# streaming patches import scipy.io)
export.builder_class()(config_name="sif_kudge", data_dir={src!r}, cache_dir={warm!r})
start = time.perf_counter()
result = export.export({src!r}, {out!r}, ["sif_kudge"], metadata_dir={meta!r})
elapsed = time.perf_counter() - start
print(json.dumps({{"rows": result.rows["sif_kudge"], "seconds": elapsed,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def durations(rows: int, low: float, high: float) -> list[float]:
    """Clip lengths spread evenly from ``low`` to ``high`` seconds, longest and shortest
    interleaved (so each row group mixes them)."""
    if rows == 1 or low == high:
        return [low] * rows
    even = [low + (high - low) * k / (rows - 1) for k in range(rows)]
    return [even[(k // 2) if k % 2 == 0 else rows - 1 - k // 2] for k in range(rows)]


def write_tree(root: Path, seconds: list[float], fmt: str = "wav") -> list[Path]:
    rng = np.random.default_rng(0)
    paths, records = [], []
    for k, length in enumerate(seconds):
        idx = f"{k:06d}"
        path = root / "audio" / "kudge" / f"{idx}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        clip = (0.1 * rng.standard_normal(round(length * 16_000))).astype(np.float32)
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
    for n in (len(seconds) // 4, len(seconds)):
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


def run_export(root: Path, n: int, repo: Path = REPO) -> dict:
    out = root.parent / f"out{n}"  # beside the source tree: never inside --data-dir
    shutil.rmtree(out, ignore_errors=True)
    code = CHILD.format(
        repo=str(repo),
        src=str(root),
        out=str(out),
        meta=str(root / f"meta{n}"),
        warm=str(root.parent / "warm-cache"),
    )
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


def bench_case(
    name: str, seconds: list[float], tmp: Path, fmt: str, repeat: int, compare: Path | None
) -> dict[str, float]:
    rows = len(seconds)
    print(
        f"[{name}] writing {rows} {fmt} clips of {min(seconds):g}-{max(seconds):g} s "
        f"({sum(seconds) / 3600:.1f} h) under {tmp} ..."
    )
    src = tmp / "src"
    paths = write_tree(src, seconds, fmt)
    plain_read(paths)  # warm the page cache, as the export will find it
    base = min(plain_read(paths) for _ in range(repeat))
    base_rate = rows / base
    print(f"plain soundfile read : {base_rate:8.1f} examples/s ({base:.2f} s)")
    repos = {"this checkout": REPO, **({f"{compare}": compare} if compare else {})}
    figures: dict[str, float] = {"plain_rate": base_rate}
    runs: dict[str, list[dict]] = {label: [] for label in repos}
    small: dict[str, dict] = {}
    for _ in range(repeat):  # alternate the checkouts, run by run
        for label, repo in repos.items():
            runs[label].append(run_export(src, rows, repo))
    for label, repo in repos.items():
        small[label] = run_export(src, rows // 4, repo)
        full = min(runs[label], key=lambda r: r["seconds"])
        rate = full["rows"] / full["seconds"]
        ratio = rate / base_rate
        peak = max(r["peak_rss_mb"] for r in runs[label])
        growth = peak / small[label]["peak_rss_mb"]
        print(f"  {label}:")
        print(
            f"    export {full['rows']:5d} rows    : {rate:8.1f} examples/s "
            f"({full['seconds']:.2f} s)  -> {ratio:.2f}x the plain read "
            f"(target >= {TARGET_RATIO}x)"
        )
        print(
            f"    peak RSS, {small[label]['rows']:5d} rows : {small[label]['peak_rss_mb']:8.1f} MB"
        )
        print(
            f"    peak RSS, {full['rows']:5d} rows : {peak:8.1f} MB  (x{growth:.2f} for "
            f"x{full['rows'] / small[label]['rows']:.0f} rows; target <= {TARGET_RSS_MB:.0f} MB)"
        )
        if label == "this checkout":
            figures.update(ratio=ratio, peak_rss_mb=peak)
    exported = sum(f.stat().st_size for f in (tmp / f"out{rows}").rglob("*.parquet"))
    print(f"Parquet written      : {exported / 1e6:8.1f} MB")
    return figures


def parse_seconds(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("short", "long", "both"), default="both")
    parser.add_argument("--rows", type=int, help="a case of your own: this many clips ...")
    parser.add_argument("--seconds", help="... of this many seconds (5) or a range (60-120)")
    parser.add_argument(
        "--format",
        choices=("wav", "flac"),
        default="wav",
        help="clip format: 16 kHz mono WAV is embedded as is; FLAC is decoded and re-encoded",
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--compare", type=Path, help="also time the export of this checkout")
    parser.add_argument("--keep", help="write the trees here and keep them")
    args = parser.parse_args()
    if args.rows or args.seconds:
        low, high = parse_seconds(args.seconds or "5")
        cases = {"custom": (args.rows or 2000, low, high)}
    else:
        cases = {k: v for k, v in CASES.items() if args.case in (k, "both")}
    top = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="koala-bench-export-"))
    summary = {}
    try:
        for name, (rows, low, high) in cases.items():
            tmp = top / name
            summary[name] = bench_case(
                name, durations(rows, low, high), tmp, args.format, args.repeat, args.compare
            )
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    for name, fig in summary.items():
        ok = fig["ratio"] >= TARGET_RATIO and fig["peak_rss_mb"] <= TARGET_RSS_MB
        print(
            f"{name:6s}: {fig['ratio']:.2f}x the plain read, peak RSS {fig['peak_rss_mb']:.0f} MB"
            f" -> {'meets' if ok else 'misses'} the targets"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
