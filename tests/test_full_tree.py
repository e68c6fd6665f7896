"""The full-size synthetic KoALA tree of ``benchmarks/full_tree.py``, at a tiny scale: the files
exist with the stated durations, the ids are unique, the counts are the published ones scaled,
and ``koala-bench export`` reads the tree unchanged (one config per task family)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

sf = pytest.importorskip("soundfile")
BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import full_tree  # noqa: E402

SCALE = 0.005
# published row counts x 0.005, rounded, at least 2 (worked by hand: 457 x .005 = 2.285 -> 2,
# 1207 -> 6.035 -> 6, 1118 -> 5.59 -> 6, 85 -> 0.425 -> 2, 557 -> 2.785 -> 3, 427 -> 2.135 -> 2,
# 2532 -> 12.66 -> 13, 544 -> 2.72 -> 3; every other set is below 2)
EXPECTED_ROWS = {
    "ASR/zeroth_korean_test_clean.jsonl": 2,
    "ASR/zeroth_korean_test_other.jsonl": 2,
    "SQA/click_clean.jsonl": 6,
    "SQA/click_other.jsonl": 6,
    "SQA/kobest_boolq_clean.jsonl": 6,
    "SQA/kobest_boolq_other.jsonl": 6,
    "SQA/KCSAT_clean.jsonl": 2,
    "SQA/KCSAT_noise.jsonl": 2,
    "Instruct/alpaca_clean.jsonl": 2,
    "Instruct/alpaca_other.jsonl": 2,
    "Instruct/kudge_clean.jsonl": 3,
    "Instruct/kudge_other.jsonl": 3,
    "Instruct/openhermes_clean.jsonl": 2,
    "Instruct/openhermes_other.jsonl": 2,
    "Instruct/vicuna_clean.jsonl": 2,
    "Instruct/vicuna_other.jsonl": 2,
    "SCA-QA/history_before_chosun_clean.jsonl": 2,
    "SCA-QA/history_before_chosun_other.jsonl": 2,
    "SCA-QA/history_after_chosun_clean.jsonl": 2,
    "SCA-QA/history_after_chosun_other.jsonl": 2,
    "SCA-QA/k-sports_clean.jsonl": 2,
    "SCA-QA/k-sports_other.jsonl": 2,
    "SCA-QA/kpop_clean.jsonl": 2,
    "SCA-QA/kpop_other.jsonl": 2,
    "PA-QA/mctest_clean.jsonl": 2,
    "PA-QA/mctest_other.jsonl": 2,
    "Translation/etri_tst-COMMON_clean.jsonl": 13,
    "Translation/etri_tst-HE_clean.jsonl": 3,
}
# the stated clip lengths per metadata folder (seconds)
RANGES = {
    "ASR": (3, 7),
    "SQA/click": (10, 20),
    "SQA/kobest_boolq": (10, 20),
    "SQA/KCSAT": (30, 60),
    "Instruct": (5, 10),
    "SCA-QA": (20, 40),
    "PA-QA": (60, 120),
}

pytestmark = [
    pytest.mark.slow,  # synthesises the mini benchmark's speech (a few seconds) as its template
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (the template)"
    ),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("full_tree")
    root = base / "tree"
    summary = full_tree.write_full_tree(root, SCALE, seed=0, mini_dir=base / "mini")
    return root, summary


def _rows(root: Path, rel: str) -> list[dict]:
    return [json.loads(line) for line in (root / rel).read_text("utf-8").splitlines() if line]


def _seconds(path: Path) -> float:
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    return info.frames / info.samplerate


def test_counts_are_the_published_ones_scaled(tree: tuple[Path, dict]) -> None:
    root, summary = tree
    assert summary["rows"] == EXPECTED_ROWS
    for rel, n in EXPECTED_ROWS.items():
        assert len(_rows(root, rel)) == n, rel
    assert json.loads((root / "full_tree.json").read_text()) == summary


def test_clips_exist_with_the_stated_durations(tree: tuple[Path, dict]) -> None:
    root, summary = tree
    files, seconds = 0, 0.0
    for rel in EXPECTED_ROWS:
        if rel.startswith("Translation/"):
            continue
        lo, hi = next(r for prefix, r in RANGES.items() if rel.startswith(prefix))
        for row in _rows(root, rel):
            for key in ("raw", "original_raw"):
                if key in row:
                    s = _seconds(root / row[key])
                    assert lo - 0.01 <= s <= hi + 0.01, (rel, row[key], s)
                    files, seconds = files + 1, seconds + s
    talks = {
        row["raw"]
        for rel in EXPECTED_ROWS
        if rel.startswith("Translation/")
        for row in _rows(root, rel)
    }
    files += len(talks)
    seconds += sum(_seconds(root / t) for t in talks)
    assert summary["files"] == files
    assert math.isclose(summary["hours"], seconds / 3600, rel_tol=1e-3)


def test_noisy_files_pair_with_clean_ones(tree: tuple[Path, dict]) -> None:
    root, _ = tree
    clean = _rows(root, "SQA/click_clean.jsonl")
    noisy = _rows(root, "SQA/click_other.jsonl")
    assert [r["index"] for r in clean] == [r["index"] for r in noisy]
    for c, n in zip(clean, noisy, strict=True):
        assert c["raw"].startswith("audio/") and n["raw"].startswith("audio_noise/")
        assert _seconds(root / c["raw"]) == _seconds(root / n["raw"])


def test_ids_and_audio_files_are_unique(tree: tuple[Path, dict]) -> None:
    root, _ = tree
    for rel in EXPECTED_ROWS:
        rows = _rows(root, rel)
        if rel.startswith("Translation/"):
            keys = Counter((r["raw"], r["offset"]) for r in rows)
        else:
            keys = Counter(r["raw"] for r in rows)
            assert len({r["index"] for r in rows}) == len(rows), rel
        assert max(keys.values()) == 1, rel
    # Zeroth rows are identified by their file name: those must be unique too
    stems = [Path(r["raw"]).stem for r in _rows(root, "ASR/zeroth_korean_test_clean.jsonl")]
    assert len(set(stems)) == len(stems)


def test_st_segments_lie_inside_their_talks(tree: tuple[Path, dict]) -> None:
    root, _ = tree
    rows = _rows(root, "Translation/etri_tst-COMMON_clean.jsonl")
    assert len({r["raw"] for r in rows}) == 1  # 13 segments: one talk (100 a talk)
    talk = _seconds(root / rows[0]["raw"])
    for r in rows:
        assert 3.0 - 0.01 <= r["duration"] <= 9.0 + 0.01
        assert 0 <= r["offset"] and r["offset"] + r["duration"] <= talk
    # one segment every 6-12 s: 13 segments make a talk of 78-156 s (+ 1.5 s lead and tail)
    assert 13 * 6 <= talk <= 13 * 12 + 1.5


def test_export_reads_the_tree(tree: tuple[Path, dict], tmp_path: Path) -> None:
    from koala.cli import main

    root, summary = tree
    configs = ["asr_zeroth", "sqa_kcsat_noisy", "sca_qa_kpop", "pa_qa", "st_tst_common"]
    out = tmp_path / "export"
    assert main(["export", "--data-dir", str(root), "--out", str(out), "--configs", *configs]) == 0
    report = json.loads((out / "export_report.json").read_text())
    for c in configs:
        assert sum(report[c]["rows"].values()) == summary["configs"][c], c
    assert summary["configs"]["st_tst_common"] == 13
    assert summary["configs"]["pa_qa"] == 2
