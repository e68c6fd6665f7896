"""``koala-bench check`` and ``run --check``: does the audio reach the model?"""

from __future__ import annotations

import threading

import numpy as np
from test_runner import asr_rows, make_export, one_variant_prompts, sqa_rows, tone

from koala.check import check_audio, choose_config
from koala.cli import main as cli_main
from koala.models import ModelBase, register
from koala.prompts import load_prompts
from koala.runner import PREDICTIONS, load_config, read_predictions


class Hears(ModelBase):
    """Answers from the audio: its length and energy."""

    def __init__(self, name: str = "hears") -> None:
        self.name = name
        self.calls: list = []
        self.lock = threading.Lock()

    def generate(self, audio, prompt):
        with self.lock:
            self.calls.append((audio, prompt))
        rms = float(np.sqrt(np.mean(audio.array**2))) if audio is not None else 0.0
        return f"{len(audio.array) if audio is not None else 0} samples, rms {rms:.3f}"


class Deaf(Hears):
    """The audio never reaches it: the answer depends on the prompt only."""

    def generate(self, audio, prompt):
        super().generate(audio, prompt)
        return "(A)" if "(A)" in prompt else "오늘 날씨가 좋습니다"


MODELS = {"test-hears": Hears("test-hears"), "test-deaf": Deaf("test-deaf")}
for kind in MODELS:
    register(kind)(lambda spec, kind=kind: MODELS[kind])


def test_the_check_sends_own_audio_silence_and_the_next_rows_audio(tmp_path):
    rows = asr_rows(3)
    rows[1]["audio"] = tone(101, 0.5)  # another length: silence must follow it
    data = make_export(tmp_path / "data", {"asr_zeroth": rows})
    model = Deaf()
    ds = load_config(str(data), "asr_zeroth")
    prompts = load_prompts(one_variant_prompts(tmp_path))
    result = check_audio(model, ds, "asr_zeroth", rows=3, prompts=prompts)
    assert len(model.calls) == 9 and {p for _, p in model.calls} == {"받아 적으세요."}
    sent = [a.array for a, _ in model.calls]
    clips = [tone(100, 0.25), tone(101, 0.5), tone(102, 0.25)]
    for k in range(3):
        own, quiet, other = sent[3 * k : 3 * k + 3]
        assert np.allclose(own, clips[k], atol=1e-4)
        assert len(quiet) == len(clips[k]) and not quiet.any()
        assert np.allclose(other, clips[(k + 1) % 3], atol=1e-4)
    assert not result.passed and result.comparable == 3 and result.varied == 0
    assert [r.id for r in result.rows] == ["a00", "a01", "a02"]

    heard = check_audio(Hears(), ds, "asr_zeroth", rows=2, prompts=prompts)
    assert heard.passed and heard.varied == 2 and len(heard.rows) == 2


def test_check_passes_for_a_model_that_hears_and_fails_loudly_for_a_deaf_one(tmp_path, capsys):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(5), "asr_zeroth": asr_rows(4)})
    assert cli_main(["check", "test-hears", "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert "OK: the answers depend on the audio" in err and "config asr_zeroth" in err
    assert "4 of 4 row(s)" in err

    for config in ("asr_zeroth", "sqa_click"):
        n0 = len(MODELS["test-deaf"].calls)
        rc = cli_main(["check", "test-deaf", "--data", str(data), "--config", config])
        err = capsys.readouterr().err
        assert rc == 6
        assert "FAILED: the answers do not depend on the audio" in err
        assert err.count("silence:") == 4 and err.count("other:") == 4  # the answers shown
        assert len(MODELS["test-deaf"].calls) - n0 == 12
    assert "'(A)'" in err
    assert cli_main(["check", "test-deaf", "--data", str(data), "--rows", "2"]) == 6
    assert capsys.readouterr().err.count("own:") == 2


def test_run_check_stops_before_the_run(tmp_path, capsys):
    data = make_export(tmp_path / "data", {"sqa_click": sqa_rows(4)})
    prompts = one_variant_prompts(tmp_path)

    def argv(kind, out):
        return [
            "run", "--model", kind, "--configs", "sqa_click", "--data", str(data),
            "--prompts", str(prompts), "--out", str(out), "--no-progress", "--check",
        ]  # fmt: skip

    deaf = MODELS["test-deaf"]
    n0 = len(deaf.calls)
    assert cli_main(argv("test-deaf", tmp_path / "deaf")) == 6
    err = capsys.readouterr().err
    assert "do not depend on the audio" in err and "nothing was run" in err
    assert len(deaf.calls) - n0 == 12  # the check only
    assert not (tmp_path / "deaf" / PREDICTIONS).exists()

    hears = MODELS["test-hears"]
    n0 = len(hears.calls)
    assert cli_main(argv("test-hears", tmp_path / "hears")) == 0
    assert len(hears.calls) - n0 == 12 + 4  # the check, then the run
    recs, _ = read_predictions(tmp_path / "hears" / PREDICTIONS)
    assert len(recs) == 4


def test_the_checked_config_is_one_the_model_does():
    asr_only = Hears()
    asr_only.tasks = frozenset({"asr"})
    assert choose_config(Hears(), ["sqa_click", "asr_zeroth"]) == "asr_zeroth"
    assert choose_config(Hears(), ["sqa_click", "pa_qa"]) == "sqa_click"
    assert choose_config(asr_only, ["sqa_click", "pa_qa"]) is None
