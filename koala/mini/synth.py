"""Speech synthesis for the mini benchmark with espeak-ng.

Every option that changes the waveform is fixed (voice, variant, speed, pitch, amplitude,
word gap), the text goes in on stdin as UTF-8, and espeak-ng's 22.05 kHz output is resampled
to 16 kHz with :func:`koala.audio.resample` (soxr). With the same espeak-ng build the same text
gives the same samples, bit for bit; another espeak-ng version may differ, which is why the
version is part of the mini tree's manifest hash.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from koala.audio import TARGET_SR, resample

__all__ = [
    "ENGLISH",
    "KOREAN",
    "KOREAN_B",
    "EspeakNotFoundError",
    "Voice",
    "espeak_executable",
    "espeak_version",
    "silence",
    "synthesize",
    "synthesize_many",
]

INSTALL_HINT = "install it with `apt-get install espeak-ng` (Debian/Ubuntu)"
_NOT_SPOKEN_BY_KO = re.compile(r"[0-9A-Za-z]")


class EspeakNotFoundError(RuntimeError):
    """espeak-ng is not installed (or not on PATH)."""


@dataclass(frozen=True)
class Voice:
    """A fixed espeak-ng voice: ``language`` (``ko``, ``en``), optional ``variant`` (``f3``),
    ``speed`` in words per minute, ``pitch`` 0-99, ``amplitude`` 0-200, ``word_gap`` in
    units of 10 ms."""

    language: str
    variant: str | None = None
    speed: int = 165
    pitch: int = 50
    amplitude: int = 100
    word_gap: int = 0

    @property
    def name(self) -> str:
        return self.language + (f"+{self.variant}" if self.variant else "")

    def args(self) -> list[str]:
        return [
            "-v",
            self.name,
            "-s",
            str(self.speed),
            "-p",
            str(self.pitch),
            "-a",
            str(self.amplitude),
            "-g",
            str(self.word_gap),
        ]


KOREAN = Voice("ko")
"""The default Korean voice (and the first speaker of a dialogue)."""
KOREAN_B = Voice("ko", variant="f3", pitch=70)
"""The second speaker of a dialogue: a female variant at a higher pitch."""
ENGLISH = Voice("en")
"""The English voice of the speech-translation talks."""


def espeak_executable() -> str:
    """The path of ``espeak-ng``; raises :class:`EspeakNotFoundError` saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakNotFoundError(
            "espeak-ng was not found on PATH; the mini benchmark synthesises its speech with it: "
            + INSTALL_HINT
        )
    return exe


@functools.lru_cache(maxsize=4)
def _version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return " ".join(out.stdout.split()) or f"unknown (exit {out.returncode})"


def espeak_version() -> str:
    """espeak-ng's ``--version`` line (part of the mini tree's manifest hash)."""
    return _version(espeak_executable())


def silence(seconds: float, sr: int = TARGET_SR) -> np.ndarray:
    """``seconds`` of digital silence (rounded to whole samples)."""
    return np.zeros(round(seconds * sr), dtype=np.float32)


def synthesize(text: str, voice: Voice = KOREAN) -> np.ndarray:
    """Speak ``text`` with ``voice``; float32 mono at 16 kHz.

    Korean text must not contain digits or Latin letters (spell them out in Hangul): the
    Korean voice reads them unreliably, so this raises ``ValueError`` naming the text.
    """
    if not text.strip():
        raise ValueError(f"nothing to synthesise: text={text!r}")
    if voice.language == "ko" and _NOT_SPOKEN_BY_KO.search(text):
        raise ValueError(
            f"Korean speech text contains digits or Latin letters (spell them out): {text!r}"
        )
    exe = espeak_executable()
    fd, tmp = tempfile.mkstemp(prefix="koala-espeak-", suffix=".wav")
    os.close(fd)
    try:
        proc = subprocess.run(
            [exe, *voice.args(), "-b", "1", "-w", tmp, "--stdin"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"espeak-ng failed (exit {proc.returncode}) for voice {voice.name!r} on "
                f"{text[:60]!r}: {proc.stderr.decode(errors='replace').strip()}"
            )
        import soundfile as sf

        data, sr = sf.read(tmp, dtype="float32", always_2d=False)
    finally:
        os.unlink(tmp)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if len(data) == 0:
        raise RuntimeError(f"espeak-ng produced no audio for voice {voice.name!r}: {text[:60]!r}")
    return resample(np.asarray(data, dtype=np.float32), sr, TARGET_SR)


def synthesize_many(
    requests: Iterable[tuple[str, Voice]], workers: int | None = None
) -> dict[tuple[str, Voice], np.ndarray]:
    """Synthesise each distinct ``(text, voice)`` once, ``workers`` espeak-ng processes at a
    time (default: the number of CPUs). The result does not depend on ``workers``."""
    unique: Sequence[tuple[str, Voice]] = list(dict.fromkeys(requests))
    espeak_executable()  # fail early, with the install hint
    n = max(1, min(workers or os.cpu_count() or 1, len(unique) or 1))
    if n == 1:
        return {req: synthesize(*req) for req in unique}
    with ThreadPoolExecutor(max_workers=n) as pool:
        arrays = list(pool.map(lambda req: synthesize(*req), unique))
    return dict(zip(unique, arrays, strict=True))
