"""The readers of the real source layouts (koala.sources) and the choice/answer repairs."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from source_trees import tone, write_audio

from koala.builder.labels import gold_label, parse_choice_field
from koala.sources import (
    AudioResolver,
    SourceError,
    as_bool,
    as_float,
    as_list,
    as_text,
    looks_noisy,
    read_jsonl,
)
from koala.sources.common_voice import read_tsv
from koala.sources.etri import TalkReader
from koala.sources.koala_meta import fix_swapped, partner_paths
from koala.sources.ksponspeech import clean_transcript, read_trn
from koala.sources.zeroth import read_zeroth

# ----------------------------------------------------------------------------- paths


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    for rel in (
        "audio/click/000000.wav",
        "audio/mctest_final/000000_tts.wav",
        "audio_noise/click_noise/000000_noisy.wav",
        "audio/a/same.wav",
        "audio/b/same.wav",
    ):
        write_audio(r / rel, tone(0.1))
    write_audio(tmp_path / "zeroth/test_data_01/003/104/104_003_0019.flac", tone(0.1))
    (tmp_path / "secret.wav").write_bytes(b"not for the builder")
    return r


def test_relative_path_resolves_inside_root(root: Path) -> None:
    assert AudioResolver(root).resolve("audio/click/000000.wav") == root / "audio/click/000000.wav"


def test_path_relative_to_audio_folder_is_found(root: Path) -> None:
    # the published PA-QA noisy file names the clean audio as mctest_final/..., under audio/
    got = AudioResolver(root).resolve("mctest_final/000000_tts.wav")
    assert got == root / "audio/mctest_final/000000_tts.wav"


@pytest.mark.parametrize("raw", ["../secret.wav", "audio/../../secret.wav", "../../etc/passwd"])
def test_path_escaping_the_root_is_refused(root: Path, raw: str) -> None:
    with pytest.raises(SourceError, match="escapes the data root") as exc:
        AudioResolver(root).resolve(raw)
    assert exc.value.field == "raw"
    assert "Fix:" in str(exc.value)


def test_absolute_path_outside_root_is_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="outside the data root"):
        AudioResolver(root).resolve("/etc/passwd")
    # even a file that exists outside the root is not used
    with pytest.raises(SourceError, match="outside the data root"):
        AudioResolver(root).resolve(str(tmp_path / "secret.wav"))


def test_absolute_path_inside_root_is_used(root: Path) -> None:
    p = root / "audio/click/000000.wav"
    assert AudioResolver(root).resolve(str(p)) == p


def test_absolute_path_of_another_machine_resolves_by_audio_folder_then_file_name(
    root: Path, tmp_path: Path
) -> None:
    r = AudioResolver(root, [tmp_path / "zeroth"])
    noisy = "/data/x/Ko-Speech-Eval/audio_noise/click_noise/000000_noisy.wav"
    assert r.resolve(noisy) == root / "audio_noise/click_noise/000000_noisy.wav"
    clean = "/data/x/Ko-Speech-Eval/audio/zeroth_korean/104_003_0019.flac"
    assert r.resolve(clean) == tmp_path / "zeroth/test_data_01/003/104/104_003_0019.flac"


def test_file_name_index_is_built_once(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_walk = os.walk

    def counting_walk(*args, **kwargs):
        calls.append(args[0])
        return real_walk(*args, **kwargs)

    monkeypatch.setattr(os, "walk", counting_walk)
    r = AudioResolver(root, [tmp_path / "zeroth"])
    for _ in range(3):
        r.resolve("/elsewhere/audio/zeroth_korean/104_003_0019.flac")
    assert len(calls) == 1  # one walk of the search dir, not one per lookup


def test_same_file_name_twice_prefers_longer_shared_suffix_else_error(root: Path) -> None:
    r = AudioResolver(root, [root / "audio"])
    assert r.resolve("/elsewhere/x/b/same.wav") == root / "audio/b/same.wav"
    with pytest.raises(SourceError, match="several files"):
        r.resolve("/elsewhere/x/c/same.wav")


def test_file_name_lookup_stays_in_the_search_dirs(root: Path) -> None:
    # a missing KoALA file is not replaced by a file of the same name elsewhere in the root
    with pytest.raises(SourceError, match="not found"):
        AudioResolver(root).resolve("audio/other_set/000000.wav")


def test_missing_file_error_names_what_was_tried(root: Path) -> None:
    with pytest.raises(SourceError, match="not found") as exc:
        AudioResolver(root).resolve("audio/click/999999.wav")
    assert "audio/click/999999.wav" in str(exc.value) and "skip_bad" in str(exc.value)


# ----------------------------------------------------------------------------- records


def test_read_jsonl_yields_errors_in_place_with_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n\n{"a": \n[1, 2]\n{"a": 3}\n', encoding="utf-8")
    got = list(read_jsonl(p))
    assert [line for line, _ in got] == [1, 3, 4, 5]
    assert got[0][1] == {"a": 1} and got[3][1] == {"a": 3}
    assert isinstance(got[1][1], SourceError) and got[1][1].line == 3
    assert "not valid JSON" in str(got[1][1]) and "x.jsonl" in str(got[1][1])
    assert isinstance(got[2][1], SourceError) and "not an object" in str(got[2][1])


def test_coercions_accept_string_encoded_values() -> None:
    rec = {"l": "['front', 'late']", "b": "True", "f": "0.5", "n": [[1, 2]], "t": " x "}
    assert as_list(rec, "l") == ["front", "late"]
    assert as_list(rec, "n") == [[1, 2]]
    assert as_bool(rec, "b") is True and as_bool({"b": "false"}, "b") is False
    assert as_float(rec, "f") == 0.5
    assert as_text(rec, "t") == " x "


@pytest.mark.parametrize(
    ("func", "rec", "message"),
    [
        (as_list, {"x": "front"}, "not a list literal"),
        (as_list, {"x": 3}, "expected a list"),
        (as_bool, {"x": "yes"}, "not a boolean"),
        (as_float, {"x": "abc"}, "not a number"),
        (as_text, {"x": ""}, "empty"),
        (as_text, {}, "missing"),
    ],
)
def test_coercion_errors_name_the_field(func, rec, message: str) -> None:
    with pytest.raises(SourceError, match=message) as exc:
        func(rec, "x")
    assert exc.value.field == "x"


@pytest.mark.parametrize(
    ("raw", "noisy"),
    [
        ("audio/click/000000.wav", False),
        ("mctest_final/000000_tts.wav", False),
        ("audio_noise/click_noise/000000_noisy.wav", True),
        ("audio_noise/mctest_final_noise/000000_tts_noisy.wav", True),
        ("/data/x/audio_noise/zeroth_korean_noise/104_003_0019_noisy.flac", True),
        ("audio/K-SAT_noise/2006_06_1.wav", True),
    ],
)
def test_looks_noisy(raw: str, noisy: bool) -> None:
    assert looks_noisy(raw) is noisy


def test_swap_is_detected_per_row_from_the_paths() -> None:
    clean, noisy = "audio/x/1.wav", "audio_noise/x_noise/1_noisy.wav"
    assert fix_swapped(noisy, clean, want_noisy=False) == (clean, True)
    assert fix_swapped(clean, noisy, want_noisy=True) == (noisy, True)
    assert fix_swapped(clean, noisy, want_noisy=False) == (clean, False)  # not swapped
    assert fix_swapped(noisy, noisy, want_noisy=False) == (noisy, False)  # partner agrees
    assert fix_swapped(noisy, None, want_noisy=False) == (noisy, False)  # no partner


def test_partner_paths_keys_repeated_indices_by_occurrence(tmp_path: Path) -> None:
    p = tmp_path / "n.jsonl"
    rows = [{"index": "a", "raw": "1"}, {"index": "b", "raw": "2"}, {"index": "a", "raw": "3"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert partner_paths(p) == {"a": "1", "b": "2", "a-2": "3"}
    assert partner_paths(tmp_path / "absent.jsonl") == {}


# ----------------------------------------------------------------------------- corpora


def test_read_zeroth_tree(tmp_path: Path) -> None:
    folder = tmp_path / "test_data_01/003/104"
    folder.mkdir(parents=True)
    (folder / "104_003.trans.txt").write_text("104_003_0019 가 나 다\n104_003_0020\n", "utf-8")
    write_audio(folder / "104_003_0019.flac", tone(0.1))
    utts = list(read_zeroth(tmp_path))
    assert [(u.utt_id, u.text, u.line) for u in utts] == [
        ("104_003_0019", "가 나 다", 1),
        ("104_003_0020", "", 2),  # reported by the builder as a bad row
    ]
    assert utts[0].path == folder / "104_003_0019.flac"
    with pytest.raises(SourceError, match="Zeroth"):
        list(read_zeroth(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("raw", "form", "expected"),
    [
        ("o/ 그래서 (3G)/(쓰리 쥐)를 썼어", "phonetic", "그래서 쓰리 쥐를 썼어"),
        ("o/ 그래서 (3G)/(쓰리 쥐)를 썼어", "spelling", "그래서 3G를 썼어"),
        ("어/ 오늘 날씨 좋다+ b/", "phonetic", "어 오늘 날씨 좋다"),
        ("n/ 내일 (10시)/(열 시)에 l/ 보자*", "phonetic", "내일 열 시에 보자"),
        ("u/", "phonetic", ""),
    ],
)
def test_kspon_transcript_cleaning(raw: str, form: str, expected: str) -> None:
    assert clean_transcript(raw, form) == expected


def test_read_trn_reports_malformed_lines(tmp_path: Path) -> None:
    trn = tmp_path / "eval_clean.trn"
    trn.write_text("a/KsponSpeech_E00001.pcm :: 안녕\nno separator here\n :: 텍스트\n", "utf-8")
    lines = list(read_trn(trn))
    assert (lines[0].utt_id, lines[0].transcript, lines[0].problem) == (
        "KsponSpeech_E00001",
        "안녕",
        None,
    )
    assert "' :: '" in str(lines[1].problem) and lines[1].line == 2
    assert "no audio path" in str(lines[2].problem)


def test_read_common_voice_tsv_keeps_quotes(tmp_path: Path) -> None:
    tsv = tmp_path / "test.tsv"
    tsv.write_text(
        'client_id\tpath\tsentence\tup_votes\nx\ta.mp3\t그는 "네" 라고 했다\t2\nx\n', "utf-8"
    )
    rows = list(read_tsv(tsv))
    assert (rows[0].line, rows[0].path, rows[0].sentence) == (2, "a.mp3", '그는 "네" 라고 했다')
    assert rows[1].problem is not None and rows[1].line == 3
    bad = tmp_path / "bad.tsv"
    bad.write_text("client_id\tfile\ttext\n", "utf-8")
    with pytest.raises(SourceError, match="lacks the columns"):
        list(read_tsv(bad))


def test_etri_segment_is_the_slice_of_the_talk_and_reads_only_it(tmp_path: Path) -> None:
    talk = tmp_path / "ted_1.wav"
    rng = np.random.default_rng(0)
    full = (0.1 * rng.standard_normal(16_000 * 120)).astype(np.float32)  # two minutes
    sf.write(str(talk), full, 16_000, subtype="PCM_16")
    stored, _ = sf.read(str(talk), dtype="float32")
    reader = TalkReader()
    tracemalloc.start()
    segment = reader.segment(talk, offset=61.25, duration=0.5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    start = round(61.25 * 16_000)
    np.testing.assert_array_equal(segment, stored[start : start + 8000])
    assert peak < 1_000_000  # the whole talk as float32 would be 7.7 MB
    with pytest.raises(SourceError, match="past the end"):
        reader.segment(talk, offset=119.8, duration=1.0)
    with pytest.raises(SourceError, match="duration"):
        reader.segment(talk, offset=1.0, duration=0.0)


# ----------------------------------------------------------------------------- choices


def test_choices_plain_and_newline_separated() -> None:
    ch, fixes = parse_choice_field("(A) 아니요\n(B) 예", "letters", 2, "choices_ko")
    assert (ch.labels, ch.texts, fixes) == (("A", "B"), ("아니요", "예"), [])


def test_label_inside_a_choice_text_is_read_in_sequence() -> None:
    ch, fixes = parse_choice_field(
        "(A) (A)에 따라 (B) 둘 (C) 셋 (D) ‘ㅟ(w)’ 소리", "letters", None, "c"
    )
    assert ch.labels == ("A", "B", "C", "D")
    assert ch.texts == ("(A)에 따라", "둘", "셋", "‘ㅟ(w)’ 소리")
    assert fixes == ["choices_label_in_text"]


def test_misnumbered_labels_and_slash_n_are_repaired() -> None:
    text = "(1) 가/n(2) 나/n(4) 다/n(4) 라/n(5) 마"
    ch, fixes = parse_choice_field(text, "numbers", 5, "choices_ko")
    assert ch.labels == tuple("12345") and ch.texts == ("가", "나", "다", "라", "마")
    assert fixes == ["choices_misnumbered", "choices_slash_n"]
    # the gold "(4)라" names the fourth choice by its text once relabelled
    assert gold_label("(4)라", ch, prefer_text=True) == ("4", [])


def test_list_choices_and_python_list_strings() -> None:
    for value in (["갑", "을"], "['갑', '을']"):
        ch, fixes = parse_choice_field(value, "numbers", None, "choices")
        assert (ch.labels, ch.texts, fixes) == (("1", "2"), ("갑", "을"), [])


@pytest.mark.parametrize("value", ["no labels at all", "(A) 하나", "(A) (B) 둘", ""])
def test_malformed_choices_raise(value: str) -> None:
    with pytest.raises(SourceError) as exc:
        parse_choice_field(value, "letters", None, "choices_ko")
    assert exc.value.field == "choices_ko"


def test_gold_label_forms() -> None:
    shown, _ = parse_choice_field("(A) 1999년 (B) 2000년 (C) 2001 년", "letters", None, "c")
    original, _ = parse_choice_field("(A) 천구백구십구 (B) 이천 (C) 이천일", "letters", None, "c")
    assert gold_label("(C) 2001년", shown) == ("C", [])
    assert gold_label("B", shown) == ("B", [])
    assert gold_label("2001년", shown) == ("C", [])  # the text of a choice, spaces aside
    assert gold_label("이천일", shown, original) == ("C", ["gold_from_original_choices"])
    with pytest.raises(SourceError, match="names none of the choices") as exc:
        gold_label("(E)", shown, original, field="answer_ko")
    assert exc.value.field == "answer_ko"


def test_a_labelled_choice_list_reads_like_the_labelled_string() -> None:
    """A list whose items carry their labels in order gives the same choices as the string
    form (labels off the texts, the repair counted); other lists are kept as they are."""
    from koala.builder.labels import parse_choice_field

    as_list, fixes = parse_choice_field(["(A) 예", "( B )아니요"], "letters", None, "c")
    as_string, _ = parse_choice_field("(A) 예 (B) 아니요", "letters", None, "c")
    assert as_list == as_string and as_list.texts == ("예", "아니요")
    assert fixes == ["choices_list_labels"]
    numbered, _ = parse_choice_field(["(1) 하나", "(2) 둘", "(3) 셋"], "numbers", 3, "c")
    assert numbered.labels == ("1", "2", "3") and numbered.texts == ("하나", "둘", "셋")
    # out of order, or plain texts: not labels, kept as published
    odd, fixes = parse_choice_field(["(B) 예", "(A) 아니요"], "letters", None, "c")
    assert odd.texts == ("(B) 예", "(A) 아니요") and fixes == []
    plain, fixes = parse_choice_field(["예", "아니요"], "letters", None, "c")
    assert plain.texts == ("예", "아니요") and fixes == []
