"""``koala-bench export``: Parquet + dataset card, loaded back with ``load_dataset``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset
from source_trees import write_all

from koala import export
from koala.builder import get_config, load_registry
from koala.builder.features import features_for

REPO = Path(__file__).resolve().parent.parent


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    return export.run(parser.parse_args(list(argv)))


def card_yaml(out: Path) -> dict:
    text = (out / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, Path]:
    base = tmp_path_factory.mktemp("export")
    src, out = base / "src", base / "out"
    manifest = write_all(src)
    assert run_cli("--data-dir", str(src), "--out", str(out)) == 0
    return src, out, manifest, base / "hf_cache"


def test_every_config_loads_back_with_its_rows_types_and_audio(exported) -> None:
    _, out, manifest, cache = exported
    registry = load_registry()
    assert set(card_yaml(out)["configs"][i]["config_name"] for i in range(len(registry))) == set(
        registry
    )
    for name, spec in registry.items():
        ds = load_dataset(str(out), name, split="test", cache_dir=str(cache))
        expected = manifest[name]
        assert ds["id"] == list(expected), name
        assert ds.features == features_for(spec.task), name
        for row in ds:
            exp = expected[row["id"]]
            audio = row["audio"]
            assert audio["sampling_rate"] == 16_000
            tol = 0.1 if row["subset"] == "common_voice" else 1e-6
            assert abs(row["duration"] - exp["duration"]) <= tol, (name, row["id"])
            assert len(audio["array"]) == round(row["duration"] * 16_000), (name, row["id"])
            for key, value in exp.items():
                if key == "original_audio":
                    got = row[key]
                    assert (got is None) == (value is None), (name, row["id"])
                    if value is not None:
                        assert len(got["array"]) == round(value * 16_000)
                elif key != "duration":
                    assert row[key] == value, (name, row["id"], key)


def test_streaming_over_the_export(exported) -> None:
    _, out, manifest, cache = exported
    for name in ("pa_qa", "sqa_noisy"):
        rows = list(
            load_dataset(str(out), name, split="test", streaming=True, cache_dir=str(cache))
        )
        assert [r["id"] for r in rows] == list(manifest[name])
        for row in rows:
            assert row["audio"]["sampling_rate"] == 16_000
            assert len(row["audio"]["array"]) == round(row["duration"] * 16_000)


def test_union_configs_point_at_their_subsets_shards(exported) -> None:
    _, out, _, _ = exported
    configs = {c["config_name"]: c for c in card_yaml(out)["configs"]}
    paths = configs["sqa"]["data_files"][0]["path"]
    assert paths == [f"data/{s.config}/test-*.parquet" for s in get_config("sqa").subsets]
    assert not (out / "data" / "sqa").exists()  # not written twice
    assert configs["sqa_noisy"]["data_files"][0]["path"][0] == "data/sqa_click_noisy/test-*.parquet"


def test_the_card(exported) -> None:
    _, out, _, _ = exported
    text = (out / "README.md").read_text(encoding="utf-8")
    meta = card_yaml(out)
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert infos["pa_qa"]["splits"][0]["num_examples"] == 2
    assert infos["sqa"]["splits"][0]["num_examples"] == 8
    assert {"name": "audio", "dtype": {"audio": {"sampling_rate": 16000}}} in infos["pa_qa"][
        "features"
    ]
    assert "| Zeroth-Korean | CC-BY-4.0 |" in text and "| MCTest (PA-QA) | MSR-LA |" in text
    assert "427 of 427 rows" in text  # the PA-QA swap, with its measured count
    assert "`asr_common_voice_noisy` holds **this project's\nrecipe**" in text
    assert "{{" not in text
    # the export's own report: the repairs this build applied
    repairs = "kcsat: choices_misnumbered x1; kcsat: choices_slash_n x1; kcsat: duplicate_index x1"
    assert f"| `sqa_kcsat` | 3 | {repairs} | 0 |" in text


def test_export_is_self_contained(exported, tmp_path: Path) -> None:
    _, out, manifest, _ = exported
    moved = tmp_path / "elsewhere"
    shutil.copytree(out, moved)
    table = pq.read_table(next((moved / "data/sif_kudge").glob("*.parquet")))
    audio = table.column("audio").to_pylist()
    assert all(a["bytes"] and not os.path.isabs(a["path"]) for a in audio)
    ds = load_dataset(str(moved), "sif_kudge", split="test", cache_dir=str(tmp_path / "c"))
    assert [len(r["audio"]["array"]) for r in ds] == [
        round(v["duration"] * 16_000) for v in manifest["sif_kudge"].values()
    ]


def test_failed_export_leaves_no_partial_config(exported, tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    shutil.copytree(exported[0], src)
    (src / "audio/K-SAT/2030_06_2.wav").write_bytes(b"RIFF broken")
    out = tmp_path / "out"
    assert (
        run_cli("--data-dir", str(src), "--out", str(out), "--configs", "pa_qa", "sqa_kcsat") == 2
    )
    err = capsys.readouterr().err
    assert "config 'sqa_kcsat'" in err and "KCSAT_clean.jsonl" in err and "line 2" in err
    assert (out / "data/pa_qa").is_dir() and not (out / "data/sqa_kcsat").exists()
    assert [c["config_name"] for c in card_yaml(out)["configs"]] == ["pa_qa"]
    assert not list(out.glob(".koala-tmp-*"))
    with pytest.raises(ValueError, match="sqa_kcsat"):
        load_dataset(str(out), "sqa_kcsat", split="test", cache_dir=str(tmp_path / "c"))
    assert len(load_dataset(str(out), "pa_qa", split="test", cache_dir=str(tmp_path / "c"))) == 2


SLOW_EXPORT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import koala_bench
from koala import export
original = koala_bench.generate_rows
def slow(*args, **kwargs):
    for k, item in enumerate(original(*args, **kwargs)):
        yield item
        if k == 0:
            Path({marker!r}).touch()
            time.sleep(120)
koala_bench.generate_rows = slow
export.export({src!r}, {out!r}, ["pa_qa"])
"""


