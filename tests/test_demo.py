"""The demo's own choices: which rows and variants it asks, what it keeps out of its output,
the demo judge's prompt (read by the real rating parser)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from koala import demo
from koala.metrics_install import install_metrics
from koala.prompts import load_prompts
from koala.scoring.judge_prompts import parse_rating


def test_pick_rows_takes_each_subset_in_turn() -> None:
    subsets = ["h1", "h1", "h2", "h2", "sport", "sport", "pop", "pop"]
    assert demo.pick_rows(subsets, 4) == [0, 2, 4, 6]  # one row of each subset
    assert demo.pick_rows(subsets, 5) == [0, 1, 2, 4, 6]  # then each subset's second row
    assert demo.pick_rows(["m"] * 8, 3) == [0, 1, 2]  # one subset: the first rows
    assert demo.pick_rows(["a", "b"], 9) == [0, 1]  # never more than there are


def test_row_limits_follow_limit_full_or_the_demo_table() -> None:
    configs = ["asr_zeroth", "st_tst_common"]
    assert demo.row_limits(configs, None, False) == {"asr_zeroth": 6, "st_tst_common": None}
    assert demo.row_limits(configs, None, True) == {"asr_zeroth": None, "st_tst_common": None}
    assert demo.row_limits(configs, 2, False) == {"asr_zeroth": 2, "st_tst_common": 2}


def test_the_demo_asks_the_first_variant_of_every_task() -> None:
    full = load_prompts()
    first = demo.first_variants(full)
    assert set(first.entries) == set(full.entries)
    for key, variants in first.entries.items():
        assert [v.name for v in variants] == [full.entries[key][0].name]
    assert "first variant" in first.source and first.sha256 != full.sha256


def test_the_demo_judge_prompt_asks_for_the_grade_first() -> None:
    messages = demo.DEMO_JUDGE_PROMPT.messages("날씨를 알려 줘", "맑습니다")
    assert (
        messages[0]["role"] == "system"
        and "Start your answer with the grade" in (messages[0]["content"])
    )
    assert "날씨를 알려 줘" in messages[1]["content"] and "맑습니다" in messages[1]["content"]
    # a reply cut after a few tokens still carries its grade
    assert parse_rating("Grade: [[6]] The reply", "koala") == (6.0, None)


def test_the_judges_routine_notices_are_held_back_and_its_failures_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("koala.scoring.judge")
    with caplog.at_level(logging.INFO, logger="koala.scoring.judge"):
        with demo._judge_chatter_held_back():
            log.warning("judge: %d requests to %s at %s (%d cached)", 2, "m", "h", 0)
            log.info("judge: environment variable X is not set; sending no API key")
            log.warning("judge: %d of %d items unparsable", 1, 2)
        log.warning("judge: %d requests to %s at %s (%d cached)", 1, "m", "h", 0)
    shown = [r.getMessage() for r in caplog.records]
    assert shown == ["judge: 1 of 2 items unparsable", "judge: 1 requests to m at h (0 cached)"]


def test_loading_a_module_from_evaluates_cache_offline_prints_no_warning(tmp_path: Path) -> None:
    """Offline, evaluate.load("koala/scf") falls back to its modules cache and logs "Using
    the latest cached version of the module ... couldn't be found ... on the Hugging Face
    Hub" at WARNING; the demo says once itself that it loads from the cache."""
    cache = tmp_path / "modules"
    install_metrics(cache=cache / "evaluate_modules" / "metrics")
    script = (
        "import logging, evaluate\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from koala.demo import _quiet_cache_fallback\n"
        "import sys\n"
        "if sys.argv[1] == 'quiet':\n"
        "    with _quiet_cache_fallback():\n"
        "        evaluate.load('koala/scf')\n"
        "else:\n"
        "    evaluate.load('koala/scf')\n"
        "logging.getLogger('evaluate').warning('after: still shown')\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HF_MODULES_CACHE": str(cache), "PYTHONPATH": str(root)}
    out = {}
    for mode in ("loud", "quiet"):
        done = subprocess.run(
            [sys.executable, "-c", script, mode],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        out[mode] = done.stdout + done.stderr
    assert "couldn't be found" in out["loud"]  # what evaluate says without the demo's guard
    assert "couldn't be found" not in out["quiet"]
    assert "after: still shown" in out["quiet"]  # the level is given back
