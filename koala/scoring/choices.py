"""Multiple-choice answers: parse choices and gold answers, extract the model's choice, score.

Two protocols (:mod:`koala.scoring.protocol`) read generated answers over the item's labels
(letters ``A``... or numbers ``1``...``5`` for KCSAT and SCA-QA).

``protocol="published"`` reproduces the authors' code exactly (README, "Scoring facts"):

    "first ``(L)`` found in choice order, then ``\\bL\\b`` (case-insensitive), then a bare
    letter; when nothing matches the published code silently picks the first choice"

and for K-SAT (numbers): "``(n)`` in choice order, then ``\\bn\\b``, then the first choice.
There is **no** bare-number step: ``"답: 4번"`` and ``"5번"`` are read as 1. Labels come from the
``(n)`` found in the choices string" (repeated labels collapse in order: ``(1)(2)(4)(4)(5)``
gives the labels 1, 2, 4, 5). A gold answer that names no label stays in the denominator and
is always wrong ("items whose gold has no readable label stay in the denominator"), counted
as ``invalid_gold``.

``protocol="koala"`` (default) keeps that order and departs where it is a defect:

1. the prediction is NFC-normalised, and labels are searched in its NFKC fold, so full-width
   ``（Ｃ）`` or ``Ｃ`` read as ``C``;
2. the first label, in choice order, written as ``(L)`` (or ``(l)``) anywhere in the answer;
3. else the first label, in choice order, standing alone as a word (``\\bL\\b``, any case);
4. else the text of exactly one choice, e.g. ``"1592년"`` for ``(C) 1592년``; when several
   choices occur, the longest wins (``서울숲공원`` over ``서울숲``);
5. else the first label, in choice order, found anywhere in the upper-cased answer (a bare
   letter, and a bare number too: ``"답: 4번"`` reads 4);
6. else the answer is *unparsed*: counted wrong and reported. ``fallback="first"`` picks the
   first choice instead (and turns step 4 off).

An item whose reference is malformed (the gold names no choice, the choices repeat a label,
labels and choices do not pair up) is left out of ``total`` and reported in ``invalid`` and
``invalid_items``; ``strict=True`` raises ``ValueError`` instead.

Logit-based scoring (the published "LM harness" mode) takes per-label log-probabilities of the
next token after the prompt and ``"\\n답: "`` and predicts the argmax over the labels only
(the same in both protocols).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from koala.constants import LABEL_SCHEMES, LETTER_LABELS, NUMBER_LABELS
from koala.scoring._validate import check_same_length, check_sequence
from koala.scoring.bootstrap import accuracy_interval, subset_clusters
from koala.scoring.protocol import check_protocol

__all__ = [
    "LABELLED",
    "LETTER_LABELS",
    "NUMBER_LABELS",
    "Choice",
    "ItemScore",
    "argmax_label",
    "choice_accuracy",
    "compact",
    "extract_choice",
    "parse_choices",
    "parse_gold",
    "score_choice_items",
    "summarize_items",
]

DEFAULT_NUM_CHOICES = 5
FALLBACKS = ("none", "first")

# "(A) 1392년 (B) 1443년", "(A) 아니요\n(B) 예", "(1)도서관 (2)...": a label in brackets.
LABELLED = re.compile(r"\(\s*([A-Za-z]|[1-9])\s*\)")  # "(A)", "( 3 )": a label in parentheses
_GOLD_PREFIX = re.compile(r"^\(\s*([A-Za-z]|[1-9])\s*\)")
_SPACE = re.compile(r"\s+")


def compact(text: str) -> str:
    """``text`` without any whitespace (how choice texts are compared)."""
    return _SPACE.sub("", text)



@dataclass(frozen=True)
class Choice:
    """A parsed choice list: labels in order and the text of each choice (labels removed)."""

    labels: tuple[str, ...]
    texts: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ItemScore:
    """One scored item: predicted label (``None`` when unparsed), gold label (``None`` when the
    reference names none), and how the prediction was found (``paren``, ``word``, ``text``,
    ``bare``, ``logit``, ``fallback``, ``unparsed``, or ``invalid`` for an item left out of the
    score). ``invalid`` says what is wrong with the reference, if anything."""

    predicted: str | None
    gold: str | None
    method: str
    invalid: str | None = None

    @property
    def correct(self) -> bool:
        return self.predicted is not None and self.predicted == self.gold

    @property
    def parsed(self) -> bool:
        return self.method not in ("unparsed", "invalid")

    @property
    def counted(self) -> bool:
        """Whether the item is in the denominator (``False`` for a left-out invalid item)."""
        return self.method != "invalid"


def _scheme_labels(scheme: str, n: int) -> tuple[str, ...]:
    pool = LABEL_SCHEMES.get(scheme)
    if pool is None:
        raise ValueError(f"labels={scheme!r}: use 'letters', 'numbers' or a list of labels")
    if not 1 <= n <= len(pool):
        raise ValueError(f"{n} choices cannot be labelled with {scheme} (at most {len(pool)})")
    return pool[:n]


def parse_choices(
    choices: str | Sequence[str] | None,
    labels: str | Sequence[str] | None = None,
) -> Choice | None:
    """Parse one item's choices.

    ``choices`` is the labelled string the published files carry (``"(A) 예 (B) 아니요"``), a
    list of choice texts (labelled or not), or ``None``. ``labels`` is ``"letters"``,
    ``"numbers"``, an explicit list, or ``None`` (read from the string; letters for a plain
    list). Returns ``None`` when nothing is known.
    """
    if choices is None or (isinstance(choices, str) and not choices.strip()):
        if labels is None:
            return None
        if isinstance(labels, str):
            return Choice(_scheme_labels(labels, DEFAULT_NUM_CHOICES))
        return Choice(tuple(str(x) for x in labels))
    if isinstance(choices, str):
        found = list(LABELLED.finditer(choices))
        if not found:
            raise ValueError(f"choices {choices!r} has no '(A)' or '(1)' labels")
        got = tuple(m.group(1).upper() for m in found)
        texts = tuple(
            choices[
                m.end() : (found[k + 1].start() if k + 1 < len(found) else len(choices))
            ].strip()
            for k, m in enumerate(found)
        )
        if len(set(got)) != len(got):
            raise ValueError(f"choices {choices!r} repeats a label: {got}")
    else:
        texts_list = []
        got_list = []
        for c in choices:
            if not isinstance(c, str):
                raise TypeError(f"a choice must be a string, got {type(c).__name__}: {c!r}")
            m = _GOLD_PREFIX.match(c.strip())
            got_list.append(m.group(1).upper() if m else None)
            texts_list.append(c.strip()[m.end() :].strip() if m else c.strip())
        texts = tuple(texts_list)
        got = tuple(got_list) if all(got_list) else ()  # type: ignore[arg-type]
    if labels is None:
        lab = got or _scheme_labels("letters", len(texts))
    elif isinstance(labels, str):
        lab = _scheme_labels(labels, len(texts))
    else:
        lab = tuple(str(x) for x in labels)
    if len(lab) != len(texts):
        raise ValueError(f"{len(lab)} labels {lab} for {len(texts)} choices {list(texts)}")
    return Choice(lab, texts)


def _infer_labels(gold: str) -> tuple[str, ...]:
    g = gold.strip()
    m = _GOLD_PREFIX.match(g)
    first = m.group(1) if m else g[:1]
    scheme = "numbers" if first.isdigit() else "letters"
    pool = NUMBER_LABELS if scheme == "numbers" else LETTER_LABELS
    return pool[: max(DEFAULT_NUM_CHOICES, 1)]


def parse_gold(answer: str, choice: Choice) -> str:
    """The gold label of ``answer``: ``"(C) 1592년"``, ``"(C)"``, ``"C"``, ``"3"``, or the exact
    text of one choice. Raises ``ValueError`` when it names no choice."""
    a = answer.strip()
    m = _GOLD_PREFIX.match(a)
    if m and m.group(1).upper() in choice.labels:
        return m.group(1).upper()
    if a.upper() in choice.labels:
        return a.upper()
    if choice.texts is not None:
        squeezed = compact(a)
        for label, text in zip(choice.labels, choice.texts, strict=True):
            if squeezed == compact(text):
                return label
    raise ValueError(
        f"{answer!r} is neither a label of {list(choice.labels)} nor the text of a choice"
    )


def _published_choice(choices: Any, labels: Any) -> Choice | None:
    """The published label parsing: the labels are the ``(n)``/``(L)`` found in a choices
    string, repeats collapsed in order (``(1)(2)(4)(4)(5)`` -> 1, 2, 4, 5); choice texts are not
    used. Other forms of ``choices`` are parsed as in the koala protocol."""
    if isinstance(choices, str) and choices.strip():
        found = tuple(dict.fromkeys(m.group(1).upper() for m in LABELLED.finditer(choices)))
        if not found:
            raise ValueError(f"choices {choices!r} has no '(A)' or '(1)' labels")
        return Choice(found)
    return parse_choices(choices, labels)


def _published_gold(answer: str, choice: Choice) -> str:
    """The published gold label: the leading ``(L)`` of the answer, or the answer itself when it
    is a label. No choice-text matching."""
    a = answer.strip()
    m = _GOLD_PREFIX.match(a)
    label = m.group(1).upper() if m else a.upper()
    if label not in choice.labels:
        raise ValueError(f"{answer!r} names no label of {list(choice.labels)}")
    return label


@functools.lru_cache(maxsize=256)
def _word_patterns(labels: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(rf"\b{re.escape(label)}\b", re.IGNORECASE) for label in labels)


def _match_text(text: str, choice: Choice) -> str | None:
    if not choice.texts:
        return None
    squeezed = compact(text)
    if not squeezed:
        return None
    best: tuple[int, str] | None = None
    tied = False
    for label, ctext in zip(choice.labels, choice.texts, strict=True):
        c = compact(ctext)
        if c and c in squeezed:
            if best is None or len(c) > best[0]:
                best, tied = (len(c), label), False
            elif len(c) == best[0]:
                tied = True
    if best is None or tied:
        return None
    return best[1]


def extract_choice(
    text: str, choice: Choice, match_text: bool = True, protocol: str = "koala"
) -> tuple[str | None, str]:
    """The label a generated ``text`` picks, and the step that found it (see module doc).

    ``koala``: returns ``(None, "unparsed")`` when no step matches. ``published``: the first
    label with method ``"fallback"`` instead; no choice-text step and, for number labels, no
    bare-number step (``match_text`` is ignored).
    """
    if check_protocol(protocol) == "published":
        return _extract_published(text, choice)
    t = unicodedata.normalize("NFC", text).strip()
    if not t:
        return None, "unparsed"
    folded = unicodedata.normalize("NFKC", t)  # for the label search only: "（Ｃ）" -> "(C)"
    for label in choice.labels:
        if f"({label})" in folded or f"({label.lower()})" in folded:
            return label, "paren"
    for label, pattern in zip(choice.labels, _word_patterns(choice.labels), strict=True):
        if pattern.search(folded):
            return label, "word"
    if match_text:
        label = _match_text(t, choice)
        if label is not None:
            return label, "text"
    upper = folded.upper()
    for label in choice.labels:
        if label in upper:
            return label, "bare"
    return None, "unparsed"


def _extract_published(text: str, choice: Choice) -> tuple[str, str]:
    for label in choice.labels:
        if f"({label})" in text or f"({label.lower()})" in text:
            return label, "paren"
    for label, pattern in zip(choice.labels, _word_patterns(choice.labels), strict=True):
        if pattern.search(text):
            return label, "word"
    upper = text.upper()
    for label in choice.labels:
        if not label.isdigit() and label in upper:  # no bare-number step (evaluate_ksat.py)
            return label, "bare"
    return choice.labels[0], "fallback"


def argmax_label(scores: Mapping[str, float] | Sequence[float], labels: Sequence[str]) -> str:
    """Logit-based prediction: the label with the highest log-probability.

    ``scores`` maps labels to log-probabilities (labels a server did not return count as
    ``-inf``) or lists them in label order. Ties go to the earlier label. NaN is an error.
    """
    if isinstance(scores, Mapping):
        unknown = [k for k in scores if str(k).upper() not in labels]
        if unknown:
            raise ValueError(f"scores name labels {unknown} that are not among {list(labels)}")
        table = {str(k).upper(): float(v) for k, v in scores.items()}
        values = [table.get(label, -math.inf) for label in labels]
    else:
        values = [float(v) for v in scores]
        if len(values) != len(labels):
            raise ValueError(f"{len(values)} scores for {len(labels)} labels {list(labels)}")
    if any(math.isnan(v) for v in values):
        raise ValueError(f"scores contain NaN: {values}")
    if all(v == -math.inf for v in values):
        raise ValueError(f"no score for any of the labels {list(labels)}")
    best = max(range(len(values)), key=lambda k: (values[k], -k))
    return labels[best]


def _per_item(value: Any, n: int, name: str) -> list[Any]:
    if value is None or isinstance(value, str):
        return [value] * n
    check_sequence(value, name)
    if len(value) != n:
        raise ValueError(f"{name} has {len(value)} items but predictions has {n}")
    return list(value)


def _item_labels(labels: Any, n: int) -> list[Any]:
    per_item = (
        isinstance(labels, Sequence)
        and not isinstance(labels, str)
        and len(labels) > 0
        and not isinstance(labels[0], str)
    )
    rows = _per_item(labels, n, "labels") if per_item else [labels] * n
    # an empty list of labels means "not given" (read them from the choices or the gold)
    return [
        None if isinstance(r, Sequence) and not isinstance(r, str) and len(r) == 0 else r
        for r in rows
    ]


def _check_prediction(pred: Any, i: int, pname: str) -> None:
    if pred is None:
        raise ValueError(f"{pname}[{i}] is None; expected a string (use '' for no answer)")
    if not isinstance(pred, str | Mapping | Sequence):
        raise TypeError(
            f"{pname}[{i}] must be a string or per-label log-probabilities, "
            f"got {type(pred).__name__}"
        )


def score_choice_items(
    predictions: Sequence[Any],
    references: Sequence[str],
    choices: Sequence[Any] | None = None,
    labels: Any = None,
    fallback: str = "none",
    match_text: bool | None = None,
    names: tuple[str, str] = ("predictions", "references"),
    protocol: str = "koala",
    strict: bool = False,
) -> list[ItemScore]:
    """Score each item. A prediction is a generated string, or per-label log-probabilities
    (a mapping label -> logprob, or a list in label order) for logit-based scoring.

    ``choices`` (optional, per item) is the labelled choice string or a list of choice texts;
    ``labels`` is ``"letters"``, ``"numbers"``, one list for all items, or one per item.

    A malformed reference gives an item with ``invalid`` set: under ``koala`` its method is
    ``"invalid"`` (left out of the score), under ``published`` it is read as usual and always
    wrong. ``strict=True`` raises ``ValueError`` naming the row instead. Under ``published``
    ``fallback`` and ``match_text`` are ignored (the published code falls back to the first
    choice and has no choice-text step).
    """
    pname, rname = names
    published = check_protocol(protocol) == "published"
    check_sequence(predictions, pname)
    check_sequence(references, rname)
    check_same_length((pname, predictions), (rname, references))
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback={fallback!r}: use one of {FALLBACKS}")
    if match_text is None:
        match_text = fallback != "first"
    n = len(predictions)
    choice_per_item = _per_item(choices, n, "choices")
    label_per_item = _item_labels(labels, n)
    out = []
    for i, (pred, gold) in enumerate(zip(predictions, references, strict=True)):
        if gold is None or not isinstance(gold, str):
            raise TypeError(f"{rname}[{i}] must be a string label or answer, got {gold!r}")
        _check_prediction(pred, i, pname)
        choice: Choice | None = None
        try:
            if published:
                choice = _published_choice(choice_per_item[i], label_per_item[i])
            else:
                choice = parse_choices(choice_per_item[i], label_per_item[i])
            if choice is None:
                choice = Choice(_infer_labels(gold))
                if isinstance(pred, Sequence) and not isinstance(pred, str) and pred:
                    choice = Choice(choice.labels[: len(pred)])  # scores in label order
            gold_label = (_published_gold if published else parse_gold)(gold, choice)
        except TypeError as exc:
            raise ValueError(f"{rname}[{i}]: {exc}") from None
        except ValueError as exc:
            if strict:
                raise ValueError(f"{rname}[{i}]: {exc}") from None
            if not published or choice is None:
                # koala: left out; published without readable labels: counted, always wrong
                method = "invalid" if not published else "fallback"
                out.append(ItemScore(None, None, method, invalid=str(exc)))
                continue
            label, method = _read(pred, choice, i, pname, match_text, protocol)
            out.append(ItemScore(label, None, method, invalid=str(exc)))
            continue
        label, method = _read(pred, choice, i, pname, match_text, protocol)
        if label is None and fallback == "first":
            label, method = choice.labels[0], "fallback"
        out.append(ItemScore(label, gold_label, method))
    return out


def _read(
    pred: Any, choice: Choice, i: int, pname: str, match_text: bool, protocol: str
) -> tuple[str | None, str]:
    if isinstance(pred, str):
        return extract_choice(pred, choice, match_text=match_text, protocol=protocol)
    try:
        return argmax_label(pred, choice.labels), "logit"
    except ValueError as exc:
        raise ValueError(f"{pname}[{i}]: {exc}") from None


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def summarize_items(items: Sequence[ItemScore], protocol: str = "koala") -> dict[str, Any]:
    """The accounting shared by the choice scorers: ``accuracy`` = correct / total over the
    counted items (NaN when none is), ``correct``, ``total``, ``unparsed``, ``fallback_used``,
    ``invalid`` and ``invalid_items`` (left out, ``koala``), ``invalid_gold`` (in the
    denominator and always wrong, ``published``) and ``protocol``."""
    counted = [it for it in items if it.counted]
    correct = sum(it.correct for it in counted)
    return {
        "accuracy": _ratio(correct, len(counted)),
        "correct": correct,
        "total": len(counted),
        "unparsed": sum(it.method == "unparsed" for it in counted),
        "fallback_used": sum(it.method == "fallback" for it in counted),
        "invalid": len(items) - len(counted),
        "invalid_items": [k for k, it in enumerate(items) if not it.counted],
        "invalid_gold": sum(it.invalid is not None for it in counted),
        "protocol": protocol,
    }


def choice_accuracy(
    predictions: Sequence[Any],
    references: Sequence[str],
    choices: Sequence[Any] | None = None,
    labels: Any = None,
    fallback: str = "none",
    match_text: bool | None = None,
    return_items: bool = False,
    protocol: str = "koala",
    strict: bool = False,
    confidence: float | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Accuracy = correct / total over multiple-choice items (generation- or logit-based).

    Returns ``accuracy``, ``correct``, ``total``, ``unparsed`` (answers no rule could read,
    counted wrong), ``fallback_used``, ``invalid`` / ``invalid_items`` (malformed references
    left out under ``koala``), ``invalid_gold`` (golds naming no label, kept in the denominator
    and always wrong under ``published``), ``protocol`` and, with ``return_items``, the
    per-item ``predicted_labels``, ``gold_labels`` and ``methods`` (one per input item).

    ``confidence`` (e.g. 0.95) adds ``accuracy_ci``: a seeded percentile bootstrap interval
    (:func:`koala.scoring.bootstrap.accuracy_interval`, ``n_resamples``, ``seed``) recomputing
    correct / total over the counted items of each resample; ``clusters`` (one key per input
    item) resamples clusters of items instead of items.
    """
    items = score_choice_items(
        predictions,
        references,
        choices,
        labels,
        fallback,
        match_text,
        protocol=protocol,
        strict=strict,
    )
    out = summarize_items(items, protocol)
    if confidence is not None:
        counted = [k for k, it in enumerate(items) if it.counted]
        out["accuracy_ci"] = accuracy_interval(
            [items[k].correct for k in counted],
            subset_clusters(clusters, len(items), counted),
            n_resamples,
            confidence,
            seed,
        ).as_dict()
    if return_items:
        out["predicted_labels"] = [it.predicted for it in items]
        out["gold_labels"] = [it.gold for it in items]
        out["methods"] = [it.method for it in items]
    return out