def test_killed_export_keeps_the_previous_complete_data(exported, tmp_path: Path) -> None:
    src, _, manifest, _ = exported
    out, marker = tmp_path / "out", tmp_path / "started"
    assert run_cli("--data-dir", str(src), "--out", str(out), "--configs", "pa_qa") == 0
    before = {p.name: p.stat().st_ino for p in (out / "data/pa_qa").iterdir()}
    code = SLOW_EXPORT.format(repo=str(REPO), marker=str(marker), src=str(src), out=str(out))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the export ended before it was interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(out.glob(".koala-tmp-*"))  # the interrupted work, hidden from load_dataset
    assert {p.name: p.stat().st_ino for p in (out / "data/pa_qa").iterdir()} == before
    ds = load_dataset(str(out), "pa_qa", split="test", cache_dir=str(tmp_path / "c"))
    assert ds["id"] == list(manifest["pa_qa"])
    assert all(len(r["audio"]["array"]) == round(r["duration"] * 16_000) for r in ds)
    # the next export clears what the killed one left
    assert run_cli("--data-dir", str(src), "--out", str(out), "--configs", "pa_qa") == 0
    assert not list(out.glob(".koala-tmp-*"))


def test_skip_bad_from_the_command_line(exported, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(exported[0], src)
    (src / "audio/vicuna/000002.wav").unlink()
    out = tmp_path / "out"
    args = ["--data-dir", str(src), "--out", str(out), "--configs", "sif_vicuna"]
    assert run_cli(*args) == 2
    assert run_cli(*args, "--skip-bad") == 0
    ds = load_dataset(str(out), "sif_vicuna", split="test", cache_dir=str(tmp_path / "c"))
    assert ds["id"] == ["vicuna-000001"]
    report = json.loads((out / "export_report.json").read_text(encoding="utf-8"))["sif_vicuna"]
    assert report["skipped"] == 1 and "vicuna-000002" in report["skipped_rows"][0]
    assert "| `sif_vicuna` | 1 | none | 1 |" in (out / "README.md").read_text(encoding="utf-8")


def test_unknown_config_on_the_command_line(tmp_path: Path, capsys) -> None:
    assert (
        run_cli(
            "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--configs", "pa_qa_nosiy"
        )
        == 2
    )
    assert "did you mean 'pa_qa_noisy'" in capsys.readouterr().err


def test_reexport_is_not_served_from_a_stale_cache(exported, tmp_path: Path) -> None:
    """datasets keys its cache of load_dataset(DIR, config) on the card's YAML, not on the
    data files: a re-export whose card would otherwise be byte-identical must still load."""
    src = tmp_path / "src"
    shutil.copytree(exported[0], src)
    out, cache = tmp_path / "out", str(tmp_path / "c")
    meta = src / "Instruct/alpaca_clean.jsonl"
    for text in ("질문 A", "질문 B"):  # same length: same sizes, same row counts
        rows = [json.loads(x) for x in meta.read_text(encoding="utf-8").splitlines()]
        meta.write_text(
            "".join(json.dumps({**r, "prompt": text}, ensure_ascii=False) + "\n" for r in rows),
            encoding="utf-8",
        )
        assert run_cli("--data-dir", str(src), "--out", str(out), "--configs", "sif_alpaca") == 0
        ds = load_dataset(str(out), "sif_alpaca", split="test", cache_dir=cache)
        assert set(ds["prompt"]) == {text}
