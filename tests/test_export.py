"""``koala-bench export``: Parquet + dataset card, loaded back with ``load_dataset``."""

from __future__ import annotations

import argparse
import errno
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


def test_the_card_is_what_huggingface_hub_writes(exported) -> None:
    """The card is written without ``DatasetCard`` (libyaml's emitter instead of the pure-Python
    one): it must be the text ``huggingface_hub`` itself makes of the same card."""
    from huggingface_hub import DatasetCard, DatasetCardData

    _, out, _, _ = exported
    text = (out / "README.md").read_text(encoding="utf-8")
    assert str(DatasetCard(text)) == text
    data = {
        "pretty_name": "KoALa 벤치",
        "configs": [{"config_name": "a", "data_files": [{"split": "test", "path": ["x", "y"]}]}],
        "dataset_info": [{"config_name": "a", "description": 'It\'s "quoted": ok', "n": 3}],
        "license": "other",
    }
    card_data = DatasetCardData(**data)
    assert export.card_yaml(card_data.to_dict()) == card_data.to_yaml()


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


# ----------------------------------------------------------------------------- robust output


def export_args(src: Path, out: Path, *configs: str) -> list[str]:
    return ["--data-dir", str(src), "--out", str(out), "--configs", *configs]


def test_configs_take_commas_and_spaces_like_run(exported, tmp_path: Path) -> None:
    src = exported[0]
    for k, given in enumerate((["sif_vicuna,sqa_kcsat"], ["sif_vicuna, sqa_kcsat"])):
        out = tmp_path / f"out{k}"
        assert run_cli(*export_args(src, out, *given)) == 0  # before: unknown config "a,b"
        assert sorted(p.name for p in (out / "data").iterdir()) == ["sif_vicuna", "sqa_kcsat"]


def test_every_export_option_has_a_help_text_and_the_shard_size_its_unit() -> None:
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    for action in parser._actions:
        assert action.help, action.option_strings
    text = " ".join(parser.format_help().split())
    assert "--max-shard-size SIZE" in text and "(default: 500MB)" in text
    assert "largest Parquet shard, in bytes or with a unit: KB, MB, GB" in text


