"""``koala-bench check``: do the model's answers depend on the audio at all?

::

    koala-bench check MODEL_SPEC --data DIR [--config C] [--rows N] [--prompts FILE]
                      [--protocol koala|published]

A wrong processor argument, a chat template without the audio placeholder or a server that
drops the ``input_audio`` part leave a model answering from the prompt alone: every answer is
the same whatever is heard, and a run would score a text-only model without saying so. The
check sends the first ``N`` rows (default 4) of a speech config, each three times with the
same prompt (the row's first prompt variant, built as the run builds it):

* ``own``: the row's own audio;
* ``silence``: silence as long as the row's clip, at its sampling rate;
* ``other``: the next row's audio (the last row gets the first row's).

It passes when at least one row's answers differ between the three (an abstention counts as
an answer; a failed request does not), and fails loudly otherwise (exit status 6, a message
saying that the answers do not depend on the audio, with every answer shown). ``--config``
defaults to the first ASR config of ``--data`` the model does (a transcript depends on the
audio for any working model), else the first config it does. ``koala-bench run --check`` runs
the same check on the run's configs before the run and stops on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from koala.data import DATA_ENV, config_names, decode_audio, load_config, source_tree_error
from koala.manifest import EXIT_CHECK_FAILED, EXIT_NOTHING_ANSWERED
from koala.models import Abstain, Answer, Request, call_answer, silence
from koala.prompts import PROTOCOLS, PromptSet, load_prompts, task_of
from koala.runner import opened
from koala.tasks import get_task

__all__ = [
    "CONDITIONS_SENT",
    "CheckResult",
    "CheckRow",
    "add_arguments",
    "check_audio",
    "check_model",
    "choose_config",
    "run",
]

CONDITIONS_SENT = ("own", "silence", "other")
DEFAULT_ROWS = 4


@dataclass
class CheckRow:
    """One row's answers per condition sent (``None``: the request failed, see ``errors``)."""

    id: str
    answers: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> list[str]:
        return [a for a in self.answers.values() if a is not None]

    @property
    def varies(self) -> bool:
        """The row's answers differ between the audio it was sent with."""
        return len(set(self.answered)) > 1


@dataclass
class CheckResult:
    """What :func:`check_audio` found."""

    config: str
    condition: str
    rows: list[CheckRow]

    @property
    def comparable(self) -> int:
        """Rows with at least two answers (something to compare)."""
        return sum(len(r.answered) >= 2 for r in self.rows)

    @property
    def varied(self) -> int:
        return sum(r.varies for r in self.rows)

    @property
    def passed(self) -> bool:
        return self.varied > 0

    def table(self) -> str:
        lines = []
        for r in self.rows:
            lines.append(f"  row {r.id}:")
            for cond in CONDITIONS_SENT:
                if cond in r.answers:
                    a = r.answers[cond]
                    shown = repr(a[:120]) if a is not None else f"FAILED: {r.errors[cond][:200]}"
                    lines.append(f"    {cond:>7}: {shown}")
        return "\n".join(lines)

    def report(self) -> str:
        where = f"config {self.config}, condition {self.condition}"
        if not self.comparable:
            return (
                f"koala-bench check: FAILED: no row could be compared ({where}): the requests "
                "failed, so whether the answers depend on the audio is unknown.\n" + self.table()
            )
        if not self.passed:
            return (
                f"koala-bench check: FAILED: the answers do not depend on the audio ({where}): "
                f"each of {self.comparable} row(s) got the same answer with its own audio, with "
                "silence and with another row's audio. The audio probably never reaches the "
                "model (a wrong processor argument, a chat template without the audio "
                "placeholder, a server that drops the input_audio part). Answers:\n" + self.table()
            )
        return (
            f"koala-bench check: OK: the answers depend on the audio ({where}): "
            f"{self.varied} of {self.comparable} row(s) answered differently with silence or "
            "another row's audio.\n" + self.table()
        )


def _text(ans: Answer | BaseException) -> str | None:
    if isinstance(ans, Abstain):
        return f"[abstained: {ans.reason}]"
    if isinstance(ans, BaseException):
        return None
    return ans.text.strip()


async def _ask_all(
    model: Any, requests: Sequence[Request], concurrency: int
) -> list[Answer | BaseException]:
    async with opened(model, concurrency):
        if hasattr(model, "aanswer"):
            return list(
                await asyncio.gather(*(model.aanswer(r) for r in requests), return_exceptions=True)
            )
        loop = asyncio.get_running_loop()
        out: list[Answer | BaseException] = []
        for r in requests:
            try:
                out.append(await loop.run_in_executor(None, call_answer, model, r))
            except Exception as exc:
                out.append(exc)
        return out


