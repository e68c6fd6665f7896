"""Records answered by another harness become a koala-bench run that score reads like its own
(koala.integrations.run_writer; the importers build on it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koala.import_logs import main as import_main
from koala.integrations.run_writer import write_run
from koala.predictions import load_plan
from koala.score import score_run


def mc(config: str, rid: str, answer: str, prediction: str, variant: str = "v1") -> dict:
    return {
        "task": "sqa",
        "config": config,
        "variant": variant,
        "condition": "speech",
        "id": rid,
        "ref": {
            "question": "",
            "choices": ["가", "나", "다", "라"],
            "choice_labels": ["A", "B", "C", "D"],
            "answer": answer,
        },
        "status": "ok",
        "prediction": prediction,
        "shown_labels": ["A", "B", "C", "D"],
        "prompt": f"prompt of {rid}",
    }


def test_imported_records_score_as_a_run(tmp_path: Path) -> None:
    # 3 of 4 right by hand: (A) is A, "정답은 B" is B, C against gold D is wrong, D is D
    recs = [
        mc("sqa_click", "1", "A", "(A)"),
        mc("sqa_click", "2", "B", "정답은 B"),
        mc("sqa_click", "3", "D", "C"),
        mc("sqa_click", "4", "D", "(D)"),
    ]
    got = write_run(tmp_path / "run", "m", recs, source={"harness": "test", "log": "x"})
    assert got == {"records": 4, "configs": ["sqa_click"], "status": {"ok": 4}}
    plan = load_plan(tmp_path / "run")["sqa_click"]
    assert plan.planned == 4 and plan.task == "sqa"
    lines = (tmp_path / "run" / "predictions.jsonl").read_text("utf-8").splitlines()
    assert all("prompt" not in json.loads(line) for line in lines)
    scores = score_run(tmp_path / "run", confidence=None)
    c = scores["models"]["m"]["configs"]["sqa_click"]
    assert c["status"] == "complete"
    assert c["variants"]["v1"]["gen"]["accuracy"] == pytest.approx(0.75)
    # a second import of the same model by the same harness replaces that config and keeps
    # the others
    write_run(tmp_path / "run", "m", [mc("sqa_kcsat", "9", "A", "B")], source={"harness": "test"})
    write_run(tmp_path / "run", "m", recs[:2], source={"harness": "test", "log": "y"})
    scores = score_run(tmp_path / "run", confidence=None)
    configs = scores["models"]["m"]["configs"]
    assert configs["sqa_click"]["variants"]["v1"]["gen"]["accuracy"] == pytest.approx(1.0)
    assert configs["sqa_kcsat"]["variants"]["v1"]["gen"]["accuracy"] == 0.0


def test_bad_records_and_folders_are_refused_by_name(tmp_path: Path) -> None:
    bad = mc("sqa_click", "1", "A", "A")
    del bad["ref"]
    bad["where"] = "log.json sample 7"
    with pytest.raises(ValueError, match=r"log.json sample 7: missing field\(s\) \['ref'\]"):
        write_run(tmp_path / "a", "m", [bad], source={})
    odd = mc("sqa_click", "1", "A", "A") | {"task": "nosuch"}
    with pytest.raises(ValueError, match="record 0: unknown task 'nosuch'"):
        write_run(tmp_path / "b", "m", [odd], source={})
    twice = [mc("sqa_click", "1", "A", "A"), mc("sqa_click", "1", "A", "B")]
    with pytest.raises(ValueError, match="record 1: a second answer"):
        write_run(tmp_path / "c", "m", twice, source={})
    write_run(tmp_path / "d", "m", [mc("sqa_click", "1", "A", "A")], source={})
    with pytest.raises(ValueError, match="one model per run folder"):
        write_run(tmp_path / "d", "other", [mc("sqa_click", "1", "A", "A")], source={})
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty and not a koala-bench run"):
        write_run(tmp_path / "e", "m", [mc("sqa_click", "1", "A", "A")], source={})


def test_import_command_names_an_unknown_harness(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        import_main(["nosuch", "x", "--out", "y"])
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err
