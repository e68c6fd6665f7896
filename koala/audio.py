"""Audio I/O and the noise recipe: decode, resample to 16 kHz mono, cut segments, mix noise.

Decoding goes through soundfile (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1) and falls back to
torchcodec/FFmpeg for anything else. Segments are read by seeking, so cutting a few seconds out
of an hour-long talk reads only those seconds. Resampling is soxr (high quality).

The noise recipe (for sets the authors published no noisy audio for, and for robustness
variants of any set) is deterministic: the random generator is seeded from the row id and a
user seed, so the same row always gets the same noise, whatever order rows are built in.

* ``white``: Gaussian white noise;
* ``pink``: 1/f noise (white noise shaped in the frequency domain by 1/sqrt(f));
* ``babble``: the sum of ``babble_talkers`` other utterances of the same set, each at a random
  offset, looped to length.

The noise is scaled so that ``10 * log10(P_speech / P_noise) == snr_db`` (power = mean square
over the whole clip); if the mix would clip, the whole mix is scaled down to a peak of 0.99.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from koala.constants import SAMPLE_RATE

__all__ = [
    "NOISE_TYPES",
    "TARGET_SR",
    "add_noise",
    "load_audio",
    "load_pcm",
    "mix_at_snr",
    "pcm16_mono_wav",
    "pink_noise",
    "resample",
    "row_rng",
    "wav_bytes",
    "write_wav",
]

TARGET_SR = SAMPLE_RATE
NOISE_TYPES = ("white", "pink", "babble")


def resample(array: np.ndarray, orig_sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Resample a mono float array with soxr (no-op when the rates agree)."""
    if orig_sr == target_sr:
        return array.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(array, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def _to_mono(data: np.ndarray) -> np.ndarray:
    return data.mean(axis=1) if data.ndim == 2 else data


def load_pcm(
    path: str | os.PathLike[str],
    sampling_rate: int = TARGET_SR,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Headerless little-endian 16-bit mono PCM (KsponSpeech), as float32 in [-1, 1)."""
    mm = np.memmap(path, dtype="<i2", mode="r")
    start = round(offset * sampling_rate)
    stop = len(mm) if duration is None else start + round(duration * sampling_rate)
    return (np.asarray(mm[start:stop], dtype=np.float32) / 32768.0).copy()


def load_audio(
    path: str | os.PathLike[str],
    target_sr: int = TARGET_SR,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to float32 mono at ``target_sr``; read only ``offset``..``offset+duration``
    seconds when given. ``.pcm`` files are read as headerless 16 kHz 16-bit mono.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for one that cannot be
    decoded or a segment outside the file, naming the path.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio file not found: {p}")
    if p.suffix.lower() == ".pcm":
        return resample(load_pcm(p, TARGET_SR, offset, duration), TARGET_SR, target_sr)
    try:
        import soundfile as sf

        with sf.SoundFile(str(p)) as f:
            sr = f.samplerate
            start = round(offset * sr)
            if start > f.frames:
                raise ValueError(
                    f"{p}: offset {offset}s is past the end of the file ({f.frames / sr:.2f}s)"
                )
            if start:
                f.seek(start)
            frames = -1 if duration is None else round(duration * sr)
            data = f.read(frames, dtype="float32", always_2d=False)
    except ValueError:
        raise
    except Exception as sf_exc:  # not a format libsndfile reads: try FFmpeg
        try:
            from torchcodec.decoders import AudioDecoder

            dec = AudioDecoder(str(p), sample_rate=target_sr, num_channels=1)
            stop = None if duration is None else offset + duration
            samples = dec.get_samples_played_in_range(offset, stop)
            return samples.data.numpy()[0].astype(np.float32, copy=False)
        except Exception as exc:
            raise ValueError(f"cannot decode audio {p}: {sf_exc}; FFmpeg: {exc}") from exc
    return resample(_to_mono(np.asarray(data)), sr, target_sr)


def pcm16_mono_wav(data: bytes, extensible: bool = True) -> tuple[int, int, int] | None:
    """``(sampling_rate, start, stop)`` of the samples of a 16-bit PCM mono RIFF/WAVE file
    (``WAVE_FORMAT_PCM``, or with ``extensible`` also an extensible header whose sub-format
    is PCM), read from its header alone; ``None`` for anything else or a header that does
    not add up (a data chunk longer than the file, an odd size)."""
    import struct

    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + size > len(data):
                return None
            tag, channels, sr, _rate, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if extensible and tag == 0xFFFE and size >= 40:  # the sub-format's tag
                tag = struct.unpack_from("<H", data, body + 24)[0]
            fmt = (tag, channels, sr, align, bits)
        elif cid == b"data":
            if fmt is None or fmt[0] != 1 or fmt[1] != 1 or fmt[3] != 2 or fmt[4] != 16:
                return None
            if fmt[2] <= 0 or body + size > len(data) or size % 2:
                return None
            return fmt[2], body, body + size
        pos = body + size + (size & 1)
    return None


def wav_bytes(array: np.ndarray, sr: int = TARGET_SR) -> bytes:
    """16-bit PCM mono WAV bytes of float samples (scaled by 32767 in the array's own float
    precision, rounded half to even, clipped to the 16-bit range; stdlib ``wave``, no codec
    needed). The one encoder of the project: the exporter stores rows with it (float64) and
    the HTTP adapters send clips with it (float32, as decoded)."""
    import io
    import wave

    a = np.asarray(array)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    pcm = np.clip(np.rint(a * 32767.0), -32768, 32767)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sr))
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def write_wav(path: str | os.PathLike[str], array: np.ndarray, sr: int = TARGET_SR) -> None:
    """Write 16-bit PCM WAV atomically (a temporary file renamed into place)."""
    import soundfile as sf

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sf.write(tmp, np.asarray(array, dtype=np.float32), sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def row_rng(row_id: str, seed: int = 0) -> np.random.Generator:
    """A generator seeded from ``(seed, row_id)`` by SHA-256: stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}\x00{row_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f (pink) noise of ``n`` samples, unit variance."""
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(f), n)
    x -= x.mean()
    std = x.std()
    return (x / std if std > 0 else x).astype(np.float32)


def _babble(
    n: int, rng: np.random.Generator, pool: Sequence[np.ndarray], talkers: int
) -> np.ndarray:
    usable = [a for a in pool if len(a) > 0]
    if not usable:
        raise ValueError("babble noise needs other utterances of the set; the pool is empty")
    out = np.zeros(n, dtype=np.float64)
    for k in rng.choice(len(usable), size=min(talkers, len(usable)), replace=False):
        src = usable[int(k)]
        start = int(rng.integers(0, len(src)))
        idx = (start + np.arange(n)) % len(src)
        seg = src[idx].astype(np.float64)
        rms = np.sqrt(np.mean(seg**2))
        out += seg / rms if rms > 0 else seg
    return out.astype(np.float32)


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean + g * noise`` with ``g`` chosen so that the speech-to-noise power ratio is
    ``snr_db`` dB; scaled down as a whole to a 0.99 peak if it would clip."""
    if len(noise) != len(clean):
        raise ValueError(f"noise has {len(noise)} samples, speech {len(clean)}")
    p_s = float(np.mean(np.square(clean, dtype=np.float64))) if len(clean) else 0.0
    p_n = float(np.mean(np.square(noise, dtype=np.float64))) if len(noise) else 0.0
    if p_s == 0.0 or p_n == 0.0:
        return clean.astype(np.float32, copy=True)
    gain = np.sqrt(p_s / (p_n * 10.0 ** (snr_db / 10.0)))
    mix = clean.astype(np.float64) + gain * noise.astype(np.float64)
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:
        mix *= 0.99 / peak
    return mix.astype(np.float32)


def add_noise(
    clean: np.ndarray,
    noise_type: str,
    snr_db: float,
    row_id: str,
    seed: int = 0,
    babble_pool: Sequence[np.ndarray] = (),
    babble_talkers: int = 4,
) -> np.ndarray:
    """The noise recipe: ``noise_type`` noise for row ``row_id`` mixed at ``snr_db`` dB."""
    rng = row_rng(row_id, seed)
    n = len(clean)
    if noise_type == "white":
        noise = rng.standard_normal(n).astype(np.float32)
    elif noise_type == "pink":
        noise = pink_noise(n, rng)
    elif noise_type == "babble":
        noise = _babble(n, rng, babble_pool, babble_talkers)
    else:
        raise ValueError(f"noise_type={noise_type!r}: choose one of {NOISE_TYPES}")
    return mix_at_snr(clean, noise, snr_db)
