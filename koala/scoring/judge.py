r"""LLM-as-a-judge for speech instruction following (KoALa-Bench SIF).

The published protocol (the authors' code, README "Scoring facts"):

    "SIF: LLM judge (``gpt-4o-mini``, temperature 0, 512 max tokens), MT-bench "single-v1"
    rating prompt without a reference answer; the rating is the **first** ``[[x]]`` in the
    judgement (``\[\[\s*(\d+(?:\.\d+)?)\s*\]\]``, so ``[[-3]]`` is no match). A rating
    outside 1-10 (``[[0]]``, ``[[11]]``), a judgement with no match, and a failed judge call
    give **no rating: the item leaves the mean** (it is not 0.0); only when no item at all has
    a rating is the score 0.0. An empty model answer is never sent to the judge and also leaves
    the mean; reported x10."

MT-bench's *single-answer grading*: a judge model sees one instruction and one answer, writes a
short justification and ends with a rating from 1 to 10 written as ``[[x]]``. Here the
instruction is the text of the spoken instruction (``question_ko`` in the published files) and
the answer is the speech model's text answer. The figure is ``score = 10 x mean rating``.

Two protocols (:mod:`koala.scoring.protocol`) decide what goes into the mean:

* **prompt**: ``koala`` uses this project's own (:data:`PROMPTS`, ``prompt_source="builtin"``);
  ``published`` uses MT-bench's ``single-v1``, loaded from FastChat or ``judge_prompt_file``.
* **max_tokens**: 2048 (``koala``), 512 (``published``). Temperature 0 in both.
* **rating**: ``koala`` reads the one ``[[x]]`` in 1-10; none, several different or one out of
  range make the judgement *unparsable*, not in the mean. ``published`` takes the first
  ``[[x]]`` (the authors' pattern); when there is none or it is outside 1-10 the judgement has
  no rating (``no_rating``) and leaves the mean.
* **nothing rated**: ``koala`` gives no figure (``None``); ``published`` gives 0.0, the
  authors' figure when no item has a rating.
* **empty answer** (empty or whitespace only): never sent to the judge in either; ``koala``
  rates it 1, the lowest rating, in the mean; ``published`` leaves it out of the mean. Both
  count it as ``empty``.
* **judge failure** (HTTP error or time-out after the retries): counted as ``judge_failed``,
  not in the mean, in both.

Why the default departs: an empty answer is a model that failed or abstained, and leaving it out
of the mean lets a model raise its score by failing on hard items; taking the first ``[[x]]``
of a judgement that names several records a figure the judge may not have meant, and 0.0 when
nothing was rated is a figure no judge gave.

The published prompt is MT-bench's text, which this project does not ship. It is loaded, in
this order, from ``judge_prompt_file=PATH`` when the caller passes one (see
:func:`load_prompt_file` for the two formats), else from an installed FastChat (package
``fastchat``, file ``llm_judge/data/judge_prompts.jsonl``, the line named ``single-v1``); if
neither is there :class:`JudgePromptUnavailable` says how to provide it. ``prompt_source``
(``"builtin"``, ``"fastchat"`` or the file's path) and the prompt's hash go with every score.

Requests go through :class:`koala.openai_client.OpenAIClient` (any OpenAI-compatible server;
concurrency limit, time-outs, retries with backoff, key from an environment variable).

A JSONL cache keyed by a hash of judge server URL, judge model, prompt id and hash, protocol,
sampling settings (temperature, max_tokens), instruction and answer (+ reference answer) makes
re-scoring free. Only judgements that yield a rating are cached; a failed or unparsable
judgement (``no_rating`` under ``published``) is asked again on the next call. Each judgement
is appended, flushed and fsynced as soon as it arrives; a truncated last line (a run killed
mid-write) is skipped on reading.

Judge drift. Every result carries a ``judge`` block saying who judged and how: the requested
model, the server's own account of it (``GET {base_url}/models`` once per call that sends a
request: the model ids it lists and, for the requested model, ``owned_by``/``created``/``root``
when listed; a failure is recorded, redacted, and is not fatal), the SHA-256 of the prompt texts
sent, the sampling settings sent, the protocol and the request counts. Before any request is
sent one line is logged at WARNING: ``judge: N requests to MODEL at HOST (M cached, K not
needing a call)``. :func:`judge_scores` with ``agreement={"n": N, "model": ...}`` re-judges N
rated items, drawn with a seeded random sample, by a second judge and reports how well the two
agree (:func:`rating_agreement`).

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
import random
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from koala.openai_client import ChatError, OpenAIClient, check_base_url, redact
from koala.scoring._validate import check_same_length, check_sequence, check_strings
from koala.scoring.agreement import rating_agreement
from koala.scoring.bootstrap import mean_interval
from koala.scoring.judge_prompts import (
    DEFAULT_PROMPT,
    DEFAULT_REFERENCE_PROMPT,
    PROMPTS,
    PUBLISHED_PROMPT_NAME,
    RATING_MIN,
    JudgePrompt,
    JudgePromptUnavailable,
    load_prompt_file,
    parse_rating,
    published_prompt,
)
from koala.scoring.protocol import check_protocol

__all__ = [
    "AGREEMENT_KEYS",
    "DEFAULT_BREAKER",
    "DEFAULT_PROMPT",
    "DEFAULT_REFERENCE_PROMPT",
    "MAX_TOKENS",
    "PROMPTS",
    "PUBLISHED_PROMPT_NAME",
    "STATUSES",
    "JudgeBreaker",
    "JudgeCache",
    "JudgePrompt",
    "JudgePromptUnavailable",
    "JudgeRecord",
    "JudgeResult",
    "agreement_spec",
    "ajudge",
    "cache_key",
    "judge_scores",
    "load_prompt_file",
    "parse_rating",
    "published_prompt",
    "rating_agreement",
]

log = logging.getLogger(__name__)

TEMPERATURE = 0.0
CACHE_FORMAT = 2  # 2: the key covers the server URL, protocol and sampling settings
# the judge's output budget per protocol when ``max_tokens`` is not given
MAX_TOKENS: dict[str, int] = {"koala": 2048, "published": 512}
# ok: judged, rating read; empty: empty answer, not judged; no_rating: judged, no [[x]] in
# 1-10 first (published); unparsable: judged, no valid rating (koala); judge_failed: no
# judgement (the request failed, or was not sent: the judge's circuit breaker had tripped)
STATUSES: tuple[str, ...] = ("ok", "empty", "no_rating", "unparsable", "judge_failed")
MEAN_RULE: dict[str, str] = {
    "koala": (
        "10 x mean rating over the judged items with one valid [[x]] in 1-10 and the empty "
        "answers (rated 1 without a judge call); unparsable and judge_failed items are not in "
        "the mean"
    ),
    "published": (
        "10 x mean of the first [[x]] of each judgement when it is in 1-10; a judgement whose "
        "first [[x]] is out of range or missing (no_rating), an empty answer (not sent to the "
        "judge) and a failed judge call are not in the mean; 0.0 when no item has a rating"
    ),
}


# ----------------------------------------------------------------------------------------------
# cache


def cache_key(
    model: str,
    prompt: JudgePrompt,
    instruction: str,
    answer: str,
    reference: str | None,
    *,
    base_url: str,
    protocol: str = "koala",
    temperature: float = TEMPERATURE,
    max_tokens: int | None = None,
) -> str:
    """SHA-256 over judge server URL (trailing ``/`` ignored), judge model, prompt id and hash,
    protocol, temperature, max_tokens (``None``: the protocol's :data:`MAX_TOKENS`),
    instruction, answer and reference."""
    payload = json.dumps(
        {
            "base_url": base_url.rstrip("/"),
            "model": model,
            "prompt_id": prompt.id,
            "prompt_hash": prompt.hash,
            "protocol": protocol,
            "temperature": float(temperature),
            "max_tokens": MAX_TOKENS[protocol] if max_tokens is None else int(max_tokens),
            "instruction": instruction,
            "answer": answer,
            "reference": reference,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgeCache:
    """Append-only JSONL file of rated judgements, one JSON object per line.

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
    """The judgement of one item. ``status`` is one of :data:`STATUSES`: ``"ok"`` (rating
    read), ``"empty"`` (empty answer, not sent to the judge; rating 1 under ``koala``, none
    under ``published``), ``"no_rating"`` (``published``: the judgement's first ``[[x]]`` is
    missing or outside 1-10; no rating), ``"unparsable"`` (``koala``: no valid ``[[x]]``, see
    ``error``) or ``"judge_failed"`` (no judgement). An item is in the mean iff ``rating`` is
    not ``None``."""

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
    protocol: str = "koala"
    prompt_source: str = "builtin"
    base_url: str | None = None
    max_tokens: int | None = None
    prompt: JudgePrompt | None = None
    no_call: int = 0  # items that needed no request: empty answers and repeats of an item
    identity: dict[str, Any] | None = None
    identity_error: str | None = None
    breaker: str | None = None  # why requests were not sent (the breaker had tripped)

    @property
    def ratings(self) -> list[float]:
        """The ratings in the mean (see :class:`JudgeRecord`)."""
        return [r.rating for r in self.records if r.rating is not None]

    @property
    def mean_rating(self) -> float | None:
        ratings = self.ratings
        return math.fsum(ratings) / len(ratings) if ratings else None

    @property
    def score(self) -> float | None:
        """10 x mean rating (the published 0-100 figure). Nothing rated: ``None`` under
        ``koala``; 0.0 under ``published`` ("only when no item at all has a rating is the score
        0.0")."""
        mean = self.mean_rating
        if mean is None:
            return 0.0 if self.protocol == "published" else None
        return 10.0 * mean

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def not_in_mean(self) -> dict[str, int]:
        """Items left out of the mean, per status (only the statuses that occur)."""
        out: dict[str, int] = {}
        for r in self.records:
            if r.rating is None:
                out[r.status] = out.get(r.status, 0) + 1
        return out

    def judge_block(self) -> dict[str, Any]:
        """Who judged and how: ``model`` (as requested), ``url``, ``protocol``, ``identity``
        (the server's ``/models`` answer: ``models``, the ids it lists; ``requested_listed``;
        ``owned_by``, ``created``, ``root`` of the requested model when listed with them;
        ``None`` when not asked or it failed), ``identity_error`` (why it is ``None``),
        ``prompt`` (``id``, ``source``, ``hash``, ``system_sha256``, ``template_sha256``: the
        SHA-256 of the texts sent), ``sampling`` (every setting sent besides model and
        messages), ``requests`` (``sent``, ``cached``, ``no_call``) and ``breaker`` (why
        requests were not sent: :class:`JudgeBreaker` had tripped; ``None`` otherwise). No API
        key: the URL cannot carry credentials (:func:`koala.openai_client.check_base_url`)."""
        prompt = self.prompt
        return {
            "model": self.judge_model,
            "url": self.base_url,
            "protocol": self.protocol,
            "identity": self.identity,
            "identity_error": self.identity_error,
            "prompt": {
                "id": self.prompt_id,
                "source": self.prompt_source,
                "hash": self.prompt_hash,
                "system_sha256": _sha256(prompt.system) if prompt and prompt.system else None,
                "template_sha256": _sha256(prompt.template) if prompt else None,
            },
            "sampling": _sampling(self.max_tokens) if self.max_tokens is not None else None,
            "requests": {
                "sent": self.requests_sent,
                "cached": self.cache_hits,
                "no_call": self.no_call,
            },
            "breaker": self.breaker,
        }

    def as_dict(self, return_records: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": self.score,
            "mean_rating": self.mean_rating,
            "protocol": self.protocol,
            "mean_rule": MEAN_RULE[self.protocol],
            "num_items": len(self.records),
            "num_in_mean": len(self.ratings),
            "num_scored": self.count("ok"),
            "num_empty": self.count("empty"),
            "num_no_rating": self.count("no_rating"),
            "num_unparsable": self.count("unparsable"),
            "num_judge_failed": self.count("judge_failed"),
            "not_in_mean": self.not_in_mean,
            "judge_model": self.judge_model,
            "judge_url": self.base_url,
            "prompt_id": self.prompt_id,
            "prompt_hash": self.prompt_hash,
            "prompt_source": self.prompt_source,
            "reference_guided": self.reference_guided,
            "temperature": TEMPERATURE,
            "max_tokens": self.max_tokens,
            "requests_sent": self.requests_sent,
            "cache_hits": self.cache_hits,
            "cache_path": self.cache_path,
            "judge": self.judge_block(),
        }
        if return_records:
            out["records"] = [asdict(r) for r in self.records]
        return out


# ----------------------------------------------------------------------------------------------
# judging


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sampling(max_tokens: int) -> dict[str, Any]:
    """The settings sent with every judge request besides model and messages (recorded in the
    ``judge`` block as sent)."""
    return {"temperature": TEMPERATURE, "max_tokens": max_tokens}


def _host(base_url: str) -> str:
    """``host[:port]`` of ``base_url``: never user or password."""
    try:
        parts = urlsplit(base_url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "?"
    return f"{parts.hostname or '?'}{port}"


async def _server_identity(
    client: OpenAIClient, model: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The server's account of its models (``GET /models``), or ``(None, error)``."""
    try:
        entries = await client.amodels()
    except ChatError as exc:  # not fatal: the judgements do not depend on it
        return None, str(exc)  # the client's messages are redacted
    listed = next((e for e in entries if e["id"] == model), None)
    identity: dict[str, Any] = {
        "models": sorted({e["id"] for e in entries}),
        "requested_listed": listed is not None,
    }
    for field in ("owned_by", "created", "root"):
        if listed is not None and listed.get(field) is not None:
            identity[field] = listed[field]
    return identity, None


DEFAULT_BREAKER = 8  # consecutive failed judge requests before no more are sent


class JudgeBreaker:
    """Stops sending to a judge after ``limit`` consecutive failed requests (0: never), as the
    runner's breaker stops sending to a model server.

    One breaker may be passed to many calls (``koala-bench score`` passes one to every SIF
    variant and config it judges): once it has tripped, later calls send nothing and their
    answers are ``judge_failed`` ("not sent"). A request that gets a judgement (rated or not)
    resets the count. After a failure no new request is started while others are in flight,
    so a hung judge costs one wave of ``concurrency`` requests (each ``timeout`` x
    ``max_retries + 1`` attempts), not one per item: the requests still waiting when the
    breaker trips are never sent, those in flight are cut short.
    """

    def __init__(self, limit: int = DEFAULT_BREAKER) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"judge breaker must be a whole number >= 0, got {limit!r}")
        self.limit = limit
        self.consecutive = 0
        self.failures = 0
        self.last_error: str | None = None

    @property
    def tripped(self) -> bool:
        return self.limit > 0 and self.consecutive >= self.limit

    def record(self, error: str | None) -> None:
        """Count one request: ``error`` (its message) when it failed, ``None`` when the judge
        answered."""
        if error is None:
            self.consecutive = 0
            return
        self.consecutive += 1
        self.failures += 1
        self.last_error = error[:500]

    def message(self) -> str:
        return (
            f"circuit breaker: {self.consecutive} consecutive judge requests failed; stopped "
            f"sending to the judge. Last error: {self.last_error}"
        )


async def _send_all(
    pending: Mapping[str, Sequence[int]],
    finish: Any,
    messages: Any,
    client: OpenAIClient,
    sampling: Mapping[str, Any],
    breaker: JudgeBreaker,
    bar: Any,
) -> tuple[int, dict[str, Any] | None, str | None]:
    """Send one request per key of ``pending`` (``messages(i)`` of its first item) through
    ``client``, ``finish(key, outcome)`` as each ends, under ``breaker`` (see
    :class:`JudgeBreaker`). The server's identity (``GET /models``) is asked alongside. Returns
    the requests sent, the identity and why there is none."""
    limit = client.concurrency
    state = {"in_flight": 0, "sent": 0}
    wake = asyncio.Condition()

    async with client:
        ident = asyncio.ensure_future(_server_identity(client, client.model))

        async def one(key: str, i: int) -> tuple[str, Any]:
            async with wake:
                # after a failure, wait for the requests in flight before sending another
                while not breaker.tripped and (
                    state["in_flight"] >= limit or (breaker.consecutive and state["in_flight"])
                ):
                    await wake.wait()
                if breaker.tripped:
                    return key, None
                state["in_flight"] += 1
                state["sent"] += 1
            try:
                res: Any = await client.achat(messages(i), **sampling)
            except ChatError as exc:
                res = exc
            finally:
                state["in_flight"] -= 1
            breaker.record(str(res) if isinstance(res, ChatError) else None)
            return key, res

        tasks = [asyncio.ensure_future(one(k, idx[0])) for k, idx in pending.items()]
        try:
            with bar:
                for fut in asyncio.as_completed(tasks):
                    key, res = await fut
                    if res is not None:
                        finish(key, res)
                        bar.update(1)
                    async with wake:
                        wake.notify_all()
                    if breaker.tripped:
                        break
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if breaker.tripped and not ident.done():
            ident.cancel()
            await asyncio.gather(ident, return_exceptions=True)
            return state["sent"], None, f"not asked: {breaker.message()}"
        identity, identity_error = await ident
    return state["sent"], identity, identity_error


def _choose_prompt(
    prompt: str | JudgePrompt | None,
    reference_guided: bool,
    protocol: str = "koala",
    judge_prompt_file: str | os.PathLike[str] | None = None,
) -> JudgePrompt:
    """The prompt of ``protocol``: ``judge_prompt_file`` when given; else ``prompt`` (an id of
    :data:`PROMPTS` or a :class:`JudgePrompt`, ``koala`` only) or the default; ``published``
    loads MT-bench's ``single-v1`` (:func:`published_prompt`)."""
    if judge_prompt_file is not None or protocol == "published":
        if prompt is not None:
            raise ValueError(
                "pass either prompt= or judge_prompt_file=, not both; protocol='published' "
                "takes its prompt from FastChat or judge_prompt_file="
            )
        if reference_guided:
            raise ValueError(
                "reference_guided=True is not available with judge_prompt_file= or "
                "protocol='published' (the published rating prompt shows no reference answer)"
            )
        return published_prompt(judge_prompt_file)
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
    protocol: str,
    *,
    cached: bool,
    attempts: int = 0,
    latency_s: float = 0.0,
) -> JudgeRecord:
    rating, error = parse_rating(judgement, protocol)
    if error is None:
        status = "ok"
    else:  # no rating: the item leaves the mean in both protocols
        status = "no_rating" if protocol == "published" else "unparsable"
    return JudgeRecord(
        index=index,
        status=status,
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
    protocol: str = "koala",
    judge_prompt_file: str | os.PathLike[str] | None = None,
    cache_path: str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 4,
    backoff: float = 0.5,
    max_tokens: int | None = None,
    progress: bool = True,
    breaker: JudgeBreaker | None = None,
) -> JudgeResult:
    """Judge each ``answers[i]`` to ``instructions[i]``; see :func:`judge_scores`."""
    check_base_url(base_url, "judge URL")
    check_protocol(protocol)
    if breaker is None:
        breaker = JudgeBreaker()
    _check_inputs(instructions, answers, reference_answers)
    if reference_guided is None:
        reference_guided = (
            reference_answers is not None and protocol == "koala" and judge_prompt_file is None
        )
    if reference_guided and reference_answers is None:
        raise ValueError("reference_guided=True needs reference_answers (one per instruction)")
    refs: Sequence[str | None] = (
        reference_answers
        if reference_guided and reference_answers is not None
        else [None] * len(instructions)
    )
    chosen = _choose_prompt(prompt, reference_guided, protocol, judge_prompt_file)
    if max_tokens is None:
        max_tokens = MAX_TOKENS[protocol]
    if not os.environ.get(api_key_env):
        log.info("judge: environment variable %s is not set; sending no API key", api_key_env)

    keys = [
        cache_key(
            model,
            chosen,
            ins,
            ans,
            ref,
            base_url=base_url,
            protocol=protocol,
            temperature=TEMPERATURE,
            max_tokens=max_tokens,
        )
        for ins, ans, ref in zip(instructions, answers, refs, strict=True)
    ]
    cache = JudgeCache(cache_path) if cache_path is not None else None
    records: list[JudgeRecord | None] = [None] * len(keys)
    pending: dict[str, list[int]] = {}
    hits = 0
    for i, key in enumerate(keys):
        if not answers[i].strip():  # failed or abstained: never sent to the judge
            records[i] = JudgeRecord(
                index=i,
                status="empty",
                rating=RATING_MIN if protocol == "koala" else None,
                judgement=None,
                error=None,
                judge_model=model,
                prompt_id=chosen.id,
                prompt_hash=chosen.hash,
                key=key,
            )
            continue
        entry = cache.get(key) if cache is not None else None
        if entry is not None:
            rec = _record_from_judgement(
                i, key, entry["judgement"], model, chosen, protocol, cached=True
            )
            if rec.status == "ok":  # only rated judgements are reused
                records[i] = rec
                hits += 1
                continue
        pending.setdefault(key, []).append(i)
    no_call = len(keys) - len(pending) - hits
    log.warning(
        "judge: %d requests to %s at %s (%d cached, %d not needing a call)",
        len(pending),
        model,
        _host(base_url),
        hits,
        no_call,
    )

    from tqdm.auto import tqdm

    def finish(key: str, res: Any) -> None:
        """The records of one distinct request from its outcome (a ``ChatResult``, a
        ``ChatError``, or ``None``: not sent); a rated judgement is cached at once."""
        rated = False
        for i in pending[key]:
            if res is None or isinstance(res, ChatError):
                records[i] = JudgeRecord(
                    index=i,
                    status="judge_failed",
                    rating=None,
                    judgement=None,
                    error=str(res) if res is not None else f"not judged: {breaker.message()}",
                    judge_model=model,
                    prompt_id=chosen.id,
                    prompt_hash=chosen.hash,
                    key=key,
                    attempts=res.attempts if res is not None else 0,
                )
                continue
            rec = _record_from_judgement(
                i,
                key,
                res.text,
                model,
                chosen,
                protocol,
                cached=False,
                attempts=res.attempts,
                latency_s=res.latency_s,
            )
            records[i] = rec
            rated = rec.status == "ok"
        if cache is not None and rated:
            cache.put(
                {
                    "key": key,
                    "format": CACHE_FORMAT,
                    "judge_model": model,
                    "judge_url": base_url,
                    "prompt_id": chosen.id,
                    "prompt_hash": chosen.hash,
                    "protocol": protocol,
                    "temperature": TEMPERATURE,
                    "max_tokens": max_tokens,
                    "judgement": res.text,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )

    sent = 0
    identity: dict[str, Any] | None = None
    identity_error: str | None = "not asked: no judge request was sent"
    try:
        if pending and breaker.tripped:  # an earlier call found the judge dead: send nothing
            identity_error = f"not asked: {breaker.message()}"
        elif pending:
            sent, identity, identity_error = await _send_all(
                pending,
                finish,
                lambda i: chosen.messages(instructions[i], answers[i], refs[i]),
                OpenAIClient(
                    base_url,
                    model,
                    api_key_env=api_key_env,
                    concurrency=concurrency,
                    timeout=timeout,
                    max_retries=max_retries,
                    backoff=backoff,
                ),
                _sampling(max_tokens),
                breaker,
                tqdm(total=len(pending), desc="judge", unit="item", disable=not progress),
            )
        for key, idx in pending.items():
            if records[idx[0]] is None:  # not sent, or cut short: the breaker tripped
                finish(key, None)
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
        protocol=protocol,
        prompt_source=chosen.source,
        base_url=base_url,
        max_tokens=max_tokens,
        prompt=chosen,
        no_call=no_call,
        identity=identity,
        identity_error=identity_error,
        breaker=breaker.message() if breaker.tripped else None,
    )
    for status, count in result.not_in_mean.items():
        log.warning(
            "judge: %d of %d items %s and not in the mean (protocol %s)",
            count,
            len(done),
            status,
            protocol,
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


AGREEMENT_KEYS = frozenset({"n", "model", "base_url", "api_key_env", "seed"})


def agreement_spec(
    agreement: Mapping[str, Any] | None,
    base_url: str,
    model: str,
    api_key_env: str = "OPENAI_API_KEY",
    seed: int = 0,
) -> dict[str, Any] | None:
    """The second judge of :func:`judge_scores`'s ``agreement`` with its defaults filled in
    (``n``, ``model``, ``base_url``, ``api_key_env``, ``seed``), or ``None`` when none is asked
    (``n`` = 0). ``ValueError`` for an unknown key, a bad ``n``, no ``model``, or a second
    judge that is the first (same model at the same URL: it would answer from the cache)."""
    if not agreement:
        return None
    unknown = sorted(set(agreement) - AGREEMENT_KEYS)
    if unknown:
        raise ValueError(f"agreement: unknown keys {unknown}; use {sorted(AGREEMENT_KEYS)}")
    n = agreement.get("n", 0)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"agreement: n must be a whole number >= 0, got {n!r}")
    if n == 0:
        return None
    second = agreement.get("model")
    if not second:
        raise ValueError("agreement: name the second judge's model ('model')")
    url = agreement.get("base_url") or base_url
    if (url.rstrip("/"), second) == (base_url.rstrip("/"), model):
        raise ValueError(
            f"agreement: the second judge is the first ({model} at {_host(base_url)}): it would "
            "answer from the same cache; name another model or server"
        )
    return {
        "n": n,
        "model": second,
        "base_url": url,
        "api_key_env": agreement.get("api_key_env") or api_key_env,
        "seed": seed if agreement.get("seed") is None else int(agreement["seed"]),
    }


def _agreement(
    result: JudgeResult,
    spec: Mapping[str, Any],
    instructions: Sequence[str],
    answers: Sequence[str],
    reference_answers: Sequence[str] | None,
    common: Mapping[str, Any],
) -> dict[str, Any]:
    """Re-judge a seeded sample of the rated items with the judge of ``spec``; see
    :func:`judge_scores`."""
    eligible = [r.index for r in result.records if r.status == "ok"]
    chosen = random.Random(spec["seed"]).sample(eligible, len(eligible))[: spec["n"]]
    out: dict[str, Any] = {
        "seed": spec["seed"],
        "n_requested": spec["n"],
        "eligible": len(eligible),
        "n_sampled": len(chosen),
    }
    if not chosen:
        return out | {"judge": None, "not_compared": {}, "pairs": [], **rating_agreement([], [])}
    try:
        second = _run(
            ajudge(
                [instructions[i] for i in chosen],
                [answers[i] for i in chosen],
                base_url=spec["base_url"],
                model=spec["model"],
                api_key_env=spec["api_key_env"],
                reference_answers=(
                    None if reference_answers is None else [reference_answers[i] for i in chosen]
                ),
                **common,
            )
        )
    except Exception as exc:  # an add-on: the first judge's figures stand whatever happens here
        error = redact(f"{type(exc).__name__}: {exc}", [os.environ.get(spec["api_key_env"])])
        return out | {"error": error}
    pairs = [
        {"index": i, "rating": result.records[i].rating, "agreement_rating": rec.rating}
        for i, rec in zip(chosen, second.records, strict=True)
        if rec.status == "ok"
    ]
    not_compared: dict[str, int] = {}
    for rec in second.records:
        if rec.status != "ok":
            not_compared[rec.status] = not_compared.get(rec.status, 0) + 1
    stats = rating_agreement([p["rating"] for p in pairs], [p["agreement_rating"] for p in pairs])
    return out | {
        "judge": second.judge_block(),
        "not_compared": not_compared,
        "pairs": pairs,
        **stats,
    }


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
    protocol: str = "koala",
    judge_prompt_file: str | os.PathLike[str] | None = None,
    cache_path: str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 4,
    backoff: float = 0.5,
    max_tokens: int | None = None,
    progress: bool = True,
    return_records: bool = True,
    confidence: float | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
    agreement: Mapping[str, Any] | None = None,
    breaker: JudgeBreaker | None = None,
) -> dict[str, Any]:
    """Judge ``answers`` to ``instructions`` with an LLM on an OpenAI-compatible server.

    ``base_url`` (e.g. ``https://api.openai.com/v1`` or a vLLM server's ``/v1``), ``model``
    (the published judge is ``gpt-4o-mini``) and the name of the environment variable holding
    the API key. ``protocol``: ``"koala"`` (default) or ``"published"`` (the authors' rules
    exactly; see the module docstring for what differs). ``judge_prompt_file``: the prompt
    to use instead of the protocol's (:func:`load_prompt_file`); ``published`` needs it unless
    FastChat is installed. ``reference_answers`` turns on reference-guided grading
    (``koala`` only) unless ``reference_guided=False``. ``cache_path``: a JSONL file of rated
    judgements, reused on later runs. ``max_tokens`` defaults to the protocol's
    (:data:`MAX_TOKENS`: 2048 / 512). ``concurrency``, ``timeout`` (seconds per request),
    ``max_retries`` and ``backoff`` go to :class:`~koala.openai_client.OpenAIClient`.
    ``breaker``: a :class:`JudgeBreaker` (default: a new one, :data:`DEFAULT_BREAKER`
    consecutive failures); pass one breaker to several calls so that a judge found dead in one
    is not asked again in the next. ``base_url`` must carry no credentials
    (:func:`koala.openai_client.check_base_url`).

    Returns ``score`` (10 x mean rating, 0-100; when nothing is in the mean ``None`` under
    ``koala`` and 0.0 under ``published``),
    ``mean_rating``, ``protocol``, ``mean_rule`` (what the mean is over, in words),
    ``num_items``, ``num_in_mean``, ``num_scored`` (judged, rating read), ``num_empty``,
    ``num_no_rating``, ``num_unparsable``, ``num_judge_failed``, ``not_in_mean`` (status ->
    count of the items left out of the mean), ``judge_model``, ``judge_url``, ``prompt_id``,
    ``prompt_hash``, ``prompt_source`` (``"builtin"``, ``"fastchat"`` or the file path),
    ``reference_guided``, ``temperature``, ``max_tokens``, ``requests_sent``, ``cache_hits``,
    ``cache_path``, ``judge`` (who judged and how: :meth:`JudgeResult.judge_block`) and,
    unless ``return_records=False``, ``records``: one dict per item (``index``, ``status``,
    ``rating``, ``judgement``, ``error``, ``judge_model``, ``prompt_id``, ``prompt_hash``,
    ``key``, ``cached``, ``attempts``, ``latency_s``).

    ``confidence`` (e.g. 0.95) adds ``score_ci``: a seeded percentile bootstrap interval of
    ``score`` (``n_resamples``, ``seed``), 10 x the mean rating over the items in the mean of
    each resample, items without a rating left out as in the figure
    (:func:`koala.scoring.bootstrap.mean_interval`). It is computed from the ratings already
    obtained: no extra judge call. ``clusters`` (one key per item) resamples clusters instead.

    ``agreement`` re-judges items with a second judge: ``{"n": N, "model": ...}`` and
    optionally ``"base_url"`` and ``"api_key_env"`` (default: the first judge's) and
    ``"seed"`` (default: ``seed``). The items are the first N of a seeded random permutation
    (``random.Random(seed).sample``) of the items the first judge rated (status ``ok``); the
    second judge sees the same prompt, protocol and settings and has its own cache keys (the
    key holds the model and server). ``judge["agreement"]`` then holds ``judge`` (the second
    judge's block), ``seed``, ``n_requested``, ``eligible``, ``n_sampled``, ``not_compared``
    (second-judge statuses other than ``ok`` -> count), ``pairs`` (``index``, ``rating``,
    ``agreement_rating``) and the figures of :func:`rating_agreement` over the items both
    rated; or ``error`` when the second judge could not be run (the first judge's figures
    stand). ``n`` = 0 or no ``agreement``: none.
    """
    if clusters is not None and len(clusters) != len(answers):
        raise ValueError(f"clusters has {len(clusters)} keys for {len(answers)} answers")
    check_base_url(base_url, "judge URL")
    spec = agreement_spec(agreement, base_url, model, api_key_env, seed)
    common: dict[str, Any] = {
        "reference_guided": reference_guided,
        "prompt": prompt,
        "protocol": protocol,
        "judge_prompt_file": judge_prompt_file,
        "cache_path": cache_path,
        "concurrency": concurrency,
        "timeout": timeout,
        "max_retries": max_retries,
        "backoff": backoff,
        "max_tokens": max_tokens,
        "progress": progress,
    }
    result = _run(
        ajudge(
            instructions,
            answers,
            base_url=base_url,
            model=model,
            api_key_env=api_key_env,
            reference_answers=reference_answers,
            breaker=breaker,
            **common,
        )
    )
    out = result.as_dict(return_records=return_records)
    if spec is not None:
        out["judge"]["agreement"] = _agreement(
            result, spec, instructions, answers, reference_answers, common
        )
    if confidence is not None:
        scores = [None if r.rating is None else 10.0 * r.rating for r in result.records]
        out["score_ci"] = mean_interval(scores, clusters, n_resamples, confidence, seed).as_dict()
    return out
