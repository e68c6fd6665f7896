"""A seventh task, declared outside the project (one Python module and one builder-config YAML
in a temporary folder), goes through export, run, score and report like the six built-in
ones: the engine names no task (issue 12)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from koala import mini
from koala.builder.registry import config_dir
from tests.openai_server import Reply, ScriptedServer, completion

HAVE_ESPEAK = shutil.which("espeak-ng") is not None

# Count the Hangul syllables of the spoken sentence: a task none of the project's code knows.
TASK_MODULE = """
from koala.tasks import Task
from koala.tasks.base import answer_text, sorted_records


def syllables(text):
    return sum("가" <= ch <= "힣" for ch in text)


class SyllableCount(Task):
    name = "syllables"
    title = "Syllable count: exact answers (%)"
    order = 70
    main_metric = "accuracy"
    ref_fields = ("text",)
    selection_rule = "highest share of exact counts; ties to the first variant name"
    default_prompts = ({"name": "s1", "prompt": "How many Hangul syllables are spoken?"},)

    def columns(self):
        import datasets

        return {"text": datasets.Value("string")}

    def row_columns(self, rec, sub, fix):
        return {"text": rec[sub.field_name("text")]}

    def score(self, recs, protocol, ci, options):
        recs = sorted_records(recs)
        right = [answer_text(r).strip() == str(syllables(r["ref"]["text"])) for r in recs]
        return {"gen": {"accuracy": sum(right) / len(right), "total": len(right)}}


TASK = SyllableCount()
"""

TASK_YAML = """
task: syllables
task_module: syllables.py
description: Count the syllables of a spoken Korean sentence.
subsets:
  - name: zeroth
    config: count_zeroth
    source: koala
    clean: ASR/zeroth_korean_test_clean.jsonl
    search: [zeroth]
    id_from: file
    fields: {text: question_ko}
"""


def syllables(text: str) -> int:
    return sum("가" <= ch <= "힣" for ch in text)


def test_a_seventh_task_goes_through_export_run_score_and_report(tmp_path: Path) -> None:
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    configs = tmp_path / "configs"
    configs.mkdir()
    for f in config_dir().glob("*.yaml"):
        shutil.copy(f, configs / f.name)
    (configs / "syllables.yaml").write_text(TASK_YAML, encoding="utf-8")
    (configs / "syllables.py").write_text(TASK_MODULE, encoding="utf-8")
    tree = mini.build_mini_tree(tmp_path / "mini")
    refs = [
        json.loads(line)["question_ko"]
        for line in (tree / "ASR/zeroth_korean_test_clean.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    env = {
        **os.environ,
        "KOALA_BUILDER_CONFIGS": str(configs),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
    }
    kb = [str(Path(sys.executable).with_name("koala-bench"))]

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*kb, *args], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
        return done

    call("export", "--data-dir", str(tree), "--out", str(tmp_path / "data"),
         "--configs", "count_zeroth")  # fmt: skip

    # with one request at a time the rows are asked in export order (the metadata's): the
    # server gives the right count for the first three and one too many after that
    answers = [str(syllables(t) + (0 if k < 3 else 1)) for k, t in enumerate(refs)]
    asked: list[str] = []

    def script(body: dict, n: int) -> Reply:
        prompt = json.dumps(body["messages"], ensure_ascii=False)
        asked.append(prompt)
        return Reply(body=completion(answers[n]))

    with ScriptedServer(script) as srv:
        call("run", "--model", f"openai:m@{srv.url}", "--configs", "count_zeroth",
             "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
             "--no-progress", "--concurrency", "1")  # fmt: skip
    assert len(asked) == len(refs) > 3
    assert all("How many Hangul syllables are spoken?" in p for p in asked)
    records = [
        json.loads(line)
        for line in (tmp_path / "run" / "predictions.jsonl").read_text("utf-8").splitlines()
    ]
    assert {r["task"] for r in records} == {"syllables"}
    assert [r["ref"]["text"] for r in records] == refs
    assert [r["prediction"] for r in records] == answers

    call("score", str(tmp_path / "run"))
    scores = json.loads((tmp_path / "run" / "scores.json").read_text("utf-8"))
    ((_model, configs_scored),) = scores["models"].items()
    (c,) = configs_scored["configs"].values()
    assert c["task"] == "syllables" and c["status"] == "complete"
    assert c["variants"]["s1"]["gen"]["accuracy"] == pytest.approx(3 / len(refs))
    assert c["best"]["gen"]["variant"] == "s1"

    call("report", str(tmp_path / "run"), "--out", str(tmp_path / "report"))
    md = (tmp_path / "report" / "results.md").read_text("utf-8")
    assert "## Syllable count: exact answers (%)" in md
    assert f"{100 * 3 / len(refs):.1f}" in md
    assert "highest share of exact counts" in md



def test_the_configs_folder_follows_the_environment_and_the_path(tmp_path, monkeypatch):
    """The folder is looked up once per (path, $KOALA_BUILDER_CONFIGS), not once per call:
    a change of either is still seen."""
    default = config_dir()
    mine, other, empty = tmp_path / "mine", tmp_path / "other", tmp_path / "empty"
    for folder in (mine, other, empty):
        folder.mkdir()
    (mine / "x.yaml").write_text("configs: []\n", encoding="utf-8")
    (other / "y.yaml").write_text("configs: []\n", encoding="utf-8")
    monkeypatch.setenv("KOALA_BUILDER_CONFIGS", str(mine))
    assert config_dir() == mine
    assert config_dir(other) == other
    assert config_dir(empty) == mine  # a folder without YAML is passed over
    monkeypatch.setenv("KOALA_BUILDER_CONFIGS", str(other))
    assert config_dir() == other
    monkeypatch.delenv("KOALA_BUILDER_CONFIGS")
    assert config_dir() == default and config_dir(empty) == default
