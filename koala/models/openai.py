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

Servers that will not give log-probabilities: the run degrades, it does not stop (see
:meth:`OpenAIChatModel._ask`). A 400 (or 422) naming ``logprobs`` (OpenAI's audio models,
Gemini models without them) makes the adapter ask again without them, and not ask for them
again in the run; ``token_id:N`` tokens (vLLM's ``--return-tokens-as-token-ids``) make it ask
for text tokens (``return_tokens_as_token_ids: false``), and give up logprobs when the server
keeps sending ids. A multiple-choice answer without log-probabilities says why in
``meta["logprobs_off"]`` (:data:`LOGPROBS_REFUSED`, :data:`LOGPROBS_TOKEN_IDS`,
:data:`LOGPROBS_NOT_RETURNED`) and ``meta["logprobs_detail"]`` (in words); a warning says it
once per run. A limit the server names ("max allowed: 5") lowers ``top_logprobs`` instead
(``meta["top_logprobs"]``). A 400 refusing ``max_tokens`` for ``max_completion_tokens``
(OpenAI's reasoning models) sends the same limit under that name. A 400 naming
``temperature`` (OpenAI's reasoning models take only their default) makes the adapter ask
without it for the rest of the run, each record saying ``meta["temperature_off"] =
"refused"``; ``?temperature=none`` never sends it (an option, so part of the fingerprint).

An answer without text (``content: null``: a reasoning model out of tokens, a refusal, a tool
call) raises :class:`koala.openai_client.EmptyAnswer`, naming its ``finish_reason`` and the
refusal: the record is failed, asked again on the next run.

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
fewest in flight (the split mattered with httpx, whose pool polled every connection on every
request; the aiohttp client costs the same per request with one pool of 32 or four of 8).
A request's body is made once: the clip's base64, computed once per clip and shared by its
prompt variants, is spliced into the JSON bytes as it is
(:func:`koala.openai_client.encode_body`); a clip stored as 16 kHz 16-bit mono WAV is sent as
stored, never decoded (:meth:`koala.models.Audio.wav`).

A dead or hung server: one request is given up after ``timeout`` x (``retries`` + 1) attempts
(60 s x 5 = 300 s by default, :func:`koala.openai_client.deadline`) plus the waits between
them (a server's ``Retry-After`` is honoured up to 30 s). After ``breaker`` (8) consecutive
failed requests the runner stops sending to the server: the rest of the run stays pending for
the next run (``breaker=0``: never stop).

A fleet of servers: ``openai:MODEL@URL1,URL2,...`` spreads the requests over several
OpenAI-compatible servers serving the same model (vLLM replicas). Each server gets its own
connections for ``per_server`` requests in flight (default: the run's ``--concurrency`` / N,
rounded up, at least 1) and each request goes to the healthy server with the fewest requests in
flight (ties taken in turn). A server whose request fails after its retries with a connection
error, a time-out, a 5xx or a 429 is *taken out* for ``cooloff`` seconds (30) and the request is
sent to another healthy server it has not tried, so a request is recorded failed only when every
server failed it (a redirect, a 401 / 403 / 404 / 405 and a 200 that is no chat completion count
as the server's failure too, :func:`_server_fault`); when every server is out, a request goes
to the one back soonest (so a dead fleet fails as one dead server does, and the runner's circuit
breaker applies unchanged). Other errors (a 400, 413, 422: the request itself is refused; an
answer without text) are not retried elsewhere. Every answer's
``meta["server"]`` names the server that gave it (``host:port``), and :meth:`server_counts`
gives per-server counts for the run summary. Where a request is answered is transport: the URLs
are not part of the request fingerprint (:func:`koala.runner.model_identity`).

Options (``openai:MODEL@URL?KEY=VALUE``): ``key_env``, ``timeout`` (60 s), ``retries`` (4),
``backoff`` (0.5 s), ``max_tokens`` (512), or ``max_completion_tokens`` (the same limit under
the name OpenAI's reasoning models take; give one of the two), ``temperature`` (0; ``none``:
not sent, the server's default),
``top_logprobs`` (20),
``system`` (a system prompt, none by default), ``pool_size`` (8), ``breaker`` (8 consecutive
failed requests; 0: off), ``max_audio_s`` (the server's input limit in seconds, e.g. 30 for a
server that cuts clips at 30 s; unknown by default), ``per_server`` (requests in flight per
server of a fleet), ``cooloff`` (seconds a failing server of a fleet is left out, 30).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from koala.constants import label_forms, label_token_forms
from koala.models import Answer, Audio, ModelBase, Request, as_audio
from koala.openai_client import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    ChatError,
    ChatResult,
    EmptyAnswer,
    OpenAIClient,
    check_base_url,
    mask_credentials,
)

__all__ = [
    "LOGPROBS_NOT_RETURNED",
    "LOGPROBS_REFUSED",
    "LOGPROBS_TOKEN_IDS",
    "OpenAIChatModel",
    "label_forms",
    "label_logprobs",
    "label_token_forms",
    "split_urls",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_BREAKER = 8  # consecutive failed requests before the runner stops sending
DEFAULT_COOLOFF = 30.0  # seconds a failing server of a fleet is left out
DEFAULT_MAX_TOKENS = 512

# Why a multiple-choice answer has no log-probabilities: its record's meta["logprobs_off"]
# (meta["logprobs_detail"] says it in words)
LOGPROBS_REFUSED = "refused"  # the server refused the logprobs parameter (a 400 naming it)
LOGPROBS_TOKEN_IDS = "token_ids"  # tokens came as token_id:N, their text unknown (vLLM)
LOGPROBS_NOT_RETURNED = "not_returned"  # asked, accepted, and none came back
# meta["temperature_off"] of an answer asked without temperature because the server refused it
TEMPERATURE_REFUSED = "refused"

_LOGPROB_PARAMS = ("logprobs", "top_logprobs")
# the most top_logprobs a server takes: "max allowed: 5" (vLLM --max-logprobs), "<= 5", "at most 5"
_TOP_LIMIT = re.compile(r"(?:max(?:imum)? allowed:?|<=|at most|less than or equal to)\s*(\d+)")
TOKEN_IDS_DETAIL = (
    "the server sends its tokens as 'token_id:N' (vLLM started with "
    "--return-tokens-as-token-ids) and not their text, so no choice label can be found among "
    "them; restart it without --return-tokens-as-token-ids for logit scores"
)


# stands for a clip's base64 in a request's messages until the client splices it into the body
# (random per process: no prompt can contain it)
AUDIO_PLACEHOLDER = f"koala-audio-{secrets.token_hex(12)}"


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


def split_urls(urls: str, what: str) -> list[str]:
    """The URLs of ``URL1,URL2,...``, each checked and normalised (:func:`check_base_url`:
    scheme and host in lower case, no default port), without a trailing ``/``; an empty entry
    or a server listed twice (``HTTP://h`` and ``http://h/`` included) is refused."""
    parts = [u.strip() for u in urls.split(",")]
    if not all(parts):
        raise ValueError(f"{what}: an empty URL in the list {mask_credentials(urls)!r}")
    out = [check_base_url(u, what).rstrip("/") for u in parts]
    if len(set(out)) != len(out):
        twice = sorted({u for u in out if out.count(u) > 1})
        raise ValueError(f"{what}: a URL is listed twice in {urls!r}: {', '.join(twice)}")
    return out


def _server_fault(exc: ChatError) -> bool:
    """A failure of the server rather than of the request: no HTTP answer (connection error,
    time-out), a 5xx, a 429 after every retry, a redirect (3xx, never followed), 401 / 403 /
    404 / 405 (another key, model or route there), or a 200 that is no chat completion
    (invalid JSON, no ``choices``). An answer without text (:class:`EmptyAnswer`) is the
    model's, not the server's: another replica would give the same."""
    if isinstance(exc, EmptyAnswer):
        return False
    s = exc.status
    return s is None or s >= 500 or s in (200, 401, 403, 404, 405, 429) or 300 <= s < 400


def _names(exc: ChatError, *params: str) -> bool:
    """Whether an HTTP 400/422 is about one of ``params``: the error's ``param`` is one of them,
    or, when it names none, its message mentions one (case-insensitive)."""
    if exc.status not in (400, 422):
        return False
    if exc.param:
        return exc.param in params
    said = (exc.detail or str(exc)).lower()
    return any(p.lower() in said for p in params)


def _without(params: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}


def _temperature(value: float | str | None, model: str) -> float | None:
    """The ``temperature`` option: a number from 0 to 2, or ``none`` (``None``): never sent,
    the server's default applies."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(value, bool) or not 0 <= t <= 2:
        raise ValueError(
            f"openai:{model}: temperature={value!r}: give a number from 0 to 2, or 'none' to "
            "never send it (the server's default applies)"
        )
    return t


@dataclass
class _Server:
    """One server of the fleet: its connections and what it did in this run."""

    url: str
    label: str  # host:port, what records and the summary name
    clients: list[OpenAIClient] = field(default_factory=list)
    inflight: list[int] = field(default_factory=list)
    down_until: float = 0.0  # time.monotonic() before which it is left out
    answered: int = 0
    failed: int = 0  # requests that failed on it (after its retries)
    taken_out: int = 0

    @property
    def busy(self) -> int:
        return sum(self.inflight)


def _labels(urls: Sequence[str]) -> list[str]:
    """``host:port`` of each URL; the URL without its scheme where two share a host:port."""
    hosts = [urlsplit(u).netloc for u in urls]
    return [
        h if hosts.count(h) == 1 else u.split("://", 1)[1] for h, u in zip(hosts, urls, strict=True)
    ]


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
        max_tokens: int | None = None,
        temperature: float | str | None = 0.0,
        top_logprobs: int = 20,
        system: str | None = None,
        pool_size: int = 8,
        breaker: int = DEFAULT_BREAKER,
        per_server: int | None = None,
        cooloff: float = DEFAULT_COOLOFF,
        max_completion_tokens: int | None = None,
    ) -> None:
        self.model = model
        if base_url:
            urls = split_urls(base_url, f"openai:{model}: the URL")
        else:
            env = os.environ.get("OPENAI_BASE_URL")
            urls = split_urls(env, "$OPENAI_BASE_URL") if env else [DEFAULT_BASE_URL]
            log.warning(
                "openai:%s: no @URL in the model spec; requests (with the audio and the key of "
                "$%s) go to %s (%s)",
                model,
                key_env,
                ", ".join(urls),
                "from $OPENAI_BASE_URL" if env else "the default endpoint",
            )
        self.base_urls = urls
        self.base_url = urls[0]  # the first server (the only one outside a fleet)
        if per_server is not None and (
            isinstance(per_server, bool) or not isinstance(per_server, int) or per_server < 1
        ):
            raise ValueError(
                f"openai:{model}: per_server={per_server!r}: give a number of requests >= 1"
            )
        self.per_server = per_server
        if isinstance(cooloff, bool) or not isinstance(cooloff, int | float) or cooloff < 0:
            raise ValueError(f"openai:{model}: cooloff={cooloff!r}: give seconds >= 0")
        self.cooloff = float(cooloff)
        self.key_env = key_env
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        if max_tokens is not None and max_completion_tokens is not None:
            raise ValueError(
                f"openai:{model}: give one of max_tokens= and max_completion_tokens= (the same "
                "limit, under the name the server takes: OpenAI's reasoning models take only "
                "max_completion_tokens)"
            )
        limit = max_completion_tokens if max_completion_tokens is not None else max_tokens
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"openai:{model}: a token limit of {limit!r}: give a number >= 1")
        self.max_tokens = DEFAULT_MAX_TOKENS if limit is None else limit
        # the name the limit is sent under (switched when a server refuses max_tokens)
        self._limit_as = (
            "max_completion_tokens" if max_completion_tokens is not None else "max_tokens"
        )
        self._limit_as_asked = self._limit_as
        self.temperature = _temperature(temperature, model)
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
        self._servers: list[_Server] = []
        self._open = False
        self._turn = 0
        self._reset()

    def _reset(self) -> None:
        """Forget what this run learnt of the server (see :meth:`_ask`)."""
        self._limit_as = self._limit_as_asked
        self._top = self.top_logprobs  # lowered when a server takes fewer
        self._token_text = False  # send return_tokens_as_token_ids=false (vLLM)
        self._logprobs_off: tuple[str, str] | None = None  # (LOGPROBS_*, why) once given up
        self._temperature_refused = False  # the server refused temperature: not sent

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r}, base_url={','.join(self.base_urls)!r})"

    @property
    def server(self) -> str:
        """Where requests go (what the runner's circuit breaker names): the URL, or the
        comma-separated URLs of a fleet."""
        return ",".join(self.base_urls)

    def _new_client(self, concurrency: int, url: str | None = None) -> OpenAIClient:
        return OpenAIClient(
            url or self.base_url,
            self.model,
            api_key_env=self.key_env,
            concurrency=max(1, concurrency),
            timeout=self.timeout,
            max_retries=self.retries,
            backoff=self.backoff,
        )

    def messages(self, audio: Audio | None, prompt: str) -> list[dict[str, Any]]:
        """The chat messages of one request."""
        return self._messages(audio, prompt, None)

    def _messages(
        self, audio: Audio | None, prompt: str, raw: dict[str, bytes] | None
    ) -> list[dict[str, Any]]:
        """:meth:`messages`; with ``raw``, the audio's base64 is left out as a placeholder
        that ``raw`` maps to it (the client splices it into the body's bytes as they are:
        :func:`koala.openai_client.encode_body`)."""
        content: list[dict[str, Any]] = []
        if audio is not None:
            b64 = as_audio(audio).wav_base64()  # once per clip, shared by its requests
            if raw is None:
                data = b64.decode("ascii")
            else:
                data = AUDIO_PLACEHOLDER
                raw[data] = b64
            content.append({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
        content.append({"type": "text", "text": prompt})
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.append({"role": "user", "content": content})
        return out

    def params(self, request: Request) -> dict[str, Any]:
        """The request's parameters besides the messages, as far as this run knows what the
        server takes (see :meth:`_ask`)."""
        p: dict[str, Any] = {self._limit_as: self.max_tokens}
        if self.temperature is not None and not self._temperature_refused:
            p["temperature"] = self.temperature
        if request.labels and self.top_logprobs > 0 and self._logprobs_off is None:
            p["logprobs"] = True
            p["top_logprobs"] = self._top
            if self._token_text:
                p["return_tokens_as_token_ids"] = False
        return p

    def _fleet(self, concurrency: int) -> list[_Server]:
        """One :class:`_Server` per URL, each with connections for ``per_server`` requests in
        flight (default ``ceil(concurrency / N)``), split over ``ceil(per_server /
        pool_size)`` clients (see ``pool_size``)."""
        urls = self.base_urls
        per = self.per_server or max(1, -(-concurrency // len(urls)))
        n = max(1, -(-per // self.pool_size))
        each = -(-per // n)
        return [
            _Server(url, label, [self._new_client(each, url) for _ in range(n)], [0] * n)
            for url, label in zip(urls, _labels(urls), strict=True)
        ]

    async def aopen(self, concurrency: int = 8) -> None:
        """Open connections for ``concurrency`` requests in flight (per server of a fleet:
        ``per_server``, or ``concurrency`` / N rounded up); the per-server counts start at 0."""
        self._servers = self._fleet(concurrency)
        self._reset()
        for srv in self._servers:
            for c in srv.clients:
                await c.__aenter__()
        self._open = True

    async def aclose(self) -> None:
        """Close every connection; :meth:`server_counts` keeps this run's counts."""
        self._open = False
        for srv in self._servers:
            for c in srv.clients:
                await c.__aexit__(None, None, None)

    def server_counts(self) -> dict[str, dict[str, int]]:
        """Per server (``host:port``) of the last :meth:`aopen`: requests ``answered``,
        requests that ``failed`` on it after its retries (most answered by another server),
        and how many times it was ``taken_out``."""
        return {
            s.label: {"answered": s.answered, "failed": s.failed, "taken_out": s.taken_out}
            for s in self._servers
        }

    async def _ask(self, client: OpenAIClient, request: Request) -> Answer:
        """One request on ``client``, fitted to what the server takes.

        A server's 400 (or 422) naming a parameter the adapter can do without is answered by
        asking again without it, and the run remembers it from then on (no 400 per request:
        at most one per request in flight when the first came back; a warning once):

        * ``logprobs`` / ``top_logprobs`` refused (hosted audio models): asked without them;
          the answers of multiple-choice requests have no log-probabilities and their records
          say why (``meta["logprobs_off"] = "refused"``, ``meta["logprobs_detail"]``); a limit
          the server names ("max allowed: 5") lowers ``top_logprobs`` instead;
        * ``max_tokens`` refused in favour of ``max_completion_tokens`` (OpenAI's reasoning
          models): the same limit under that name;
        * ``temperature`` refused (OpenAI's reasoning models take only their default): asked
          without it, the server's default applies, and every record says so
          (``meta["temperature_off"] = "refused"``).

        Tokens that come as ``token_id:N`` (vLLM's ``--return-tokens-as-token-ids``) carry no
        text to find a label in: the request is asked again with vLLM's per-request
        ``return_tokens_as_token_ids: false``; a server that still sends ids (or refuses it)
        gets no more logprobs for the run (``meta["logprobs_off"] = "token_ids"``, said once).
        """
        raw: dict[str, bytes] = {}
        messages = self._messages(request.audio, request.prompt, raw)
        want = bool(request.labels) and self.top_logprobs > 0
        params = self.params(request)
        while True:
            try:
                result = await client.achat(messages, raw=raw, **params)
            except ChatError as exc:
                fitted = self._fit(exc, params)  # each fit drops or lowers a parameter
                if fitted is None:
                    raise
                params = fitted
                continue
            if result.token_ids and "logprobs" in params:
                if "return_tokens_as_token_ids" not in params:
                    self._ask_token_text()
                    params = {**params, "return_tokens_as_token_ids": False}
                    continue
                self._give_up_logprobs(LOGPROBS_TOKEN_IDS, TOKEN_IDS_DETAIL)
            break
        return Answer(result.text, *self._scores(request, want, params, result))

    def _scores(
        self, request: Request, want: bool, params: Mapping[str, Any], result: ChatResult
    ) -> tuple[dict[str, float] | None, dict[str, Any]]:
        """The label log-probabilities of an answer and its meta (why there are none)."""
        meta: dict[str, Any] = {
            "attempts": result.attempts,
            "latency_s": round(result.latency_s, 4),
            "finish_reason": result.finish_reason,
        }
        if self.temperature is not None and "temperature" not in params:
            meta["temperature_off"] = TEMPERATURE_REFUSED
        if not want:
            return None, meta
        off: tuple[str, str] | None = None
        if "logprobs" not in params:
            off = self._logprobs_off or (LOGPROBS_REFUSED, "not asked")
        elif result.token_ids:
            off = (LOGPROBS_TOKEN_IDS, TOKEN_IDS_DETAIL)
        elif not result.top_logprobs:
            off = (LOGPROBS_NOT_RETURNED, "asked for logprobs; the answer had none")
        if off is not None:
            meta["logprobs_off"], meta["logprobs_detail"] = off
            return None, meta
        assert request.labels is not None
        found = label_logprobs(result.top_logprobs, request.labels)
        meta["labels_found"] = len(found)
        if params["top_logprobs"] != self.top_logprobs:
            meta["top_logprobs"] = params["top_logprobs"]  # the server's limit
        return found or None, meta

    def _fit(self, exc: ChatError, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The parameters to ask again with after ``exc`` (the run remembers the change);
        ``None`` when ``exc`` is not about a parameter the adapter can do without."""
        said = exc.detail or str(exc)
        if "return_tokens_as_token_ids" in params and exc.status in (400, 422):
            why = f"{TOKEN_IDS_DETAIL} (asking for text tokens was refused: {said[:200]})"
            self._give_up_logprobs(LOGPROBS_TOKEN_IDS, why)
            return _without(params, *_LOGPROB_PARAMS, "return_tokens_as_token_ids")
        if "logprobs" in params and _names(exc, *_LOGPROB_PARAMS):
            m = _TOP_LIMIT.search(said.lower())
            top = int(m.group(1)) if m else 0
            if 0 < top < params["top_logprobs"]:
                self._lower_top(top, said)
                return {**params, "top_logprobs": top}
            self._give_up_logprobs(
                LOGPROBS_REFUSED, f"the server refused 'logprobs' (HTTP {exc.status}: {said[:300]})"
            )
            return _without(params, *_LOGPROB_PARAMS, "return_tokens_as_token_ids")
        low = said.lower()
        if (
            "max_tokens" in params
            and _names(exc, "max_tokens")
            and "max_completion_tokens" in low
            and ("support" in low or "unrecognized" in low)
        ):
            self._limit_as_completion_tokens()
            return {**_without(params, "max_tokens"), "max_completion_tokens": self.max_tokens}
        if "temperature" in params and _names(exc, "temperature"):
            self._refuse_temperature(exc.status, said)
            return _without(params, "temperature")
        return None

    def _give_up_logprobs(self, code: str, why: str) -> None:
        if self._logprobs_off is not None:
            return
        self._logprobs_off = (code, why)
        log.warning(
            "openai:%s: %s; multiple-choice requests are asked without logprobs for the rest of "
            "the run: generation scores only, each record says why (meta.logprobs_off=%r)",
            self.model,
            why,
            code,
        )

    def _refuse_temperature(self, status: int | None, said: str) -> None:
        if not self._temperature_refused:
            self._temperature_refused = True
            log.warning(
                "openai:%s: the server refused temperature=%g (HTTP %s: %s); asked without it "
                "for the rest of the run: the model samples at its own default temperature, "
                "each record says so (meta.temperature_off=%r); ?temperature=none never sends it",
                self.model,
                self.temperature,
                status,
                said[:200],
                TEMPERATURE_REFUSED,
            )

    def _lower_top(self, top: int, said: str) -> None:
        if top < self._top:
            self._top = top
            log.warning(
                "openai:%s: the server takes at most top_logprobs=%d (%s); asked with %d from "
                "now on (records say meta.top_logprobs)",
                self.model,
                top,
                said[:200],
                top,
            )

    def _ask_token_text(self) -> None:
        if not self._token_text:
            self._token_text = True
            log.info(
                "openai:%s: the server sends token_id:N tokens (vLLM's "
                "--return-tokens-as-token-ids); asking for text tokens "
                "(return_tokens_as_token_ids=false) from now on",
                self.model,
            )

    def _limit_as_completion_tokens(self) -> None:
        if self._limit_as != "max_completion_tokens":
            self._limit_as = "max_completion_tokens"
            log.warning(
                "openai:%s: the server refuses max_tokens; the limit (%d) is sent as "
                "max_completion_tokens from now on",
                self.model,
                self.max_tokens,
            )

    def _pick(self, servers: list[_Server], tried: set[int]) -> int | None:
        """The healthy untried server with the fewest requests in flight (ties in turn); when
        none was tried yet and every server is out, the one back soonest; else ``None``."""
        now = time.monotonic()
        order = [(k + self._turn) % len(servers) for k in range(len(servers))]
        self._turn += 1
        healthy = [k for k in order if k not in tried and servers[k].down_until <= now]
        if healthy:
            return min(healthy, key=lambda k: servers[k].busy)
        if not tried:
            return min(order, key=lambda k: servers[k].down_until)
        return None

    async def _route(self, servers: list[_Server], request: Request) -> Answer:
        """One request over the fleet ``servers`` (see the module docstring)."""
        tried: set[int] = set()
        last: ChatError | None = None
        while True:
            k = self._pick(servers, tried)
            if k is None:  # every server failed this request or is out
                assert last is not None
                raise last
            tried.add(k)
            srv = servers[k]
            c = min(range(len(srv.clients)), key=srv.inflight.__getitem__)
            srv.inflight[c] += 1
            try:
                answer = await self._ask(srv.clients[c], request)
            except ChatError as exc:
                srv.failed += 1
                if not _server_fault(exc):
                    raise
                last = exc
                if len(servers) > 1:
                    srv.down_until = time.monotonic() + self.cooloff
                    srv.taken_out += 1
                    log.warning(
                        "openai:%s: server %s taken out for %gs: %s",
                        self.model,
                        srv.label,
                        self.cooloff,
                        str(exc)[:200],
                    )
                continue
            finally:
                srv.inflight[c] -= 1
            srv.answered += 1
            answer.meta["server"] = srv.label
            return answer

    async def aanswer(self, request: Request) -> Answer:
        """One request inside :meth:`aopen`/:meth:`aclose` (the runner's path): on the
        least-busy healthy server, then its client with the fewest requests in flight."""
        if not self._open:
            raise RuntimeError("call 'await model.aopen(concurrency)' before aanswer()")
        return await self._route(self._servers, request)

    async def _once(self, request: Request) -> Answer:
        servers = self._fleet(1)
        for srv in servers:
            for c in srv.clients:
                await c.__aenter__()
        try:
            return await self._route(servers, request)
        finally:
            for srv in servers:
                for c in srv.clients:
                    await c.__aexit__(None, None, None)

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
