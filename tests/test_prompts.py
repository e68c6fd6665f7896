"""Prompts: the default example answer in each set's own label scheme, variants chosen by the
row's subset, and the labels shown under each protocol."""

from __future__ import annotations

import re

import pytest

from koala.prompts import (
    CONDITIONS,
    MC_TASKS,
    TASKS,
    build_prompt,
    format_choices,
    load_prompts,
    shown_labels,
)

LETTERS = {"question": "무엇?", "choices": ["가", "나", "다", "라"], "choice_labels": list("ABCD")}
NUMBERS = {"question": "무엇?", "choices": ["가", "나", "다", "라"], "choice_labels": list("1234")}

DEFAULT = load_prompts()
CASES = [
    (task, v.name, condition)
    for task in TASKS
    for v in DEFAULT.entries[task]
    for condition in CONDITIONS[task]
]


@pytest.mark.parametrize(("task", "variant", "condition"), CASES)
@pytest.mark.parametrize("row", [LETTERS, NUMBERS], ids=["letters", "numbers"])
def test_every_default_prompt_shows_examples_in_the_rows_labels(task, variant, condition, row):
    v = next(x for x in DEFAULT.entries[task] if x.name == variant)
    prompt = build_prompt(task, v, row, condition)
    assert "{example}" not in prompt and "{" not in prompt
    if task not in MC_TASKS:
        assert not re.search(r"\([A-Z0-9]\)", prompt)  # no label example without labels
        return
    body = format_choices(row["question"], row["choices"], row["choice_labels"])
    assert body in prompt
    around = prompt.replace(body, "")  # the instruction and the answer cue
    shown = re.findall(r"\(([A-Za-z0-9])\)", around)
    assert all(x in row["choice_labels"] for x in shown), (around, shown)
    if "예:" in around:
        assert f"예: ({row['choice_labels'][0]})" in around


def test_the_example_placeholder_is_filled_in_prefix_and_suffix_only(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        'sqa:\n  - name: e\n    prompt_prefix: "예: {example}\\n"\n'
        '    answer_suffix: "\\n답 {example}: "\n',
        encoding="utf-8",
    )
    v = load_prompts(path).variants("sqa_kcsat")[0]
    row = {**NUMBERS, "choices": ["{example}", "나", "다", "라"]}
    assert build_prompt("sqa", v, row, "speech") == (
        "예: (1)\n질문: 무엇?\n(1) {example}\n(2) 나\n(3) 다\n(4) 라\n답 (1): "
    )


SUBSET_PROMPTS = """\
sqa:
  - name: s1
    prompt_prefix: "SQA\\n"
sqa_kcsat:
  - name: k1
    prompt_prefix: "KSAT\\n"
"""


def test_variants_follow_the_rows_subset_in_the_union_and_the_subset_config(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(SUBSET_PROMPTS, encoding="utf-8")
    p = load_prompts(path)
    assert [v.name for v in p.variants("sqa", "kcsat")] == ["k1"]
    assert [v.name for v in p.variants("sqa_noisy", "kcsat")] == ["k1"]
    assert [v.name for v in p.variants("sqa_kcsat", "kcsat")] == ["k1"]
    assert [v.name for v in p.variants("sqa_kcsat")] == ["k1"]  # the config's own key
    assert [v.name for v in p.variants("sqa", "click")] == ["s1"]
    assert [v.name for v in p.variants("sqa")] == ["s1"]
    row = {**NUMBERS, "subset": "kcsat"}
    union = build_prompt("sqa", p.variants("sqa", "kcsat")[0], row, "speech")
    subset = build_prompt("sqa", p.variants("sqa_kcsat", "kcsat")[0], row, "speech")
    assert union == subset and union.startswith("KSAT\n")


def test_published_protocol_shows_sca_qa_choices_as_letters():
    v = DEFAULT.variants("sca_qa_kpop")[2]  # k3: the one with an example answer
    koala = build_prompt("sca_qa", v, NUMBERS, "counterfactual")
    published = build_prompt("sca_qa", v, NUMBERS, "counterfactual", protocol="published")
    assert "(1) 가\n(2) 나\n(3) 다\n(4) 라" in koala and "예: (1)" in koala
    assert "(A) 가\n(B) 나\n(C) 다\n(D) 라" in published and "예: (A)" in published
    assert shown_labels("sca_qa", NUMBERS, "published") == ["A", "B", "C", "D"]
    assert shown_labels("sca_qa", NUMBERS) == ["1", "2", "3", "4"]
    # K-SAT is shown with its numbers under both protocols (as published)
    assert shown_labels("sqa", NUMBERS, "published") == ["1", "2", "3", "4"]
    with pytest.raises(ValueError, match="protocol"):
        shown_labels("sqa", NUMBERS, "other")
