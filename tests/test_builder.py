"""The datasets builder (koala_bench.py) and row generation, on small trees in the real layouts."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from source_trees import write_all

from koala.builder import BuildOptions, BuildReport, UnknownConfigError, generate_rows, get_config
from koala.builder.features import features_for
from koala.sources import SourceError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from koala_bench import KoalaBench  # noqa: E402


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tree") / "src"
    manifest = write_all(root, use_speech=False)
    return root, manifest


@pytest.fixture
def tree(pristine: tuple[Path, dict], tmp_path: Path) -> Path:
    """A private copy of the tree, for tests that break it."""
    dest = tmp_path / "src"
    shutil.copytree(pristine[0], dest, symlinks=True)
    return dest


def rows_of(name: str, root: Path, **options: Any) -> tuple[list[dict], BuildReport]:
    report = BuildReport(name)
    rows = [
        row for _, row in generate_rows(get_config(name), BuildOptions(root, **options), report)
    ]
    return rows, report


def decode(audio: dict) -> np.ndarray:
    array, sr = sf.read(io.BytesIO(audio["bytes"]), dtype="float32")
    assert sr == 16_000
    return array


def power_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x.astype(np.float64))))


# ----------------------------------------------------------------------------- the builder


def test_builder_direct_download_and_prepare_and_as_dataset(pristine, tmp_path: Path) -> None:
    root, manifest = pristine
    builder = KoalaBench(config_name="sca_qa", data_dir=str(root), cache_dir=str(tmp_path))
    builder.download_and_prepare()
    ds = builder.as_dataset(split="test")
    expected = manifest["sca_qa"]
    assert ds["id"] == list(expected)
    assert ds.features == features_for("sca_qa")
    for row in ds:
        exp = expected[row["id"]]
        audio = row["audio"]
        assert audio["sampling_rate"] == 16_000
        assert len(audio["array"]) == round(exp["duration"] * 16_000)
        assert row["duration"] == pytest.approx(exp["duration"])
        assert len(row["original_audio"]["array"]) == round(exp["original_audio"] * 16_000)
        for key in (
            "subset",
            "choices",
            "choice_labels",
            "answer",
            "counterfactual_answer",
            "domain",
            "keyword",
            "counterfactual_keyword",
            "context",
        ):
            assert row[key] == exp[key], key
    assert sorted(ds.unique("subset")) == sorted(
        get_config("sca_qa").subsets[i].name for i in range(4)
    )
    assert builder.report.rows == {s: 2 for s in ds.unique("subset")}


def test_builder_streaming(pristine, tmp_path: Path) -> None:
    root, manifest = pristine
    builder = KoalaBench(config_name="st_tst_he", data_dir=str(root), cache_dir=str(tmp_path))
    rows = list(builder.as_streaming_dataset(split="test"))
    assert [r["id"] for r in rows] == list(manifest["st_tst_he"])
    for row in rows:
        exp = manifest["st_tst_he"][row["id"]]
        assert len(row["audio"]["array"]) == round(exp["segment_duration"] * 16_000)
        assert (row["offset"], row["talk_id"]) == (exp["offset"], exp["talk_id"])


def test_unknown_config_suggests_close_names() -> None:
    with pytest.raises(UnknownConfigError, match="did you mean 'pa_qa_noisy'"):
        KoalaBench(config_name="pa_qa_nosiy", data_dir="/nowhere")


def test_missing_data_dir_is_explained(tmp_path: Path) -> None:
    builder = KoalaBench(config_name="pa_qa", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="needs data_dir"):
        builder.download_and_prepare()


def test_builder_surfaces_bad_input_with_its_location(tree: Path, tmp_path: Path) -> None:
    (tree / "audio/click/000001.wav").unlink()
    builder = KoalaBench(config_name="sqa_click", data_dir=str(tree), cache_dir=str(tmp_path))
    with pytest.raises(Exception) as exc:  # datasets wraps it; ours is the cause
        builder.download_and_prepare()
    cause = exc.value.__cause__
    assert isinstance(cause, SourceError)
    text = str(cause)
    for part in ("sqa_click", "click_clean.jsonl", "line 2", "click-000001", "'raw'", "Fix:"):
        assert part in text


# ----------------------------------------------------------------------------- rows


def test_every_config_generates_the_expected_rows(pristine) -> None:
    root, manifest = pristine
    from koala.builder import load_registry

    for name in load_registry():
        rows, report = rows_of(name, root)
        expected = manifest[name]
        assert [r["id"] for r in rows] == list(expected), name
        assert not report.skipped
        for row in rows:
            exp = expected[row["id"]]
            assert set(row) == set(features_for(get_config(name).task)), name
            tol = 0.1 if row["subset"] == "common_voice" else 1e-9
            assert abs(row["duration"] - exp["duration"]) <= tol, (name, row["id"])
            assert len(decode(row["audio"])) == round(row["duration"] * 16_000)
            for key, value in exp.items():
                if key not in ("duration", "original_audio"):
                    assert row[key] == value, (name, row["id"], key)


def test_clean_and_noisy_rows_share_ids_and_differ_in_audio(pristine) -> None:
    root, _ = pristine
    clean, _ = rows_of("sif_vicuna", root)
    noisy, _ = rows_of("sif_vicuna_noisy", root)
    assert [r["id"] for r in clean] == [r["id"] for r in noisy]
    assert {r["noise"] for r in clean} == {"clean"} and {r["noise"] for r in noisy} == {"noisy"}
    assert all(
        len(decode(n["audio"])) > len(decode(c["audio"])) for c, n in zip(clean, noisy, strict=True)
    )


@pytest.mark.parametrize("swap", [True, False])
def test_pa_qa_swap_detected_per_row(tmp_path: Path, swap: bool) -> None:
    manifest = write_all(tmp_path, swap_pa_qa=swap, use_speech=False, external=False)
    for name in ("pa_qa", "pa_qa_noisy"):
        rows, report = rows_of(name, tmp_path)
        assert {r["id"]: r["duration"] for r in rows} == {
            k: v["duration"] for k, v in manifest[name].items()
        }
        assert report.fixes[("mctest", "swapped_audio")] == (2 if swap else 0)
        assert report.fixes[("mctest", "not_valid")] == 1


def test_pa_qa_lists_are_typed_lists(pristine) -> None:
    root, _ = pristine
    rows, _ = rows_of("pa_qa", root)
    row = rows[1]
    assert row["evidence_positions"] == [0.05, 0.6]
    assert row["evidence_segments"] == ["front", "middle-late"]
    assert all(isinstance(s, list) and len(s) == 2 for s in row["evidence_char_spans"])
    for (start, end), sentence in zip(
        row["evidence_char_spans"], row["evidence_sentences"], strict=True
    ):
        assert row["passage"][start:end] == sentence


def test_zeroth_read_from_its_own_tree_without_metadata(tree: Path, pristine) -> None:
    (tree / "ASR/zeroth_korean_test_clean.jsonl").unlink()
    rows, _ = rows_of("asr_zeroth", tree)
    expected = pristine[1]["asr_zeroth"]
    assert [(r["id"], r["text"], r["duration"]) for r in rows] == [
        (k, v["text"], v["duration"]) for k, v in expected.items()
    ]


def test_kspon_spelling_transcripts(pristine) -> None:
    rows, _ = rows_of("asr_kspon_clean", pristine[0], kspon_transcript="spelling")
    assert rows[0]["text"] == "그래서 3G를 썼어"


# ----------------------------------------------------------------------------- noise


def test_published_noisy_config_refuses_recipe_and_snr_needs_a_type(pristine) -> None:
    root, _ = pristine
    with pytest.raises(ValueError, match="use the clean config 'sqa_kcsat'"):
        rows_of("sqa_kcsat_noisy", root, noise_type="white")
    with pytest.raises(ValueError, match="without noise_type"):
        rows_of("sqa_kcsat", root, snr_db=5.0)
    with pytest.raises(ValueError, match="choose one of"):
        rows_of("sqa_kcsat", root, noise_type="brown")


@pytest.mark.parametrize("noise_type", ["white", "pink", "babble"])
def test_noise_recipe_mixes_at_the_snr_and_is_seeded_per_row(pristine, noise_type: str) -> None:
    root, _ = pristine
    clean, _ = rows_of("sif_alpaca", root)
    noisy, _ = rows_of("sif_alpaca", root, noise_type=noise_type, snr_db=5.0, seed=3)
    again, _ = rows_of("sif_alpaca", root, noise_type=noise_type, snr_db=5.0, seed=3)
    other, _ = rows_of("sif_alpaca", root, noise_type=noise_type, snr_db=5.0, seed=4)
    for c, n, a, o in zip(clean, noisy, again, other, strict=True):
        assert n["noise"] == "noisy" and n["id"] == c["id"]
        x, y = decode(c["audio"]), decode(n["audio"])
        assert len(x) == len(y)
        # SNR measured independently: speech power over the power of what was added
        assert power_db(x) - power_db(y - x) == pytest.approx(5.0, abs=0.3)
        assert np.array_equal(y, decode(a["audio"]))  # same seed, same row: same noise
        assert not np.array_equal(y, decode(o["audio"]))  # another seed: other noise


def test_common_voice_noisy_is_the_documented_recipe(pristine) -> None:
    root, _ = pristine
    clean, _ = rows_of("asr_common_voice", root)
    noisy, _ = rows_of("asr_common_voice_noisy", root)
    assert get_config("asr_common_voice_noisy").noise_sources == ("recipe",)
    assert "recipe (white noise at 10" in get_config("asr_common_voice_noisy").description
    for c, n in zip(clean, noisy, strict=True):
        x, y = decode(c["audio"]), decode(n["audio"])
        assert power_db(x) - power_db(y - x) == pytest.approx(10.0, abs=0.3)


def test_recipe_noise_also_covers_the_original_audio(pristine) -> None:
    rows, _ = rows_of("sca_qa_kpop", pristine[0], noise_type="pink", snr_db=8.0)
    clean, _ = rows_of("sca_qa_kpop", pristine[0])
    for r, c in zip(rows, clean, strict=True):
        x, y = decode(c["original_audio"]), decode(r["original_audio"])
        assert power_db(x) - power_db(y - x) == pytest.approx(8.0, abs=0.3)


# ----------------------------------------------------------------------------- bad input


def _rewrite(path: Path, line: int, change) -> None:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    change(rows[line - 1])
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


@pytest.mark.parametrize(
    ("name", "breaks", "where"),
    [
        (
            "sqa_click",
            lambda t: (t / "audio/click/000001.wav").unlink(),
            ["click_clean.jsonl", "line 2", "click-000001", "field 'raw'", "not found"],
        ),
        (
            "sqa_click",
            lambda t: (t / "audio/click/000001.wav").write_bytes(b"RIFF garbage"),
            ["click_clean.jsonl", "line 2", "field 'raw'", "cannot decode"],
        ),
        (
            "sqa_click",
            lambda t: _rewrite(t / "SQA/click_clean.jsonl", 2, lambda r: r.pop("answer_ko")),
            ["click_clean.jsonl", "line 2", "field 'answer_ko'", "missing"],
        ),
        (
            "sqa_kcsat",
            lambda t: _rewrite(
                t / "SQA/KCSAT_clean.jsonl", 1, lambda r: r.update(choices_ko="(1) 하나 (2) 둘")
            ),
            ["KCSAT_clean.jsonl", "line 1", "field 'choices_ko'", "expected 5 choices"],
        ),
        (
            "pa_qa",
            lambda t: _rewrite(
                t / "PA-QA/mctest_clean.jsonl",
                3,
                lambda r: r.update(evidence_pos_token_ratio_list=[1.5, 0.2]),
            ),
            ["mctest_clean.jsonl", "line 3", "evidence_pos_token_ratio_list", "[0, 1]"],
        ),
        (
            "asr_kspon_clean",
            lambda t: (t / "ksponspeech/eval_clean.trn").write_text("just text\n", "utf-8"),
            ["eval_clean.trn", "line 1", "' :: '"],
        ),
    ],
)
def test_bad_input_names_config_file_line_field_and_fix(tree: Path, name, breaks, where) -> None:
    breaks(tree)
    with pytest.raises(SourceError) as exc:
        rows_of(name, tree)
    text = str(exc.value)
    assert text.startswith(f"config {name!r}")
    for part in where:
        assert part in text, (part, text)
    assert "expected" in text


def test_skip_bad_skips_logs_and_counts(tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tree / "audio/click/000001.wav").write_bytes(b"RIFF garbage")
    path = tree / "SQA/click_clean.jsonl"
    path.write_text(path.read_text("utf-8") + "{not json\n", "utf-8")
    rows, report = rows_of("sqa_click", tree, skip_bad=True)
    assert [r["id"] for r in rows] == ["click-000000", "click-000002"]
    assert len(report.skipped) == 2
    assert "click-000001" in report.skipped[0] and "line 4" in report.skipped[1]
    assert sum("skipped bad row" in r.getMessage() for r in caplog.records) == 2
    assert any("2 bad rows skipped" in r.getMessage() for r in caplog.records)


def test_missing_metadata_file_is_not_skippable(tree: Path) -> None:
    (tree / "SQA/KCSAT_noise.jsonl").unlink()
    with pytest.raises(SourceError, match="metadata file not found") as exc:
        rows_of("sqa_kcsat_noisy", tree, skip_bad=True)
    assert "KCSAT_noise.jsonl" in str(exc.value) and "metadata_dir" in str(exc.value)


def test_metadata_dir_apart_from_audio(tree: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    meta.mkdir()
    shutil.move(str(tree / "Instruct"), str(meta / "Instruct"))
    rows, _ = rows_of("sif_kudge", tree, metadata_dir=meta)
    assert [r["id"] for r in rows] == ["kudge-000001", "kudge-000002"]


# ----------------------------------------------------------------------------- kept, counted


def test_unreadable_golds_are_kept_with_an_empty_label_and_counted(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: a SourceError that stopped the build) the published code keeps such items in its
    # denominator, so the row stays, with the gold as published in source_answer
    _rewrite(tree / "SQA/kobest_boolq_clean.jsonl", 1, lambda r: r.update(answer_ko="(C) 몰라"))
    rows, report = rows_of("sqa_kobest_boolq", tree)
    assert [r["id"] for r in rows] == ["kobest_boolq-000000", "kobest_boolq-000001"]
    assert (rows[0]["answer"], rows[0]["answer_text"]) == ("", "")
    assert rows[0]["source_answer"] == "(C) 몰라"
    assert rows[0]["source_choices"] == "(A) 아니요\n(B) 예"
    assert (rows[1]["answer"], rows[1]["source_answer"]) == ("B", "(B) 예")
    assert dict(report.fixes) == {("kobest_boolq", "answer_unreadable"): 1}
    assert any(
        r.levelname == "WARNING" and "answer_unreadable x1" in r.getMessage()
        for r in caplog.records
    )
    _rewrite(tree / "PA-QA/mctest_clean.jsonl", 1, lambda r: r.update(answer_ko="(E)"))
    rows, report = rows_of("pa_qa", tree)
    assert [(r["answer"], r["source_answer"]) for r in rows] == [("", "(E)"), ("B", "(B)")]
    assert report.fixes[("mctest", "answer_unreadable")] == 1


def test_sca_qa_unreadable_answers_are_kept_with_empty_labels(tree: Path) -> None:
    # kpop item 0: choices 갑 을 병 정, answer 을, new_answer 정 (correct_index 3)
    _rewrite(tree / "SCA-QA/kpop_clean.jsonl", 1, lambda r: r.update(answer="무"))
    # kpop item 1: choices 가나, 다라 전투, ...; answer "가나 전투" -> 1 by containment; the
    # counterfactual made the same choice
    _rewrite(
        tree / "SCA-QA/kpop_clean.jsonl", 2, lambda r: r.update(new_answer="가나", correct_index=0)
    )
    rows, report = rows_of("sca_qa_kpop", tree)
    got = [(r["answer"], r["counterfactual_answer"]) for r in rows]
    assert got == [("", "4"), ("1", "")]
    assert [(r["source_answer"], r["source_counterfactual_answer"]) for r in rows] == [
        ("무", "정"),
        ("가나 전투", "가나"),
    ]
    assert report.fixes[("kpop", "answer_unreadable")] == 1
    assert report.fixes[("kpop", "counterfactual_is_answer")] == 1
    # a counterfactual that names no choice (and disagrees with correct_index)
    _rewrite(tree / "SCA-QA/k-sports_clean.jsonl", 1, lambda r: r.update(new_answer="무"))
    rows, report = rows_of("sca_qa_k_sports", tree)
    assert [(r["answer"], r["counterfactual_answer"]) for r in rows] == [("2", ""), ("1", "4")]
    assert dict(report.fixes) == {
        ("k_sports", "counterfactual_unreadable"): 1,
        ("k_sports", "answer_by_containment"): 1,
    }


def test_sca_qa_choices_are_kept_exactly_as_published(tree: Path) -> None:
    _rewrite(
        tree / "SCA-QA/kpop_clean.jsonl", 1, lambda r: r.update(choices=[" 갑", "을", "을 ", "정"])
    )
    rows, report = rows_of("sca_qa_kpop", tree)
    assert rows[0]["choices"] == [" 갑", "을", "을 ", "정"]  # neither stripped nor deduplicated
    assert (rows[0]["answer"], rows[0]["counterfactual_answer"]) == ("2", "4")
    assert report.fixes[("kpop", "duplicate_choice_text")] == 1


def test_pa_qa_unpaired_swapped_row_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_all(tmp_path, use_speech=False, external=False)  # clean/noisy raw swapped
    other = tmp_path / "PA-QA/mctest_other.jsonl"
    lines = other.read_text("utf-8").splitlines(keepends=True)
    other.write_text(lines[0] + lines[1], "utf-8")  # the noisy file lacks item 000002
    rows, report = rows_of("pa_qa", tmp_path)
    # item 0 is put right; item 2 keeps its published (noisy) path, with a warning
    assert report.fixes[("mctest", "swapped_audio")] == 1
    assert report.fixes[("mctest", "audio_condition_unpaired")] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (msg,) = [m for m in warnings if "check a swap" in m]
    assert "mctest_clean.jsonl line 3" in msg and "'mctest-000002'" in msg
    assert "mctest_other.jsonl" in msg and "000002_tts_noisy.wav" in msg
    assert rows[1]["id"] == "mctest-000002"


def test_etri_talks_are_searched_in_the_etri_folder_only(tree: Path) -> None:
    wav = tree / "audio/ETRI_translate_data1/en-ko/data/tst-HE/wav/ted_22.wav"
    elsewhere = tree / "audio/click/ted_22.wav"  # another set's file of the same name
    shutil.copy(wav, elsewhere)
    moved = tree / "audio/ETRI_translate_data1/moved/ted_22.wav"
    moved.parent.mkdir()
    shutil.move(str(wav), str(moved))
    rows, _ = rows_of("st_tst_he", tree)  # found by name, in the ETRI folder
    assert len(rows) == 3
    moved.unlink()
    with pytest.raises(SourceError, match="not found") as exc:
        rows_of("st_tst_he", tree)  # before: resolved to audio/click/ted_22.wav
    assert "ETRI_translate_data1" in str(exc.value)
    talks = tree.parent / "etri_talks"
    talks.mkdir()
    shutil.copy(elsewhere, talks / "ted_22.wav")
    rows, _ = rows_of("st_tst_he", tree, etri_dir=talks)  # an explicit folder is searched
    assert len(rows) == 3