def test_bad_shard_size_is_refused_before_writing(exported, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = export_args(exported[0], out, "sif_vicuna")
    assert run_cli(*args, "--max-shard-size", "lots") == 2
    err = capsys.readouterr().err
    assert "--max-shard-size 'lots' is not a size" in err and "Traceback" not in err
    assert not out.exists()


def test_out_that_is_a_file_is_refused_without_a_traceback(exported, tmp_path: Path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine", "utf-8")
    assert run_cli(*export_args(exported[0], out, "sif_vicuna")) == 2  # before: a traceback
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and str(out) in err and "Fix:" in err
    assert run_cli(*export_args(exported[0], out / "sub", "sif_vicuna")) == 1
    err = capsys.readouterr().err
    assert "Not a directory" in err and "is a file: pass the path of a folder" in err
    assert "Traceback" not in err
    assert out.read_text("utf-8") == "mine"


def test_full_disk_says_what_failed_and_what_is_intact(
    exported, tmp_path: Path, capsys, monkeypatch
) -> None:
    src, out = exported[0], tmp_path / "out"
    original = export._write_parquet

    def fill_the_disk(rows, features, folder, max_shard_size, name):
        if name == "sqa_kcsat":
            (folder / "shard-00000.parquet").write_bytes(b"PAR1 half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(rows, features, folder, max_shard_size, name)

    monkeypatch.setattr(export, "_write_parquet", fill_the_disk)
    assert run_cli(*export_args(src, out, "sif_vicuna", "sqa_kcsat")) == 1  # before: traceback
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "exporting config 'sqa_kcsat' failed: No space left on device" in err
    assert "nothing of 'sqa_kcsat' was put in place" in err
    assert f"the configs already exported in {out} are intact: sif_vicuna" in err
    assert "Fix: free space on the disk" in err
    assert not (out / "data/sqa_kcsat").exists() and not list(out.glob(".koala-tmp*"))
    ds = load_dataset(str(out), "sif_vicuna", split="test", cache_dir=str(tmp_path / "c"))
    assert len(ds) == 2


def test_read_only_out_says_so(exported, tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # the file system of OUT refuses writes
        if Path(path).parent == out and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert run_cli(*export_args(exported[0], out, "sif_vicuna")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"preparing the export folder {out} failed: Read-only file system" in err
    assert f"no config is exported in {out} yet" in err and f"Fix: make {out} writable" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_read_only_out_folder(exported, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert run_cli(*export_args(exported[0], out, "sif_vicuna")) == 1
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert "Permission denied" in err and "Traceback" not in err


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_card_and_report_respect_the_umask_like_the_parquet(
    exported, tmp_path: Path, umask: int
) -> None:
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        assert run_cli(*export_args(exported[0], out, "sif_vicuna")) == 0
    finally:
        os.umask(old)
    expected = 0o666 & ~umask  # before: README.md and export_report.json were 0600
    shard = next((out / "data/sif_vicuna").glob("*.parquet"))
    modes = {
        p.name: p.stat().st_mode & 0o777
        for p in (out / "README.md", out / "export_report.json", shard)
    }
    assert set(modes.values()) == {expected}, modes


def test_leftovers_of_a_killed_export_are_cleaned_up(exported, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(*export_args(exported[0], out, "sif_vicuna")) == 0
    stale = [
        out / ".koala-tmp-card-1a2b3c4d.md",
        out / ".koala-tmp-report-1a2b3c4d.json",
        out / ".koala-tmpxyz",
    ]
    for p in stale:
        p.write_text("left by a killed export", "utf-8")
    (out / ".koala-tmp-old-sif_vicuna-1a2b3c4d").mkdir()
    mine = out / "notes.koala-tmp.txt"
    mine.write_text("not the exporter's", "utf-8")
    assert run_cli(*export_args(exported[0], out, "sqa_kcsat")) == 0
    assert not list(out.glob(".koala-tmp*"))  # before: the files survived
    assert mine.exists()


def test_the_card_carries_the_exporters_marker(exported) -> None:
    text = (exported[1] / "README.md").read_text(encoding="utf-8")
    assert text.split("\n---\n", 1)[1].startswith(export.CARD_MARKER)
    assert card_yaml(exported[1])["pretty_name"] == "KoALa-Bench"


def test_a_readme_the_exporter_did_not_write_is_not_replaced(
    exported, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("# my own notes\n", "utf-8")
    args = export_args(exported[0], out, "sif_vicuna")
    assert run_cli(*args) == 2  # before: replaced silently
    err = capsys.readouterr().err
    assert "holds README.md, which koala-bench export did not write" in err and "--force" in err
    assert (out / "README.md").read_text("utf-8") == "# my own notes\n"
    assert not (out / "data").exists()
    assert run_cli(*args, "--force") == 0
    assert export.CARD_MARKER in (out / "README.md").read_text("utf-8")
    assert run_cli(*args) == 0  # now it is the exporter's card


def test_a_report_or_data_without_the_exporters_card_is_not_replaced(
    exported, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "other"
    (out / "data/sif_vicuna").mkdir(parents=True)
    (out / "data/sif_vicuna/train.csv").write_text("a,b\n", "utf-8")
    assert run_cli(*export_args(exported[0], out, "sif_vicuna")) == 2
    assert (
        "holds data/sif_vicuna, which koala-bench export did not write" in capsys.readouterr().err
    )
    assert (out / "data/sif_vicuna/train.csv").exists()


@pytest.mark.parametrize("where", ["same", "inside", "holds"])
def test_out_among_the_sources_is_refused_even_with_force(
    exported, tmp_path: Path, capsys, where: str
) -> None:
    src = tmp_path / "KoALA"
    shutil.copytree(exported[0], src)
    (src / "README.md").write_text("the published card\n", "utf-8")
    out = {"same": src, "inside": src / "export", "holds": tmp_path}[where]
    how = {"same": "is", "inside": "lies inside", "holds": "holds"}[where]
    assert run_cli(*export_args(src, out, "sif_vicuna"), "--force") == 2
    err = capsys.readouterr().err
    assert f"--out {str(out)!r} {how} --data-dir {str(src)!r}" in err
    assert (src / "README.md").read_text("utf-8") == "the published card\n"
    assert not (src / "export").exists() and not (src / "data").exists()


def test_exact_duplicates_are_reported_apart_from_siblings(exported, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(exported[0], src)
    meta = src / "SQA/KCSAT_clean.jsonl"
    lines = meta.read_text("utf-8").splitlines(keepends=True)
    meta.write_text("".join(lines) + lines[0], "utf-8")  # line 1 again, exactly
    out = tmp_path / "out"
    assert run_cli(*export_args(src, out, "sqa_kcsat")) == 0
    report = json.loads((out / "export_report.json").read_text("utf-8"))["sqa_kcsat"]
    assert report["fixes"]["kcsat"]["duplicate_row"] == 1
    assert report["fixes"]["kcsat"]["duplicate_index"] == 1  # the sibling: same audio, new question
    assert sum(report["rows"].values()) == 3
    text = (out / "README.md").read_text("utf-8")
    repairs = (
        "kcsat: choices_misnumbered x1; kcsat: choices_slash_n x1; kcsat: duplicate_index x1; "
        "kcsat: duplicate_row x1"
    )
    assert f"| `sqa_kcsat` | 3 | {repairs} | 0 |" in text
    assert "`duplicate_row`: a row repeated exactly" in text


def test_row_groups_are_bounded_by_audio_bytes_not_only_rows(tmp_path, monkeypatch):
    """Long clips (PA-QA passages) make small row groups: the exporter holds one row group in
    memory, so a group is capped by its audio bytes (a single larger row still forms a group)."""
    import pyarrow.parquet as pq

    from koala import export as exp
    from koala.builder.features import features_for

    monkeypatch.setattr(exp, "ROW_GROUP_BYTES", 10_000)
    sizes = [4_000, 4_000, 4_000, 25_000, 100, 100, 9_000, 1_000]

    def rows():
        for k, n in enumerate(sizes):
            yield str(k), {
                "id": str(k),
                "audio": {"bytes": bytes(n), "path": f"{k}.wav"},
                "subset": "s",
                "noise": "clean",
                "duration": 0.0,
                "text": "가",
            }

    (shard,) = exp._write_parquet(rows(), features_for("asr"), tmp_path, 10**9, "t")
    meta = pq.ParquetFile(shard).metadata
    groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    # by hand: [4000, 4000] (a third would make 12,000), [4000] (25,000 would pass), [25000]
    # alone, [100, 100, 9000] (9,200), [1000] (it would make 10,200)
    assert groups == [2, 1, 1, 3, 1]
    assert pq.read_table(shard).column("id").to_pylist() == [str(k) for k in range(len(sizes))]
