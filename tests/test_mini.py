"""The embedded mini benchmark: counts, gold answers, evidence positions, audio, noise,
determinism, idempotent builds, and the published schema (when ../shared is present)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import koala.mini as mini
from koala.mini import synth
from koala.scoring import (
    choice_accuracy,
    corpus_cer,
    segment_accuracy,
    segment_of,
    speech_context_faithfulness,
)
from koala.scoring.segments import SEGMENTS

sf = pytest.importorskip("soundfile")

UPSTREAM = Path(__file__).resolve().parents[1].parent / "shared" / "upstream" / "koala-bench"
HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(
    not HAVE_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)

SCA_SUBSETS = ("history_before_chosun", "history_after_chosun", "k-sports", "kpop")
INSTRUCT_SUBSETS = ("alpaca", "kudge", "openhermes", "vicuna")
# (clean, noisy) metadata files that must exist; Translation has no noisy variant.
PAIRS = [
    ("ASR/zeroth_korean_test_clean.jsonl", "ASR/zeroth_korean_test_other.jsonl"),
    ("SQA/click_clean.jsonl", "SQA/click_other.jsonl"),
    ("SQA/kobest_boolq_clean.jsonl", "SQA/kobest_boolq_other.jsonl"),
    ("SQA/KCSAT_clean.jsonl", "SQA/KCSAT_noise.jsonl"),
    *[(f"Instruct/{s}_clean.jsonl", f"Instruct/{s}_other.jsonl") for s in INSTRUCT_SUBSETS],
    *[(f"SCA-QA/{s}_clean.jsonl", f"SCA-QA/{s}_other.jsonl") for s in SCA_SUBSETS],
    ("PA-QA/mctest_clean.jsonl", "PA-QA/mctest_other.jsonl"),
]
ST_FILES = ["Translation/etri_tst-COMMON_clean.jsonl", "Translation/etri_tst-HE_clean.jsonl"]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return mini.build_mini_tree(tmp_path_factory.mktemp("mini") / "koala_mini")


def meta(tree: Path, rel: str) -> list[dict]:
    return read_jsonl(tree / rel)


# ------------------------------------------------------------------------------------ counts
@needs_espeak
def test_counts_per_task_meet_the_issue(tree: Path) -> None:
    n = {rel: len(meta(tree, rel)) for pair in PAIRS for rel in pair}
    n.update({rel: len(meta(tree, rel)) for rel in ST_FILES})
    for clean, noisy in PAIRS:  # each noisy variant lists the same items
        assert n[clean] == n[noisy] > 0, (clean, noisy)
        assert [r["index"] for r in meta(tree, clean)] == [r["index"] for r in meta(tree, noisy)]
    assert n["ASR/zeroth_korean_test_clean.jsonl"] >= 12
    assert sum(n[rel] for rel in ST_FILES) >= 6
    assert n["Translation/etri_tst-COMMON_clean.jsonl"] >= 6
    mc = ("SQA/click_clean.jsonl", "SQA/kobest_boolq_clean.jsonl", "SQA/KCSAT_clean.jsonl")
    assert sum(n[rel] for rel in mc) >= 10
    assert sum(n[f"Instruct/{s}_clean.jsonl"] for s in INSTRUCT_SUBSETS) >= 4
    assert sum(n[f"SCA-QA/{s}_clean.jsonl"] for s in SCA_SUBSETS) >= 6
    paqa = meta(tree, "PA-QA/mctest_clean.jsonl")
    passages = {r["question_ko"] for r in paqa}
    assert len(passages) >= 6
    for p in passages:  # "long enough for positions to matter"
        assert len(mini.split_sentences(p)) >= 12, p[:30]
    manifest = json.loads((tree / mini.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["counts"] == {rel: k for rel, k in n.items()}


@needs_espeak
def test_asr_references_are_written_like_zeroth(tree: Path) -> None:
    rows = meta(tree, "ASR/zeroth_korean_test_clean.jsonl")
    for r in rows:
        # Hangul syllables and single spaces only: numbers spelled out, no punctuation
        assert re.fullmatch(r"[가-힣]+( [가-힣]+)*", r["question_ko"]), r["question_ko"]
    assert len({r["question_ko"] for r in rows}) == len(rows)
    assert len({Path(r["raw"]).name for r in rows}) == len(rows)  # unique file names
    assert all(not Path(r["raw"]).is_absolute() for r in rows)


# ------------------------------------------------------------------------------ gold answers
@needs_espeak
def test_gold_answers_are_among_the_choices(tree: Path) -> None:
    for r in meta(tree, "SQA/click_clean.jsonl"):
        assert r["choices"] == r["choices_ko"]
        label, text = re.fullmatch(r"\(([A-D])\) (.+)", r["answer_ko"]).groups()
        assert f"({label}) {text}" in r["choices_ko"]
    for r in meta(tree, "SQA/kobest_boolq_clean.jsonl"):
        assert r["choices_ko"] == "(A) 아니요\n(B) 예"
        assert r["answer_ko"] in ("(A) 아니요", "(B) 예")
        assert r["prompt"] and r["question_ko"]
    answers = Counter(r["answer_ko"] for r in meta(tree, "SQA/kobest_boolq_clean.jsonl"))
    assert len(answers) == 2  # both yes and no occur
    for r in meta(tree, "SQA/KCSAT_clean.jsonl"):
        labels = re.findall(r"\((\d)\)", r["choices_ko"])
        assert labels == ["1", "2", "3", "4", "5"]
        num, text = re.fullmatch(r"\((\d)\)(.+)", r["answer_ko"]).groups()
        assert f"({num}){text}" in r["choices_ko"]
    for s in SCA_SUBSETS:
        for r in meta(tree, f"SCA-QA/{s}_clean.jsonl"):
            assert len(r["choices"]) == 4 and len(set(r["choices"])) == 4
            assert r["choices"][r["correct_index"]] == r["new_answer"]  # 0-based, as published
            assert r["answer"] in r["choices"] and r["answer"] != r["new_answer"]
            assert r["new_context"] == r["context"].replace(r["keyword"], r["new_keyword"])
            assert r["keyword"] not in r["new_context"]
            assert r["new_keyword"] not in r["context"]
            assert r["keyword"] not in r["question"] and r["new_keyword"] not in r["question"]
            assert r["new_keyword"] in r["text_to_tts"] and r["keyword"] not in r["text_to_tts"]
    for r in meta(tree, "PA-QA/mctest_clean.jsonl"):
        label = re.fullmatch(r"\(([A-D])\)", r["answer_ko"]).group(1)
        assert f"({label}) {r['answer_text']}" in r["choices_ko"]
    letters = Counter(r["answer_ko"] for r in meta(tree, "PA-QA/mctest_clean.jsonl"))
    assert len(letters) == 4  # gold letters are spread, not always the same


@needs_espeak
def test_scoring_gives_gold_answers_full_marks_and_wrong_ones_zero(tree: Path) -> None:
    asr = [r["question_ko"] for r in meta(tree, "ASR/zeroth_korean_test_clean.jsonl")]
    assert corpus_cer(asr, asr).cer == 0.0
    assert corpus_cer(asr[1:] + asr[:1], asr).cer > 0.5

    def shifted(gold: str, labels: str) -> str:
        lab = re.match(r"\((.)\)", gold).group(1)
        return f"({labels[(labels.index(lab) + 1) % len(labels)]})"

    for rel, labels in [
        ("SQA/click_clean.jsonl", "ABCD"),
        ("SQA/kobest_boolq_clean.jsonl", "AB"),
        ("SQA/KCSAT_clean.jsonl", "12345"),
    ]:
        rows = meta(tree, rel)
        gold = [r["answer_ko"] for r in rows]
        choices = [r["choices_ko"] for r in rows]
        assert choice_accuracy(gold, gold, choices=choices)["accuracy"] == 1.0, rel
        wrong = [shifted(g, labels) for g in gold]
        assert choice_accuracy(wrong, gold, choices=choices)["accuracy"] == 0.0, rel

    paqa = meta(tree, "PA-QA/mctest_clean.jsonl")
    gold = [r["answer_ko"] for r in paqa]
    kw = {"choices": [r["choices_ko"] for r in paqa]}
    res = segment_accuracy(
        gold, gold, positions=[r["evidence_pos_token_ratio_list"] for r in paqa], **kw
    )
    assert res["accuracy"] == 1.0
    assert all(res["segment_accuracy"][s] == 1.0 for s in SEGMENTS)
    by_label = segment_accuracy(
        gold, gold, segments=[r["evidence_quartile_list"] for r in paqa], **kw
    )
    assert by_label["segment_count"] == res["segment_count"]
    wrong = [shifted(g, "ABCD") for g in gold]
    assert (
        segment_accuracy(
            wrong, gold, positions=[r["evidence_pos_token_ratio_list"] for r in paqa], **kw
        )["accuracy"]
        == 0.0
    )

    sca = [r for s in SCA_SUBSETS for r in meta(tree, f"SCA-QA/{s}_clean.jsonl")]
    choices = [r["choices"] for r in sca]

    def said(r: dict, ans: str) -> str:
        return f"({r['choices'].index(ans) + 1}) {ans}"

    res = speech_context_faithfulness(
        [said(r, r["new_answer"]) for r in sca],
        [r["new_answer"] for r in sca],
        [said(r, r["answer"]) for r in sca],
        [r["answer"] for r in sca],
        original_predictions=[said(r, r["answer"]) for r in sca],
        choices=choices,
        labels="numbers",
    )
    assert res["scf"] == 1.0 and res["parametric_proportion"] == 0.0
    assert res["text_accuracy"] == res["counterfactual_accuracy"] == res["original_accuracy"] == 1.0
    stubborn = speech_context_faithfulness(  # a model that ignores the speech
        [said(r, r["answer"]) for r in sca],
        [r["new_answer"] for r in sca],
        [said(r, r["answer"]) for r in sca],
        [r["answer"] for r in sca],
        choices=choices,
        labels="numbers",
    )
    assert stubborn["scf"] == 0.0 and stubborn["parametric_proportion"] == 1.0

    translation = pytest.importorskip("koala.scoring.translation")
    st = [r for rel in ST_FILES for r in meta(tree, rel)]
    refs = [r["answer_ko"] for r in st]
    assert translation.translation_scores(refs, refs, metrics=["bleu"])["bleu"] == pytest.approx(
        100.0
    )


# ------------------------------------------------------------------------------------ PA-QA
@needs_espeak
def test_paqa_evidence_positions_agree_with_text_and_segments(tree: Path) -> None:
    rows = meta(tree, "PA-QA/mctest_clean.jsonl")
    covered: Counter[str] = Counter()
    multi = 0
    for r in rows:
        passage = r["question_ko"]
        spans = mini.split_sentences(passage)
        k = len(r["evidence_sentences"])
        for name in (
            "evidence_sentence_indices",
            "evidence_pos_token_ratio_list",
            "evidence_quartile_list",
            "evidence_char_span_list",
            "evidence_char_span_exact_list",
        ):
            assert len(r[name]) == k, name
        for sent, idx, pos, seg, (a, b) in zip(
            r["evidence_sentences"],
            r["evidence_sentence_indices"],
            r["evidence_pos_token_ratio_list"],
            r["evidence_quartile_list"],
            r["evidence_char_span_list"],
            strict=True,
        ):
            assert passage[a:b] == sent
            assert spans[idx] == (a, b)
            assert pos == pytest.approx(a / len(passage))
            assert seg == segment_of(pos)
            covered[seg] += 1
        assert r["evidence_pos_min"] == min(r["evidence_pos_token_ratio_list"])
        assert r["evidence_pos_max"] == max(r["evidence_pos_token_ratio_list"])
        assert r["evidence_quartile_min"] == segment_of(r["evidence_pos_min"])
        assert r["evidence_quartile_max"] == segment_of(r["evidence_pos_max"])
        assert set(r["evidence_part_to_sentence_idx"].values()) <= set(
            r["evidence_sentence_indices"]
        )
        assert r["is_valid"] is True
        multi += len(set(r["evidence_quartile_list"])) >= 2
    assert set(covered) == set(SEGMENTS), covered  # every segment holds evidence
    assert multi >= 1  # and one item has evidence in two segments


@needs_espeak
def test_paqa_raw_columns_are_not_swapped(tree: Path) -> None:
    clean = meta(tree, "PA-QA/mctest_clean.jsonl")
    noisy = meta(tree, "PA-QA/mctest_other.jsonl")
    assert all(r["raw"].startswith("audio/mctest_final/") for r in clean)
    assert all(r["raw"].startswith("audio_noise/mctest_final_noise/") for r in noisy)
    assert all("text_to_tts" in r and "raw_response" in r for r in noisy)
    assert not any("text_to_tts" in r for r in clean)  # as published: only the noisy file


# ------------------------------------------------------------------------------------ audio
def audio_refs(tree: Path) -> list[tuple[str, str]]:
    refs = []
    for rel in [p for pair in PAIRS for p in pair] + ST_FILES:
        for r in meta(tree, rel):
            for f in ("raw", "original_raw"):
                if f in r:
                    refs.append((rel, r[f]))
    return refs


@needs_espeak
def test_every_audio_file_exists_is_16k_mono_and_used(tree: Path) -> None:
    refs = audio_refs(tree)
    used = {raw for _, raw in refs}
    for rel, raw in refs:
        info = sf.info(str(tree / raw))
        assert (info.samplerate, info.channels) == (16000, 1), (rel, raw)
        assert info.frames > 16000 // 2, (rel, raw)
        assert info.format == ("FLAC" if raw.endswith(".flac") else "WAV")
    on_disk = {
        p.relative_to(tree).as_posix()
        for p in tree.rglob("*")
        if p.is_file() and p.suffix in (".wav", ".flac")
    }
    assert on_disk == used  # no orphan audio
    clean_of = {}
    for clean, noisy in PAIRS:  # clean files never point into audio_noise and vice versa
        for c, n in zip(meta(tree, clean), meta(tree, noisy), strict=True):
            assert c["raw"].startswith("audio/") and n["raw"].startswith("audio_noise/")
            clean_of[n["raw"]] = c["raw"]
    assert len(clean_of) == len(set(clean_of.values()))


@needs_espeak
def test_etri_offsets_and_durations_cut_out_each_sentence(tree: Path) -> None:
    for rel in ST_FILES:
        by_talk: dict[str, list[dict]] = {}
        for r in meta(tree, rel):
            assert isinstance(r["offset"], float) and isinstance(r["duration"], float)
            by_talk.setdefault(r["raw"], []).append(r)
        for raw, rows in by_talk.items():
            audio, sr = sf.read(str(tree / raw), dtype="float32")
            end_prev = 0
            for r in rows:
                start = round(r["offset"] * sr)
                stop = start + round(r["duration"] * sr)
                assert start == r["offset"] * sr  # exact: offsets are whole centiseconds
                assert end_prev <= start and stop <= len(audio)
                assert not audio[end_prev:start].any()  # silence between sentences
                # the segment is the English sentence, spoken again now
                again = synth.synthesize(r["answer_en"], synth.ENGLISH)
                seg = audio[start:stop]
                assert len(again) <= len(seg) < len(again) + sr // 100
                np.testing.assert_allclose(seg[: len(again)], again, atol=1e-4)
                assert not seg[len(again) :].any()
                end_prev = stop
            assert len(audio) - end_prev == round(mini.ST_GAP_S * sr)


def estimated_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR of ``noisy`` = s * (clean + noise) with an unknown overall gain ``s`` (the mix is
    scaled down when it would clip): least-squares ``s``, the residual is the noise."""
    c = clean.astype(np.float64)
    y = noisy.astype(np.float64)
    s = float(np.dot(y, c) / np.dot(c, c))
    resid = y - s * c
    return 10 * np.log10(np.sum((s * c) ** 2) / np.sum(resid**2))


