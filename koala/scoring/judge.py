"""LLM-as-a-judge for speech instruction following (KoALa-Bench SIF).

The published protocol:

    "SIF: LLM judge (``gpt-4o-mini``, temperature 0), MT-bench "single" rating prompt without a
    reference answer, rating parsed from ``[[x]]`` on 1-10, reported x 10."

MT-bench's *single-answer grading*: a judge model sees one instruction and one answer, writes a
short justification and ends with a rating from 1 to 10 written as ``[[x]]``. Here the
instruction is the text of the spoken instruction (``question_ko`` in the published files) and
the answer is the speech model's text answer. The benchmark figure is

    score = 10 x mean rating over the items whose judgement was received and parsed.

What this module adds, and how it differs:

* The prompt text is this project's own (:data:`PROMPTS`), an equivalent of MT-bench's
  single-answer grading, not a copy: same criteria, same 1-10 scale, same ``[[x]]`` format.
  Each prompt has an id and a content hash, recorded with every score and in the cache key,
  so a changed prompt can never reuse or mix with old judgements.
* Optional reference-guided grading (a separate prompt, ``koala-sif-single-ref-v1``) shows the
  judge the reference answer the published sets carry. The published figures do not use it.
* Parsing is strict: ``[[7]]`` and ``[[7.5]]`` are read; no ``[[x]]``, several different
  ``[[x]]``, or a value outside 1-10 make the judgement *unparsable*. Unparsable and failed
  judgements (HTTP errors, time-outs after the retries) are reported per item with their raw
  text or error and counted, and are excluded from the mean; they are never scored silently.
* Requests go through :class:`koala.openai_client.OpenAIClient` (any OpenAI-compatible
  server; concurrency limit, time-outs, retries with backoff, key from an environment
  variable), with ``temperature=0``.
* A JSONL cache keyed by a hash of judge model + prompt id and hash + instruction + answer
  (+ reference answer) makes re-scoring free. Each judgement is appended, flushed and fsynced as
  soon as it arrives; a truncated last line (a run killed mid-write) is skipped on reading.
  Only received judgements are cached; failed requests are retried on the next run.

Use :func:`judge_scores` from plain scripts (it runs the asyncio loop itself) or
:func:`ajudge` from async code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from koala.openai_client import ChatError, OpenAIClient
from koala.scoring._validate import check_same_length, check_sequence, check_strings

__all__ = [
    "DEFAULT_PROMPT",
    "DEFAULT_REFERENCE_PROMPT",
    "PROMPTS",
    "JudgeCache",
    "JudgePrompt",
    "JudgeRecord",
    "JudgeResult",
    "ajudge",
    "cache_key",
    "judge_scores",
    "parse_rating",
]

log = logging.getLogger(__name__)

RATING_MIN, RATING_MAX = 1.0, 10.0
TEMPERATURE = 0.0
CACHE_FORMAT = 1


@dataclass(frozen=True)
class JudgePrompt:
    """A versioned judge prompt: ``system`` message and a ``template`` for the user message with
    the fields ``{instruction}``, ``{answer}`` and, when ``reference_guided``, ``{reference}``."""

    id: str
    system: str
    template: str
    reference_guided: bool = False

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
            instruction=instruction, answer=answer, reference=reference or ""
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


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


def parse_rating(judgement: str) -> tuple[float | None, str | None]:
    """Read the ``[[x]]`` rating of a judgement: ``(rating, None)`` or ``(None, reason)``.

    ``[[7]]``, ``[[ 7 ]]`` and ``[[7.5]]`` are read; the same value written twice is fine.
    No ``[[x]]``, two different values, or a value outside 1-10 is unparsable.
    """
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


# ----------------------------------------------------------------------------------------------
# cache


def cache_key(
    model: str, prompt: JudgePrompt, instruction: str, answer: str, reference: str | None
) -> str:
    """SHA-256 over judge model, prompt id and hash, instruction, answer and reference."""
    payload = json.dumps(
        {
            "model": model,
            "prompt_id": prompt.id,
            "prompt_hash": prompt.hash,
            "instruction": instruction,
            "answer": answer,
            "reference": reference,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgeCache:
    """Append-only JSONL file of received judgements, one JSON object per line.

    Reading skips lines that are not valid JSON objects with a ``key`` (a truncated last line
    from a killed run; a warning names the file and line). Writing appends one line per
    judgement and flushes and fsyncs it at once; if the file does not end with a newline (a
    truncated last line), a newline is written first so the new record stands on its own line.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0
        self._fh: IO[bytes] | None = None
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        for lineno, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
                if not isinstance(entry, dict) or not all(
                    isinstance(entry.get(f), str) for f in ("key", "judgement")
                ):
                    raise ValueError("not an object with a 'key' and a 'judgement'")
            except ValueError as exc:
                self.skipped_lines += 1
                last = lineno == len(lines)
                log.warning(
                    "%s line %d: skipped %s (%s)",
                    self.path,
                    lineno,
                    "a truncated last line" if last else "an unreadable line",
                    exc,
                )
                continue
            self.entries[entry["key"]] = entry

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` (it must carry ``key``), flush and fsync."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")  # kept open across puts; see close()
            if self._fh.tell() > 0:
                with open(self.path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        self._fh.write(b"\n")
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.entries[entry["key"]] = entry

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# ----------------------------------------------------------------------------------------------
# records and results


@dataclass
class JudgeRecord:
    """The judgement of one item. ``status`` is ``"ok"`` (rating parsed), ``"unparsable"``
    (judgement received, no valid ``[[x]]``: see ``error``) or ``"failed"`` (no judgement)."""

    index: int
    status: str
    rating: float | None
    judgement: str | None
    error: str | None
    judge_model: str
    prompt_id: str
    prompt_hash: str
    key: str
    cached: bool = False
    attempts: int = 0
    latency_s: float = 0.0


@dataclass
class JudgeResult:
    """Summary figures and the per-item records."""

    records: list[JudgeRecord]
    judge_model: str
    prompt_id: str
    prompt_hash: str
    reference_guided: bool
    requests_sent: int = 0
    cache_hits: int = 0
    cache_path: str | None = None

    @property
    def ratings(self) -> list[float]:
        return [r.rating for r in self.records if r.status == "ok" and r.rating is not None]

    @property
    def mean_rating(self) -> float | None:
        ratings = self.ratings
        return math.fsum(ratings) / len(ratings) if ratings else None

    @property
    def score(self) -> float | None:
        """10 x mean rating over parsed judgements (the published 0-100 figure)."""
        mean = self.mean_rating
        return None if mean is None else 10.0 * mean

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    def as_dict(self, return_records: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": self.score,
            "mean_rating": self.mean_rating,
            "num_items": len(self.records),
            "num_scored": self.count("ok"),
            "num_unparsable": self.count("unparsable"),
            "num_failed": self.count("failed"),
            "judge_model": self.judge_model,
            "prompt_id": self.prompt_id,
            "prompt_hash": self.prompt_hash,
            "reference_guided": self.reference_guided,
            "temperature": TEMPERATURE,
            "requests_sent": self.requests_sent,
            "cache_hits": self.cache_hits,
            "cache_path": self.cache_path,
        }
        if return_records:
            out["records"] = [asdict(r) for r in self.records]
        return out


# ----------------------------------------------------------------------------------------------
# judging


def _choose_prompt(prompt: str | JudgePrompt | None, reference_guided: bool) -> JudgePrompt:
    if isinstance(prompt, JudgePrompt):
        chosen = prompt
    else:
        name = prompt or (DEFAULT_REFERENCE_PROMPT if reference_guided else DEFAULT_PROMPT)
        if name not in PROMPTS:
            raise ValueError(f"unknown judge prompt {name!r}; choose one of {sorted(PROMPTS)}")
        chosen = PROMPTS[name]
    if chosen.reference_guided != reference_guided:
        raise ValueError(
            f"prompt {chosen.id!r} is {'' if chosen.reference_guided else 'not '}reference-guided "
            f"but reference_guided={reference_guided}"
        )
    return chosen


def _record_from_judgement(
    index: int,
    key: str,
    judgement: str,
    model: str,
    prompt: JudgePrompt,
    *,
    cached: bool,
    attempts: int = 0,
    latency_s: float = 0.0,
) -> JudgeRecord:
    rating, error = parse_rating(judgement)
    return JudgeRecord(
        index=index,
        status="ok" if error is None else "unparsable",
        rating=rating,
        judgement=judgement,
        error=error,
        judge_model=model,
        prompt_id=prompt.id,
        prompt_hash=prompt.hash,
        key=key,
        cached=cached,
        attempts=attempts,
        latency_s=latency_s,
    )


def _check_inputs(
    instructions: Sequence[str],
    answers: Sequence[str],
    reference_answers: Sequence[str] | None,
) -> None:
    check_sequence(instructions, "instructions")
    check_sequence(answers, "answers")
    check_same_length(("instructions", instructions), ("answers", answers))
    check_strings(instructions, "instructions")
    check_strings(answers, "answers")
    if reference_answers is not None:
        check_sequence(reference_answers, "reference_answers")
        check_same_length(("instructions", instructions), ("reference_answers", reference_answers))
        check_strings(reference_answers, "reference_answers")


async def ajudge(
    instructions: Sequence[str],
    answers: Sequence[str],
    *,
    base_url: str,
    model: str,
    api_key_env: str = "OPENAI_API_KEY",
    reference_answers: Sequence[str] | None = None,
    reference_guided: bool | None = None,
    prompt: str | JudgePrompt | None = None,
    cache_path: str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 4,
    backoff: float = 0.5,
    max_tokens: int = 2048,
    recheck_unparsable: bool = False,
    progress: bool = True,
) -> JudgeResult:
    """Judge each ``answers[i]`` to ``instructions[i]``; see :func:`judge_scores`."""
    _check_inputs(instructions, answers, reference_answers)
    if reference_guided is None:
        reference_guided = reference_answers is not None
    if reference_guided and reference_answers is None:
        raise ValueError("reference_guided=True needs reference_answers (one per instruction)")
    refs: Sequence[str | None] = (
        reference_answers
        if reference_guided and reference_answers is not None
        else [None] * len(instructions)
    )
    chosen = _choose_prompt(prompt, reference_guided)
    if not os.environ.get(api_key_env):
        log.info("judge: environment variable %s is not set; sending no API key", api_key_env)

    keys = [
        cache_key(model, chosen, ins, ans, ref)
        for ins, ans, ref in zip(instructions, answers, refs, strict=True)
    ]
    cache = JudgeCache(cache_path) if cache_path is not None else None
    records: list[JudgeRecord | None] = [None] * len(keys)
    pending: dict[str, list[int]] = {}
    hits = 0
    for i, key in enumerate(keys):
        entry = cache.get(key) if cache is not None else None
        if entry is not None:
            rec = _record_from_judgement(i, key, entry["judgement"], model, chosen, cached=True)
            if rec.status == "ok" or not recheck_unparsable:
                records[i] = rec
                hits += 1
                continue
        pending.setdefault(key, []).append(i)

    from tqdm.auto import tqdm

    sent = 0
    try:
        if pending:
            async with OpenAIClient(
                base_url,
                model,
                api_key_env=api_key_env,
                concurrency=concurrency,
                timeout=timeout,
                max_retries=max_retries,
                backoff=backoff,
            ) as client:

                async def one(key: str, i: int) -> tuple[str, Any]:
                    messages = chosen.messages(instructions[i], answers[i], refs[i])
                    try:
                        return key, await client.achat(
                            messages, temperature=TEMPERATURE, max_tokens=max_tokens
                        )
                    except ChatError as exc:
                        return key, exc

                tasks = [asyncio.ensure_future(one(k, idx[0])) for k, idx in pending.items()]
                sent = len(tasks)
                with tqdm(total=len(tasks), desc="judge", unit="item", disable=not progress) as bar:
                    for fut in asyncio.as_completed(tasks):
                        key, res = await fut
                        for i in pending[key]:
                            if isinstance(res, ChatError):
                                records[i] = JudgeRecord(
                                    index=i,
                                    status="failed",
                                    rating=None,
                                    judgement=None,
                                    error=str(res),
                                    judge_model=model,
                                    prompt_id=chosen.id,
                                    prompt_hash=chosen.hash,
                                    key=key,
                                    attempts=res.attempts,
                                )
                            else:
                                records[i] = _record_from_judgement(
                                    i,
                                    key,
                                    res.text,
                                    model,
                                    chosen,
                                    cached=False,
                                    attempts=res.attempts,
                                    latency_s=res.latency_s,
                                )
                        if cache is not None and not isinstance(res, ChatError):
                            cache.put(
                                {
                                    "key": key,
                                    "format": CACHE_FORMAT,
                                    "judge_model": model,
                                    "prompt_id": chosen.id,
                                    "prompt_hash": chosen.hash,
                                    "judgement": res.text,
                                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                }
                            )
                        bar.update(1)
    finally:
        if cache is not None:
            cache.close()

    done = [r for r in records if r is not None]
    assert len(done) == len(records), "every item gets a record"
    result = JudgeResult(
        records=done,
        judge_model=model,
        prompt_id=chosen.id,
        prompt_hash=chosen.hash,
        reference_guided=reference_guided,
        requests_sent=sent,
        cache_hits=hits,
        cache_path=os.fspath(cache_path) if cache_path is not None else None,
    )
    for status in ("unparsable", "failed"):
        if result.count(status):
            log.warning(
                "judge: %d of %d items %s and excluded from the mean",
                result.count(status),
                len(done),
                status,
            )
    return result


def _run(coro: Any) -> Any:
    """``asyncio.run``, or in a worker thread when called from a running loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def judge_scores(
    instructions: Sequence[str],
    answers: Sequence[str],
    *,
    base_url: str,
    model: str,
    api_key_env: str = "OPENAI_API_KEY",
    reference_answers: Sequence[str] | None = None,
    reference_guided: bool | None = None,
    prompt: str | JudgePrompt | None = None,
    cache_path: str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 4,
    backoff: float = 0.5,
    max_tokens: int = 2048,
    recheck_unparsable: bool = False,
    progress: bool = True,
    return_records: bool = True,
) -> dict[str, Any]:
    """Judge ``answers`` to ``instructions`` with an LLM on an OpenAI-compatible server.

    ``base_url`` (e.g. ``https://api.openai.com/v1`` or a vLLM server's ``/v1``), ``model``
    (the published judge is ``gpt-4o-mini``) and the name of the environment variable holding
    the API key. ``reference_answers`` turns on reference-guided grading unless
    ``reference_guided=False``. ``cache_path``: a JSONL file of received judgements, reused on
    later runs. ``concurrency``, ``timeout`` (seconds per request), ``max_retries`` and
    ``backoff`` go to :class:`~koala.openai_client.OpenAIClient`. ``recheck_unparsable``
    re-asks the judge for cached judgements without a valid rating.

    Returns ``score`` (10 x mean rating, 0-100; ``None`` when nothing was scored),
    ``mean_rating``, ``num_items``, ``num_scored``, ``num_unparsable``, ``num_failed``,
    ``judge_model``, ``prompt_id``, ``prompt_hash``, ``reference_guided``, ``temperature``,
    ``requests_sent``, ``cache_hits``, ``cache_path`` and, unless ``return_records=False``,
    ``records``: one dict per item (``index``, ``status``, ``rating``, ``judgement``,
    ``error``, ``judge_model``, ``prompt_id``, ``prompt_hash``, ``key``, ``cached``,
    ``attempts``, ``latency_s``).
    """
    result = _run(
        ajudge(
            instructions,
            answers,
            base_url=base_url,
            model=model,
            api_key_env=api_key_env,
            reference_answers=reference_answers,
            reference_guided=reference_guided,
            prompt=prompt,
            cache_path=cache_path,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_tokens=max_tokens,
            recheck_unparsable=recheck_unparsable,
            progress=progress,
        )
    )
    return result.as_dict(return_records=return_records)
