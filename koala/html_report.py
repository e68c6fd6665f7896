"""``results.html``: the report as one self-contained web page.

:func:`write_html` turns the payload of :func:`koala.report.write_report` (what becomes
``results.json``) into a single HTML file that needs no network to view: the styles and the
script are inline and the plots are embedded as base64 ``data:`` URIs (a Content-Security-Policy
forbids any other source). The page holds:

* the protocol and the variant-selection rule the figures were scored with;
* the report's tables, one per task, sortable by clicking a column header (numeric order when
  a cell starts with a number, so ``"75.0 [61.2, 86.1]"`` sorts as 75.0; text order otherwise;
  a second click reverses);
* the significance matrices of ``payload["significance"]`` when present;
* the plots;
* the published figures of the paper's models (:func:`published_leaderboard`), in their own
  tables, marked as published figures that this project did not recompute.

Every text taken from the payload (model, config and run names are user input) is escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PUBLISHED_LEADERBOARD", "published_leaderboard", "write_html"]

PUBLISHED_LEADERBOARD = Path(__file__).with_name("data") / "published_leaderboard.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# difference of two shares (0-1) is shown in percentage points
SHARE_METRICS = {"accuracy", "cer", "scf", "parametric_proportion"}
ALPHA = 0.05

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 78em;
  padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
table.sortable th { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.significant { background: #fff3c4; font-weight: 600; }
.note, .rule, caption { color: #555; font-size: 90%; }
caption { caption-side: bottom; text-align: left; padding-top: .3em; }
section.published table { border-style: dashed; }
img { max-width: 100%; }
"""

# Click a header: rows sort by the leading number of each cell when both cells start with one
# (numbers before text), else by text; a second click on the same header reverses the order.
SCRIPT = """
(function () {
  function lead(cell) {
    var m = /^\\s*([-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+))/.exec(cell ? cell.textContent : "");
    return m ? parseFloat(m[1]) : NaN;
  }
  function compare(a, b) {
    var x = lead(a), y = lead(b);
    if (!isNaN(x) && !isNaN(y)) return x - y;
    if (!isNaN(x) || !isNaN(y)) return isNaN(x) ? 1 : -1;
    return (a ? a.textContent : "").localeCompare(b ? b.textContent : "");
  }
  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.addEventListener("click", function () {
      var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) { return dir * compare(a.cells[col], b.cells[col]); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def published_leaderboard(path: str | Path = PUBLISHED_LEADERBOARD) -> dict[str, Any]:
    """The published figures shipped with the package: ``{"source", "generated", "note",
    "tasks": {task: {"metric", "lower_is_better", "configs"}}, "models": [{"model",
    "figures": {config: value}}]}``, taken from the KoALa-Bench leaderboard (the authors'
    figures, not recomputed here)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _table(
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    *,
    task: str = "",
    caption: str = "",
    cls: str = "sortable",
) -> list[str]:
    out = [f'<table class="{cls}" data-task="{_e(task)}">']
    if caption:
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = [*row, *[""] * (len(header) - len(row))]
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def _task_name(task: str) -> str:
    from koala.tasks import find_task

    spec = find_task(task)
    return (spec.title if spec else task).split(":")[0]


def _header(payload: Mapping[str, Any]) -> list[str]:
    selection = payload.get("selection") or {}
    out = [
        "<header>",
        "<h1>KoALa-Bench results</h1>",
        f"<p>Scored under the <b>{_e(payload.get('protocol', '?'))}</b> protocol; the prompt "
        f"variant shown per model and config is chosen by the "
        f"<b>{_e(selection.get('rule', '?'))}</b> rule:</p>",
        '<ul class="rules">',
    ]
    for task, rule in (selection.get("per_task") or {}).items():
        out.append(f'<li data-task="{_e(task)}"><b>{_e(_task_name(task))}</b>: {_e(rule)}</li>')
    out.append("</ul>")
    models = ", ".join(map(str, payload.get("models") or [])) or "none"
    runs = ", ".join(map(str, payload.get("runs") or [])) or "none"
    out += [f"<p>Models: {_e(models)}. Runs: {_e(runs)}.</p>", "</header>"]
    return out


