"""inspect_ai paths (issue 22): the audio each sample sends reaches inspect's real model
providers (``openai``, ``vllm``) as the row's own clip, ``--epochs`` > 1 is scored (each epoch
scored as a run, figures averaged) and imported one epoch at a time (never silently the first),
and the canary task ends in error when the answers do not depend on the audio."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("inspect_ai")
sf = pytest.importorskip("soundfile")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openai_server import Reply, ScriptedServer, completion, model_entry  # noqa: E402

from koala import mini  # noqa: E402
from koala.cli import main as cli_main  # noqa: E402
from koala.data import load_config  # noqa: E402
from koala.integrations import inspect_tasks as it  # noqa: E402
from koala.integrations.inspect_import import read_logs  # noqa: E402

CONFIGS = ("asr_zeroth", "sqa_click", "sca_qa_kpop")
SR = 16000


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("harness_inspect")
    tree = mini.build_mini_tree(root / "mini")
    out = root / "data"
    assert cli_main(["export", "--data-dir", str(tree), "--out", str(out),
                     "--configs", *CONFIGS]) == 0  # fmt: skip
    return out


def _wav(data: bytes) -> np.ndarray:
    arr, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == SR
    return arr.reshape(-1)


def _clip_of(value: Mapping[str, Any]) -> np.ndarray:
    return _wav(value["bytes"])


def _output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm", content=text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def _parts(messages: list[Any]) -> tuple[str, str]:
    audio, text = "", ""
    for part in messages[-1].content:
        if part.type == "audio":
            audio = part.audio
        elif part.type == "text":
            text = part.text
    return audio, text


# ------------------------------------------------------- the audio reaches the providers
def _server_sent(body: dict[str, Any]) -> tuple[str, list[np.ndarray]]:
    text, clips = [], []
    for msg in body["messages"]:
        content = msg["content"]
        for part in [content] if isinstance(content, str) else content:
            if isinstance(part, str) or part["type"] == "text":
                text.append(part if isinstance(part, str) else part["text"])
            elif part["type"] == "input_audio":
                assert part["input_audio"]["format"] == "wav"
                clips.append(_wav(base64.b64decode(part["input_audio"]["data"])))
            else:
                raise AssertionError(f"unexpected part {part['type']!r}")
    return "\n".join(text), clips


@pytest.mark.parametrize("provider", ["openai", "vllm"])
def test_each_sample_reaches_the_provider_with_its_rows_clip(
    export: Path, tmp_path: Path, provider: str
) -> None:
    """inspect's openai provider (OpenAI audio models) and vllm provider (a running vLLM
    server) against a stand-in server that decodes the WAV of each request: every request
    carries its row's own clip (SCA-QA's text-only condition: 1 s of silence)."""

    def script(body: dict[str, Any], n: int) -> Reply:
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return Reply(body=completion("(1)") | {"model": name, "created": 0, "usage": usage})

    # an OpenAI audio model's name (an unknown name is taken for a newer model, sent to the
    # Responses API); vLLM: the served model's name
    name = "gpt-4o-audio-preview" if provider == "openai" else "m"
    task = it.koala_sca_qa(config="sca_qa_kpop", data=str(export), variants="k1")
    rows = {str(r["id"]): r for r in load_config(str(export), "sca_qa_kpop")}
    with ScriptedServer(script, models=[model_entry(name)]) as srv:
        model = get_model(f"{provider}/{name}", base_url=srv.url, api_key="x")
        (log,) = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")
        assert log.status == "success"
        bodies = list(srv.requests)
    want = {(row["question"], "text"): np.zeros(SR, dtype=np.float32) for row in rows.values()}
    for row in rows.values():
        want[(row["question"], "counterfactual")] = _clip_of(row["audio"])
        if row["original_audio"] is not None:
            want[(row["question"], "original")] = _clip_of(row["original_audio"])
    got = []
    for body in bodies:
        text, (clip,) = _server_sent(body)
        question = next(q for q, _ in want if q in text)
        matches = [c for (q, c), w in want.items() if q == question and w.shape == clip.shape
                   and np.max(np.abs(w - clip)) <= 1.5 / 32768]  # fmt: skip
        assert matches, f"{question[:30]!r}: a clip of no condition of this row"
        got.append((question, clip.shape))
    assert len(bodies) == len(want) == len(log.samples)


# --------------------------------------------------------------------------- epochs
def test_epochs_are_each_scored_and_the_importer_names_one(export: Path, tmp_path: Path) -> None:
    """--epochs 2: epoch 1 answers every row right, epoch 2 every row wrong. inspect's figures
    are the mean of the epochs' figures (accuracy 1/2; before, the reduced scores kept no
    answer and inspect printed 0); the importer refuses to pick an epoch silently and imports
    the one named."""
    task = it.koala_sqa(config="sqa_click", data=str(export), variants="k1")
    samples = list(task.dataset)
    gold = {_parts(s.input): s.target for s in samples}
    labels = {_parts(s.input): s.metadata["shown_labels"] for s in samples}
    seen: dict[tuple[str, str], int] = {}

    def answer(messages: list[Any], *_: Any) -> ModelOutput:
        key = _parts(messages)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 1:
            return _output(f"({gold[key]})")
        return _output(f"({next(x for x in labels[key] if x != gold[key])})")

    model = get_model("mockllm/model", custom_outputs=answer)
    (log,) = inspect_eval(
        task, model=model, log_dir=str(tmp_path / "logs"), display="none", epochs=2,
        max_samples=1,
    )  # fmt: skip
    assert log.status == "success"
    metrics = {k: m.value for sc in log.results.scores for k, m in sc.metrics.items()}
    assert metrics["sqa_click/k1/accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"epochs 1, 2 .*--epoch K"):
        read_logs(tmp_path / "logs")
    for epoch, right in ((1, 1.0), (2, 0.0)):
        _, records, source = read_logs(tmp_path / "logs", epoch=epoch)
        assert source["epoch"] == epoch and len(records) == len(samples)
        assert all((r["prediction"] == f"({gold_of(r)})") == bool(right) for r in records)
    with pytest.raises(ValueError, match="no epoch 3"):
        read_logs(tmp_path / "logs", epoch=3)
    # the command line: refused without --epoch, imported with it
    out = tmp_path / "run"
    assert cli_main(["import", "inspect", str(tmp_path / "logs"), "--out", str(out)]) == 1
    assert not (out / "predictions.jsonl").exists()
    assert cli_main(["import", "inspect", str(tmp_path / "logs"), "--out", str(out),
                     "--epoch", "2"]) == 0  # fmt: skip


def gold_of(rec: Mapping[str, Any]) -> str:
    from koala.tasks.base import shown_gold

    return shown_gold(rec, "answer")[1]


# --------------------------------------------------------------------------- canary
def test_canary_sends_own_clip_silence_and_another_rows_clip(export: Path) -> None:
    rows = list(load_config(str(export), "asr_zeroth", 4))
    samples = it.canary_samples("asr_zeroth", rows)
    assert [s.id for s in samples[:3]] == [f"canary|{c}|{rows[0]['id']}" for c in it.CANARY_CLIPS]
    for k, row in enumerate(rows):
        own, quiet, other = (
            _wav(base64.b64decode(_parts(s.input)[0].partition(",")[2]))
            for s in samples[3 * k : 3 * k + 3]
        )
        assert np.array_equal(own, _clip_of(row["audio"]))
        assert quiet.shape == own.shape and not quiet.any()
        assert np.array_equal(other, _clip_of(rows[(k + 1) % len(rows)]["audio"]))


def test_canary_passes_when_answers_follow_the_audio(export: Path, tmp_path: Path) -> None:
    def hearing(messages: list[Any], *_: Any) -> ModelOutput:
        return _output(hashlib.sha1(_parts(messages)[0].encode()).hexdigest()[:8])

    task = it.koala_canary(data=str(export))
    (log,) = inspect_eval(
        task, model=get_model("mockllm/model", custom_outputs=hearing),
        log_dir=str(tmp_path), display="none",
    )  # fmt: skip
    assert log.status == "success"
    assert log.results.scores[0].metrics["audio_dependent"].value == 1.0
    assert log.eval.task_args == {} or "koala_canary" in log.eval.task


def test_canary_fails_loudly_when_answers_ignore_the_audio(export: Path, tmp_path: Path) -> None:
    task = it.koala_canary(data=str(export))
    (log,) = inspect_eval(
        task, model=get_model("mockllm/model", custom_outputs=lambda *a: _output("안녕")),
        log_dir=str(tmp_path), display="none",
    )  # fmt: skip
    assert log.status == "error"
    assert "koala_canary: FAILED: the answers do not depend on the audio" in log.error.message
    # and the importer does not take the canary for results
    with pytest.raises(ValueError, match="only the canary"):
        read_logs(tmp_path)
