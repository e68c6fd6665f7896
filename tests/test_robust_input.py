"""Source readers on hostile input: bytes that are not UTF-8, a byte-order mark, symbolic links
that lead out of the data root, and rows repeated exactly."""

from __future__ import annotations

import codecs
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from source_trees import tone, write_all, write_audio

from koala.builder import BuildOptions, BuildReport, generate_rows, get_config
from koala.builder.generate import FIX_DESCRIPTIONS
from koala.sources import AudioResolver, SourceError, read_jsonl
from koala.sources.common_voice import read_tsv
from koala.sources.koala_meta import partner_paths
from koala.sources.ksponspeech import read_trn
from koala.sources.zeroth import read_zeroth


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("robust") / "src"
    write_all(root, use_speech=False, external=False)
    return root


@pytest.fixture
def tree(pristine: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "src"
    shutil.copytree(pristine, dest, symlinks=True)
    return dest


def rows_of(name: str, root: Path, **options: Any) -> tuple[list[dict], BuildReport]:
    report = BuildReport(name)
    spec = get_config(name)
    return [row for _, row in generate_rows(spec, BuildOptions(root, **options), report)], report


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


def replace_bytes(path: Path, line: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))


# ----------------------------------------------------------------------------- not UTF-8


def test_a_line_that_is_not_utf8_is_a_bad_row_named_by_line_and_byte(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    # line 1 is 9 bytes ('{"a": 1}' + newline); line 2 opens with 7 bytes '{"a": "' before 0xff
    p.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n{"a": 3}\n')
    got = list(read_jsonl(p))  # before: a bare UnicodeDecodeError, the rest unread
    assert [line for line, _ in got] == [1, 2, 3]
    assert got[0][1] == {"a": 1} and got[2][1] == {"a": 3}
    err = got[1][1]
    assert isinstance(err, SourceError) and err.line == 2
    assert "not UTF-8 text at byte 16" in str(err) and "0xff" in str(err)
    assert "x.jsonl" in str(err) and "line 2" in str(err) and "Fix:" in str(err)


def test_non_utf8_metadata_stops_with_its_location_or_is_skipped_and_counted(tree: Path) -> None:
    meta = tree / "SQA/click_clean.jsonl"
    # line 2 holds the CLIcK question about kimchi: "김치" re-encoded as CP949
    replace_bytes(meta, 2, "김치".encode(), "김치".encode("cp949"))
    with pytest.raises(SourceError) as exc:
        rows_of("sqa_click", tree)
    text = str(exc.value)
    for part in ("config 'sqa_click'", "click_clean.jsonl", "line 2", "not UTF-8 text at byte"):
        assert part in text, (part, text)
    assert "iconv -f cp949" in text
    rows, report = rows_of("sqa_click", tree, skip_bad=True)
    assert ids(rows) == ["click-000000", "click-000002"]
    assert len(report.skipped) == 1 and "line 2" in report.skipped[0]


def test_corpus_readers_report_non_utf8_lines_in_place(tmp_path: Path) -> None:
    cp949 = "안녕".encode("cp949")  # 0xbe 0xc8 0xb3 0xe7
    trn = tmp_path / "eval_clean.trn"
    first = "a/KsponSpeech_E00001.pcm :: 하나\n".encode()
    trn.write_bytes(
        first + b"a/KsponSpeech_E00002.pcm :: " + cp949 + b"\na/E3.pcm :: \xec\x85\x8b\n"
    )
    lines = list(read_trn(trn))
    assert isinstance(lines[1], SourceError) and lines[1].line == 2
    # line 2 opens with 28 bytes ('a/KsponSpeech_E00002.pcm :: ') before the bad byte
    assert f"not UTF-8 text at byte {len(first) + 28} (0xbe" in str(lines[1])
    assert [x.utt_id for x in (lines[0], lines[2])] == ["KsponSpeech_E00001", "E3"]

    folder = tmp_path / "zeroth/test_data_01/003/104"
    folder.mkdir(parents=True)
    (folder / "104_003.trans.txt").write_bytes(
        b"104_003_0019 " + cp949 + "\n104_003_0020 셋\n".encode()
    )
    utts = list(read_zeroth(tmp_path / "zeroth"))
    assert isinstance(utts[0], SourceError) and "not UTF-8 text at byte 13" in str(utts[0])
    assert "104_003.trans.txt" in str(utts[0]) and utts[0].line == 1
    assert (utts[1].utt_id, utts[1].text) == ("104_003_0020", "셋")

    tsv = tmp_path / "test.tsv"
    tsv.write_bytes(b"path\tsentence\na.mp3\t" + cp949 + "\nb.mp3\t둘\n".encode())
    rows = list(read_tsv(tsv))
    assert isinstance(rows[0], SourceError) and rows[0].line == 2
    assert "not UTF-8 text at byte 20" in str(rows[0])  # 14 (header) + 6 ('a.mp3' + tab)
    assert (rows[1].path, rows[1].sentence) == ("b.mp3", "둘")


def test_non_utf8_kspon_line_is_skipped_with_skip_bad(tmp_path: Path) -> None:
    manifest = write_all(tmp_path, use_speech=False)
    trn = tmp_path / "ksponspeech/eval_clean.trn"
    lines = trn.read_bytes().splitlines(keepends=True)
    trn.write_bytes(lines[0] + b"x/KsponSpeech_E09999.pcm :: \xbe\xc8\n" + b"".join(lines[1:]))
    with pytest.raises(SourceError, match="not UTF-8 text") as exc:
        rows_of("asr_kspon_clean", tmp_path)
    assert "eval_clean.trn" in str(exc.value) and "line 2" in str(exc.value)
    rows, report = rows_of("asr_kspon_clean", tmp_path, skip_bad=True)
    assert ids(rows) == list(manifest["asr_kspon_clean"]) and len(report.skipped) == 1


# ----------------------------------------------------------------------------- byte-order mark


def test_byte_order_mark_is_read_not_refused(tmp_path: Path, tree: Path) -> None:
    p = tmp_path / "bom.jsonl"
    p.write_bytes(codecs.BOM_UTF8 + b'{"a": 1}\n{"a": 2}\n')
    assert list(read_jsonl(p)) == [(1, {"a": 1}), (2, {"a": 2})]  # before: line 1 not JSON
    tsv = tmp_path / "test.tsv"
    tsv.write_bytes(codecs.BOM_UTF8 + "path\tsentence\na.mp3\t하나\n".encode())
    assert [(r.path, r.sentence) for r in read_tsv(tsv)] == [("a.mp3", "하나")]

    for name in ("click_clean.jsonl", "click_other.jsonl"):
        meta = tree / "SQA" / name
        meta.write_bytes(codecs.BOM_UTF8 + meta.read_bytes())
    for config in ("sqa_click", "sqa_click_noisy"):
        rows, report = rows_of(config, tree)
        assert ids(rows) == ["click-000000", "click-000001", "click-000002"]
        assert not report.skipped


# ----------------------------------------------------------------------------- symbolic links


def test_a_link_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_audio(root / "audio/click/000000.wav", tone(0.1))
    outside = tmp_path / "private"
    write_audio(outside / "secret.wav", tone(0.2))
    (root / "audio/click/000001.wav").symlink_to(outside / "secret.wav")
    (root / "audio/linked").symlink_to(outside, target_is_directory=True)
    (root / "audio/click/000002.wav").symlink_to(root / "audio/click/000000.wav")  # inside
    resolver = AudioResolver(root)
    for raw in (
        "audio/click/000001.wav",
        "audio/linked/secret.wav",
        str(root / "audio/linked/secret.wav"),
    ):
        with pytest.raises(SourceError, match="leads out of the data root") as exc:
            resolver.resolve(raw)  # before: followed, and the private file exported
        assert exc.value.field == "raw"
        assert os.path.realpath(outside / "secret.wav") in str(exc.value)
        assert "Fix: replace the link" in str(exc.value)
    assert resolver.resolve("audio/click/000002.wav") == root / "audio/click/000002.wav"


def test_a_linked_root_or_corpus_folder_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "disk/KoALA"
    write_audio(real / "audio/click/000000.wav", tone(0.1))
    corpus = tmp_path / "disk2/zeroth"
    write_audio(corpus / "104_003_0019.flac", tone(0.1))
    (tmp_path / "KoALA").symlink_to(real, target_is_directory=True)
    root = tmp_path / "KoALA"
    (real / "zeroth").symlink_to(corpus, target_is_directory=True)
    resolver = AudioResolver(root, [root / "zeroth"])
    assert resolver.resolve("audio/click/000000.wav") == root / "audio/click/000000.wav"
    got = resolver.resolve("/elsewhere/audio/zeroth_korean/104_003_0019.flac")
    assert got.name == "104_003_0019.flac"


def test_a_hub_cache_snapshot_may_link_into_its_blobs(tmp_path: Path) -> None:
    repo = tmp_path / "hub/datasets--scailaboratory--KoALA"
    write_audio(tmp_path / "blob.wav", tone(0.1))
    (repo / "blobs").mkdir(parents=True)
    shutil.move(str(tmp_path / "blob.wav"), str(repo / "blobs/0123abcd"))
    snapshot = repo / "snapshots/9f8e7d"
    (snapshot / "audio/click").mkdir(parents=True)
    (snapshot / "audio/click/000000.wav").symlink_to("../../../../blobs/0123abcd")
    (snapshot / "audio/click/000001.wav").symlink_to(tmp_path / "elsewhere.wav")
    write_audio(tmp_path / "elsewhere.wav", tone(0.1))
    resolver = AudioResolver(snapshot)
    assert resolver.resolve("audio/click/000000.wav") == snapshot / "audio/click/000000.wav"
    with pytest.raises(SourceError, match="leads out"):
        resolver.resolve("audio/click/000001.wav")


def test_builder_refuses_a_linked_file_and_skip_bad_skips_it(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.wav"
    write_audio(outside, tone(0.5))
    link = tree / "audio/click/000001.wav"
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(SourceError) as exc:
        rows_of("sqa_click", tree)
    text = str(exc.value)
    for part in ("config 'sqa_click'", "click_clean.jsonl", "line 2", "'click-000001'", "'raw'"):
        assert part in text, (part, text)
    rows, report = rows_of("sqa_click", tree, skip_bad=True)
    assert ids(rows) == ["click-000000", "click-000002"] and len(report.skipped) == 1


def test_zeroth_tree_read_without_metadata_refuses_a_link_out(tree: Path, tmp_path: Path) -> None:
    (tree / "ASR/zeroth_korean_test_clean.jsonl").unlink()
    flacs = sorted((tree / "zeroth").rglob("*.flac"))
    outside = tmp_path / "other.flac"
    shutil.copy(flacs[0], outside)
    flacs[0].unlink()
    flacs[0].symlink_to(outside)
    with pytest.raises(SourceError, match="leads out of the data root") as exc:
        rows_of("asr_zeroth", tree)
    assert ".trans.txt" in str(exc.value) and "field 'audio'" in str(exc.value)


# ----------------------------------------------------------------------------- exact duplicates


def append_copy(path: Path, line: int) -> None:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    record = json.loads(lines[line - 1])
    # the same record with its keys in another order and other spacing: still the same row
    copy = json.dumps(dict(reversed(record.items())), ensure_ascii=False, indent=None)
    path.write_text("".join(lines) + copy + "\n", "utf-8")


def test_an_exact_duplicate_row_is_kept_once_and_counted_apart(tree: Path, caplog) -> None:
    # K-SAT line 3 is a legitimate sibling (index 2030_06_2 again, another question); line 4,
    # added here, repeats line 1 exactly
    append_copy(tree / "SQA/KCSAT_clean.jsonl", 1)
    rows, report = rows_of("sqa_kcsat", tree)
    # before: four rows, the copy as kcsat-2030_06_1-2, counted as a second duplicate_index
    assert ids(rows) == ["kcsat-2030_06_1", "kcsat-2030_06_2", "kcsat-2030_06_2-2"]
    assert report.fixes[("kcsat", "duplicate_row")] == 1
    assert report.fixes[("kcsat", "duplicate_index")] == 1
    assert "duplicate_row" in FIX_DESCRIPTIONS
    (msg,) = [r.getMessage() for r in caplog.records if "repeats line" in r.getMessage()]
    assert "KCSAT_clean.jsonl line 4 repeats line 1 exactly" in msg


def test_exact_duplicates_keep_the_clean_and_noisy_keys_aligned(tree: Path) -> None:
    # a copy of line 2 inserted before the sibling on line 3, in the noisy file only: the
    # noisy sibling keeps the key of the clean sibling (2030_06_2-2), not 2030_06_2-3
    noisy = tree / "SQA/KCSAT_noise.jsonl"
    lines = noisy.read_text("utf-8").splitlines(keepends=True)
    noisy.write_text(lines[0] + lines[1] + lines[1] + lines[2], "utf-8")
    partner = partner_paths(noisy)
    assert set(partner) == {"2030_06_1", "2030_06_2", "2030_06_2-2"}
    rows, report = rows_of("sqa_kcsat_noisy", tree)
    assert ids(rows) == ["kcsat-2030_06_1", "kcsat-2030_06_2", "kcsat-2030_06_2-2"]
    assert report.fixes[("kcsat", "duplicate_row")] == 1
    assert not report.fixes[("kcsat", "swapped_audio")]


def test_same_audio_other_question_is_not_a_duplicate_row(tree: Path) -> None:
    rows, report = rows_of("sqa_kcsat", tree)
    assert report.fixes[("kcsat", "duplicate_index")] == 1
    assert ("kcsat", "duplicate_row") not in report.fixes
    assert len(rows) == 3