@needs_espeak
def test_noisy_audio_is_the_clean_audio_at_the_intended_snr(tree: Path) -> None:
    snrs = []
    for clean_rel, noisy_rel in PAIRS:
        for c, n in zip(meta(tree, clean_rel), meta(tree, noisy_rel), strict=True):
            clean, _ = sf.read(str(tree / c["raw"]), dtype="float32")
            noisy, _ = sf.read(str(tree / n["raw"]), dtype="float32")
            assert len(clean) == len(noisy)
            assert not np.array_equal(clean, noisy)
            assert np.max(np.abs(noisy)) <= 0.995
            snrs.append(estimated_snr_db(clean, noisy))
    assert mini.NOISE["type"] == "babble"
    target = mini.NOISE["snr_db"]
    assert all(abs(x - target) < 0.5 for x in snrs), snrs
    assert abs(float(np.mean(snrs)) - target) < 0.15


# ----------------------------------------------------------------------- determinism, reuse
@needs_espeak
def test_build_is_deterministic_and_reused(tree: Path, tmp_path: Path) -> None:
    manifest = json.loads((tree / mini.MANIFEST_NAME).read_text(encoding="utf-8"))
    hashes = tree_hashes(tree)
    assert {k: v["sha256"] for k, v in manifest["files"].items()} == {
        k: v for k, v in hashes.items() if k != mini.MANIFEST_NAME
    }
    second = mini.build_mini_tree(tmp_path / "again", workers=1)
    assert tree_hashes(second) == hashes  # byte-identical, whatever the parallelism

    # an up-to-date tree is returned as is, without rewriting anything
    stamp = (second / mini.MANIFEST_NAME).stat().st_mtime_ns
    t0 = time.perf_counter()
    assert mini.build_mini_tree(second) == second
    assert time.perf_counter() - t0 < 1.0
    assert (second / mini.MANIFEST_NAME).stat().st_mtime_ns == stamp

    # a damaged tree is rebuilt, atomically, to the same bytes
    victim = second / "audio" / "click" / "000000.wav"
    victim.write_bytes(victim.read_bytes()[:100])
    assert mini.build_mini_tree(second) == second
    assert tree_hashes(second) == hashes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing"):
        mini.build_mini_tree(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@needs_espeak
def test_cli_reports_the_tree(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    mini.add_arguments(parser)
    args = parser.parse_args(["--out", str(tree)])
    assert mini.run(args) == 0
    out = capsys.readouterr().out
    assert str(tree) in out
    n = len(meta(tree, "PA-QA/mctest_clean.jsonl"))
    assert f"PA-QA/mctest_clean.jsonl: {n} rows" in out


# ------------------------------------------------------------------------------------ synth
def test_missing_espeak_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(synth.EspeakNotFoundError, match="apt-get install espeak-ng"):
        synth.synthesize("안녕하세요", synth.KOREAN)
    with pytest.raises(synth.EspeakNotFoundError, match="apt-get install espeak-ng"):
        mini.build_mini_tree(tmp_path / "mini")
    assert list(tmp_path.iterdir()) == []  # nothing half-built left behind


def test_korean_speech_text_must_spell_out_digits_and_latin() -> None:
    with pytest.raises(ValueError, match="spell them out"):
        synth.synthesize("2009년에 지었다", synth.KOREAN)
    with pytest.raises(ValueError, match="spell them out"):
        synth.synthesize("LG 트윈스", synth.KOREAN)


@needs_espeak
def test_synthesis_is_deterministic_and_the_dialogue_voices_differ() -> None:
    a = synth.synthesize("좋아. 그런데 몇 시까지 가면 돼?", synth.KOREAN)
    b = synth.synthesize("좋아. 그런데 몇 시까지 가면 돼?", synth.KOREAN)
    c = synth.synthesize("좋아. 그런데 몇 시까지 가면 돼?", synth.KOREAN_B)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert len(a) != len(c) or not np.allclose(a, c)
    assert 0.5 < len(a) / 16000 < 5 and np.abs(a).max() > 0.05


# ------------------------------------------------------------- the published schema (../shared)
@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="../shared/upstream/koala-bench is absent")
@needs_espeak
def test_fields_match_the_published_files(tree: Path) -> None:
    ours_files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.jsonl"))
    assert ours_files == sorted(
        p.relative_to(UPSTREAM).as_posix() for p in UPSTREAM.rglob("*.jsonl")
    )
    for rel in ours_files:
        published = read_jsonl(UPSTREAM / rel)
        common = set.intersection(*(set(r) for r in published))
        orders = {tuple(r) for r in published if set(r) == common}
        types: dict[str, set[str]] = {}
        dirs: dict[str, set[str]] = {}
        for r in published:
            for k, v in r.items():
                types.setdefault(k, set()).add(type(v).__name__)
                if k in ("raw", "original_raw"):
                    dirs.setdefault(k, set()).add(posixpath.dirname(v))
        for r in meta(tree, rel):
            assert tuple(r) in orders, (rel, tuple(r))
            for k, v in r.items():
                assert type(v).__name__ in types[k], (rel, k, type(v).__name__, types[k])
            # same audio folders, except where the published paths cannot be reproduced: the
            # authors' absolute Zeroth paths and the swapped PA-QA columns
            if not rel.startswith(("ASR/", "PA-QA/")):
                for k in ("raw", "original_raw"):
                    if k in r:
                        assert posixpath.dirname(r[k]) in dirs[k], (rel, k, r[k])


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="../shared/upstream/koala-bench is absent")
def test_character_ratio_is_close_to_the_published_token_ratio() -> None:
    """The published ratio is a subword-token ratio; the mini's character ratio of the
    evidence start stays close to it and puts almost every sentence in the same segment."""
    errors, same = [], []
    for r in read_jsonl(UPSTREAM / "PA-QA" / "mctest_clean.jsonl"):
        for pos, (a, _b) in zip(
            r["evidence_pos_token_ratio_list"], r["evidence_char_span_list"], strict=True
        ):
            ratio = a / len(r["question_ko"])
            errors.append(abs(ratio - pos))
            same.append(segment_of(ratio) == segment_of(pos))
    assert np.mean(errors) < 0.015
    assert np.mean(same) > 0.9


def test_module_does_not_import_heavy_things_at_cli_build_time() -> None:
    # koala.cli imports every subcommand module to build its parser
    import subprocess
    import sys

    code = "import sys, koala.mini; print('torch' in sys.modules, 'datasets' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout.split()
    assert out == ["False", "False"]
