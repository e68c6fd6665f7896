"""KoALa-Bench as inspect_ai tasks (issue 13): the embedded mini benchmark runs through inspect
with a scripted model (``mockllm``), its logs are imported as a koala-bench run, and
koala-bench's scores of the same answers equal the figures inspect reported and a hand count
of the scripted answers."""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
import wave
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.solver import generate

from koala import mini
from koala.cli import main as cli_main
from koala.data import load_config
from koala.integrations import inspect_tasks as it
from koala.integrations.inspect_import import read_logs
from koala.integrations.run_writer import write_run
from koala.score import score_run
from koala.tasks import config_task

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(
    not HAVE_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)
CONFIGS = ("sqa_click", "sca_qa", "pa_qa", "sif_alpaca")
UNPARSABLE = "잘 모르겠습니다"
JUDGE_RATING = 7.0


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("inspect")
    tree = mini.build_mini_tree(root / "mini")
    out = root / "data"
    assert cli_main(["export", "--data-dir", str(tree), "--out", str(out),
                     "--configs", *CONFIGS]) == 0  # fmt: skip
    return out


# ------------------------------------------------------------------------ scripted answers


def _key(messages: list[Any]) -> tuple[str, str]:
    """(audio data URI or "", prompt text) of the request the model sees."""
    audio, text = "", ""
    for part in messages[-1].content:
        if part.type == "audio":
            audio = part.audio
        elif part.type == "text":
            text = part.text
    return audio, text


def _output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm", content=text)
    # usage given: mockllm would otherwise count tokens with tiktoken (a download)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def _other(labels: list[str], *not_these: str) -> str:
    return next(x for x in labels if x not in not_these)


