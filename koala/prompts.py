"""Prompts per task: this project's own (``prompts_default.yaml``) or a file in the published
``prompts.yaml`` format.

The format, shared with the published evaluation code: a mapping from a task name to a list of
variants, each a mapping with a ``name`` and the fields the task uses::

    asr:                       # also: st (published: translation)
      - name: v1
        prompt: "..."          # the whole text prompt
    sqa:                       # also: pa_qa (lsqa), a config such as sqa_kcsat (ksat)
      - name: v1
        prompt_prefix: "..."   # before the question and the choices
        answer_suffix: "\\n답: " # after them: the answer cue
    sif:                       # published: instruct
      - name: v1
        prompt_prefix: "..."
    sca_qa:                    # published: kdisentqa
      - name: v1
        prompt_text_only: "..."   # the text-only condition
        prompt_speech: "..."      # the two speech conditions
        answer_suffix: "\\n답: "

A key may also be a config name without ``_noisy`` (``sqa_kcsat``); it takes precedence over
its task. The published authors "keep the best of the four per model": the runner evaluates
every variant and the report gives the best and all of them.

A key may also be ``<task>_<subset>`` (``sqa_kcsat``, ``sca_qa_kpop``): a row takes the
variants of its own subset first (:meth:`PromptSet.variants` with the row's ``subset``), so a
K-SAT row gets the same prompt in the union config ``sqa`` and in ``sqa_kcsat``.

A multiple-choice prompt is ``prefix + ["질문: " + question + "\\n"] + "(L) choice" lines +
answer_suffix``; the question line is left out when the question is empty (it is spoken).
``{example}`` in a prefix or suffix becomes an example answer in the row's own label scheme:
``(A)`` for letters, ``(1)`` for numbers (a model that copies an example shown in another
scheme is unparsed).

The protocol (``koala`` or ``published``) decides the labels shown: under ``published`` the
SCA-QA choices are shown as ``(A)``-``(D)`` instead of the row's numbers, as the published
evaluation does ("the choices are shown as (A)-(D) (not numbers)", SCA-QA/
evaluate_with_original.py); every other set shows its own labels under both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from koala.constants import ANSWER_CUE, PROTOCOLS
from koala.tasks import BUILTIN_TASKS, all_tasks, config_task, find_task, get_task

__all__ = [
    "CONDITIONS",
    "DEFAULT_PROMPTS",
    "EXAMPLE",
    "MC_TASKS",
    "PROTOCOLS",
    "TASKS",
    "PromptSet",
    "PromptVariant",
    "build_prompt",
    "format_choices",
    "load_prompts",
    "shown_labels",
    "task_of",
]

TASKS: tuple[str, ...] = BUILTIN_TASKS
MC_TASKS = frozenset(t.name for t in all_tasks() if t.multiple_choice)
CONDITIONS: dict[str, tuple[str, ...]] = {t.name: t.conditions for t in all_tasks()}
ALIASES = {
    "translation": "st",
    "instruct": "sif",
    "lsqa": "pa_qa",
    "kdisentqa": "sca_qa",
    "ksat": "sqa_kcsat",
    "kcsat": "sqa_kcsat",
}
DEFAULT_PROMPTS = Path(__file__).with_name("prompts_default.yaml")
DEFAULT_SUFFIX = ANSWER_CUE
EXAMPLE = "{example}"  # replaced by an example answer in the row's label scheme
FIELDS = ("prompt", "prompt_prefix", "answer_suffix", "prompt_text_only", "prompt_speech")


def task_of(config: str) -> str:
    """The task of a task name or of a config, as the builder registry declares it
    (``koala/builder_configs/*.yaml``); :class:`~koala.builder.registry.UnknownConfigError`
    (a ``ValueError``) for a name it does not know."""
    if find_task(config) is not None:
        return config
    return config_task(config.lower()).name


@dataclass(frozen=True)
class PromptVariant:
    """One prompt variant of a task (fields as in the published format)."""

    name: str
    prompt: str | None = None
    prompt_prefix: str | None = None
    answer_suffix: str | None = None
    prompt_text_only: str | None = None
    prompt_speech: str | None = None

    @property
    def instruction(self) -> str:
        """The text of a non-multiple-choice prompt (``prompt``, else ``prompt_prefix``)."""
        return self.prompt if self.prompt is not None else (self.prompt_prefix or "")

    def prefix(self, condition: str = "speech") -> str:
        if condition == "text" and self.prompt_text_only is not None:
            return self.prompt_text_only
        if condition in ("counterfactual", "original") and self.prompt_speech is not None:
            return self.prompt_speech
        if self.prompt_prefix is not None:
            return self.prompt_prefix
        return self.prompt or ""

    @property
    def suffix(self) -> str:
        return DEFAULT_SUFFIX if self.answer_suffix is None else self.answer_suffix


class PromptSet:
    """Variants per task or config, read from one file."""

    def __init__(self, entries: Mapping[str, Sequence[PromptVariant]], source: str) -> None:
        self.entries = {k: tuple(v) for k, v in entries.items()}
        self.source = source

    def variants(self, config: str, subset: str | None = None) -> tuple[PromptVariant, ...]:
        """The variants for a row of ``subset`` in ``config``: the subset's entry
        (``<task>_<subset>``, e.g. ``sqa_kcsat``), else the config's own entry, else its
        task's; so a row gets the same variants in the union config and in its subset's."""
        task = task_of(config)
        if subset:
            key = f"{task}_{str(subset).lower()}"
            if key in self.entries:
                return self.entries[key]
        base = config.lower().removesuffix("_noisy")
        if base in self.entries:
            return self.entries[base]
        if task not in self.entries:
            default = get_task(task).default_prompts
            if default:
                return tuple(
                    _parse_variant(f"task {task}", task, i, v) for i, v in enumerate(default)
                )
            raise ValueError(
                f"{self.source}: no prompts for task {task!r} (config {config!r}); the file has "
                f"{sorted(self.entries)}"
            )
        return self.entries[task]

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            k: [{f: v for f, v in asdict(p).items() if v is not None} for p in vs]
            for k, vs in self.entries.items()
        }

    @property
    def sha256(self) -> str:
        blob = json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _parse_variant(source: str, key: str, index: int, raw: Any) -> PromptVariant:
    where = f"{source}: {key}[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping with 'name' and prompt fields, got {raw!r}")
    unknown = sorted(set(raw) - {"name", *FIELDS})
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; expected name and {list(FIELDS)}")
    name = raw.get("name")
    if not isinstance(name, str | int) or not str(name).strip():
        raise ValueError(f"{where}: field 'name' must be a non-empty string, got {name!r}")
    values: dict[str, str | None] = {}
    for f in FIELDS:
        v = raw.get(f)
        if v is not None and not isinstance(v, str):
            raise ValueError(f"{where} ({name}): field {f!r} must be a string, got {v!r}")
        values[f] = v
    return PromptVariant(str(name), **values)


def _check_fields(source: str, key: str, v: PromptVariant) -> None:
    try:
        task = task_of(key)
    except ValueError:
        raise ValueError(
            f"{source}: unknown task or config {key!r}; expected one of {list(TASKS)}, a config "
            f"name, or a published name {sorted(ALIASES)}"
        ) from None
    where = f"{source}: {key} variant {v.name!r}"
    problem = get_task(task).check_prompt(v)
    if problem:
        raise ValueError(f"{where}: {problem}")


def load_prompts(path: str | Path | None = None) -> PromptSet:
    """Read a prompt file (default: this project's ``prompts_default.yaml``)."""
    p = Path(path) if path is not None else DEFAULT_PROMPTS
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--prompts: file not found: {p}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{p}: expected a mapping from task names to lists of prompt variants")
    entries: dict[str, list[PromptVariant]] = {}
    for raw_key, raw_list in data.items():
        key = ALIASES.get(str(raw_key).lower(), str(raw_key).lower())
        if not isinstance(raw_list, list) or not raw_list:
            raise ValueError(f"{p}: {raw_key}: expected a non-empty list of variants")
        variants = [_parse_variant(str(p), str(raw_key), i, r) for i, r in enumerate(raw_list)]
        names = [v.name for v in variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{p}: {raw_key}: variant name(s) {dup} used more than once")
        for v in variants:
            _check_fields(str(p), key, v)
        entries[key] = variants
    return PromptSet(entries, str(p))


def format_choices(question: str | None, choices: Sequence[str], labels: Sequence[str]) -> str:
    """``질문: ...`` (when there is a question) and one ``(L) text`` line per choice."""
    if len(choices) != len(labels):
        raise ValueError(f"{len(choices)} choices {list(choices)} but labels {list(labels)}")
    lines = [f"질문: {question.strip()}"] if question and question.strip() else []
    lines += [f"({lab}) {str(c).strip()}" for lab, c in zip(labels, choices, strict=True)]
    return "\n".join(lines)


def shown_labels(task: str, row: Mapping[str, Any], protocol: str = "koala") -> list[str]:
    """The labels a multiple-choice row of ``task`` is shown with (:meth:`Task.shown_labels
    <koala.tasks.base.Task.shown_labels>`): the row's ``choice_labels``; under the ``published``
    protocol SCA-QA shows ``A``, ``B``, ... instead."""
    from koala.scoring.protocol import check_protocol

    check_protocol(protocol)
    labels = get_task(task).shown_labels(row, protocol)
    if labels is None:
        raise ValueError(f"task {task!r} is not multiple choice: it shows no labels")
    return labels


def build_prompt(
    task: str,
    variant: PromptVariant,
    row: Mapping[str, Any],
    condition: str,
    protocol: str = "koala",
) -> str:
    """The text prompt of one row (:meth:`Task.build_prompt
    <koala.tasks.base.Task.build_prompt>`; see the module docstring for multiple choice, the
    example answer and the protocol)."""
    return get_task(task).build_prompt(variant, row, condition, protocol)
