"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

``script(request_body, n)`` decides each answer, where ``n`` counts requests from 0. It returns a
:class:`Reply`: a status, a JSON body (or raw bytes for malformed answers), headers and a delay
before answering (to exercise time-outs and latency). Every request body is recorded.

``GET /v1/models`` answers with ``models``: a list of model entries (the ``data`` of the model
list; default: none) or a :class:`Reply`, or a callable ``models(n)`` returning either, where
``n`` counts the model-list requests from 0. Those requests are recorded in ``model_requests``
(their headers), apart from the chat requests, so ``requests`` still counts chat requests only.
To script a second judge on the same server, branch on ``body["model"]`` (:func:`by_model`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def completion(text: str, top_logprobs: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """A chat-completion body with ``text`` and optional per-token top log-probabilities."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
    }
    if top_logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": max(t, key=t.get) if t else "",
                    "logprob": max(t.values()) if t else 0.0,
                    "top_logprobs": [{"token": k, "logprob": v} for k, v in t.items()],
                }
                for t in top_logprobs
            ]
        }
    return {"id": "cmpl-test", "object": "chat.completion", "choices": [choice]}


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
                self._send(outer.script(body, n))

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
