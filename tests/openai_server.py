"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

``script(request_body, n)`` decides each answer, where ``n`` counts requests from 0. It returns a
:class:`Reply`: a status, a JSON body (or raw bytes for malformed answers), headers and a delay
before answering (to exercise time-outs and latency). Every request body is recorded.
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


class ScriptedServer:
    """Start with ``with ScriptedServer(script) as srv:``; ``srv.url`` is the base URL."""

    def __init__(self, script: Callable[[dict[str, Any], int], Reply]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each small response waits ~40 ms

            def log_message(self, *args: object) -> None:
                pass

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
                reply = outer.script(body, n)
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
