"""A full-size synthetic KoALA source tree, in the published layout, for benchmarks (issue 9).

``write_full_tree(root, scale, seed)`` writes under ``root`` the metadata JSONL files and the
audio of every published set, with the published row counts times ``scale`` (at least 2 rows a
set) and audio of realistic lengths, so that ``koala-bench export --data-dir ROOT`` reads it
unchanged and the stages after it (run, score) see the real benchmark's sizes.

The rows are not invented: each JSONL is the mini benchmark's (:func:`koala.mini.build_mini_tree`,
the published field layout) replicated round-robin up to the scaled count. Each copy gets a
unique ``index`` and its own new audio file(s): ``raw`` (and ``original_raw`` of the SCA-QA
clean files) is rewritten to a new file name in the template's folder; ASR Zeroth rows are
identified by that file name (``id_from: file``); ST rows point into a talk wav with their own
``offset``/``duration``; every other field (PA-QA evidence positions included) is kept from the
template row. Clean and noisy files list the same items in the same order, as published.

Row counts (published metadata, /work/shared/upstream/koala-bench/README.md): Zeroth 457,
CLIcK 1207, KoBEST-BoolQ 1118, K-SAT 85, Instruct alpaca 69 / kudge 557 / openhermes 78 /
vicuna 61, SCA-QA history_before_chosun 101 / history_after_chosun 82 / k-sports 88 / kpop 103,
PA-QA mctest 427, ETRI tst-COMMON 2532 / tst-HE 544 segments. Durations (seconds, uniform):
ASR 3-7, CLIcK and BoolQ 10-20, K-SAT 30-60, SIF 5-10, SCA-QA 20-40, PA-QA 60-120; ST: TED talks
of about 100 segments (3-9 s each, the published mean is 5.7 s), one segment every 6-12 s, so a
talk of 100 segments lasts 10-20 minutes (a talk with fewer segments, at small scales, is
proportionally shorter, so that the audio per segment stays realistic).

Audio: 16 kHz 16-bit mono, white plus pink noise plus a tone (nothing compresses away), seeded
per file, written with soundfile in blocks of 10 s (memory never holds more than a block). The
file type follows the template (``.flac`` for Zeroth, as the Zeroth corpus ships, ``.wav``
elsewhere). The noisy file of an item has the clean file's length and more white noise.

    .venv/bin/python benchmarks/full_tree.py --out DIR --scale 0.05
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import soundfile as sf

SR = 16_000
BLOCK = 10 * SR  # samples written at a time
ST_SEGMENTS_PER_TALK = 100
ST_SEGMENT_S = (3.0, 9.0)
ST_SLOT_S = (6.0, 12.0)  # talk length per segment: 100 segments -> 10-20 min
ST_LEAD_S = 0.5
DEFAULT_MINI_DIR = Path.home() / ".cache" / "koala-bench" / "bench-mini"
SUMMARY_NAME = "full_tree.json"


@dataclass(frozen=True)
class SetSpec:
    """One published set: its metadata files, published row count, clip length and config."""

    name: str
    clean: str
    noisy: str | None
    rows: int
    seconds: tuple[float, float]
    config: str

    def scaled(self, scale: float) -> int:
        return max(2, round(self.rows * scale))


SETS: tuple[SetSpec, ...] = (
    SetSpec(
        "zeroth",
        "ASR/zeroth_korean_test_clean.jsonl",
        "ASR/zeroth_korean_test_other.jsonl",
        457,
        (3, 7),
        "asr_zeroth",
    ),
    SetSpec("click", "SQA/click_clean.jsonl", "SQA/click_other.jsonl", 1207, (10, 20), "sqa_click"),
    SetSpec(
        "kobest_boolq",
        "SQA/kobest_boolq_clean.jsonl",
        "SQA/kobest_boolq_other.jsonl",
        1118,
        (10, 20),
        "sqa_kobest_boolq",
    ),
    SetSpec("kcsat", "SQA/KCSAT_clean.jsonl", "SQA/KCSAT_noise.jsonl", 85, (30, 60), "sqa_kcsat"),
    *(
        SetSpec(n, f"Instruct/{n}_clean.jsonl", f"Instruct/{n}_other.jsonl", r, (5, 10), f"sif_{n}")
        for n, r in (("alpaca", 69), ("kudge", 557), ("openhermes", 78), ("vicuna", 61))
    ),
    *(
        SetSpec(
            n,
            f"SCA-QA/{n}_clean.jsonl",
            f"SCA-QA/{n}_other.jsonl",
            r,
            (20, 40),
            f"sca_qa_{n.replace('-', '_')}",
        )
        for n, r in (
            ("history_before_chosun", 101),
            ("history_after_chosun", 82),
            ("k-sports", 88),
            ("kpop", 103),
        )
    ),
    SetSpec(
        "mctest", "PA-QA/mctest_clean.jsonl", "PA-QA/mctest_other.jsonl", 427, (60, 120), "pa_qa"
    ),
    SetSpec(
        "tst_common",
        "Translation/etri_tst-COMMON_clean.jsonl",
        None,
        2532,
        ST_SEGMENT_S,
        "st_tst_common",
    ),
    SetSpec("tst_he", "Translation/etri_tst-HE_clean.jsonl", None, 544, ST_SEGMENT_S, "st_tst_he"),
)


# ------------------------------------------------------------------------------------- audio
def _blocks(rng: np.random.Generator, n: int, noise: float) -> Iterator[np.ndarray]:
    """``n`` samples in blocks of :data:`BLOCK`: a tone, white noise and pink-ish noise (white
    noise through a leaky integrator, its state carried from block to block)."""
    from scipy.signal import lfilter

    freq = rng.uniform(120.0, 400.0)
    phase = 0.0
    zi = np.zeros(1)
    done = 0
    while done < n:
        m = min(BLOCK, n - done)
        tone = 0.1 * np.sin(2 * np.pi * freq * np.arange(m) / SR + phase)
        phase = (phase + 2 * np.pi * freq * m / SR) % (2 * np.pi)
        white = rng.standard_normal(m)
        pink, zi = lfilter([0.1], [1.0, -0.98], white, zi=zi)
        out = tone + noise * white + 0.05 * pink
        yield np.clip(out, -1.0, 1.0).astype(np.float32)
        done += m


def write_audio(path: Path, seconds: float, seed: list[int], noisy: bool = False) -> int:
    """Write a clip of ``seconds`` at 16 kHz 16-bit mono (format from the suffix); its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = round(seconds * SR)
    rng = np.random.default_rng(seed)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    with sf.SoundFile(str(path), "w", SR, 1, "PCM_16", format=fmt) as f:
        for block in _blocks(rng, n, 0.15 if noisy else 0.05):
            f.write(block)
    return path.stat().st_size