def _results(payload: Mapping[str, Any]) -> list[str]:
    rules = (payload.get("selection") or {}).get("per_task") or {}
    out = ['<section id="results">', "<h2>Results</h2>"]
    out.append(
        '<p class="note">Click a column header to sort (numbers by their first figure, so an '
        "interval does not change the order); click again to reverse.</p>"
    )
    for task, t in (payload.get("tables") or {}).items():
        out.append(f"<h3>{_e(t.get('title', task))}</h3>")
        out += _table(t.get("header", []), t.get("rows", []), task=task)
        if task in rules:
            out.append(f'<p class="rule">Variant shown: {_e(rules[task])}.</p>')
    out.append("</section>")
    return out


def _difference(pair: Mapping[str, Any], sign: float) -> tuple[str, str]:
    """Cell text and tooltip of a pair seen from one side (``sign`` -1: b minus a)."""
    scale = 100.0 if pair.get("metric") in SHARE_METRICS else 1.0
    d = _num(pair.get("difference")) * sign * scale
    lo, hi = (_num(pair.get(k)) * sign * scale for k in ("low", "high"))
    if math.isnan(d):
        return "—", ""
    text = f"{d:+.1f}"
    if not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{min(lo, hi):+.1f}, {max(lo, hi):+.1f}]"
    elif pair.get("interval_note"):
        why = str(pair["interval_note"])
        text += " [no interval: " + (
            "no variation]" if why.startswith("no variation") else f"{why.split(':')[0]}]"
        )
    p, ph = _num(pair.get("p_value")), _num(pair.get("p_holm"))
    test = f" ({pair['test']})" if pair.get("test") else ""
    family = [str(c) for c in pair.get("holm_family") or []]
    over = (
        f"over the {len(family)} config{'s' if len(family) != 1 else ''} compared between "
        f"{pair.get('a')} and {pair.get('b')} ({', '.join(family)})"
        if family
        else f"over the configs compared between {pair.get('a')} and {pair.get('b')}"
    )
    return text, f"p = {p:.3g}{test}; Holm-corrected {over}: {ph:.3g}"


def _significance(payload: Mapping[str, Any]) -> list[str]:
    """One model x model grid per config and metric: the row model minus the column model,
    with its interval; ``*`` where the Holm-corrected p-value is below 0.05 (Holm over the
    configs of that pair of runs, ``holm_family``)."""
    sig = payload.get("significance")
    out = ['<section id="significance">', "<h2>Significance</h2>"]
    if not sig:
        out += [
            '<p class="note">No significance matrix: comparing models needs two or more runs '
            "scored on the same items (<code>koala-bench compare</code>).</p>",
            "</section>",
        ]
        return out
    out.append(
        '<p class="note">Each cell: the row model minus the column model, with its paired '
        "bootstrap interval (percentage points for accuracy, CER and SCF; none when the task's "
        "units are too few or every draw agrees). The p-value is the task's paired test (exact "
        "McNemar over items, or a permutation test over its units: PA-QA passages, ST talks); "
        f"<b>*</b> marks a p-value below {ALPHA} after Holm's correction over the configs "
        "compared between the same two runs: one family per pair of runs; pairs of runs are "
        "not corrected against each other. Hover a cell for its test, its p-value and the "
        "configs of its Holm family. Lower is better for CER.</p>"
    )
    for config, entry in sig.items():
        models = [str(m) for m in entry.get("models") or []]
        by_metric: dict[str, dict[tuple[str, str], tuple[str, str, bool]]] = {}
        for pair in entry.get("pairs") or []:
            a, b, metric = str(pair.get("a")), str(pair.get("b")), str(pair.get("metric", ""))
            cells = by_metric.setdefault(metric, {})
            marked = _num(pair.get("p_holm")) < ALPHA
            for key, sign in (((a, b), 1.0), ((b, a), -1.0)):
                text, tip = _difference(pair, sign)
                cells[key] = (text + (" *" if marked else ""), tip, marked)
        for metric, cells in by_metric.items():
            out.append(f"<h3>{_e(config)}: {_e(metric)}</h3>")
            out.append(f'<table class="significance" data-config="{_e(config)}">')
            out.append(
                "<thead><tr><th>row − column</th>"
                + "".join(f"<th>{_e(m)}</th>" for m in models)
                + "</tr></thead><tbody>"
            )
            for a in models:
                row = [f"<th>{_e(a)}</th>"]
                for b in models:
                    text, tip, marked = cells.get((a, b), ("—" if a == b else "", "", False))
                    cls = ' class="significant"' if marked else ""
                    title = f' title="{_e(tip)}"' if tip else ""
                    row.append(f"<td{cls}{title}>{_e(text)}</td>")
                out.append("<tr>" + "".join(row) + "</tr>")
            out.append("</tbody></table>")
    out.append("</section>")
    return out


