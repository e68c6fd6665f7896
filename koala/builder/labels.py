"""Choices and gold answers of the published metadata, turned into plain lists and labels.

The parsing itself is :func:`koala.scoring.choices.parse_choices` / ``parse_gold``; this module
adds the repairs the published files need, each reported by name so it can be counted:

* ``choices_label_in_text``: a choice's text contains something that reads as a label
  (CLIcK: a choice that refers to ``(A)``, or contains ``(w)``); the labels are then read in
  sequence (``(A)``, then the next ``(B)`` after it, ...), so a label-like string inside a
  text stays text.
* ``choices_misnumbered``: the labels are numbered wrongly (K-SAT ``(1) (2) (4) (4) (5)``) but
  there are exactly as many as the set has choices; they are relabelled by position.
* ``choices_slash_n``: choices separated by a literal ``/n`` (K-SAT) instead of a newline.
* ``gold_from_original_choices``: the gold answer is the text of a choice in the *original*
  wording (CLIcK ``choices``), not in the Korean paraphrase shown (``choices_ko``); the label
  is taken from the original wording, which has the same labels.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from koala.scoring.choices import (
    LABELLED,
    LETTER_LABELS,
    NUMBER_LABELS,
    Choice,
    compact,
    parse_choices,
    parse_gold,
)
from koala.sources import SourceError

__all__ = ["choices_from_list", "gold_label", "parse_choice_field", "scheme_labels"]



def scheme_labels(scheme: str | None) -> tuple[str, ...]:
    """The label pool of a scheme: ``letters`` (A, B, ...) or ``numbers`` (1, 2, ...)."""
    return NUMBER_LABELS if scheme == "numbers" else LETTER_LABELS



def _sequential(text: str, pool: tuple[str, ...]) -> list[str]:
    """Choice texts read label after label (``(A)``, then ``(B)`` after it, ...)."""
    pos, spans = 0, []
    for label in pool:
        m = re.compile(r"\(\s*" + re.escape(label) + r"\s*\)", re.IGNORECASE).search(text, pos)
        if m is None or (not spans and text[: m.start()].strip()):
            break
        spans.append((m.start(), m.end()))
        pos = m.end()
    return [
        text[end : (spans[k + 1][0] if k + 1 < len(spans) else len(text))]
        for k, (_start, end) in enumerate(spans)
    ]


def _unlabelled(items: list[Any], pool: tuple[str, ...]) -> list[str] | None:
    """The texts of a choice list whose items carry their labels in order (``["(A) 예",
    "(B) 아니요"]``), without them; ``None`` when the items are not labelled so (the string
    form of the same choices is read without its labels: the list form must agree)."""
    if not 2 <= len(items) <= len(pool) or not all(isinstance(x, str) for x in items):
        return None
    texts = []
    for label, item in zip(pool, items, strict=False):
        m = re.match(r"\s*\(\s*" + re.escape(label) + r"\s*\)\s*", item, re.IGNORECASE)
        if m is None or not item[m.end() :].strip():
            return None
        texts.append(item[m.end() :].strip())
    return texts


def _positional(text: str, numeric: bool) -> list[str]:
    found = [m for m in LABELLED.finditer(text) if m.group(1).isdigit() == numeric]
    return [
        text[m.end() : (found[k + 1].start() if k + 1 < len(found) else len(text))]
        for k, m in enumerate(found)
    ]


def choices_from_list(items: list[Any], scheme: str | None, field: str) -> Choice:
    """A plain list of choice texts (SCA-QA), labelled by ``scheme``; the texts are kept
    exactly as published (not stripped, not deduplicated), since the published SCA-QA code
    matches the answer against them exactly."""
    pool = scheme_labels(scheme)
    if not 2 <= len(items) <= len(pool):
        raise SourceError(
            f"{len(items)} choices", field=field, expected=f"2 to {len(pool)} choices"
        )
    texts = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise SourceError(
                f"choice {item!r:.40} is not a non-empty string",
                field=field,
                expected="a list of choice texts",
            )
        texts.append(item)
    return Choice(pool[: len(texts)], tuple(texts))


def parse_choice_field(
    value: Any, scheme: str | None, num_choices: int | None, field: str
) -> tuple[Choice, list[str]]:
    """The choices of one row and the names of the repairs applied (see the module doc).

    ``value`` is the labelled string (``"(A) 예 (B) 아니요"``), a list of texts, or the string of
    a Python list (``"['a', 'b']"``).
    """
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            pass
    if isinstance(value, list | tuple):
        items = list(value)
        bare = _unlabelled(items, scheme_labels(scheme))
        choice = choices_from_list(bare or items, scheme, field)
        if num_choices is not None and len(choice.labels) != num_choices:
            raise SourceError(
                f"{len(choice.labels)} choices", field=field, expected=f"{num_choices} choices"
            )
        return choice, ["choices_list_labels"] if bare else []
    if not isinstance(value, str) or not value.strip():
        raise SourceError(
            f"{value!r:.60} is not a choice list",
            field=field,
            expected="labelled choices such as '(A) ... (B) ...'",
        )
    pool = scheme_labels(scheme)
    fixes: list[str] = []
    try:
        parsed: Choice | None = parse_choices(value)
    except ValueError:
        parsed = None
    canonical = (
        parsed is not None
        and parsed.texts is not None
        and parsed.labels == pool[: len(parsed.labels)]
        and (num_choices is None or len(parsed.labels) == num_choices)
    )
    if canonical:
        assert parsed is not None and parsed.texts is not None
        texts = list(parsed.texts)
    else:
        seq = _sequential(value, pool)
        positional = _positional(value, numeric=scheme == "numbers")
        if num_choices is not None and len(seq) != num_choices and len(positional) == num_choices:
            texts, fix = positional, "choices_misnumbered"
        elif len(seq) >= 2:
            texts, fix = seq, "choices_label_in_text"
        else:
            raise SourceError(
                f"cannot read labelled choices from {value!r:.80}",
                field=field,
                expected=f"choices labelled {pool[0]}, {pool[1]}, ... in order, "
                "such as '(A) ... (B) ...' or '(1) ... (2) ...'",
                fix="correct the choices in the metadata (or pass skip_bad=True)",
            )
        fixes.append(fix)
    cleaned = []
    for text in texts:
        t = text.strip()
        if t.endswith("/n"):
            t = t[:-2].strip()
            if "choices_slash_n" not in fixes:
                fixes.append("choices_slash_n")
        cleaned.append(t)
    if any(not t for t in cleaned):
        raise SourceError(
            f"an empty choice in {value!r:.80}",
            field=field,
            expected="a text after every label",
            fix="correct the choices in the metadata (or pass skip_bad=True)",
        )
    if len(cleaned) < 2:
        raise SourceError(
            f"a single choice in {value!r:.80}",
            field=field,
            expected="at least two labelled choices",
            fix="correct the choices in the metadata (or pass skip_bad=True)",
        )
    if num_choices is not None and len(cleaned) != num_choices:
        raise SourceError(
            f"{len(cleaned)} choices in {value!r:.80}",
            field=field,
            expected=f"{num_choices} choices",
            fix="correct the choices in the metadata (or pass skip_bad=True)",
        )
    return Choice(pool[: len(cleaned)], tuple(cleaned)), fixes


def _text_match(answer: str, choice: Choice) -> str | None:
    if choice.texts is None:
        return None
    body = LABELLED.sub("", answer, count=1) if LABELLED.match(answer.strip()) else answer
    target = compact(body)
    hits = [
        lab for lab, t in zip(choice.labels, choice.texts, strict=True) if compact(t) == target
    ]
    return hits[0] if len(hits) == 1 else None


def gold_label(
    answer: Any,
    choice: Choice,
    original: Choice | None = None,
    prefer_text: bool = False,
    field: str = "answer",
) -> tuple[str, list[str]]:
    """The gold label of ``answer`` (``"(C) 2001년"``, ``"(D)"``, ``"5"`` or a choice's text)
    among ``choice``, and the repairs applied.

    ``original`` is the same choices in their original wording (CLIcK ``choices``): a free-text
    gold that names none of the shown choices is looked up there. ``prefer_text`` (after the
    labels were renumbered) matches the answer's text before its label.
    """
    if not isinstance(answer, str) or not answer.strip():
        raise SourceError(
            f"{answer!r:.60} is not an answer",
            field=field,
            expected=f"a label among {list(choice.labels)} or the text of a choice",
            fix="correct the answer in the metadata (or pass skip_bad=True)",
        )
    if prefer_text:
        label = _text_match(answer, choice)
        if label is not None:
            return label, []
    try:
        return parse_gold(answer, choice), []
    except ValueError:
        pass
    if original is not None and original.labels == choice.labels:
        try:
            return parse_gold(answer, original), ["gold_from_original_choices"]
        except ValueError:
            pass
    raise SourceError(
        f"{answer!r:.80} names none of the choices",
        field=field,
        expected=f"a label among {list(choice.labels)} or the exact text of one choice",
        fix="correct the answer in the metadata (or pass skip_bad=True to skip the row)",
    )
