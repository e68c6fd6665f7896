"""A small client for OpenAI-compatible chat-completions servers (vLLM, SGLang, hosted APIs).

Used by the ``openai`` model adapter and by the LLM judge. What it adds over a bare POST:

* a concurrency limit (an ``asyncio.Semaphore``), so many requests can be in flight against a
  cluster of replicas behind one URL;
* a per-request timeout, and retries with exponential backoff and jitter on 429, 5xx,
  time-outs and connection errors (``Retry-After`` is honoured when the server sends it, up
  to ``max_backoff``, :data:`MAX_BACKOFF` = 30 s by default); other 4xx are not retried. With
  the defaults a request is given up after :func:`deadline` = 60 s x 5 attempts = 300 s of
  waiting for answers, plus the waits between attempts (each at most 30 s);
* an API key read from an environment variable at call time, sent only in the
  ``Authorization`` header and never stored on the object, logged or written anywhere; every
  exception message the client raises has the key's value and any ``Authorization`` header
  value redacted (a server error body may echo them, and the runner stores and prints
  exception messages);
* a base URL that must name its host and carry no credentials (``http://user:pass@host``, or
  any ``@`` before the host, is refused, and no error message repeats what came before the
  ``@``: the key goes in the environment variable, never in the URL); its scheme and host are
  compared without case and a default port is dropped (``HTTP://Host:80/v1`` is
  ``http://host/v1``);
* redirects are never followed: a 3xx answer is an error naming its target (following one
  would send the audio, the prompt and the key to a server the user never named);
* a parsed result: the text, the top log-probabilities of the first generated tokens when the
  server returns them, and how many attempts it took.

Malformed responses (invalid JSON, no ``choices``) raise :class:`ChatError` after the retries.
An answer without text (``content: null``, as a reasoning model out of tokens, a refusal or a
tool call give, or an empty text cut by ``finish_reason`` ``length`` / ``content_filter``)
raises :class:`EmptyAnswer` at once: the server answered, and would answer the same again. An
HTTP error keeps what the server said (:attr:`ChatError.detail`, :attr:`ChatError.param`, read
from OpenAI's ``{"error": {"message", "param", ...}}``, vLLM's flat ``{"message", "param"}`` or
Google's ``[{"error": {...}}]``), so a caller can tell which parameter was refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported when a client opens: `koala-bench --help` reads the constants only
    import aiohttp

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_BACKOFF",
    "ChatError",
    "ChatResult",
    "EmptyAnswer",
    "OpenAIClient",
    "body_parts",
    "check_base_url",
    "deadline",
    "encode_body",
    "mask_credentials",
    "redact",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0  # seconds per attempt
DEFAULT_RETRIES = 4  # retries after the first attempt
MAX_BACKOFF = 30.0  # seconds: the longest wait between attempts, and the Retry-After cap
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
REDACTED = "[REDACTED]"
# an Authorization header as text, JSON or a Python repr: its value up to the end of the quote
_AUTH = re.compile(
    r"(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',}]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer\s+)[^\s\"',}]+", re.IGNORECASE)


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """``text`` with every value of ``secrets`` and every ``Authorization``/``Bearer`` value
    replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _AUTH.sub(lambda m: m.group(1) + REDACTED, text)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


# everything up to the last '@' of a URL's start: its user information (with or without scheme)
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*:)?//)?[^\s]*@")
_DEFAULT_PORT = {"http": 80, "https": 443}


def mask_credentials(url: str) -> str:
    """``url`` with everything before its last ``@`` (the ``user:pass`` of
    ``http://user:pass@host``, or of ``user:pass@host`` without scheme) shown as ``***``; the
    scheme is kept."""
    return _USERINFO.sub(lambda m: (m.group(1) or "") + "***@", url.strip(), count=1)


