"""How a report cell says a number: the value with its interval, and what must stand beside it
(partial coverage, failed and abstained requests, truncated clips, the spread across prompt
variants). Shared by the report and by every task's table (:meth:`koala.tasks.Task.cell`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "best_metrics",
    "caveat",
    "cell_text",
    "fmt",
    "interval",
    "logit_metrics",
    "logit_text",
    "model_rows",
    "note",
    "num",
    "pct",
    "pct_ci",
    "shown",
    "spread",
]


def num(x: Any) -> float:
    """``x`` as a float (NaN when it is not a number)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def best_metrics(c: Mapping[str, Any], mode: str = "gen") -> Mapping[str, Any] | None:
    """The metrics of the variant a config's table shows in ``mode`` (``None``: none)."""
    b = c.get("best", {}).get(mode)
    if not b:
        return None
    return c["variants"][b["variant"]][mode]


def pct(x: Any) -> str:
    v = num(x)
    return "—" if math.isnan(v) else f"{100 * v:.1f}"


def fmt(x: Any, digits: int = 2) -> str:
    v = num(x)
    return "—" if math.isnan(v) else f"{v:.{digits}f}"


def interval(g: Mapping[str, Any], key: str, scale: float = 1.0, digits: int = 1) -> str:
    """`` [low, high]`` of ``g[key + "_ci"]`` (a bootstrap interval), scaled; empty when the
    interval is absent or undefined; `` [no interval: 3 items]`` or `` [no interval: no
    variation]`` when the bootstrap could not give one (:mod:`koala.scoring.bootstrap`: too
    few units, or every resample the same), never a zero-width interval."""
    ci = g.get(f"{key}_ci")
    if not isinstance(ci, Mapping):
        return ""
    low, high = num(ci.get("low")), num(ci.get("high"))
    if math.isnan(low) or math.isnan(high):
        why = str(ci.get("note") or "")
        if why.startswith("no variation"):
            return " [no interval: no variation]"
        if "too few" in why:
            return f" [no interval: {why.split(':')[0]}]"
        return ""
    return f" [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


# why answers have no label log-probabilities (scores.json's ``no_logprobs_reasons``, from the
# records' meta.logprobs_off: koala.models.openai; koala.tasks.choice.no_logprobs_reason), in
# the order a cell names them when their counts tie
NO_LOGPROBS_WORDS = {
    "refused": "the server refused logprobs",
    "token_ids": "the server sent token ids, not text",
    "not_returned": "the server returned none",
    "no_label": "no label among the top tokens",
    "unknown": "no reason recorded",
}


def _no_logprobs_reasons(lg: Mapping[str, Any]) -> list[tuple[str, int]]:
    """``(words, count)`` of each reason, most frequent first."""
    got = lg.get("no_logprobs_reasons")
    if not isinstance(got, Mapping):
        return []
    order = list(NO_LOGPROBS_WORDS)
    items = [(str(k), v) for k, v in got.items() if isinstance(v, int) and v > 0]
    items.sort(key=lambda kv: (-kv[1], order.index(kv[0]) if kv[0] in order else len(order)))
    return [(NO_LOGPROBS_WORDS.get(k, k), v) for k, v in items]