def _plan(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """What the scripted model answers to each sample, and whether that is right, written
    from the rules: multiple choice (SQA, PA-QA): row k of the sorted ids with variant j is
    answered right when (k + j) % 3 != 0, wrong (another label) otherwise, and the first row
    with variant k1 gets an answer without a label (wrong); SCA-QA: row k is right from text
    alone when k is even, follows the counterfactual speech unless k % 3 == 2 (then it keeps
    the text answer), and gives the original answer with the original speech; SIF: a short
    text, empty for the first row with variant k1 (rated 1 without a judge call)."""
    ids = {
        c: sorted({str(s.metadata["id"]) for s in samples if s.metadata["config"] == c})
        for c in {s.metadata["config"] for s in samples}
    }
    plan: dict[str, dict[str, Any]] = {}
    for s in samples:
        md = s.metadata
        k = ids[md["config"]].index(md["id"])
        j = int(md["variant"].removeprefix("k")) - 1
        labels, ref = md["shown_labels"], md["ref"]
        if md["task"] == "sif":
            plan[s.id] = {"answer": "" if (k, j) == (0, 0) else f"답변 {k}", "right": None}
        elif md["task"] == "sca_qa":
            gold, cf = ref["answer"], ref["counterfactual_answer"]
            if md["condition"] == "text":
                label = gold if k % 2 == 0 else _other(labels, gold, cf)
            elif md["condition"] == "counterfactual":
                label = cf if k % 3 != 2 else gold
            else:
                label = gold
            plan[s.id] = {"answer": f"({label})", "label": label}
        else:
            gold = ref["answer"]
            right = (k + j) % 3 != 0
            answer = f"({gold})" if right else f"({_other(labels, gold)})"
            if (k, j) == (0, 0):
                answer, right = UNPARSABLE, False
            plan[s.id] = {"answer": answer, "right": right}
    return plan


def _scripted(samples: list[Sample], plan: Mapping[str, Mapping[str, Any]]) -> Callable:
    by_request = {_key(s.input): plan[s.id]["answer"] for s in samples}
    assert len(by_request) == len(samples)  # every request is told apart by audio and text

    def answer(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        if messages[0].role == "system" and "[[" in str(messages[0].content):
            assert config.temperature == 0.0
            return _output(f"충분히 도움이 됩니다. Grade: [[{JUDGE_RATING:g}]]")  # the judge
        assert config.temperature == 0.0
        return _output(by_request[_key(messages)])

    return answer


@pytest.fixture(scope="module")
def evaluated(export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tasks = [
        it.koala_sqa(config="sqa_click", data=str(export)),
        it.koala_sca_qa(config="sca_qa", data=str(export)),
        it.koala_pa_qa(config="pa_qa", data=str(export)),
        it.koala_sif(config="sif_alpaca", data=str(export)),
    ]
    samples = [s for t in tasks for s in t.dataset]
    plan = _plan(samples)
    log_dir = tmp_path_factory.mktemp("logs")
    model = get_model("mockllm/model", custom_outputs=_scripted(samples, plan))
    logs = inspect_eval(tasks, model=model, log_dir=str(log_dir), display="none")
    assert [log.status for log in logs] == ["success"] * 4
    metrics = {
        name: m.value for log in logs for sc in log.results.scores for name, m in sc.metrics.items()
    }
    model_name, records, source = read_logs(log_dir)
    run = tmp_path_factory.mktemp("run")
    written = write_run(run, model_name, records, source=source)
    scores = score_run(run, confidence=None, write=False)
    return {
        "samples": samples,
        "plan": plan,
        "metrics": metrics,
        "records": records,
        "written": written,
        "model": model_name,
        "scores": scores["models"][model_name]["configs"],
    }


# ------------------------------------------------------------------------------------ tests


@needs_espeak
def test_one_sample_per_row_condition_and_variant_with_the_runners_ref(export: Path) -> None:
    samples = list(it.koala_dataset("sca_qa_kpop", str(export)))
    rows = list(load_config(str(export), "sca_qa_kpop"))
    spec = config_task("sca_qa_kpop")
    with_original = sum(r["original_audio"] is not None for r in rows)
    assert len(samples) == 3 * (2 * len(rows) + with_original)  # 3 prompt variants
    first = next(s for s in samples if s.metadata["condition"] == "counterfactual")
    row = next(r for r in rows if r["id"] == first.metadata["id"])
    assert first.id == f"sca_qa_kpop|{first.metadata['variant']}|counterfactual|{row['id']}"
    assert first.metadata["ref"] == spec.ref(row)
    assert first.metadata["shown_labels"] == ["1", "2", "3", "4"]
    audio, text = first.input[0].content
    assert audio.type == "audio" and audio.format == "wav"
    assert (
        base64.b64decode(audio.audio.removeprefix("data:audio/wav;base64,"))
        == (row["audio"]["bytes"])
    )
    assert row["question"] in text.text


@needs_espeak
def test_sca_text_condition_sends_one_second_of_silence_or_no_audio(export: Path) -> None:
    silent = [
        s
        for s in it.koala_dataset("sca_qa_kpop", str(export), limit=1)
        if s.metadata["condition"] == "text"
    ]
    audio = silent[0].input[0].content[0]
    raw = base64.b64decode(audio.audio.removeprefix("data:audio/wav;base64,"))
    with wave.open(io.BytesIO(raw)) as w:
        frames = w.readframes(w.getnframes())
        assert (w.getnframes(), w.getframerate()) == (16000, 16000)
    assert set(frames) == {0}
    bare = [
        s
        for s in it.koala_dataset("sca_qa_kpop", str(export), limit=1, text_audio="none")
        if s.metadata["condition"] == "text"
    ]
    assert [p.type for p in bare[0].input[0].content] == ["text"]
    assert bare[0].metadata["text_audio"] == "none"


@needs_espeak
def test_a_task_refuses_a_config_of_another_task(export: Path) -> None:
    with pytest.raises(ValueError, match="sca_qa"):
        it.koala_sqa(config="sca_qa_kpop", data=str(export))


@needs_espeak
def test_koala_scores_of_the_imported_logs_equal_inspects_figures(
    evaluated: dict[str, Any],
) -> None:
    metrics, scores = evaluated["metrics"], evaluated["scores"]
    assert evaluated["written"]["records"] == len(evaluated["samples"])
    compared = 0
    for name, value in metrics.items():
        parts = name.split("/")
        config = parts[0]
        if config == "sif_alpaca":
            continue  # judged by inspect's model; koala-bench scores SIF with --judge-url
        c = scores[config]
        if parts[1] == "best":
            assert c["best"]["gen"]["value"] == value, name
        elif len(parts) == 3:
            got = c["variants"][parts[1]]["gen"]
            key, _, sub = parts[2].partition(".")
            assert (got[key][sub] if sub else got[key]) == value, name
        else:
            subset, variant, key = parts[1:]
            assert c["subsets"][subset][variant]["gen"][key] == value, name
        compared += 1
    # what must be among them: accuracy, SCF per subset of the union, PA-QA segments
    for must in ("sqa_click/k1/accuracy", "sca_qa/k1/scf", "pa_qa/k2/accuracy",
                 "pa_qa/k2/segment_accuracy.front"):  # fmt: skip
        assert must in metrics, sorted(metrics)
    assert any(n.startswith("sca_qa/") and n.count("/") == 3 for n in metrics)  # per subset
    assert compared >= 20


@needs_espeak
def test_the_scores_equal_a_hand_count_of_the_scripted_answers(
    evaluated: dict[str, Any],
) -> None:
    plan, metrics, scores = evaluated["plan"], evaluated["metrics"], evaluated["scores"]
    by_variant: dict[str, list[bool]] = {}
    for s in evaluated["samples"]:
        if s.metadata["config"] == "sqa_click":
            by_variant.setdefault(s.metadata["variant"], []).append(plan[s.id]["right"])
    assert set(by_variant) == {"k1", "k2", "k3"}
    for variant, right in by_variant.items():
        want = sum(right) / len(right)
        assert metrics[f"sqa_click/{variant}/accuracy"] == want
        assert scores["sqa_click"]["variants"][variant]["gen"]["accuracy"] == want
    assert scores["sqa_click"]["variants"]["k1"]["gen"]["unparsed"] == 1

    # SCF: among the items right from text alone, the share that follow the counterfactual
    answers: dict[str, dict[str, str]] = {}
    refs: dict[str, Mapping[str, Any]] = {}
    for s in evaluated["samples"]:
        md = s.metadata
        if md["config"] == "sca_qa" and md["variant"] == "k1":
            answers.setdefault(md["id"], {})[md["condition"]] = plan[s.id]["label"]
            refs[md["id"]] = md["ref"]
    text_right = [i for i, a in answers.items() if a["text"] == refs[i]["answer"]]
    follows = [
        i for i in text_right if answers[i]["counterfactual"] == refs[i]["counterfactual_answer"]
    ]
    assert 0 < len(follows) < len(text_right)
    assert metrics["sca_qa/k1/scf"] == len(follows) / len(text_right)
    assert scores["sca_qa"]["variants"]["k1"]["gen"]["num_text_correct"] == len(text_right)


@needs_espeak
def test_sif_is_rated_by_the_judge_through_inspects_model(evaluated: dict[str, Any]) -> None:
    n = sum(
        s.metadata["config"] == "sif_alpaca" and s.metadata["variant"] == "k1"
        for s in evaluated["samples"]
    )
    assert n >= 2
    # one empty answer (rated 1 without a judge call), the others rated JUDGE_RATING
    assert evaluated["metrics"]["sif_alpaca/k1/score"] == pytest.approx(
        10 * (1 + (n - 1) * JUDGE_RATING) / n
    )
    assert evaluated["metrics"]["sif_alpaca/k2/score"] == pytest.approx(10 * JUDGE_RATING)
    sif = [r for r in evaluated["records"] if r["config"] == "sif_alpaca"]
    assert {r["task"] for r in sif} == {"sif"} and all(r["status"] == "ok" for r in sif)


@needs_espeak
def test_a_sample_inspect_could_not_answer_is_imported_as_failed(
    export: Path, tmp_path: Path
) -> None:
    task = it.koala_sqa(config="sqa_click", data=str(export), variants="k1")
    samples = list(task.dataset)
    broken = _key(samples[0].input)

    def answer(messages: list[Any], *_: Any) -> ModelOutput:
        if _key(messages) == broken:
            raise RuntimeError("server down")
        gold = next(s for s in samples if _key(s.input) == _key(messages)).target
        return _output(f"({gold})")

    model = get_model("mockllm/model", custom_outputs=answer)
    (log,) = inspect_eval(
        task, model=model, log_dir=str(tmp_path / "logs"), display="none",
        fail_on_error=False, retry_on_error=0,
    )  # fmt: skip
    n = len(samples)
    # inspect leaves the errored sample out; koala-bench counts it as a wrong answer
    assert log.results.scores[0].metrics["sqa_click/k1/accuracy"].value == 1.0
    _, records, source = read_logs(tmp_path / "logs")
    failed = [r for r in records if r["status"] == "failed"]
    assert [r["id"] for r in failed] == [samples[0].metadata["id"]]
    assert "server down" in failed[0]["error"]
    write_run(tmp_path / "run", "m", records, source=source)
    c = score_run(tmp_path / "run", confidence=None, write=False)["models"]["m"]["configs"]
    assert c["sqa_click"]["variants"]["k1"]["gen"]["accuracy"] == (n - 1) / n
    assert c["sqa_click"]["variants"]["k1"]["gen"]["failed"] == 1


def test_a_log_of_another_task_is_refused(tmp_path: Path) -> None:
    task = Task(dataset=[Sample(input="hi", target="x", id="a")], solver=generate(), name="x")
    model = get_model("mockllm/model", custom_outputs=lambda *a: _output("hello"))
    inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")
    with pytest.raises(ValueError, match="not a koala-bench sample"):
        read_logs(tmp_path)


def test_no_logs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_logs(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_logs(tmp_path / "missing.eval")


def test_the_sif_figure_is_ten_times_the_mean_rating() -> None:
    # "10 x mean rating"; items without a valid rating are not in the mean
    assert it.sif_score([7.0, 1.0, None, math.nan]) == 40.0
    assert it.sif_score([None]) is None


def test_record_from_sample_needs_koala_metadata() -> None:
    with pytest.raises(ValueError, match="lacks"):
        it.record_from_sample({"config": "sqa_click"}, "(A)")
    rec = it.record_from_sample(
        {"config": "c", "task": "sqa", "variant": "k1", "condition": "speech", "id": "1",
         "ref": {"answer": "A"}, "shown_labels": ["A", "B"]},
        "(A)",
    )  # fmt: skip
    assert json.loads(json.dumps(rec))["prediction"] == "(A)" and rec["status"] == "ok"
