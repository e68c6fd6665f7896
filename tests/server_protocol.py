"""Request bodies as a server's own ``ChatCompletionRequest`` parses them (vLLM, SGLang).

Imported by tests/test_openai_protocols.py, and run as a script in a subprocess whose
``PYTHONPATH`` holds vLLM's protocol module (``scripts/vllm_protocol.sh`` installs it apart,
into ``.venv-protocols/vllm``, so that nothing it brings shadows the test process's packages)::

    python tests/server_protocol.py vllm BODIES.json OUT.json

reads a JSON list of request bodies, validates each with the server's model and writes
``{"version": ..., "module": ..., "requests": [...]}``: for each body what the server holds
after parsing it (:func:`parsed`), or ``{"error": ...}`` when it refuses it (vLLM's models
allow extra keys: an unknown key passes, a wrong type or value does not).
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
from typing import Any

# the module that holds each server's ChatCompletionRequest (vLLM >= 0.11 and older; SGLang)
SERVER_PROTOCOLS = {
    "vllm": (
        "vllm.entrypoints.openai.chat_completion.protocol",
        "vllm.entrypoints.openai.protocol",
    ),
    "sglang": ("sglang.srt.entrypoints.openai.protocol",),
}


def request_model(server: str) -> Any:
    """The server's own ``ChatCompletionRequest`` pydantic model (``ImportError`` when the
    server is not importable)."""
    errors = []
    for mod in SERVER_PROTOCOLS[server]:
        try:
            return importlib.import_module(mod).ChatCompletionRequest
        except ImportError as exc:
            errors.append(f"{mod}: {exc}")
    raise ImportError("; ".join(errors))


def audio_as_parsed(req: Any) -> bytes | None:
    """The WAV bytes of the first part of a parsed request's last message, as the server
    holds them (``None`` for a text-only request): vLLM keeps OpenAI's ``input_audio`` (a
    TypedDict), SGLang turns it into an ``audio_url`` data URI as it validates."""
    msg = req.messages[-1]
    part = (msg["content"] if isinstance(msg, dict) else msg.content)[0]
    if isinstance(part, dict):
        if part["type"] != "input_audio":
            return None
        assert part["input_audio"]["format"] == "wav", part["input_audio"]["format"]
        return base64.b64decode(part["input_audio"]["data"], validate=True)
    if part.type != "audio_url":
        return None
    head, _, data = part.audio_url.url.partition(",")
    assert head == "data:audio/wav;base64", head
    return base64.b64decode(data, validate=True)


def parsed(model: Any, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` validated by ``model`` and what the server then holds: the model name, how
    many messages, the logprobs settings, the token limit and the clip (base64)."""
    req = model.model_validate(body)
    wav = audio_as_parsed(req)
    return {
        "model": req.model,
        "messages": len(req.messages),
        "logprobs": req.logprobs,
        "top_logprobs": req.top_logprobs,
        "max_completion_tokens": getattr(req, "max_completion_tokens", None),
        "audio": base64.b64encode(wav).decode("ascii") if wav is not None else None,
    }


def _parsed_or_error(model: Any, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return parsed(model, body)
    except Exception as exc:  # pydantic's ValidationError, vLLM's VLLMValidationError
        return {"error": f"{type(exc).__name__}: {exc}"[:3000]}


def main(argv: list[str]) -> int:
    server, bodies_path, out_path = argv
    model = request_model(server)
    module = importlib.import_module(server)
    with open(bodies_path, encoding="utf-8") as f:
        bodies = json.load(f)
    out = {
        "version": getattr(module, "__version__", None),
        "module": model.__module__,
        "requests": [_parsed_or_error(model, b) for b in bodies],
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