def logit_metrics(c: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The logit entry a cell shows: the metrics of the variant shown in logit mode; without
    one, the shown generation variant's ``logit`` entry when it says why there is no figure
    (``no_logprobs_reasons``); else ``None``."""
    lg = best_metrics(c, "logit")
    if lg:
        return lg
    name = ((c.get("best") or {}).get("gen") or {}).get("variant")
    entry = (c.get("variants") or {}).get(name, {}).get("logit") if name else None
    return entry if isinstance(entry, Mapping) and entry.get("no_logprobs_reasons") else None


def logit_text(lg: Mapping[str, Any] | None, n: Any = None) -> str:
    """The logit-based accuracy of a cell, with how many answers had no label
    log-probabilities (they count wrong) and why, when their records say it:
    ``50.0 (n=8, 4 without logprobs; the server returned none: 3, no label among the top
    tokens: 1)`` (``50.0 (n=8, 4 without logprobs)`` when no reason is recorded). Without a
    logit-based figure, ``—``, and why when the answers say it: ``— (the server refused
    logprobs: 8 of 8)``."""
    if not lg:
        return "—"
    reasons = _no_logprobs_reasons(lg)
    missing = lg.get("no_logprobs")
    if "accuracy" not in lg:
        why = "; ".join(f"{words}: {k} of {missing}" for words, k in reasons)
        return f"— ({why})" if why else "—"
    parts = [f"n={n}"] if n is not None else []
    if isinstance(missing, int) and missing:
        said = [(w, k) for w, k in reasons if w != NO_LOGPROBS_WORDS["unknown"]]
        why = ", ".join(f"{words}: {k}" for words, k in reasons) if said else ""
        parts.append(f"{missing} without logprobs" + (f"; {why}" if why else ""))
    return pct(lg.get("accuracy")) + (f" ({', '.join(parts)})" if parts else "")


def pct_ci(g: Mapping[str, Any], key: str) -> str:
    """A share in % with its interval: ``75.0 [61.2, 86.1]``."""
    return pct(g.get(key)) + interval(g, key, 100.0)


def spread(c: Mapping[str, Any], scale: float) -> str:
    """How much the choice of prompt variant matters: ``4 variants: mean 70.1, range 8.2``."""
    sens = (c.get("sensitivity") or {}).get("gen")
    if not sens or sens.get("variants", 0) < 2:
        return ""
    return (
        f"{sens['variants']} variants: mean {scale * num(sens['mean']):.1f}, "
        f"range {scale * num(sens['range']):.1f}"
    )


def shown(c: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    """The variant a table row shows: the best generation variant, else (no defined main
    metric, e.g. SCF with no text-correct item) the first variant, marked with ``*``."""
    best = c.get("best", {}).get("gen")
    if best:
        return best["variant"], c["variants"][best["variant"]]["gen"]
    for name, modes in sorted(c.get("variants", {}).items()):
        if "gen" in modes:
            return f"{name}*", modes["gen"]
    return "", None


def note(c: Mapping[str, Any]) -> str:
    """Why a config has no number: failed, not run, or the scorer's note."""
    if c.get("status") == "failed":
        return f"failed (all {c['counts']['failed']} requests failed)"
    if c.get("status") == "not run":
        return "not run (no request recorded)"
    notes = [v.get("gen", {}).get("note") for v in c.get("variants", {}).values()]
    text = next((n for n in notes if n), c.get("note") or "not scored")
    return f"n/a ({text.removeprefix('not scored: ')})"


def caveat(c: Mapping[str, Any], g: Mapping[str, Any] | None = None) -> str:
    """What a cell must say beside its number: a partial config (answered of planned) and the
    requests of the shown variant that failed or were abstained."""
    from koala.tasks import find_task

    parts = []
    cov = c.get("coverage") or {}
    if c.get("status") == "partial":
        parts.append(f"partial: {cov.get('records', 0)}/{cov.get('planned', 0)} requests")
        missing = (cov.get("shards") or {}).get("missing")
        if missing:
            parts.append(f"shard(s) {', '.join(missing)} missing")
    cnt = c.get("counts") or {}
    if cnt.get("truncated"):
        parts.append(f"{cnt['truncated']}/{cnt.get('records')} clips cut by the model's limit")
    if cnt.get("records") and cnt.get("shared_answer") == cnt.get("records"):
        parts.append("one answer for every variant: the model ignores the prompt")
    if g:
        task = find_task(c.get("task"))
        text = spread(c, task.plot_scale) if task else ""
        if text:
            parts.append(text)
        name = (c.get("best", {}).get("gen") or {}).get("variant")
        n = (cov.get("variants") or {}).get(name, {}).get("records") if name else None
        for what in ("failed", "abstained"):
            k = g.get(what)
            if isinstance(k, int) and k:
                parts.append(f"{k}/{n} {what}" if n else f"{k} {what}")
    return f" ({'; '.join(parts)})" if parts else ""


def cell_text(task: Any, c: Mapping[str, Any] | None) -> str:
    """A config's cell in a one-column-per-model table: ``task.cell`` of the shown variant
    with its caveats, or why there is no number."""
    if c is None:
        return ""
    g = best_metrics(c, "gen")
    if g is None:
        return note(c) + caveat(c)
    return task.cell(c, g) + caveat(c, g)


def model_rows(
    results: Mapping[str, Mapping[str, Any]],
    configs: Sequence[str],
    needed: str,
    cells: Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]],
) -> list[list[str]]:
    """One row per (config, model): set, model, shown variant, then ``cells(c, metrics)``, or
    the reason it is not scored when the shown metrics lack ``needed``."""
    rows = []
    for config in configs:
        for model, configs_of_model in results.items():
            c = configs_of_model.get(config)
            if c is None:
                continue
            variant, g = shown(c)
            if g is None or needed not in g:
                rows.append([config, model, variant, note(c) + caveat(c)])
                continue
            values = cells(c, g)
            values[0] += caveat(c, g)
            rows.append([config, model, variant, *values])
    return rows
