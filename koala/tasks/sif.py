"""SIF: speech instruction following, rated by an LLM judge (:mod:`koala.scoring.judge`;
needs ``--judge-url`` and ``--judge-model``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from koala.predictions import OK
from koala.tasks._features import string
from koala.tasks.base import Task, answer_text, interval_options, non_ok, sorted_records


class SIF(Task):
    name = "sif"
    row_mapper = "sif_columns"
    title = "Speech instruction following: LLM-judge score (0-100) ↑"
    order = 40
    main_metric = "score"
    plot_scale = 1.0
    plot_label = "judge score"
    ref_fields = ("instruction", "reference_answer")
    score_subsets = False  # each subset would be judged again
    selection_rule = (
        "highest judge score, where a failed or abstained answer gets the lowest rating "
        "without a judge call; ties to the first variant name"
    )

    def columns(self) -> dict[str, Any]:
        return {"instruction": string(), "prompt": string(), "reference_answer": string()}

    def check_prompt(self, variant: Any) -> str | None:
        return None

    def score(
        self,
        recs: Sequence[Mapping[str, Any]],
        protocol: str,
        ci: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        judge = options.get("judge")
        recs = sorted_records(recs)
        base = non_ok(recs) | {"num_answered": sum(r.get("status") == OK for r in recs)}
        if not judge or not judge.get("base_url"):
            return {
                "gen": base
                | {"note": "not scored: no judge configured (--judge-url, --judge-model)"}
            }
        try:
            from koala.scoring.judge import judge_scores
        except ImportError as exc:
            return {
                "gen": base | {"note": f"not scored: module missing (koala.scoring.judge: {exc})"}
            }
        try:
            # every record goes in: an empty answer (failed, abstained) is rated by the
            # protocol's rule (koala: the lowest rating without a judge call; published: left
            # out of the mean)
            out = judge_scores(
                [r["ref"]["instruction"] for r in recs],
                [answer_text(r) for r in recs],
                return_records=False,
                protocol=protocol,
                **judge,
                **interval_options(ci),
            )
        except Exception as exc:
            return {
                "gen": base | {"note": f"not scored: judge failed: {type(exc).__name__}: {exc}"}
            }
        return {"gen": base | dict(out)}

    def cell(self, c: Mapping[str, Any], g: Mapping[str, Any]) -> str:
        """``score [interval]``, with how many answers the judge could not judge (they are not
        in the figure) and, under ``published``, that a 0.0 means no item was rated."""
        from koala.report_cells import fmt, interval

        text = fmt(g.get("score"), 1) + interval(g, "score")
        failed = g.get("num_judge_failed")
        if isinstance(failed, int) and failed:
            text += f" ({failed}/{g.get('num_items')} not judged: the judge failed)"
        if g.get("num_in_mean") == 0 and g.get("score") == 0.0:
            text += " (no item rated: 0.0 by the published rule)"
        return text


TASK = SIF()