def check_base_url(url: str, what: str = "base URL") -> str:
    """``url`` when it is an ``http(s)://host...`` URL without credentials, its scheme and host
    in lower case and a default port dropped (so ``HTTP://Host:80/v1`` and ``http://host/v1``
    are one server); else ``ValueError``, whose message never repeats what came before an
    ``@`` (a password). The one rule for every URL the project sends to: model servers
    (``openai:``) and the LLM judge alike."""
    from urllib.parse import urlsplit, urlunsplit

    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{what}: give the server's http(s) base URL (e.g. http://HOST:PORT/v1)")
    if "@" in url:
        raise ValueError(
            f"{what}: {mask_credentials(url)!r}: credentials in the URL ('user:pass@') are "
            "refused: they would be written to run.json, scores.json and the records; put the "
            "key in an environment variable and name it (a model: '?key_env=VAR'; the judge: "
            "--judge-key-env VAR), it is sent only as the Authorization header"
        )
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{what}: {url!r} is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise ValueError(
            f"{what}: {url!r} is not an http(s) URL naming a host (e.g. http://127.0.0.1:8000/v1)"
        )
    netloc = f"[{host}]" if ":" in host else host  # hostname is lower case, without brackets
    if port is not None and port != _DEFAULT_PORT[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def deadline(timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES) -> float:
    """The seconds one request may spend waiting for answers before it is given up:
    ``timeout`` x ``retries + 1`` attempts (the waits between attempts, each at most
    :data:`MAX_BACKOFF`, come on top)."""
    return float(timeout) * (int(retries) + 1)


class ChatError(RuntimeError):
    """A request that failed for good; ``status`` is the last HTTP status (None if none).

    For an HTTP error, ``detail`` is the message of the server's error body and ``param`` the
    request parameter it names, when it names one (both redacted; ``None`` otherwise)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        attempts: int = 0,
        *,
        detail: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.detail = detail
        self.param = param


class EmptyAnswer(ChatError):
    """A chat completion (HTTP 200) with no text to record: ``content`` is null (a reasoning
    model that spent its tokens thinking, a refusal, a tool call) or empty while
    ``finish_reason`` says it was cut (``length``, ``content_filter``). Not retried within the
    request: the server answered. ``finish_reason`` and ``refusal`` are what it said;
    ``reason`` says it in a few words (``finish_reason=length``, ``refusal``, ``tool_calls``),
    the same for answers without text of the same cause, and ``advice`` what would change it
    (the runner's circuit breaker names both when its last failures share the reason)."""

    def __init__(
        self,
        finish_reason: str | None,
        refusal: str | None,
        what: str,
        reason: str = "no text",
        advice: str = "",
    ) -> None:
        super().__init__(f"the server answered without text: {what}", 200, 1)
        self.finish_reason = finish_reason
        self.refusal = refusal
        self.reason = reason
        self.advice = advice


def _no_text(choice: Mapping[str, Any], message: Mapping[str, Any]) -> EmptyAnswer:
    """The :class:`EmptyAnswer` of a choice without text, saying why."""
    finish = choice.get("finish_reason")
    refusal = message.get("refusal")
    parts = [f"finish_reason {finish!r}"]
    if isinstance(refusal, str) and refusal:
        parts.append(f"refusal: {refusal[:500]!r}")
    else:
        refusal = None
    calls = message.get("tool_calls") or []
    if calls:
        names = [
            str((c.get("function") or c.get("custom") or {}).get("name"))
            for c in calls
            if isinstance(c, dict)
        ]
        parts.append(f"tool_calls: {', '.join(names)} (no tool was offered)")
    reason, advice = f"finish_reason={finish}", "see the failed records' errors"
    if refusal:
        reason, advice = "refusal", "the model refuses these requests (the records quote it)"
    elif calls:
        reason, advice = "tool_calls", "the model calls tools though none was offered"
    if finish == "length":
        if reason == "finish_reason=length":
            advice = (
                "raise max_tokens / max_completion_tokens (?max_tokens=N, or "
                "?max_completion_tokens=N for models that count their reasoning there)"
            )
        parts.append(
            "the token limit ran out before any text (a reasoning model thinks first): raise "
            "?max_tokens=N, or ?max_completion_tokens=N for models that count their reasoning "
            "there"
        )
    elif finish == "content_filter":
        if reason == "finish_reason=content_filter":
            advice = "the server's content filter withholds the text"
        parts.append("the server's content filter withheld the text")
    return EmptyAnswer(
        finish if isinstance(finish, str) else None, refusal, "; ".join(parts), reason, advice
    )


# a logprobs token of vLLM started with --return-tokens-as-token-ids
_TOKEN_ID = re.compile(r"^token_id:\d+$")


@dataclass
class ChatResult:
    """The first choice of a chat completion."""

    text: str
    # One dict per generated token (first tokens first): token string -> log-probability, from
    # the server's ``top_logprobs``. Empty when the server gave none.
    top_logprobs: list[dict[str, float]] = field(default_factory=list)
    finish_reason: str | None = None
    attempts: int = 1
    latency_s: float = 0.0
    # the tokens came as ``token_id:N`` (vLLM's --return-tokens-as-token-ids): their text is
    # not in the answer
    token_ids: bool = False


def _parse(body: Any) -> ChatResult:
    try:
        choice = body["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content")
        if text is None and isinstance(choice.get("text"), str):
            text = choice["text"]  # a server answering in the completions form
        if text is not None and not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        # the body is cut by the caller, after redaction
        raise ChatError(f"malformed chat completion ({exc}): {body}") from None
    if text is None or (not text and choice.get("finish_reason") in ("length", "content_filter")):
        raise _no_text(choice, message)
    tops: list[dict[str, float]] = []
    ids = False
    lp = choice.get("logprobs") or {}
    for tok in (lp.get("content") or []) if isinstance(lp, dict) else []:
        entries = tok.get("top_logprobs") or [tok]
        top = {
            str(e.get("token")): float(e.get("logprob"))
            for e in entries
            if e.get("logprob") is not None
        }
        ids = ids or any(_TOKEN_ID.match(t) for t in top)
        tops.append(top)
    return ChatResult(
        text=text, top_logprobs=tops, finish_reason=choice.get("finish_reason"), token_ids=ids
    )


def _error_detail(payload: bytes) -> tuple[str | None, str | None]:
    """``(message, param)`` of an HTTP error body: OpenAI's ``{"error": {"message", "param",
    ...}}``, vLLM's flat ``{"object": "error", "message", "param"}``, Google's list
    ``[{"error": {"code", "message", "status"}}]``; ``(None, None)`` for anything else."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None, None
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return None, None
    err = body.get("error", body)
    if isinstance(err, str):
        return err, None
    if not isinstance(err, dict):
        return None, None
    message, param = err.get("message"), err.get("param")
    return (
        message if isinstance(message, str) else None,
        param if isinstance(param, str) else None,
    )


def _parse_models(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not all(
        isinstance(e, dict) and isinstance(e.get("id"), str) for e in data
    ):
        # the body is cut by the caller, after redaction
        raise ChatError(f"malformed model list (no 'data' list of objects with an 'id'): {body}")
    return data


def body_parts(body: Mapping[str, Any], raw: Mapping[str, bytes] | None = None) -> list[bytes]:
    """The JSON bytes of a request body (UTF-8, no ASCII escaping, compact separators, no
    NaN) as consecutive parts, each placeholder string of ``raw`` standing as its own part
    (its bytes, between the quotes): a clip's base64 text (megabytes for a PA-QA passage) goes
    out as it is instead of being scanned by the JSON encoder and copied into every request
    that sends it. Each placeholder must occur exactly once and its bytes must be JSON-safe
    string content (base64 is)."""
    import json

    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    parts = [text.encode()]
    for placeholder, value in (raw or {}).items():
        quoted = json.dumps(placeholder).encode()
        hits = [k for k, p in enumerate(parts) if p is not value and quoted in p]
        if len(hits) != 1 or parts[hits[0]].count(quoted) != 1:
            raise ValueError(f"placeholder {placeholder!r} is not in the body exactly once")
        k = hits[0]
        head, _, tail = parts[k].partition(quoted)
        parts[k : k + 1] = [head + b'"', value, b'"' + tail]
    return parts


def encode_body(body: Mapping[str, Any], raw: Mapping[str, bytes] | None = None) -> bytes:
    """:func:`body_parts` joined: the request body's bytes."""
    return b"".join(body_parts(body, raw))


def _payload(parts: list[bytes], timeout: float) -> Any:
    """An aiohttp payload that writes ``parts`` one after the other (``Content-Length`` their
    total), so a clip's base64 is never copied into a joined body. Writing a body that the
    server stops reading fails after ``timeout`` seconds (aiohttp has no write time-out of
    its own; the client's ``sock_read`` time-out starts once the body is sent)."""
    import aiohttp.payload

    class JSONParts(aiohttp.payload.Payload):
        _autoclose = True  # bytes in memory: nothing to close, may be sent again on a retry

        def __init__(self, value: list[bytes]) -> None:
            super().__init__(value, content_type="application/json")
            self._size = sum(len(p) for p in value)

        def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
            return b"".join(self._value).decode(encoding, errors)

        async def write(self, writer: Any) -> None:
            await self.write_with_length(writer, None)

        async def write_with_length(self, writer: Any, content_length: int | None) -> None:
            left = self._size if content_length is None else content_length
            async with asyncio.timeout(timeout):
                for part in self._value:
                    if left <= 0:
                        return
                    await writer.write(part[:left] if left < len(part) else part)
                    left -= len(part)

    return JSONParts(parts)


class OpenAIClient:
    """POST ``{base_url}/chat/completions`` (and GET ``{base_url}/models``) with retries,
    time-outs and a concurrency limit."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_RETRIES,
        backoff: float = 0.5,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.base_url = check_base_url(base_url).rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sem: asyncio.Semaphore | None = None
        self._client: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIClient(base_url={self.base_url!r}, model={self.model!r})"

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _redact(self, text: str) -> str:
        return redact(text, [os.environ.get(self.api_key_env)])

    def _error(self, message: str, status: int | None, attempts: int) -> ChatError:
        return ChatError(self._redact(message), status, attempts)

    async def __aenter__(self) -> OpenAIClient:
        import aiohttp

        # aiohttp: a request costs ~0.5 ms of CPU where httpx's pool, which polls each idle
        # connection on every request, cost ~5 ms at 32 connections (benchmarks/)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        # the time-out bounds connecting and each wait for the server's bytes, as httpx's did
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout, sock_read=self.timeout
        )
        self._client = aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False, raise_for_status=False
        )
        self._sem = asyncio.Semaphore(self.concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None
        self._sem = None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff)
            except ValueError:
                pass
        base = min(self.backoff * (2**attempt), self.max_backoff)
        return base * (0.5 + random.random() / 2)

    async def achat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        raw: Mapping[str, bytes] | None = None,
        **params: Any,
    ) -> ChatResult:
        """One chat completion; ``params`` go into the request body (temperature, max_tokens,
        logprobs, top_logprobs, ...). ``raw`` maps placeholder strings in ``messages`` to the
        ASCII bytes that stand in their place in the body (base64 audio, see
        :func:`encode_body`). Must run inside ``async with client``."""
        body = {"model": self.model, "messages": list(messages), **params}
        result, attempts, latency = await self._send(
            "POST", f"{self.base_url}/chat/completions", body_parts(body, raw), _parse
        )
        result.attempts = attempts
        result.latency_s = latency
        return result

    async def amodels(self) -> list[dict[str, Any]]:
        """The server's model list: ``GET {base_url}/models``, the entries of its ``data``
        (each with an ``id`` and whatever else the server reports: ``owned_by``, ``created``,
        ``root``, ...). Same key, time-out, retries and error redaction as :meth:`achat`; a
        body without a ``data`` list of objects with a string ``id`` raises
        :class:`ChatError` after the retries. Must run inside ``async with client``."""
        entries, _, _ = await self._send("GET", f"{self.base_url}/models", None, _parse_models)
        return entries

    async def _send(
        self, method: str, url: str, body: list[bytes] | None, parse: Callable[[Any], T]
    ) -> tuple[T, int, float]:
        """``parse`` of the JSON answer to one request (``body``: its JSON bytes in parts,
        :func:`body_parts`, made once for every attempt), the attempts it took and the latency
        of the last attempt, with the retries described in the module docstring."""
        if self._client is None or self._sem is None:
            raise RuntimeError("use 'async with OpenAIClient(...) as client' before a request")
        import aiohttp

        status: int | None = None
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            async with self._sem:
                t0 = time.perf_counter()
                try:
                    data = _payload(body, self.timeout) if body is not None else None
                    # never follow a redirect: it would send the audio, the prompt and the
                    # key to a server the user did not name
                    async with self._client.request(
                        method, url, data=data, headers=self._headers(), allow_redirects=False
                    ) as resp:
                        status = resp.status
                        payload = await resp.read()
                        retry_after = resp.headers.get("Retry-After")
                        location = resp.headers.get("Location")
                    if status == 200:
                        try:
                            result = parse(json.loads(payload))
                        except ValueError as exc:  # invalid JSON (or not UTF-8)
                            raise ChatError(f"invalid JSON from server: {exc}", status) from None
                        return result, attempt + 1, time.perf_counter() - t0
                    if 300 <= status < 400:
                        target = mask_credentials(location) if location else "nowhere"
                        raise self._error(
                            f"HTTP {status}: {url} redirects to {target}; redirects are not "
                            "followed (the audio, the prompt and the key would go to a server "
                            "the model spec does not name): put the right URL in the spec",
                            status,
                            attempt + 1,
                        )
                    # redact before cutting, so that no part of a key is left
                    text = payload.decode("utf-8", "replace")
                    last = f"HTTP {status}: {self._redact(text)[:200]}"
                    if status not in RETRY_STATUS:
                        detail, param = _error_detail(payload)
                        err = self._error(last, status, attempt + 1)
                        err.detail = self._redact(detail)[:500] if detail else None
                        err.param = param
                        raise err
                except EmptyAnswer as exc:
                    exc.attempts = attempt + 1
                    exc.args = (self._redact(str(exc)),)
                    raise
                except ChatError as exc:
                    if exc.status is not None and exc.status != 200:
                        raise
                    last = self._redact(str(exc))[:300]  # malformed 200: retry
                except TimeoutError:
                    status, last = None, f"timed out after {self.timeout}s"
                except aiohttp.ClientError as exc:
                    status, last = None, self._redact(f"connection error: {exc}")
            if attempt < self.max_retries:
                delay = self._delay(attempt, retry_after)
                log.debug("retry %d after %.2fs: %s", attempt + 1, delay, last)
                await asyncio.sleep(delay)
        raise self._error(
            f"{url}: failed after {self.max_retries + 1} attempts; last: {last}",
            status,
            self.max_retries + 1,
        )