def check_audio(
    model: Any,
    ds: Any,
    config: str,
    *,
    rows: int = DEFAULT_ROWS,
    prompts: PromptSet | None = None,
    protocol: str = "koala",
    concurrency: int = 4,
) -> CheckResult:
    """Send the first ``rows`` usable rows of ``ds`` (a dataset of ``config``, audio undecoded
    or decoded) with their own audio, silence of the same length and the next row's audio,
    one prompt per row; see the module docstring. ``ValueError`` when fewer than two rows have
    audio and a prompt."""
    spec = get_task(task_of(config))
    condition = next(c for c in spec.conditions if spec.audio_column(c) is not None)
    column = spec.audio_column(condition)
    prompts = prompts or load_prompts()
    picked: list[tuple[str, Request]] = []
    skipped: list[str] = []
    for index in range(len(ds)):
        if len(picked) >= rows:
            break
        row = ds[index]
        rid = str(row.get("id", f"#row{index}"))
        try:
            variant = prompts.variants(config, row.get("subset"))[0]
            prompt = spec.build_prompt(variant, row, condition, protocol)
            shown = spec.shown_labels(row, protocol)
            labels = tuple(shown) if shown is not None else None
            audio = decode_audio(row.get(column), f"config {config} row {rid} field {column!r}")
        except (KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{rid}: {exc}")
            continue
        picked.append((rid, Request(audio, prompt, labels)))
    if len(picked) < 2:
        raise ValueError(
            f"config {config}: the check needs two rows with audio and a prompt; found "
            f"{len(picked)} ({'; '.join(skipped[:3]) or 'no rows'})"
        )
    requests: list[Request] = []
    for k, (_rid, req) in enumerate(picked):
        assert req.audio is not None
        quiet = silence(req.audio.duration, req.audio.sampling_rate)
        other = picked[(k + 1) % len(picked)][1].audio
        requests += [
            req,
            Request(quiet, req.prompt, req.labels),
            Request(other, req.prompt, req.labels),
        ]
    answers = asyncio.run(_ask_all(model, requests, concurrency))
    result = CheckResult(config, condition, [])
    for k, (rid, _req) in enumerate(picked):
        row_check = CheckRow(rid)
        for cond, ans in zip(CONDITIONS_SENT, answers[3 * k : 3 * k + 3], strict=True):
            row_check.answers[cond] = _text(ans)
            if row_check.answers[cond] is None:
                row_check.errors[cond] = f"{type(ans).__name__}: {ans}"
        result.rows.append(row_check)
    return result


def choose_config(model: Any, configs: Sequence[str]) -> str | None:
    """The config to check among ``configs``: the first ASR config the model does, else the
    first config it does (``model.tasks``); ``None`` when it does none of them."""
    tasks = getattr(model, "tasks", None)

    def task(c: str) -> str | None:
        try:
            return task_of(c)
        except ValueError:
            return None

    doable = [c for c in configs if task(c) is not None and (tasks is None or task(c) in tasks)]
    return next((c for c in doable if task(c) == "asr"), doable[0] if doable else None)


def check_model(
    model: Any,
    data: str,
    configs: Sequence[str],
    *,
    rows: int = DEFAULT_ROWS,
    prompts: PromptSet | None = None,
    protocol: str = "koala",
    out: Any = None,
) -> int:
    """Check one of ``configs`` (:func:`choose_config`) of ``data`` and print the report to
    ``out`` (stderr); the exit status: 0 when the answers depend on the audio, 6 when they do
    not, 2 when no row could be compared, 1 when the check cannot run."""
    out = out or sys.stderr
    config = choose_config(model, configs)
    if config is None:
        print(
            f"koala-bench check: {getattr(model, 'name', model)} does none of the tasks of "
            f"{list(configs)}: nothing to check",
            file=out,
        )
        return 1
    try:
        ds = load_config(data, config, limit=max(2, rows) * 2)
        result = check_audio(
            model, ds, config, rows=max(2, rows), prompts=prompts, protocol=protocol
        )
    except ValueError as exc:
        print(f"koala-bench check: {exc}", file=out)
        return 1
    print(result.report(), file=out)
    if not result.comparable:
        return EXIT_NOTHING_ANSWERED
    return 0 if result.passed else EXIT_CHECK_FAILED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``koala-bench check``."""
    parser.add_argument("model", metavar="MODEL_SPEC", help="model spec, as for run --model")
    parser.add_argument(
        "--data",
        default=os.environ.get(DATA_ENV),
        help=f"export directory or Hub id (default: ${DATA_ENV})",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="config to check (default: the first ASR config of --data the model does, else "
        "the first config it does)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"rows to send, 3 requests each (rows; default: {DEFAULT_ROWS}, at least 2)",
    )
    parser.add_argument(
        "--prompts", default=None, help="prompt file, YAML (default: the built-in prompts)"
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="koala",
        help="how requests are shown (default: koala), as for run --protocol",
    )


def run(args: argparse.Namespace) -> int:
    """``koala-bench check``."""
    from koala.models import load_model

    if not args.data:
        print(f"koala-bench check: give --data DIR_OR_HUB_ID (or set ${DATA_ENV})", file=sys.stderr)
        return 1
    if args.rows < 2:
        print("koala-bench check: --rows must be >= 2", file=sys.stderr)
        return 1
    refused = source_tree_error(args.data)
    if refused is not None:
        print(f"koala-bench check: {refused}", file=sys.stderr)
        return 1
    try:
        model = load_model(args.model)
        prompts = load_prompts(args.prompts)
        configs = [args.config] if args.config else config_names(args.data)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"koala-bench check: {exc}", file=sys.stderr)
        return 1
    return check_model(
        model, args.data, configs, rows=args.rows, prompts=prompts, protocol=args.protocol
    )
