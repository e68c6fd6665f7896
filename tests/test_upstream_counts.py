"""The published metadata (``../shared/upstream/koala-bench``), with generated stand-in audio:
every config has the published row count, and each known defect is repaired the measured
number of times. Skipped when the folder is absent (a fresh clone has no ``../shared``)."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import soundfile as sf

from koala import export
from koala.builder import BuildOptions, BuildReport, generate_rows, get_config

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = REPO / ".." / "shared" / "upstream" / "koala-bench"

pytestmark = pytest.mark.skipif(
    not (UPSTREAM / "PA-QA" / "mctest_clean.jsonl").is_file(),
    reason="the published metadata (../shared/upstream/koala-bench) is not here",
)

# config -> (rows, {repair kind: count}); the counts are the published files' defects
EXPECTED: dict[str, tuple[int, dict[str, int]]] = {
    "asr_zeroth": (457, {}),
    "pa_qa": (327, {"swapped_audio": 327, "not_valid": 100}),
    "sqa_click": (
        1207,
        {"gold_from_original_choices": 25, "choices_truncated": 6, "choices_label_in_text": 2},
    ),
    "sqa_kobest_boolq": (1118, {}),
    "sqa_kcsat": (85, {"choices_slash_n": 17, "choices_misnumbered": 1, "duplicate_index": 3}),
    "sif_alpaca": (69, {}),
    "sif_kudge": (557, {}),
    "sif_openhermes": (78, {}),
    "sif_vicuna": (61, {}),
    "sca_qa_history_before_chosun": (101, {"answer_by_containment": 8, "duplicate_choice_text": 2}),
    "sca_qa_history_after_chosun": (82, {"duplicate_choice_text": 5}),
    "sca_qa_k_sports": (88, {"duplicate_choice_text": 3}),
    "sca_qa_kpop": (103, {}),
    "st_tst_common": (2532, {}),
    "st_tst_he": (544, {}),
}
NOISY = [n for n in EXPECTED if not n.startswith("st_")]
UNIONS = {"sqa": 2410, "sif_noisy": 765, "sca_qa": 374, "sca_qa_noisy": 374}


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KoALA root where every audio file the metadata names exists (symlinks to three tiny
    files; one 8 kHz talk long enough for every ETRI segment), in the published layouts."""
    root = tmp_path_factory.mktemp("upstream") / "root"
    store = root / ".store"  # links must stay inside the data root
    store.mkdir(parents=True)
    clip = np.full(1600, 0.01, dtype=np.float32)
    sf.write(str(store / "s.wav"), clip, 16_000, subtype="PCM_16")
    sf.write(str(store / "s.flac"), clip, 16_000, subtype="PCM_16")
    sf.write(
        str(store / "talk.wav"), np.full(8000 * 1400, 0.01, np.float32), 8000, subtype="PCM_16"
    )

    def link(rel: str, target: str) -> None:
        p = root / rel
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(store / target, p)

    for meta in sorted(UPSTREAM.glob("*/*.jsonl")):
        for line in meta.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            for key in ("raw", "original_raw"):
                raw = rec.get(key)
                if not raw:
                    continue
                parts = PurePosixPath(raw).parts
                if PurePosixPath(raw).is_absolute():  # Zeroth: the authors' machine
                    if "audio_noise" in parts:
                        link("/".join(parts[parts.index("audio_noise") :]), "s.flac")
                    else:  # the Zeroth corpus layout test_data_01/<session>/<speaker>/
                        speaker, session = parts[-1].split("_")[:2]
                        link(f"zeroth/test_data_01/{session}/{speaker}/{parts[-1]}", "s.flac")
                elif "ETRI_translate_data1" in raw:
                    link(raw, "talk.wav")
                else:
                    link(raw if parts[0] in ("audio", "audio_noise") else f"audio/{raw}", "s.wav")
    return root


def build(name: str, root: Path) -> tuple[list[dict], BuildReport]:
    report = BuildReport(name)
    options = BuildOptions(data_dir=root, metadata_dir=UPSTREAM)
    return [row for _, row in generate_rows(get_config(name), options, report)], report


@pytest.mark.parametrize("name", [*EXPECTED, *(f"{n}_noisy" for n in NOISY)])
def test_published_counts_and_defects(standin: Path, name: str) -> None:
    rows, report = build(name, standin)
    n_rows, repairs = EXPECTED[name.removesuffix("_noisy")]
    assert len(rows) == n_rows
    assert len({r["id"] for r in rows}) == n_rows
    assert not report.skipped
    assert {kind: n for (_, kind), n in report.fixes.items()} == repairs
    assert {r["noise"] for r in rows} == {"noisy" if name.endswith("_noisy") else "clean"}
    if name.startswith("sca_qa"):
        originals = {r["original_audio"] is None for r in rows}
        assert originals == {name.endswith("_noisy")}  # the noisy files publish none
        assert all(r["counterfactual_answer"] != r["answer"] for r in rows)


