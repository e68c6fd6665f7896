"""The export's Parquet writer: row groups sized by bytes and rows, built column by column
and written as they fill (issue 9), with the exported values, schema and row order unchanged.

Expected values are worked out by hand from the rows given; the one reference taken from a
library is ``pa.Table.from_pylist(rows, schema=schema)``, which is how the exporter built each
row group before (the tables must be equal, cell by cell)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from koala import export as exp
from koala.builder.features import features_for
from koala.sources import AudioResolver, SourceError, looks_noisy

SCHEMA = "sca_qa"  # a task with two audio columns: audio and original_audio


def make_row(k: int, audio: bytes | None, original: bytes | None) -> dict:
    return {
        "id": f"r{k}",
        "audio": None if audio is None else {"bytes": audio, "path": f"r{k}.wav"},
        "subset": "s",
        "noise": "clean",
        "duration": k / 4,
        "question": f"질문 {k}",
        "choices": ["가", "나"],
        "choice_labels": ["1", "2"],
        "answer": "1",
        "counterfactual_answer": "",
        "context": "맥락",
        "domain": "d",
        "original_audio": None if original is None else {"bytes": original, "path": f"r{k}.o.wav"},
    }


def groups_of(shard: Path) -> list[int]:
    meta = pq.ParquetFile(shard).metadata
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]


def keyed(rows: list[dict]):
    return ((row["id"], row) for row in rows)


def test_row_groups_are_capped_by_rows(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(exp, "ROW_GROUP_ROWS", 3)
    rows = [make_row(k, bytes([k]) * 10, None) for k in range(8)]
    (shard,) = exp._write_parquet(keyed(rows), features_for(SCHEMA), tmp_path, 10**9, "t")
    assert groups_of(shard) == [3, 3, 2]  # 8 rows, 3 at most per group
    assert pq.read_table(shard).column("id").to_pylist() == [f"r{k}" for k in range(8)]


def test_bytes_cap_counts_every_audio_column(tmp_path, monkeypatch) -> None:
    """Both ``audio`` and ``original_audio`` count towards ROW_GROUP_BYTES."""
    monkeypatch.setattr(exp, "ROW_GROUP_BYTES", 10_000)
    sizes = [(3000, 3000), (3000, None), (2000, None), (4000, 4000), (12_000, 500), (1, 1)]
    rows = [make_row(k, os.urandom(a), o and os.urandom(o)) for k, (a, o) in enumerate(sizes)]
    (shard,) = exp._write_parquet(keyed(rows), features_for(SCHEMA), tmp_path, 10**9, "t")
    # by hand: 6000 + 3000 = 9000; + 2000 would be 11,000 -> [r0, r1]; 2000 + 8000 = 10,000
    # (not above the cap) -> [r2, r3]; r4 alone (12,500, a single row past the cap);
    # r5 (2) -> [r5]
    assert groups_of(shard) == [2, 2, 1, 1]
    table = pq.read_table(shard)
    for row, got in zip(rows, table.to_pylist(), strict=True):
        assert got["audio"] == row["audio"]  # later, smaller groups reuse the buffer
        assert got["original_audio"] == row["original_audio"]


def test_a_group_table_equals_from_pylist_cell_by_cell() -> None:
    """Missing columns are null, unknown keys ignored, an audio value None is a null struct
    (its children null too), bytes None or empty are kept as given."""
    schema = features_for(SCHEMA).arrow_schema
    rows = [
        make_row(0, b"\x01\x02\x03", None),
        {**make_row(1, b"", b"xyz"), "unknown": 5},
        {"id": "r2", "audio": {"bytes": None, "path": "r2.wav"}, "duration": 0.5},
        make_row(3, None, b"\x00" * 7),
    ]
    group = exp._RowGroup(schema)
    for row in rows:
        group.add(row, group.audio_size(row))
    assert [group.audio_size(r) for r in rows] == [3, 3, 0, 7]
    table = group.table()
    reference = pa.Table.from_pylist(rows, schema=schema)
    assert table.schema.equals(reference.schema, check_metadata=True)
    assert table.equals(reference)
    got = table.to_pylist()
    assert got[0]["original_audio"] is None and got[3]["audio"] is None
    assert got[1]["audio"] == {"bytes": b"", "path": "r1.wav"}
    assert got[2]["audio"] == {"bytes": None, "path": "r2.wav"}
    assert got[2]["question"] is None and got[2]["duration"] == 0.5
    assert "unknown" not in table.column_names


def wav(samples: list[int]) -> bytes:
    """A 16 kHz mono 16-bit PCM WAV file, byte by byte."""
    data = struct.pack(f"<{len(samples)}h", *samples)
    fmt = struct.pack("<HHIIHH", 1, 1, 16_000, 32_000, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


@pytest.fixture
def three_rows(tmp_path: Path) -> tuple[Path, list[bytes]]:
    src = tmp_path / "src"
    (src / "Instruct").mkdir(parents=True)
    (src / "audio" / "kudge").mkdir(parents=True)
    clips = [wav([1, -2, 3]), wav([100] * 16_000), wav([-32768, 32767])]
    records = []
    for k, clip in enumerate(clips):
        (src / "audio" / "kudge" / f"00000{k}.wav").write_bytes(clip)
        records.append(
            {
                "index": f"00000{k}",
                "raw": f"audio/kudge/00000{k}.wav",
                "prompt": f" 프롬프트 {k} ",
                "question_ko": f"질문 {k}",
                "answer_ko": f"답 {k}",
            }
        )
    (src / "Instruct" / "kudge_clean.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8"
    )
    return src, clips


def test_export_of_a_three_row_tree_by_hand(three_rows, tmp_path) -> None:
    src, clips = three_rows
    out = tmp_path / "out"
    result = exp.export(src, out, ["sif_kudge"])
    assert result.rows == {"sif_kudge": 3}
    (shard,) = sorted((out / "data" / "sif_kudge").glob("*.parquet"))
    assert shard.name == "test-00000-of-00001.parquet"
    table = pq.read_table(shard)
    assert table.schema.equals(features_for("sif").arrow_schema, check_metadata=True)
    info = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert info["audio"] == {"sampling_rate": 16000, "_type": "Audio"}
    assert table.column_names == [
        "id",
        "audio",
        "subset",
        "noise",
        "duration",
        "instruction",
        "prompt",
        "reference_answer",
    ]
    assert table.to_pylist() == [
        {
            "id": f"kudge-00000{k}",
            "audio": {"bytes": clips[k], "path": f"kudge-00000{k}.wav"},  # stored as is
            "subset": "kudge",
            "noise": "clean",
            "duration": n / 16_000,
            "instruction": f"질문 {k}",
            "prompt": f"프롬프트 {k}",  # stripped
            "reference_answer": f"답 {k}",
        }
        for k, n in enumerate([3, 16_000, 2])
    ]
    assert groups_of(shard) == [3]
    options = pq.ParquetFile(shard).metadata.row_group(0)
    by_path = {options.column(c).path_in_schema: options.column(c) for c in range(8)}
    assert by_path["audio.bytes"].compression == "UNCOMPRESSED"
    assert not by_path["audio.bytes"].is_stats_set
    assert by_path["id"].compression == "SNAPPY"


def test_shards_roll_over_by_size_and_keep_row_order(three_rows, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(exp, "ROW_GROUP_ROWS", 1)
    src, clips = three_rows
    out = tmp_path / "out"
    # a shard is closed once it holds 1 byte or more of Arrow data: one row (group) per shard
    exp.export(src, out, ["sif_kudge"], max_shard_size=1)
    shards = sorted((out / "data" / "sif_kudge").glob("*.parquet"))
    assert [s.name for s in shards] == [f"test-0000{k}-of-00003.parquet" for k in range(3)]
    got = [pq.read_table(s).column("audio").to_pylist()[0]["bytes"] for s in shards]
    assert got == clips


def rows_then(fail_at: int, n: int):
    for k in range(n):
        if k == fail_at:
            raise SourceError("bad row", row_id=f"r{k}")
        yield f"r{k}", make_row(k, bytes(100), None)


def test_a_failing_row_surfaces_and_the_groups_written_stay_readable(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(exp, "ROW_GROUP_ROWS", 2)
    with pytest.raises(SourceError, match="bad row"):
        exp._write_parquet(rows_then(5, 9), features_for(SCHEMA), tmp_path, 10**9, "t")
    (shard,) = tmp_path.glob("*.parquet")  # closed, with the two full groups before row 5
    assert groups_of(shard) == [2, 2]
    assert pq.read_table(shard).column("id").to_pylist() == ["r0", "r1", "r2", "r3"]


def test_a_failing_write_surfaces(tmp_path, monkeypatch) -> None:
    """A write fails in the writer thread; the error reaches the caller, and no group is
    handed over after it."""
    monkeypatch.setattr(exp, "ROW_GROUP_ROWS", 2)
    original = exp._Shards._write
    calls = []

    def full_disk(self, group):
        calls.append(group.rows)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        original(self, group)

    monkeypatch.setattr(exp._Shards, "_write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        exp._write_parquet(rows_then(-1, 9), features_for(SCHEMA), tmp_path, 10**9, "t")
    assert calls == [2, 2]  # the second write failed: nothing more was written


@pytest.mark.parametrize(
    ("raw", "noisy"),
    [
        ("a/b_noise/./c.wav", True),  # a folder *_noise; '.' parts are no parts
        ("a/b/../c_noisy.wav", True),  # '..' is a part like any other
        ("audio_noise/", True),  # the last part is the file: its stem 'audio_noise'
        ("x_noisy.", False),  # a trailing dot is no suffix: the stem is 'x_noisy.'
        ("d.x/y_noise.tar.gz", False),  # only the last suffix goes: the stem is 'y_noise.tar'
        ("d.x/y_noise.wav", True),
        (".x_noisy", True),  # a leading dot is no suffix: the stem is '.x_noisy'
        ("clean/x.noisy.wav", False),  # the stem is 'x.noisy': no '_noisy'
        ("dir\\000_noisy.wav", True),  # Windows separators
        ("", False),
        ("/", False),
    ],
)
def test_looks_noisy_reads_paths_as_pure_posix_paths(raw: str, noisy: bool) -> None:
    assert looks_noisy(raw) is noisy


def test_a_link_out_is_refused_beside_files_already_resolved(tmp_path) -> None:
    """The real path of a folder is looked up once; a file in it that is itself a link out
    of the root is still refused."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "audio").mkdir(parents=True)
    outside.mkdir()
    (root / "audio" / "a.wav").write_bytes(b"a")
    (outside / "secret.wav").write_bytes(b"s")
    (root / "audio" / "b.wav").symlink_to(outside / "secret.wav")
    (root / "audio" / "c.wav").symlink_to(root / "audio" / "a.wav")  # a link inside: fine
    resolver = AudioResolver(root)
    assert resolver.resolve("audio/a.wav") == root / "audio" / "a.wav"
    with pytest.raises(SourceError, match="leads out of the data root"):
        resolver.resolve("audio/b.wav")
    assert resolver.resolve("audio/c.wav") == root / "audio" / "c.wav"
    linked = tmp_path / "linked"  # a folder that is a link out: its files are refused too
    linked.symlink_to(outside)
    (root / "audio" / "sub").symlink_to(linked)
    with pytest.raises(SourceError, match="leads out of the data root"):
        resolver.resolve("audio/sub/secret.wav")


def test_groups_are_written_as_they_fill(tmp_path, monkeypatch) -> None:
    """Memory holds the row group being filled and the WRITE_AHEAD ones handed to the writer
    thread: every row before those is on disk already."""
    monkeypatch.setattr(exp, "ROW_GROUP_ROWS", 2)
    monkeypatch.setattr(exp, "WRITE_AHEAD", 1)
    on_disk = []

    def rows():
        for k in range(9):
            if k in (2, 4, 6, 8):  # the row after each full group
                on_disk.append(sum(f.stat().st_size for f in tmp_path.glob("*.parquet")))
            yield f"r{k}", make_row(k, bytes(10_000), None)

    exp._write_parquet(rows(), features_for(SCHEMA), tmp_path, 10**9, "t")
    # by hand: at row 4 the group of rows 0-1 is written (handing over rows 2-3 waited for
    # it), at row 6 rows 0-3, at row 8 rows 0-5; 10,000 bytes of audio each, uncompressed
    assert on_disk[1] >= 20_000 and on_disk[2] >= 40_000 and on_disk[3] >= 60_000
