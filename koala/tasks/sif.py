"""SIF: speech instruction following, rated by an LLM judge (:mod:`koala.scoring.judge`;
needs ``--judge-url`` and ``--judge-model``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from koala.predictions import OK
from koala.tasks._features import string
from koala.tasks.base import (
    PairedData,
    RunConfig,
    Task,
    answer_text,
    interval_options,
    non_ok,
    ratio_of_sums,
    sorted_records,
)

JUDGE_CACHE = "judge_cache.jsonl"  # where koala-bench score keeps a run's judge ratings
NO_RATINGS = "not compared: no cached judge ratings, run koala-bench score with a judge first"


class _Judge(NamedTuple):
    """A judge as compared runs must share it: the judge model and the prompt (id and hash;
    the hash covers the prompt's text). Also what :func:`koala.scoring.judge.cache_key` reads
    of a prompt (``id``, ``hash``), so a cached prompt need not be loaded to find its keys."""

    model: str
    id: str
    hash: str

    def describe(self) -> str:
        return f"{self.model} with prompt {self.id} ({self.hash})"


def _cached_judges(
    run_dir: str | Path, protocol: str
) -> tuple[dict[str, Any], dict[_Judge, set[tuple[str, float, int]]]]:
    """The run's judge cache entries by key, and the judges they were made by under
    ``protocol`` with the (server URL, temperature, max_tokens) each was asked with (all part
    of the cache key)."""
    from koala.scoring.judge import JudgeCache

    path = Path(run_dir) / JUDGE_CACHE
    if not path.is_file():
        return {}, {}
    entries = JudgeCache(path).entries
    judges: dict[_Judge, set[tuple[str, float, int]]] = {}
    for e in entries.values():
        try:
            if e.get("protocol") != protocol:
                continue
            judge = _Judge(str(e["judge_model"]), str(e["prompt_id"]), str(e["prompt_hash"]))
            setting = (str(e["judge_url"]), float(e["temperature"]), int(e["max_tokens"]))
        except (KeyError, TypeError, ValueError):  # an older cache format: keys differ anyway
            continue
        judges.setdefault(judge, set()).add(setting)
    return entries, judges


def _sif_ratings(
    recs: Sequence[Mapping[str, Any]],
    entries: Mapping[str, Any],
    judge: _Judge,
    settings: set[tuple[str, float, int]],
    protocol: str,
) -> list[float | None]:
    """Per record, the rating ``koala-bench score`` would use, from the cache alone: an empty
    answer is "never sent to the judge" and rated 1 (``koala``) or left out (``published``);
    otherwise the cached judgement of this instruction and answer by ``judge`` (no reference
    answer, as score asks), read by the protocol's rule (:func:`parse_rating`; only a readable
    rating is reused, as the judge reuses it), or ``None`` when there is none."""
    from koala.scoring.judge import RATING_MIN, cache_key, parse_rating

    def cached(instruction: str, answer: str) -> float | None:
        for url, temperature, max_tokens in sorted(settings):
            key = cache_key(
                judge.model,
                judge,  # type: ignore[arg-type]  # cache_key reads only .id and .hash
                instruction,
                answer,
                None,
                base_url=url,
                protocol=protocol,
                temperature=temperature,
                max_tokens=max_tokens,
            )
            if key in entries:
                rating, _ = parse_rating(entries[key]["judgement"], protocol)
                if rating is not None:
                    return rating
        return None

    empty = RATING_MIN if protocol == "koala" else None
    return [
        cached(r["ref"]["instruction"], answer_text(r)) if answer_text(r).strip() else empty
        for r in recs
    ]


def _wilcoxon(differences: Any) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (scipy's defaults: zero
    differences dropped, exact for small samples); 1.0 when every difference is 0, NaN when
    there is none."""
    import numpy as np
    from scipy.stats import wilcoxon

    if len(differences) == 0:
        return math.nan
    if not np.any(differences):
        return 1.0
    return float(wilcoxon(differences).pvalue)


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

    # each instruction stands alone; ratings are not right/wrong: the paired permutation test
    paired_unit = "item"
    paired_test = "permutation"

    def paired_choice(
        self, runs: Sequence[RunConfig], protocol: str, select: str
    ) -> dict[str, Any]:
        """The judge both runs were rated by (the one with the most cached ratings of this
        config when they share several) and per run the shown SIF variant, by the SIF selection
        rule "highest judge score" over the cached ratings (under ``koala`` among the variants
        with every planned request answered, when there is one; ties to the first variant
        name). The ratings come from each run's judge cache (``judge_cache.jsonl``, written by
        ``koala-bench score --judge-url``): no judge is called. ``{"shown": [(variant,
        records), ...], "context": (ratings of A, ratings of B), "judge": {...}}``, else
        ``{"note"}`` (no cached rating) or ``{"refused"}`` (different judges)."""
        import numpy as np

        ratings: list[dict[_Judge, list[float | None]]] = []
        hits: list[dict[_Judge, int]] = []
        for run in runs:
            entries, judges = _cached_judges(run.run_dir, protocol)
            rs = run.records
            per = {j: _sif_ratings(rs, entries, j, st, protocol) for j, st in judges.items()}
            ratings.append(per)
            # judged items only: an empty answer gets its rating without the judge
            hits.append(
                {
                    j: sum(
                        q is not None and bool(answer_text(r).strip())
                        for r, q in zip(rs, qs, strict=True)
                    )
                    for j, qs in per.items()
                }
            )
        have = [{j for j, n in h.items() if n} for h in hits]
        if not have[0] or not have[1]:
            which = " and ".join(name for name, h in zip("AB", have, strict=True) if not h)
            return {"note": f"{NO_RATINGS} (none for run {which} under the {protocol} protocol)"}
        common = have[0] & have[1]
        if not common:
            a, b = ("; ".join(j.describe() for j in sorted(h)) for h in have)
            return {
                "refused": f"the runs were rated by different judges: A by {a}, B by {b}: score "
                "both with the same judge model and prompt"
            }
        judge = max(sorted(common), key=lambda j: hits[0][j] + hits[1][j])
        shown = []
        context = []
        for k, run in enumerate(runs):
            complete = {
                v
                for v, c in ((run.scored.get("coverage") or {}).get("variants") or {}).items()
                if c.get("complete")
            }
            by_variant: dict[str, list[tuple[Mapping[str, Any], float | None]]] = {}
            for r, q in zip(run.records, ratings[k][judge], strict=True):
                by_variant.setdefault(r["variant"], []).append((r, q))
            scores = {
                v: 10.0 * float(np.mean([q for r, q in rq if q is not None]))
                for v, rq in by_variant.items()
                if any(q is not None and answer_text(r).strip() for r, q in rq)
            }
            if select == "koala" and scores.keys() & complete:
                scores = {v: x for v, x in scores.items() if v in complete}
            variant = min(scores, key=lambda v: (-scores[v], v))
            rq = by_variant[variant]
            shown.append((variant, [r for r, _ in rq]))
            context.append({str(r["id"]): q for r, q in rq})
        return {
            "shown": shown,
            "context": tuple(context),
            "judge": {"model": judge.model, "prompt_id": judge.id, "prompt_hash": judge.hash},
        }

    def paired(
        self,
        a: Sequence[Mapping[str, Any]],
        b: Sequence[Mapping[str, Any]],
        protocol: str,
        context: Any = None,
    ) -> PairedData | dict[str, str]:
        """The judge score (10 x mean rating, as ``koala-bench score`` reports it) over the
        items both runs have a cached rating for (``context``: the ratings per item id of each
        run, from :meth:`paired_choice`); an item without one is left out and counted. A
        Wilcoxon signed-rank p-value of the paired ratings is given beside the test's."""
        import numpy as np

        if context is None:
            return {"note": NO_RATINGS}
        qa, qb = context
        both = sorted({str(r["id"]) for r in a})
        ids = [i for i in both if qa.get(i) is not None and qb.get(i) is not None]
        xa = np.array([[10.0 * float(qa[i]), 1.0] for i in ids]).reshape(len(ids), 2)
        xb = np.array([[10.0 * float(qb[i]), 1.0] for i in ids]).reshape(len(ids), 2)
        info = {
            "excluded": {
                "items": len(both) - len(ids),
                "unrated_a": sum(qa.get(i) is None for i in both),
                "unrated_b": sum(qb.get(i) is None for i in both),
            },
            "wilcoxon_p": _wilcoxon(xa[:, 0] - xb[:, 0]),
            "wilcoxon_test": "Wilcoxon signed-rank of the paired ratings (scipy; zero "
            "differences dropped)",
        }
        return PairedData(
            "score", xa, xb, ratio_of_sums, self.paired_unit, test=self.paired_test, info=info
        )

    def cell(self, c: Mapping[str, Any], g: Mapping[str, Any]) -> str:
        """``score [interval]``, with how many answers the judge could not judge (they are not
        in the figure), under ``published`` that a 0.0 means no item was rated, and the judge
        model the figure comes from (``(judge: NAME)``: a figure is its judge's)."""
        from koala.report_cells import fmt, interval

        text = fmt(g.get("score"), 1) + interval(g, "score")
        failed = g.get("num_judge_failed")
        if isinstance(failed, int) and failed:
            text += f" ({failed}/{g.get('num_items')} not judged: the judge failed)"
        if g.get("num_in_mean") == 0 and g.get("score") == 0.0:
            text += " (no item rated: 0.0 by the published rule)"
        if g.get("judge_model"):  # a figure is the judge's: say whose
            text += f" (judge: {g['judge_model']})"
        return text


TASK = SIF()
