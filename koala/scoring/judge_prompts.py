"""What the SIF judge is asked and how its answer is read: this project's versioned judge
prompts, the published one (MT-bench ``single-v1``, from FastChat or a file), and the rating
parser of each protocol."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from koala.scoring.protocol import check_protocol

__all__ = [
    "DEFAULT_PROMPT",
    "DEFAULT_REFERENCE_PROMPT",
    "PROMPTS",
    "JudgePrompt",
    "JudgePromptUnavailable",
    "load_prompt_file",
    "parse_rating",
    "published_prompt",
]

RATING_MIN, RATING_MAX = 1.0, 10.0
PUBLISHED_PROMPT_NAME = "single-v1"  # MT-bench's single-answer grading prompt, no reference
FASTCHAT_PROMPTS = ("llm_judge", "data", "judge_prompts.jsonl")  # inside the fastchat package


class JudgePromptUnavailable(RuntimeError):
    """The published judge prompt (MT-bench ``single-v1``) cannot be found."""


@dataclass(frozen=True)
class JudgePrompt:
    """A versioned judge prompt: ``system`` message (none when empty) and a ``template`` for the
    user message with the fields ``{instruction}`` (or MT-bench's name for it, ``{question}``),
    ``{answer}`` and, when ``reference_guided``, ``{reference}``. ``source`` says where it
    came from: ``"builtin"``, ``"fastchat"`` or a file path."""

    id: str
    system: str
    template: str
    reference_guided: bool = False
    source: str = "builtin"

    @property
    def hash(self) -> str:
        """First 16 hex digits of the SHA-256 of the prompt's text (system + template)."""
        text = json.dumps([self.system, self.template], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def messages(
        self, instruction: str, answer: str, reference: str | None = None
    ) -> list[dict[str, str]]:
        if self.reference_guided and reference is None:
            raise ValueError(f"prompt {self.id!r} needs a reference answer")
        user = self.template.format(
            instruction=instruction, question=instruction, answer=answer, reference=reference or ""
        )
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": user}]


# The prompts are this project's text. Changing a word changes the hash: give it a new id.
_SYSTEM_V1 = (
    "You grade the work of AI assistants fairly and without bias. Below you will find an "
    "instruction that a user gave the assistant by voice (you see what was said, as text) "
    "and the assistant's reply. Decide how well the reply serves the user: is it useful, on "
    "topic and factually right, does it go into enough depth and detail, and is it inventive "
    "where the request calls for that? Judge the content on its merits, not on how long it "
    "is. Start with a brief justification of a few sentences. Then, on a line of its own, "
    "give one overall grade from 1 (worst) to 10 (best) enclosed in double square brackets, "
    'like this: "Grade: [[4]]".'
)
_SYSTEM_REF_V1 = (
    "You grade the work of AI assistants fairly and without bias. Below you will find an "
    "instruction that a user gave the assistant by voice (you see what was said, as text), a "
    "reference answer written by a person, and the assistant's reply. Use the reference to "
    "check whether the reply is correct and complete; a reply may differ from the reference "
    "in wording and still be excellent. Decide how well the reply serves the user: is it "
    "useful, on topic and factually right, does it go into enough depth and detail, and is it "
    "inventive where the request calls for that? Judge the content on its merits, not on how "
    "long it is. Start with a brief justification of a few sentences. Then, on a line of its "
    "own, give one overall grade from 1 (worst) to 10 (best) enclosed in double square "
    'brackets, like this: "Grade: [[4]]".'
)
_TEMPLATE_V1 = (
    "### Instruction (spoken by the user)\n{instruction}\n\n"
    "### Reply of the assistant\n{answer}\n### End of reply"
)
_TEMPLATE_REF_V1 = (
    "### Instruction (spoken by the user)\n{instruction}\n\n"
    "### Reference answer\n{reference}\n### End of reference answer\n\n"
    "### Reply of the assistant\n{answer}\n### End of reply"
)

PROMPTS: dict[str, JudgePrompt] = {
    p.id: p
    for p in (
        JudgePrompt("koala-sif-single-v1", _SYSTEM_V1, _TEMPLATE_V1),
        JudgePrompt("koala-sif-single-ref-v1", _SYSTEM_REF_V1, _TEMPLATE_REF_V1, True),
    )
}
DEFAULT_PROMPT = "koala-sif-single-v1"
DEFAULT_REFERENCE_PROMPT = "koala-sif-single-ref-v1"

_RATING = re.compile(r"\[\[\s*(-?\d+(?:\.\d+)?)\s*\]\]")


# the published parser's pattern, first match only: no sign, so "[[-3]]" is no match
_RATING_PUBLISHED = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")


# ----------------------------------------------------------------------------------------------
# the published prompt


def _check_template(template: str, where: str) -> None:
    """The template must hold ``{question}`` (or ``{instruction}``) and ``{answer}`` and no
    other ``{field}``."""
    if "{answer}" not in template or not ("{question}" in template or "{instruction}" in template):
        raise ValueError(
            f"{where}: the prompt template needs the fields {{question}} and {{answer}}"
        )
    try:
        template.format(instruction="", question="", answer="", reference="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{where}: the prompt template has a field other than {{question}} and {{answer}} "
            f"({exc!r}); write a literal brace as {{{{ or }}}}"
        ) from None


def _prompt_from_jsonl(path: Path, source: str) -> JudgePrompt:
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{path} line {lineno}: not JSON ({exc})") from None
        if isinstance(entry, dict) and entry.get("name") == PUBLISHED_PROMPT_NAME:
            system, template = entry.get("system_prompt", ""), entry.get("prompt_template")
            if not isinstance(template, str) or not isinstance(system, str):
                raise ValueError(
                    f"{path} line {lineno}: {PUBLISHED_PROMPT_NAME!r} needs the string fields "
                    "'prompt_template' and 'system_prompt'"
                )
            _check_template(template, f"{path} line {lineno}")
            return JudgePrompt(PUBLISHED_PROMPT_NAME, system, template, source=source)
    raise ValueError(f'{path}: no line with "name": {PUBLISHED_PROMPT_NAME!r}')


def load_prompt_file(path: str | os.PathLike[str]) -> JudgePrompt:
    """Read a judge prompt from ``path``, in one of two formats:

    * a file whose name ends in ``.jsonl``: FastChat's ``judge_prompts.jsonl`` format, one
      JSON object per line; the line with ``"name": "single-v1"`` is used, its
      ``"system_prompt"`` as the system message and its ``"prompt_template"`` as the user
      message (fields ``{question}`` and ``{answer}``);
    * any other file: plain UTF-8 text, the whole of it the user message template with the
      fields ``{question}`` and ``{answer}`` (a literal brace is written ``{{`` or ``}}``); no
      system message is sent.

    The prompt's id is ``single-v1`` (JSONL) or the file's name (text), its ``source`` the path.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"judge_prompt_file {os.fspath(path)!r} is not a file")
    source = os.fspath(path)
    if p.name.endswith(".jsonl"):
        return _prompt_from_jsonl(p, source)
    template = p.read_text(encoding="utf-8")
    _check_template(template, source)
    return JudgePrompt(p.name, "", template, source=source)


def _fastchat_prompts() -> Path | None:
    """FastChat's ``llm_judge/data/judge_prompts.jsonl`` when the package is importable."""
    try:
        spec = importlib.util.find_spec("fastchat")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*FASTCHAT_PROMPTS)
        if path.is_file():
            return path
    return None


def published_prompt(judge_prompt_file: str | os.PathLike[str] | None = None) -> JudgePrompt:
    """MT-bench's ``single-v1`` prompt: from ``judge_prompt_file`` when given (see
    :func:`load_prompt_file`), else from an installed FastChat, else
    :class:`JudgePromptUnavailable` saying how to provide it."""
    if judge_prompt_file is not None:
        return load_prompt_file(judge_prompt_file)
    path = _fastchat_prompts()
    if path is not None:
        return _prompt_from_jsonl(path, "fastchat")
    raise JudgePromptUnavailable(
        f"protocol='published' grades with MT-bench's {PUBLISHED_PROMPT_NAME!r} prompt, which "
        "this project does not ship, and it was not found. Provide it in one of these ways: "
        "(1) install FastChat (`pip install fschat`), whose package holds "
        f"fastchat/{'/'.join(FASTCHAT_PROMPTS)}; or (2) pass judge_prompt_file=PATH (CLI: "
        f"--judge-prompt-file): a copy of that judge_prompts.jsonl (a .jsonl file with a line "
        f'"name": "{PUBLISHED_PROMPT_NAME}", "system_prompt", "prompt_template"), or a plain '
        "text file holding the user message with the fields {question} and {answer}."
    )


# ----------------------------------------------------------------------------------------------
# parsing


def parse_rating(judgement: str, protocol: str = "koala") -> tuple[float | None, str | None]:
    """Read the ``[[x]]`` rating of a judgement: ``(rating, None)`` or ``(None, reason)``.

    ``koala``: ``[[7]]``, ``[[ 7 ]]`` and ``[[7.5]]`` are read; the same value written twice is
    fine. No ``[[x]]``, two different values, or a value outside 1-10 is unparsable.

    ``published`` (the authors' parser): "the rating is the **first** ``[[x]]`` in the
    judgement (``\\[\\[\\s*(\\d+(?:\\.\\d+)?)\\s*\\]\\]``, so ``[[-3]]`` is no match). A
    rating outside 1-10 (``[[0]]``, ``[[11]]``), a judgement with no match, and a failed judge
    call give **no rating: the item leaves the mean**". The first match wins even when it is
    out of range (``[[11]] ... [[7]]`` is no rating); ``[[-3]] ... [[7]]`` is 7, the pattern's
    first match.
    """
    if check_protocol(protocol) == "published":
        m = _RATING_PUBLISHED.search(judgement or "")
        if m is None:
            return None, "no [[rating]] in the judgement (published: no rating, not in the mean)"
        value = float(m.group(1))
        if not RATING_MIN <= value <= RATING_MAX:
            return None, (
                f"the first rating, {value:g}, is outside {RATING_MIN:g}-{RATING_MAX:g} "
                "(published: no rating, not in the mean)"
            )
        return value, None
    values = {float(m) for m in _RATING.findall(judgement or "")}
    if not values:
        return None, "no [[rating]] in the judgement"
    if len(values) > 1:
        shown = ", ".join(f"{v:g}" for v in sorted(values))
        return None, f"several different ratings in the judgement: {shown}"
    value = values.pop()
    if not RATING_MIN <= value <= RATING_MAX:
        return None, f"rating {value:g} is outside {RATING_MIN:g}-{RATING_MAX:g}"
    return value, None