@pytest.mark.parametrize(("name", "n_rows"), UNIONS.items())
def test_union_counts(standin: Path, name: str, n_rows: int) -> None:
    rows, _ = build(name, standin)
    assert len(rows) == n_rows
    assert Counter(r["subset"] for r in rows) == {
        s.name: EXPECTED[s.config][0] for s in get_config(name).subsets
    }


def _published(name: str) -> list[dict]:
    sub = get_config(name).subsets[0]
    return [json.loads(x) for x in (UPSTREAM / sub.clean).read_text("utf-8").splitlines()]


@pytest.mark.parametrize(
    "name", ["sqa_click", "sqa_kobest_boolq", "sqa_kcsat", "pa_qa", "sca_qa_history_before_chosun"]
)
def test_source_fields_are_the_published_strings(standin: Path, name: str) -> None:
    rows, report = build(name, standin)
    sub = get_config(name).subsets[0]
    recs = [r for r in _published(name) if r.get("is_valid", True) is True]
    assert len(rows) == len(recs)
    if sub.task == "sca_qa":
        for row, rec in zip(rows, recs, strict=True):
            assert row["source_answer"] == rec["answer"]
            assert row["source_counterfactual_answer"] == rec["new_answer"]
            assert row["choices"] == rec["choices"]  # the published list, unaltered
    else:
        for row, rec in zip(rows, recs, strict=True):
            assert row["source_answer"] == rec[sub.field_name("answer")]
            assert row["source_choices"] == rec[sub.field_name("choices")]
    # no published row is refused or left without a gold label: 0 kept with an empty label
    assert all(r["answer"] for r in rows)
    kinds = {kind for (_, kind), _n in report.fixes.items()}
    assert not kinds & {
        "answer_unreadable",
        "counterfactual_unreadable",
        "counterfactual_is_answer",
    }


# SCA-QA rows whose label differs from the published reading of the same fields (gold = the
# first choice whose text equals the answer exactly, else A): the answers matched by
# containment (published: A), and the duplicated counterfactual choices where correct_index
# names the second copy (published: the first), measured on the published files
SCA_PUBLISHED_DIFFERS = {
    # 8 answers by containment, 4 of them in the first choice anyway (000002, 000003, 000015,
    # 000029); 000050's counterfactual 의상대사 is choices 1 and 3, correct_index 2
    "sca_qa_history_before_chosun": (4, 1),
    "sca_qa_history_after_chosun": (0, 3),
    "sca_qa_k_sports": (0, 3),
    "sca_qa_kpop": (0, 0),
}


@pytest.mark.parametrize(("name", "differs"), SCA_PUBLISHED_DIFFERS.items())
def test_sca_qa_labels_against_the_published_reading(
    standin: Path, name: str, differs: tuple[int, int]
) -> None:
    rows, _ = build(name, standin)

    def published_label(text: str, choices: list[str]) -> str:
        return str(choices.index(text) + 1) if text in choices else "1"

    answer = sum(r["answer"] != published_label(r["source_answer"], r["choices"]) for r in rows)
    cf = sum(
        r["counterfactual_answer"]
        != published_label(r["source_counterfactual_answer"], r["choices"])
        for r in rows
    )
    assert (answer, cf) == differs


def test_pa_qa_evidence_of_the_published_items(standin: Path) -> None:
    rows, report = build("pa_qa", standin)
    segments = Counter(s for r in rows for s in r["evidence_segments"])
    assert segments == {"front": 150, "front-middle": 95, "middle-late": 83, "late": 59}
    assert ("mctest", "segment_disagrees_with_position") not in report.fixes
    assert Counter(r["answer"] for r in rows) == {"D": 84, "C": 83, "A": 82, "B": 78}
    for r in rows:
        for (start, end), sentence in zip(
            r["evidence_char_spans"], r["evidence_sentences"], strict=True
        ):
            assert r["passage"][start:end] == sentence


def test_export_of_the_published_pa_qa_loads(standin: Path, tmp_path: Path) -> None:
    from datasets import load_dataset

    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    out = tmp_path / "out"
    args = [
        "--data-dir",
        str(standin),
        "--metadata-dir",
        str(UPSTREAM),
        "--out",
        str(out),
        "--configs",
        "pa_qa",
    ]
    assert export.run(parser.parse_args(args)) == 0
    ds = load_dataset(str(out), "pa_qa", split="test", cache_dir=str(tmp_path / "c"))
    assert len(ds) == 327
    assert ds[0]["audio"]["sampling_rate"] == 16_000
    assert "swapped_audio x327" in (out / "README.md").read_text(encoding="utf-8")
