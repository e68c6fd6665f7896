"""The six ``evaluate`` modules are declarations on :class:`koala.metric_base.KoalaMetric`:
loaded with ``evaluate`` (offline, from ``metrics/``), each forwards its inputs and options to
its ``koala.scoring`` function unchanged, refuses an option that function does not take, and
stays a few lines long. The scoring functions themselves are tested elsewhere."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import evaluate
import pytest
from conftest import ROOT
from openai_server import Reply, ScriptedServer, completion

from koala import metric_base
from koala.metrics_install import METRIC_NAMES, install_metrics
from koala.scoring.cer import corpus_cer
from koala.scoring.choices import choice_accuracy
from koala.scoring.judge import judge_scores
from koala.scoring.scf import speech_context_faithfulness
from koala.scoring.segments import segment_accuracy
from koala.scoring.translation import translation_scores

METRICS = ROOT / "metrics"
CHOICES = ["(A) 1392년 (B) 1443년 (C) 1592년 (D) 1910년"] * 2

# name -> (inputs, options, the scoring function called directly, key, hand-worked value)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], Any, str, Any]] = {
    # 가나다/가나라: 1 substitution; 라마/라마바: 1 deletion; 2 edits / 6 reference characters
    "korean_cer": (
        {"predictions": ["가나다", "라 마."], "references": ["가나라", "라마바"]},
        {"protocol": "published", "return_per_utterance": True},
        lambda p, r, **o: corpus_cer(p, r, **o).as_dict(),
        "cer",
        2 / 6,
    ),
    # "(C)" names C (right); "1443년" is the text of choice B (right); "몰라요" reads as nothing
    "choice_accuracy": (
        {
            "predictions": ["정답은 (C)입니다", "1443년", "몰라요"],
            "references": ["(C) 1592년", "B", "A"],
        },
        {"choices": [*CHOICES, CHOICES[0]], "return_items": True},
        choice_accuracy,
        "accuracy",
        2 / 3,
    ),
    # text-correct: items 0 and 1; item 0 follows the speech (3 == 3), item 1 does not (1 != 4)
    "scf": (
        {"predictions": ["3", "1"], "references": ["3", "4"]},
        {"text_predictions": ["1", "2"], "text_references": ["1", "2"], "labels": "numbers"},
        lambda p, r, **o: speech_context_faithfulness(p, r, **o),
        "scf",
        0.5,
    ),
    # item 0 (front) right, item 1 (late) wrong: overall 1/2
    "segment_accuracy": (
        {"predictions": ["A", "B"], "references": ["A", "C"]},
        {"positions": [[0.1], [0.9]], "protocol": "published"},
        segment_accuracy,
        "accuracy",
        0.5,
    ),
    # a prediction equal to its reference: every n-gram matches, no brevity penalty
    "korean_translation": (
        {"predictions": ["고양이가 잔다."], "references": ["고양이가 잔다."]},
        {"metrics": ["bleu"], "protocol": "published"},
        translation_scores,
        "bleu",
        100.0,
    ),
}


def _load(name: str) -> evaluate.EvaluationModule:
    return evaluate.load(str(METRICS / name))


@pytest.mark.parametrize("name", sorted(CASES))
def test_compute_forwards_inputs_and_options_to_the_scoring_function(name: str) -> None:
    inputs, options, direct, key, expected = CASES[name]
    module = _load(name)
    out = module.compute(**inputs, **options)
    assert out == direct(inputs["predictions"], inputs["references"], **options)
    assert out[key] == pytest.approx(expected)
    # through evaluate's own path (add_batch, then compute) as well
    module.add_batch(**inputs)
    assert module.compute(**options)[key] == pytest.approx(expected)


def test_choice_accuracy_takes_log_probabilities_too() -> None:
    # argmax over the labels: B (right), A (wrong)
    logits = [[-2.0, -0.1], [-0.1, -2.0]]
    out = _load("choice_accuracy").compute(
        predictions=logits, references=["B", "B"], labels=["A", "B"]
    )
    assert out["accuracy"] == 0.5
    assert out == choice_accuracy(logits, ["B", "B"], labels=["A", "B"])


def _rate_tagged(body: dict[str, Any], n: int) -> Reply:
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return Reply(body=completion("Rating: [[8]]" if "<R8>" in user else "no rating"))


def test_llm_judge_passes_predictions_as_the_answers(tmp_path: Path) -> None:
    # the empty answer is rated 1 without a judge call (koala); the other is judged 8:
    # 10 x (8 + 1) / 2 = 45. Swapped with the instructions, both would be sent.
    answers, instructions = ["서울입니다. <R8>", ""], ["수도는 어디인가요?", "시를 써 주세요."]
    options = {"model": "judge-m", "progress": False, "backoff": 0.01, "return_records": False}
    with ScriptedServer(_rate_tagged) as s:
        out = _load("llm_judge").compute(
            predictions=answers, instructions=instructions, base_url=s.url, **options
        )
        assert len(s.requests) == 1
        assert out == judge_scores(instructions, answers, base_url=s.url, **options)
    assert out["score"] == 45.0 and out["num_empty"] == 1


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_an_unknown_option_is_a_type_error_naming_the_module_and_its_options(name: str) -> None:
    module = _load(name)
    inputs = CASES[name][0] if name in CASES else {"predictions": ["a"], "instructions": ["b"]}
    with pytest.raises(TypeError, match=rf"^{name} got unknown keyword argument\(s\) bogus;") as e:
        module.compute(**inputs, bogus=1)
    assert "protocol" in str(e.value).split("it accepts: ")[1]  # every scorer takes protocol


def test_options_are_checked_before_an_added_batch_is_consumed() -> None:
    inputs, options, _, _, _ = CASES["scf"]
    scf = _load("scf")
    scf.add_batch(**inputs)
    with pytest.raises(TypeError, match="bogus"):
        scf.compute(**options, bogus=1)
    with pytest.raises(ValueError, match="scf needs text_predictions="):
        scf.compute(labels="numbers")
    assert scf.compute(**options)["scf"] == 0.5  # the batch is still there


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("scf", {"text_references": ["1"]}, "scf needs text_predictions= "),
        ("llm_judge", {"base_url": "", "model": "m"}, "llm_judge needs the judge server"),
        ("llm_judge", {"base_url": "http://h:1/v1"}, "llm_judge needs the judge server"),
    ],
)
def test_a_missing_required_option_is_a_value_error(
    name: str, options: dict[str, Any], message: str
) -> None:
    inputs = {"predictions": ["1"]}
    inputs["instructions" if name == "llm_judge" else "references"] = ["1"]
    with pytest.raises(ValueError, match=message):
        _load(name).compute(**inputs, **options)


def test_llm_judge_refuses_references_in_add_and_add_batch_too() -> None:
    judge = _load("llm_judge")
    with pytest.raises(ValueError, match="no `references`"):
        judge.add_batch(predictions=["a"], references=["b"])
    with pytest.raises(ValueError, match="no `references`"):
        judge.add(prediction="a", reference="b")


def test_info_keeps_each_modules_texts_features_and_links() -> None:
    scf = _load("scf")
    assert scf.citation == metric_base.KOALA_CITATION
    assert scf.description.startswith("Speech Context Faithfulness (SCF)")
    assert scf.inputs_description.lstrip().startswith("Args:")
    assert list(scf.features) == ["predictions", "references"]
    judge = _load("llm_judge")
    assert list(judge.features) == ["predictions", "instructions"]
    assert judge.citation.startswith(metric_base.KOALA_CITATION) and "zheng2023" in judge.citation
    assert judge.reference_urls[1] == "https://arxiv.org/abs/2306.05685"
    choice = _load("choice_accuracy")
    text, logits = datasets.Value("string"), datasets.Sequence(datasets.Value("float64"))
    assert choice.features == [
        datasets.Features({"predictions": text, "references": text}),
        datasets.Features({"predictions": logits, "references": text}),
    ]
    assert "Accuracy = correct / total" in (type(choice).__doc__ or "")


def test_a_subclass_with_its_own_info_and_compute_still_works() -> None:
    """Module scripts installed by an older version define ``_info``/``_compute`` themselves."""

    class Legacy(metric_base.KoalaMetric):
        def _info(self) -> evaluate.MetricInfo:
            return evaluate.MetricInfo(
                description="",
                citation="",
                features=datasets.Features(
                    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
                ),
            )

        def _compute(self, predictions: list, references: list, offset: int = 0) -> dict:
            return {
                "hits": sum(p == r for p, r in zip(predictions, references, strict=True)) + offset
            }

    assert Legacy().compute(predictions=[1, 2], references=[1, 3], offset=10) == {"hits": 11}


def _code_lines(path: Path) -> int:
    """Lines of ``path`` that are code: not blank, not comments, and not in a docstring or a
    module-level string constant (the descriptions)."""
    source = path.read_text(encoding="utf-8")
    text_lines: set[int] = set()
    for node in ast.parse(source).body:
        value = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
        strings = isinstance(value, ast.Constant) and isinstance(value.value, str)
        if strings or (
            isinstance(value, ast.BinOp)  # _CITATION = KOALA_CITATION + """..."""
            and isinstance(value.right, ast.Constant)
            and isinstance(value.right.value, str)
        ):
            text_lines.update(range(node.lineno, node.end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if number not in text_lines and line.strip() and not line.lstrip().startswith("#")
    )


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_each_module_file_is_a_few_declarations(name: str) -> None:
    # before the declarative base the modules had 30 to 58 lines of code (now 6 to 23)
    assert _code_lines(METRICS / name / f"{name}.py") <= 25


def test_installed_modules_load_by_id_from_any_folder(tmp_path: Path) -> None:
    """``koala-bench metrics install`` then ``evaluate.load("koala/<name>")``, offline."""
    cache = tmp_path / "modules"
    install_metrics(cache=cache / "evaluate_modules" / "metrics")
    script = (
        "import json, evaluate\n"
        f"names = {list(METRIC_NAMES)!r}\n"
        "kinds = {n: type(evaluate.load('koala/' + n)).__name__ for n in names}\n"
        "scf = evaluate.load('koala/scf').compute(predictions=['3', '1'], references=['3', '4'],"
        " text_predictions=['1', '2'], text_references=['1', '2'], labels='numbers')\n"
        "print(json.dumps({'kinds': kinds, 'scf': scf['scf']}))\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["scf"] == 0.5
    assert got["kinds"] == {
        "korean_cer": "KoreanCER",
        "choice_accuracy": "ChoiceAccuracy",
        "scf": "SpeechContextFaithfulness",
        "segment_accuracy": "SegmentAccuracy",
        "korean_translation": "KoreanTranslation",
        "llm_judge": "LLMJudge",
    }
