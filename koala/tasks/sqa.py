"""SQA: multiple-choice speech question answering (CLIcK, KoBEST-BoolQ, K-SAT listening).

Scored by ``choice_accuracy`` (:mod:`koala.scoring.choices`) in two modes: ``gen`` reads the
generated text, ``logit`` takes the argmax of the label log-probabilities where the model gave
them. The published fields ``source_answer`` and ``source_choices`` keep the gold and the
labelled choices exactly as the metadata gives them, for the published protocol.
"""

from __future__ import annotations

from typing import Any

from koala.tasks._features import string
from koala.tasks.choice import ChoiceTask, mc_columns


class SQA(ChoiceTask):
    name = "sqa"
    row_mapper = "sqa_columns"
    title = "SQA: accuracy (%) ↑, generation / logit"
    order = 30
    main_metric = "accuracy"
    selection_rule = (
        "highest accuracy over every planned row (failed, abstained and unparsed answers "
        "count wrong); ties to the first variant name"
    )

    def columns(self) -> dict[str, Any]:
        return {
            **mc_columns(),
            "answer_text": string(),
            "source_answer": string(),
            "source_choices": string(),
        }


TASK = SQA()
