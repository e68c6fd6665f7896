"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

``script(request_body, n)`` decides each answer, where ``n`` counts requests from 0. It returns a
:class:`Reply`: a status, a JSON body (or raw bytes for malformed answers), headers and a delay
before answering (to exercise time-outs and latency). Every request body is recorded.

``GET /v1/models`` answers with ``models``: a list of model entries (the ``data`` of the model
list; default: none) or a :class:`Reply`, or a callable ``models(n)`` returning either, where
``n`` counts the model-list requests from 0. Those requests are recorded in ``model_requests``
(their headers), apart from the chat requests, so ``requests`` still counts chat requests only.
To script a second judge on the same server, branch on ``body["model"]`` (:func:`by_model`).

Answers are built from the OpenAI SDK's own response models: :func:`chat_completion` validates
its body as an ``openai.types.chat.ChatCompletion`` (``content=None`` with a ``finish_reason``,
a ``refusal``, ``tool_calls``, per-token ``logprobs``), and :func:`completion` goes through it.
:func:`sdk_request` validates a request body against the SDK's
``CompletionCreateParamsNonStreaming`` (unknown keys included), :func:`error_body` is OpenAI's
error shape. The path of every chat request is recorded in ``paths``; an exception the script
raises (a failed assertion) is kept in ``errors`` and answered with a 500.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# imported here, not in a handler: the first import takes ~1 s, past the time-outs tests set
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import TypeAdapter


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def chat_completion(
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    logprobs: list[dict[str, Any]] | None = None,
    model: str = "m",
) -> dict[str, Any]:
    """A chat-completion body made and checked by the SDK's ``ChatCompletion`` model (so a
    field the real API does not have, or a wrong type, fails here), dumped as JSON with every
    field (``refusal: null`` ... as the API sends them). ``logprobs`` is the list of
    per-token entries (``token``, ``logprob``, ``bytes``, ``top_logprobs``)."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason, "message": message}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    obj = ChatCompletion(
        id="chatcmpl-test",
        object="chat.completion",
        created=1_700_000_000,
        model=model,
        choices=[choice],
    )
    return obj.model_dump(mode="json")


def token_logprobs(top_logprobs: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Per-token log-probability entries, one per generated token: the token is the most
    likely one of its top list."""
    return [
        {
            "token": max(t, key=t.get) if t else "",
            "logprob": max(t.values()) if t else 0.0,
            "bytes": list((max(t, key=t.get) if t else "").encode()),
            "top_logprobs": [
                {"token": k, "logprob": v, "bytes": list(k.encode())} for k, v in t.items()
            ],
        }
        for t in top_logprobs
    ]


def completion(text: str, top_logprobs: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """A chat-completion body with ``text`` and optional per-token top log-probabilities
    (:func:`chat_completion`)."""
    lp = token_logprobs(top_logprobs) if top_logprobs is not None else None
    return chat_completion(text, logprobs=lp)


def error_body(
    message: str, param: str | None = None, type: str = "invalid_request_error", code: Any = None
) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _materialize(value: Any) -> Any:
    # pydantic validates the SDK's Iterable[...] fields lazily: walk them to validate them
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    if value is None or isinstance(value, str | bytes | int | float | bool):
        return value
    return [_materialize(v) for v in value]


# one adapter, built once: two handler threads could each build one, and the one not cached was
# freed while its lazy iterators were walked (pydantic-core panics: a BaseException)
_VALIDATING = threading.Lock()


@functools.cache
def _request_adapter() -> Any:
    # kept alive: the lazy iterators it returns use it (a freed adapter panics in pydantic-core)
    return TypeAdapter(CompletionCreateParamsNonStreaming)


def sdk_request(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` validated against the OpenAI SDK's ``CompletionCreateParamsNonStreaming``
    (pydantic ``TypeAdapter`` over the TypedDict); raises on a wrong type or value, and on a
    key the SDK does not know (TypedDicts drop unknown keys, so the validated body differs)."""
    with _VALIDATING:
        adapter = _request_adapter()
    checked = _materialize(adapter.validate_python(body))
    if checked != body:
        raise ValueError(
            f"keys the OpenAI SDK does not know, or changed values: {body} -> {checked}"
        )
    return checked


def model_entry(model_id: str, **extra: Any) -> dict[str, Any]:
    """One entry of an OpenAI model list (``owned_by``, ``created``, ``root`` ... in ``extra``)."""
    return {"id": model_id, "object": "model", **extra}


def by_model(
    scripts: dict[str, Callable[[dict[str, Any], int], Reply]],
) -> Callable[[dict[str, Any], int], Reply]:
    """A script that answers each chat request with the script of the model it names (a judge
    and a second judge on one server); ``n`` is passed on as counted over all requests."""

    def script(body: dict[str, Any], n: int) -> Reply:
        chosen = scripts.get(body.get("model"))
        if chosen is None:
            return Reply(status=404, body={"error": f"no model {body.get('model')!r}"})
        return chosen(body, n)

    return script


Models = list[dict[str, Any]] | Reply


class ScriptedServer:
    """Start with ``with ScriptedServer(script) as srv:``; ``srv.url`` is the base URL."""

    def __init__(
        self,
        script: Callable[[dict[str, Any], int], Reply],
        models: Models | Callable[[int], Models] | None = None,
    ) -> None:
        self.script = script
        self.models = models
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []  # the path of each chat request
        self.errors: list[Exception] = []  # exceptions the script raised (answered 500)
        self.model_requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each small response waits ~40 ms

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/v1/models":
                    self._send(Reply(status=404, body={"error": f"no route {self.path}"}))
                    return
                with outer._lock:
                    n = len(outer.model_requests)
                    outer.model_requests.append(dict(self.headers))
                models = outer.models(n) if callable(outer.models) else outer.models
                if not isinstance(models, Reply):
                    models = Reply(body={"object": "list", "data": list(models or [])})
                self._send(models)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with outer._lock:
                    n = len(outer.requests)
                    outer.requests.append(body)
                    outer.headers.append(dict(self.headers))
                    outer.paths.append(self.path)
                try:
                    reply = outer.script(body, n)
                except Exception as exc:  # a failed assertion in a script: kept, and said
                    with outer._lock:
                        outer.errors.append(exc)
                    reply = Reply(status=500, body={"error": f"script: {exc!r}"})
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                payload = (
                    reply.body
                    if isinstance(reply.body, bytes)
                    else json.dumps(reply.body if reply.body is not None else {}).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (time-out test)

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # 32+ clients connect at once in the benchmarks

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=lambda: self._server.serve_forever(poll_interval=0.05), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
