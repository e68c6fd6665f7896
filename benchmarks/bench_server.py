"""A minimal OpenAI-compatible chat-completions server for benchmarks, in its own process.

A real model server runs on another machine; here it shares the benchmark machine's cores with
the runner, so it must cost as little as possible: raw HTTP/1.1 with keep-alive on asyncio
streams, each request body read by its ``Content-Length`` (or chunked) and counted but never
JSON-parsed, and one fixed answer (content ``"(A)"``, ``logprobs`` null) sent after
``latency`` seconds. ``GET .../models`` lists the model ``bench``; ``GET /stats`` returns the
counts (requests, bytes received, chat requests). The listen backlog is 512 and every
connection has TCP_NODELAY, as a real server's.

    with served(0.2) as url:          # url = "http://127.0.0.1:PORT/v1"
        ...  # koala-bench run --model openai:bench@URL ...
        print(fetch_stats(url))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

BACKLOG = 512
MODEL = "bench"

_COMPLETION = json.dumps(
    {
        "id": "cmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "(A)"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()
_MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()


def _response(body: bytes, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


class _Server:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.stats = {"requests": 0, "chat_requests": 0, "bytes_received": 0, "connections": 0}
        self.chat = _response(_COMPLETION)
        self.models = _response(_MODELS)

    async def _body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> int:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            n = 0
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";")[0], 16)
                await reader.readexactly(size + 2)
                n += len(line) + size + 2
                if size == 0:
                    return n
        length = int(headers.get("content-length", "0"))
        if length:
            await reader.readexactly(length)
        return length

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stats["connections"] += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path = [*lines[0].split(" "), "", ""][:2]
                headers = {}
                for line in lines[1:]:
                    key, sep, value = line.partition(":")
                    if sep:
                        headers[key.strip().lower()] = value.strip()
                received = len(head) + await self._body(reader, headers)
                self.stats["requests"] += 1
                self.stats["bytes_received"] += received
                if method == "POST" and path.endswith("/chat/completions"):
                    self.stats["chat_requests"] += 1
                    if self.latency > 0:
                        await asyncio.sleep(self.latency)
                    writer.write(self.chat)
                elif method == "GET" and path.endswith("/models"):
                    writer.write(self.models)
                elif method == "GET" and path.endswith("/stats"):
                    writer.write(_response(json.dumps(self.stats).encode()))
                else:
                    writer.write(_response(b'{"error": "not found"}', "404 Not Found"))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def _main(latency: float, conn: Any) -> None:
    server = _Server(latency)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=BACKLOG)
    conn.send(srv.sockets[0].getsockname()[1])
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # the parent's stop message
    srv.close()
    conn.send(dict(server.stats))


def _child(latency: float, conn: Any) -> None:
    asyncio.run(_main(latency, conn))


@contextlib.contextmanager
def served(latency: float = 0.0, stats: dict[str, int] | None = None) -> Iterator[str]:
    """Run the server in a spawned process for the ``with`` block; yields its base URL
    (``http://127.0.0.1:PORT/v1``). On exit the final counts (``requests``, ``chat_requests``,
    ``bytes_received``, ``connections``) are put into ``stats`` when it is given."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(latency, child), daemon=True)
    proc.start()
    try:
        deadline = time.monotonic() + 60
        while not parent.poll(0.05):
            if not proc.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the bench server did not start (see its traceback above)")
        port = parent.recv()
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        try:
            parent.send("stop")
            if parent.poll(10):
                final = parent.recv()
                if stats is not None:
                    stats.update(final)
        except (OSError, EOFError):
            pass
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


def fetch_stats(url: str) -> dict[str, int]:
    """The counts of the server at ``url`` so far (``GET /stats``)."""
    with urllib.request.urlopen(url.rstrip("/") + "/stats", timeout=10) as r:
        return json.loads(r.read())


if __name__ == "__main__":
    with served(0.0) as u:
        print(u)
        with urllib.request.urlopen(u + "/models", timeout=5) as r:
            print(r.read().decode())
        req = urllib.request.Request(u + "/chat/completions", data=b'{"x": 1}', method="POST")
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=5) as r:
            print(r.read().decode(), f"{(time.perf_counter() - t) * 1000:.1f} ms")
        print(fetch_stats(u))
