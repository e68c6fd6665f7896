"""The benchmark's constants, each defined once.

Everything else imports them from here: the sample rate every clip is stored and sent at, the
scoring protocols, the PA-QA evidence segments and their boundaries, the multiple-choice label
schemes and the answer cue that ends a multiple-choice prompt. What a *task* is (its fields,
requests, scoring and report) lives in :mod:`koala.tasks`, one module per task.
"""

from __future__ import annotations

__all__ = [
    "ANSWER_CUE",
    "LABEL_SCHEMES",
    "LETTER_LABELS",
    "NUMBER_LABELS",
    "PROTOCOLS",
    "SAMPLE_RATE",
    "SEGMENTS",
    "SEGMENT_BOUNDS",
    "label_forms",
    "label_token_forms",
]

# Every clip is stored 16 kHz mono (the published audio's rate) and sent at that rate.
SAMPLE_RATE = 16_000

# ``koala``: this project's rules; ``published``: the authors' code, exactly.
PROTOCOLS: tuple[str, ...] = ("koala", "published")

# PA-QA: "front [0, .25), front-middle [.25, .5), middle-late [.5, .75), late [.75, 1]" of the
# relative position of an evidence sentence in the passage.
SEGMENTS: tuple[str, ...] = ("front", "front-middle", "middle-late", "late")
SEGMENT_BOUNDS: tuple[float, ...] = (0.25, 0.5, 0.75)  # the lower bound of each later segment

# Multiple-choice label schemes: how a set numbers its choices.
LETTER_LABELS: tuple[str, ...] = tuple("ABCDEFGHIJ")
NUMBER_LABELS: tuple[str, ...] = tuple("123456789")
LABEL_SCHEMES: dict[str, tuple[str, ...]] = {"letters": LETTER_LABELS, "numbers": NUMBER_LABELS}

# The answer cue that ends a multiple-choice prompt ("input = audio + prompt + "\n답: "" in
# the published logit protocol).
ANSWER_CUE = "\n답: "


def label_forms(label: str) -> tuple[str, str, str, str]:
    """The token forms of a label, in the published order of preference (the published logit
    rule takes the "first single-token form among L, (L), " (L)", " L"")."""
    return (label, f"({label})", f" ({label})", f" {label}")


def label_token_forms(label: str) -> tuple[str, ...]:
    """Every token form :func:`koala.models.openai.label_logprobs` counts for ``label``:
    ``L``, ``(L)``, `` L``, `` (L)``, and the same forms of the lower-case letter when the label
    is a letter."""
    cases = [label]
    if label.isascii() and label.isalpha() and label.lower() != label:
        cases.append(label.lower())
    forms = (form for c in cases for form in (c, f"({c})", f" {c}", f" ({c})"))
    return tuple(dict.fromkeys(forms))