# -------------------------------------------------------------------------------------- rows
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _renamed(raw: str, old_index: str, new_index: str) -> str:
    """``raw`` with the file name made unique: the template's index in the stem replaced by
    ``new_index`` (else prefixed), ``mini`` turned into ``full``; folder and suffixes kept."""
    p = PurePosixPath(raw)
    stem = p.stem
    stem = (
        stem.replace(old_index, new_index)
        if old_index and old_index in stem
        else f"{new_index}_{stem}"
    )
    return str(p.with_name(stem.replace("mini", "full") + p.suffix))


def _seconds(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return round(float(rng.uniform(*lo_hi)), 2)


class _Writer:
    """Counts what the tree holds while it is written."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root, self.seed = root, seed
        self.files = 0
        self.bytes = 0
        self.seconds = 0.0

    def audio(self, raw: str, seconds: float, key: list[int], noisy: bool = False) -> None:
        self.bytes += write_audio(self.root / raw, seconds, [self.seed, *key], noisy)
        self.files += 1
        self.seconds += seconds


def _write_set(w: _Writer, mini: Path, spec: SetSpec, set_no: int, n: int) -> dict[str, int]:
    clean_t = _read_jsonl(mini / spec.clean)
    noisy_t = _read_jsonl(mini / spec.noisy) if spec.noisy else []
    rng = np.random.default_rng([w.seed, set_no])
    rows: dict[str, int] = {spec.clean: 0}
    (w.root / spec.clean).parent.mkdir(parents=True, exist_ok=True)
    clean_f = (w.root / spec.clean).open("w", encoding="utf-8")
    noisy_f = (w.root / spec.noisy).open("w", encoding="utf-8") if spec.noisy else None
    if spec.noisy:
        rows[spec.noisy] = 0
    try:
        for k in range(n):
            index = f"{k:06d}"
            t = clean_t[k % len(clean_t)]
            old = str(t.get("index", ""))
            clean = dict(t)
            if "index" in clean:
                clean["index"] = index
            seconds = _seconds(rng, spec.seconds)
            clean["raw"] = _renamed(t["raw"], old, index)
            w.audio(clean["raw"], seconds, [set_no, k, 0])
            if isinstance(t.get("original_raw"), str):
                clean["original_raw"] = _renamed(t["original_raw"], old, index)
                w.audio(clean["original_raw"], _seconds(rng, spec.seconds), [set_no, k, 2])
            clean_f.write(json.dumps(clean, ensure_ascii=False) + "\n")
            rows[spec.clean] += 1
            if noisy_f is not None and spec.noisy:
                nt = noisy_t[k % len(noisy_t)]
                noisy = dict(nt)
                if "index" in noisy:
                    noisy["index"] = index
                noisy["raw"] = _renamed(nt["raw"], str(nt.get("index", "")), index)
                w.audio(noisy["raw"], seconds, [set_no, k, 1], noisy=True)
                noisy_f.write(json.dumps(noisy, ensure_ascii=False) + "\n")
                rows[spec.noisy] += 1
    finally:
        clean_f.close()
        if noisy_f is not None:
            noisy_f.close()
    return rows


def _write_st(w: _Writer, mini: Path, spec: SetSpec, set_no: int, n: int) -> dict[str, int]:
    """ST: ``ceil(n / 100)`` talks, the segments spread evenly over them, each segment in its
    own slot of the talk (``offset`` and ``duration`` multiples of 10 ms, as ETRI's)."""
    template = _read_jsonl(mini / spec.clean)
    rng = np.random.default_rng([w.seed, set_no])
    talks = math.ceil(n / ST_SEGMENTS_PER_TALK)
    per_talk = [n // talks + (1 if t < n % talks else 0) for t in range(talks)]
    folder = PurePosixPath(template[0]["raw"]).parent
    k = 0
    (w.root / spec.clean).parent.mkdir(parents=True, exist_ok=True)
    with (w.root / spec.clean).open("w", encoding="utf-8") as f:
        for talk_no, count in enumerate(per_talk):
            talk_id = 1000 * (set_no + 1) + talk_no
            raw = str(folder / f"ted_{talk_id}.wav")
            slot = float(rng.uniform(*ST_SLOT_S))
            total = round(ST_LEAD_S + count * slot + 1.0, 2)
            w.audio(raw, total, [set_no, talk_no, 3])
            for j in range(count):
                t = dict(template[k % len(template)])
                duration = round(min(float(rng.uniform(*spec.seconds)), 0.9 * slot), 2)
                start = ST_LEAD_S + j * slot
                offset = round(start + float(rng.uniform(0, slot - duration)), 2)
                if "index" in t:
                    t["index"] = f"{k:06d}"
                t.update(raw=raw, offset=offset, duration=duration)
                if "speaker_id" in t:
                    t["speaker_id"] = f"spk.{talk_id}"
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
                k += 1
    return {spec.clean: n}


def write_full_tree(
    root: Path, scale: float = 1.0, seed: int = 0, mini_dir: Path | None = None
) -> dict[str, Any]:
    """Write the synthetic tree under ``root`` (see the module docstring) and return a summary:
    ``root``, ``scale``, ``seed``, ``files`` (audio files), ``hours`` (of audio), ``bytes`` (of
    audio), ``rows`` (per metadata file, relative path -> rows) and ``configs`` (per clean and
    noisy config of each set -> the rows ``koala-bench export`` should write: rows of a PA-QA
    template marked not valid are left out by the builder, so they are not counted).
    The summary is also written to ``root/full_tree.json``.

    The mini tree (the row template) is built, or reused, in ``mini_dir`` (default
    ``~/.cache/koala-bench/bench-mini``); it needs espeak-ng the first time.
    """
    from koala.mini import build_mini_tree

    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    root = Path(root)
    mini = build_mini_tree(mini_dir or DEFAULT_MINI_DIR)
    root.mkdir(parents=True, exist_ok=True)
    w = _Writer(root, seed)
    rows: dict[str, int] = {}
    configs: dict[str, int] = {}
    for set_no, spec in enumerate(SETS):
        n = spec.scaled(scale)
        if spec.config.startswith("st_"):
            rows.update(_write_st(w, mini, spec, set_no, n))
        else:
            rows.update(_write_set(w, mini, spec, set_no, n))
        template = _read_jsonl(mini / spec.clean)
        valid = sum(
            1
            for k in range(n)
            if spec.config != "pa_qa" or template[k % len(template)].get("is_valid") is True
        )
        configs[spec.config] = valid
        if spec.noisy:
            configs[f"{spec.config}_noisy"] = valid
    summary: dict[str, Any] = {
        "root": str(root),
        "scale": scale,
        "seed": seed,
        "files": w.files,
        "hours": w.seconds / 3600,
        "bytes": w.bytes,
        "rows": rows,
        "configs": configs,
    }
    (root / SUMMARY_NAME).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder of the tree (created)")
    parser.add_argument("--scale", type=float, default=1.0, help="row counts x this (1.0: full)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mini-dir", default=None, help="where the mini tree is cached")
    args = parser.parse_args(argv)
    s = write_full_tree(
        Path(args.out), args.scale, args.seed, Path(args.mini_dir) if args.mini_dir else None
    )
    print(
        f"{s['root']}: {s['files']} audio files, {s['hours']:.2f} h, {s['bytes'] / 1e9:.2f} GB, "
        f"{sum(s['configs'].values())} rows in {len(s['configs'])} configs"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    sys.exit(main())
