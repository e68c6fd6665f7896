"""``koala-bench import lmms-eval`` (issue 23): the records of a task come from one run the
user can name, never from several; unreadable logs are named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koala.cli import main as cli_main
from koala.integrations.lmms_eval_import import read_logs

MC = {"question": "", "choices": ["가", "나", "다", "라"], "choice_labels": ["A", "B", "C", "D"]}
FULL, SMOKE = "2026-01-01T00-00-00", "2026-02-01T00-00-00"


def click(rid: str, answer: str, prediction: str) -> dict:
    return {
        "task": "sqa",
        "config": "sqa_click",
        "variant": "k1",
        "condition": "speech",
        "id": rid,
        "ref": MC | {"answer": answer},
        "status": "ok",
        "prediction": prediction,
        "shown_labels": MC["choice_labels"],
        "subset": "click",
        "noise": "clean",
    }


def kcsat(rid: str, prediction: str) -> dict:
    return click(rid, "A", prediction) | {"config": "sqa_kcsat", "subset": "kcsat"}


def write_run(folder: Path, date: str, tasks: dict[str, list[dict]], limit: int | None) -> None:
    """What lmms-eval --log_samples writes for one invocation: a samples file per task and
    the results file (its config carries --limit)."""
    folder.mkdir(parents=True, exist_ok=True)
    for task, records in tasks.items():
        with open(folder / f"{date}_samples_{task}.jsonl", "w", encoding="utf-8") as f:
            for k, r in enumerate(records):
                sample = {"doc_id": k, "resps": [[r["prediction"]]], "accuracy": r}
                f.write(json.dumps(sample, ensure_ascii=False) + "\n")
    results = {"model_name": "m", "lmms_eval_version": "0.7.3", "config": {"limit": limit}}
    (folder / f"{date}_results.json").write_text(json.dumps(results), encoding="utf-8")


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    """A full run of two tasks, then a --limit 1 smoke run of one of them."""
    logs = tmp_path / "logs" / "m"
    write_run(
        logs,
        FULL,
        {
            "koala_sqa_click": [click("1", "A", "(A)"), click("2", "B", "(B)")],
            "koala_sqa_kcsat": [kcsat("9", "(A)")],
        },
        None,
    )
    write_run(logs, SMOKE, {"koala_sqa_click": [click("1", "A", "(C)")]}, 1)
    return tmp_path / "logs"


def test_several_runs_of_one_task_are_refused_and_listed(two_runs: Path) -> None:
    with pytest.raises(ValueError) as err:
        read_logs(two_runs)
    msg = str(err.value)
    assert "koala_sqa_click: 2 runs" in msg and FULL in msg and SMOKE in msg
    assert "--limit 1" in msg and "--run" in msg  # the smoke run is told apart


def test_the_named_run_is_read_whole(two_runs: Path) -> None:
    _, records, source = read_logs(two_runs, run=FULL)
    assert sorted((r["config"], r["id"], r["prediction"]) for r in records) == [
        ("sqa_click", "1", "(A)"),
        ("sqa_click", "2", "(B)"),
        ("sqa_kcsat", "9", "(A)"),
    ]
    assert source["runs"] == [FULL]
    # a run named by one of its files; the smoke run alone
    smoke_results = next(two_runs.rglob(f"{SMOKE}_results.json"))
    _, records, _ = read_logs(two_runs, run=str(smoke_results))
    assert [(r["id"], r["prediction"]) for r in records] == [("1", "(C)")]
    # two runs of one task named together: still refused, never mixed
    with pytest.raises(ValueError, match="name one run per task"):
        read_logs(two_runs, run=f"{FULL},{SMOKE}")
    with pytest.raises(ValueError, match="no run '2027"):
        read_logs(two_runs, run="2027-01-01T00-00-00")


def test_runs_of_different_tasks_are_read_together(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "m"
    write_run(logs, FULL, {"koala_sqa_click": [click("1", "A", "(A)")]}, None)
    write_run(logs, SMOKE, {"koala_sqa_kcsat": [kcsat("9", "(B)")]}, None)
    _, records, source = read_logs(tmp_path / "logs")
    assert sorted(r["config"] for r in records) == ["sqa_click", "sqa_kcsat"]
    assert source["runs"] == [FULL, SMOKE]


def test_the_command_line_names_the_run(two_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli_main(["import", "lmms-eval", str(two_runs), "--out", str(out)]) == 1
    assert not (out / "predictions.jsonl").exists()
    assert cli_main(["import", "lmms-eval", str(two_runs), "--out", str(out), "--run", FULL]) == 0
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert cli_main(["import", "lmms-eval", str(two_runs), "--out", str(tmp_path / "r2"),
                     "--epoch", "2"]) == 1  # fmt: skip


def test_a_non_utf8_line_is_named_by_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs" / "m"
    write_run(logs, FULL, {"koala_sqa_click": [click("1", "A", "(A)"), click("2", "B", "x")]}, None)
    path = logs / f"{FULL}_samples_koala_sqa_click.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1].replace(b'"x"', b'"\xff\xfe"'))
    with pytest.raises(ValueError, match=rf"{path.name}:2: not UTF-8"):
        read_logs(tmp_path / "logs")
    assert cli_main(["import", "lmms-eval", str(tmp_path / "logs"), "--out",
                     str(tmp_path / "run")]) == 1  # fmt: skip
    assert f"{path}:2: not UTF-8" in capsys.readouterr().err


def test_a_non_utf8_results_file_is_named(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "m"
    write_run(logs, FULL, {"koala_sqa_click": [click("1", "A", "(A)")]}, None)
    results = logs / f"{FULL}_results.json"
    results.write_bytes(b'{"model_name": "\xff"}')
    with pytest.raises(ValueError, match=rf"{results.name}: not UTF-8"):
        read_logs(tmp_path / "logs")


def test_the_canary_log_is_not_imported(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "m"
    write_run(logs, FULL, {"koala_sqa_click": [click("1", "A", "(A)")]}, None)
    (logs / f"{SMOKE}_samples_koala_canary.jsonl").write_text("{}\n", encoding="utf-8")
    _, records, source = read_logs(tmp_path / "logs")
    assert len(records) == 1 and source["tasks"] == ["koala_sqa_click"]