def _plots(payload: Mapping[str, Any], folder: Path) -> list[str]:
    out = ['<section id="plots">', "<h2>Plots</h2>"]
    for name, plot in (payload.get("plots") or {}).items():
        rel = (plot or {}).get("path") or f"{name}.png"
        png = folder / rel
        data = png.read_bytes() if png.is_file() else b""
        if not data.startswith(PNG_SIGNATURE):
            why = "is missing" if not data else "is not a PNG image"
            out.append(f'<p class="note missing-plot">Plot {_e(name)}: {_e(rel)} {why}.</p>')
            continue
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        out += [
            f'<figure data-plot="{_e(name)}">',
            f'<img alt="{_e(name)}" src="{uri}">',
            f"<figcaption>{_e(name)}</figcaption>",
            "</figure>",
        ]
    out.append("</section>")
    return out


def _published(reference: Mapping[str, Any]) -> list[str]:
    if not reference or not reference.get("models"):
        return []
    source = _e(reference.get("source", "source not stated"))
    when = reference.get("generated")
    cite = f"Source: {source}" + (f" (figures of {_e(when)})" if when else "") + "."
    out = [
        '<section id="published" class="published">',
        "<h2>Published figures (reference)</h2>",
        f'<p class="note"><b>Published figures, not recomputed</b>: the paper\'s models as '
        f"reported by the authors; they are not scores of this run. {cite}</p>",
    ]
    if reference.get("note"):
        out.append(f'<p class="note">{_e(reference["note"])}</p>')
    for task, t in (reference.get("tasks") or {}).items():
        configs = list(t.get("configs") or [])
        rows = []
        for m in reference["models"]:
            figures = m.get("figures") or {}
            values = [_num(figures.get(c)) for c in configs]
            rows.append(
                [m.get("model", "?"), *("—" if math.isnan(v) else f"{v:.2f}" for v in values)]
            )
        arrow = "↓" if t.get("lower_is_better") else "↑"
        out.append(f"<h3>{_e(_task_name(task))}: {_e(t.get('metric', ''))} {arrow}</h3>")
        caption = f"published figures, not recomputed. {cite}"
        out += _table(
            ["model", *configs], rows, task=task, caption=caption, cls="sortable published"
        )
    out.append("</section>")
    return out


def write_html(
    payload: Mapping[str, Any], path: str | Path, reference: Mapping[str, Any] | None = None
) -> Path:
    """Write the report ``payload`` (:func:`koala.report.write_report`) as one self-contained
    HTML page at ``path`` and return its path. The plots are read from the PNG files named in
    ``payload["plots"][name]["path"]``, relative to the folder of ``path`` (a missing one is
    skipped with a note). ``reference``: the published figures shown beside the results
    (default :func:`published_leaderboard`; an empty mapping shows none)."""
    out_path = Path(path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if reference is None:
        reference = published_leaderboard()
    body = [
        *_header(payload),
        *_results(payload),
        *_significance(payload),
        *_plots(payload, out_path.parent),
        *_published(reference),
    ]
    page = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>KoALa-Bench results</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        *body,
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text("\n".join(page) + "\n", encoding="utf-8")
    os.replace(tmp, out_path)
    return out_path
