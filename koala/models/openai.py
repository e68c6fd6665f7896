"""``openai``: any OpenAI-compatible chat-completions server with audio input.

vLLM, SGLang and hosted APIs accept the same request: one user message whose content is an
``input_audio`` part (the clip as base64 16-bit 16 kHz WAV) followed by a ``text`` part (the
prompt)::

    {"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "<base64 WAV>", "format": "wav"}},
        {"type": "text", "text": "<prompt>"}]}

A text-only request (audio ``None``) sends the text part alone.

Where requests go: to ``@URL`` of the spec; without it, to ``$OPENAI_BASE_URL`` or else
``https://api.openai.com/v1``, and that fallback is logged at WARNING when the model is built,
before any request. A URL with credentials (``http://user:pass@host``) is refused: the key is
read from the environment variable ``key_env``. Requests go through
:class:`koala.openai_client.OpenAIClient`: a concurrency limit (the runner's
``--concurrency``; this is how many vLLM replicas behind one URL are kept busy), a timeout per
request, retries with exponential backoff on 429, 5xx, time-outs, connection errors and
malformed answers. The API key is read at call time from the environment variable
``key_env`` (default ``OPENAI_API_KEY``) and is never stored, logged or written.

Logit-based choice scoring: for multiple-choice requests the adapter asks for
``logprobs=true`` and ``top_logprobs`` (default 20, the OpenAI maximum; ``top_logprobs=0``
turns it off) and scores every label by one rule (:func:`label_logprobs`): the log-sum-exp of
the log-probabilities of all of the label's token forms (``L``, ``(L)``, `` L``, `` (L)``, and
``l``, ``(l)``, `` l``, `` (l)`` when the label is a letter) found among the top tokens of the
**first generated position**, whatever token was generated there. A label with none of its
forms in the top-k is absent from the mapping (it is not given ``-inf``: its probability is
unknown, only below the k-th token's); the answer's ``meta["labels_found"]`` says how many of
the labels were found, and an answer with none has no log-probabilities.

How this differs from the published logit protocol ("input = audio + prompt + "\\n답: "; the
scores are the next-token log-probabilities of each choice label (first single-token form
among ``L``, ``(L)``, `` (L)``, `` L``), argmax over the labels only"): the server applies its
chat template, so the next token is the first one after the assistant header, not the one
right after ``"답: "``; a chat API returns only the top-k tokens, so a label may have no score;
and each label's probability is the sum over its forms rather than that of its first
single-token form (so that ``A`` scored through `` A`` and ``B`` through ``B`` are compared on
the same footing). ``transformers:`` (:mod:`koala.models.hf`) with ``input=published`` follows
the published protocol exactly.

Connections: ``--concurrency N`` requests are kept in flight over ``ceil(N / pool_size)``
clients of at most ``pool_size`` (8) connections each, a request going to the client with the
fewest in flight. httpcore's connection pool scans every connection for every queued request
at each request and response, so one pool of 32 costs several times the CPU of four pools of 8
(measured with ``benchmarks/bench_runner.py``).

A dead or hung server: one request is given up after ``timeout`` x (``retries`` + 1) attempts
(60 s x 5 = 300 s by default, :func:`koala.openai_client.deadline`) plus the waits between
them (a server's ``Retry-After`` is honoured up to 30 s). After ``breaker`` (8) consecutive
failed requests the runner stops sending to the server: the rest of the run stays pending for
the next run (``breaker=0``: never stop).

Options (``openai:MODEL@URL?KEY=VALUE``): ``key_env``, ``timeout`` (60 s), ``retries`` (4),
``backoff`` (0.5 s), ``max_tokens`` (512), ``temperature`` (0), ``top_logprobs`` (20),
``system`` (a system prompt, none by default), ``pool_size`` (8), ``breaker`` (8 consecutive
failed requests; 0: off), ``max_audio_s`` (the server's input limit in seconds, e.g. 30 for a
server that cuts clips at 30 s; unknown by default).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from koala.constants import label_forms, label_token_forms
from koala.models import Answer, Audio, ModelBase, Request, wav_bytes
from koala.openai_client import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    OpenAIClient,
    check_base_url,
)

__all__ = ["OpenAIChatModel", "label_forms", "label_logprobs", "label_token_forms"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_BREAKER = 8  # consecutive failed requests before the runner stops sending


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def label_logprobs(
    top_logprobs: Sequence[Mapping[str, float]], labels: Sequence[str]
) -> dict[str, float]:
    """Per-label log-probabilities from the top-k tokens of the first generated position.

    Each label's score is the log-sum-exp of the log-probabilities of all of its forms
    (:func:`label_token_forms`) found in ``top_logprobs[0]``, whatever token was generated. A
    label with no form there is left out (not ``-inf``); an empty list gives ``{}``.
    """
    tops = top_logprobs[0] if top_logprobs else {}
    out: dict[str, float] = {}
    for label in labels:
        found = [float(tops[form]) for form in label_token_forms(label) if form in tops]
        if found:
            out[label] = _logsumexp(found)
    return out


class OpenAIChatModel(ModelBase):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    supports_logprobs = True

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        key_env: str = "OPENAI_API_KEY",
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.5,
        max_tokens: int = 512,
        temperature: float = 0.0,
        top_logprobs: int = 20,
        system: str | None = None,
        pool_size: int = 8,
        breaker: int = DEFAULT_BREAKER,
    ) -> None:
        self.model = model
        if base_url:
            url = check_base_url(base_url, f"openai:{model}: the URL")
        else:
            env = os.environ.get("OPENAI_BASE_URL")
            url = check_base_url(env, "$OPENAI_BASE_URL") if env else DEFAULT_BASE_URL
            log.warning(
                "openai:%s: no @URL in the model spec; requests (with the audio and the key of "
                "$%s) go to %s (%s)",
                model,
                key_env,
                url,
                "from $OPENAI_BASE_URL" if env else "the default endpoint",
            )
        self.base_url = url.rstrip("/")
        self.key_env = key_env
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.top_logprobs = int(top_logprobs)
        self.supports_logprobs = self.top_logprobs > 0
        self.system = system
        self.pool_size = max(1, int(pool_size))
        if isinstance(breaker, bool) or not isinstance(breaker, int) or breaker < 0:
            raise ValueError(
                f"openai:{model}: breaker={breaker!r}: give a number of consecutive failed "
                "requests (0: never stop)"
            )
        self.breaker = breaker
        self.name = f"openai:{model}"
        self._clients: list[OpenAIClient] = []
        self._inflight: list[int] = []

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def server(self) -> str:
        """Where requests go (what the runner's circuit breaker names)."""
        return self.base_url

    def _new_client(self, concurrency: int) -> OpenAIClient:
        return OpenAIClient(
            self.base_url,
            self.model,
            api_key_env=self.key_env,
            concurrency=max(1, concurrency),
            timeout=self.timeout,
            max_retries=self.retries,
            backoff=self.backoff,
        )

    def messages(self, audio: Audio | None, prompt: str) -> list[dict[str, Any]]:
        """The chat messages of one request."""
        content: list[dict[str, Any]] = []
        if audio is not None:
            data = base64.b64encode(wav_bytes(audio)).decode("ascii")
            content.append({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
        content.append({"type": "text", "text": prompt})
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.append({"role": "user", "content": content})
        return out

    def params(self, request: Request) -> dict[str, Any]:
        p: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if request.labels and self.top_logprobs > 0:
            p["logprobs"] = True
            p["top_logprobs"] = self.top_logprobs
        return p

    async def aopen(self, concurrency: int = 8) -> None:
        """Open connections for ``concurrency`` requests in flight, split over
        ``ceil(concurrency / pool_size)`` clients (see ``pool_size``)."""
        n = max(1, -(-concurrency // self.pool_size))
        per = -(-concurrency // n)
        self._clients = [self._new_client(per) for _ in range(n)]
        self._inflight = [0] * n
        for c in self._clients:
            await c.__aenter__()

    async def aclose(self) -> None:
        for c in self._clients:
            await c.__aexit__(None, None, None)
        self._clients = []

    async def _ask(self, client: OpenAIClient, request: Request) -> Answer:
        result = await client.achat(
            self.messages(request.audio, request.prompt), **self.params(request)
        )
        meta: dict[str, Any] = {
            "attempts": result.attempts,
            "latency_s": round(result.latency_s, 4),
            "finish_reason": result.finish_reason,
        }
        lp = None
        if request.labels and self.top_logprobs > 0:
            found = label_logprobs(result.top_logprobs, request.labels)
            meta["labels_found"] = len(found)
            lp = found or None
        return Answer(result.text, lp, meta)

    async def aanswer(self, request: Request) -> Answer:
        """One request inside :meth:`aopen`/:meth:`aclose` (the runner's path), on the client
        with the fewest requests in flight."""
        if not self._clients:
            raise RuntimeError("call 'await model.aopen(concurrency)' before aanswer()")
        k = min(range(len(self._clients)), key=self._inflight.__getitem__)
        self._inflight[k] += 1
        try:
            return await self._ask(self._clients[k], request)
        finally:
            self._inflight[k] -= 1

    async def _once(self, request: Request) -> Answer:
        async with self._new_client(1) as client:
            return await self._ask(client, request)

    def answer(self, request: Request) -> Answer:
        """Synchronous single request (opens a short-lived client)."""
        return asyncio.run(self._once(request))

    def generate(self, audio: Audio | None, prompt: str) -> str:
        return self.answer(Request(audio, prompt)).text

    def choice_logprobs(
        self, audio: Audio | None, prompt: str, labels: Sequence[str]
    ) -> dict[str, float]:
        lp = self.answer(Request(audio, prompt, tuple(labels))).logprobs
        return lp or {}
