"""ETRI En-Ko speech translation (tst-COMMON, tst-HE): one wav per TED talk.

The KoALA metadata (``Translation/etri_tst-{COMMON,HE}_clean.jsonl``) lists one segment per row:
``raw`` (the talk, e.g. ``audio/ETRI_translate_data1/en-ko/data/tst-COMMON/wav/ted_1096.wav``),
``offset`` and ``duration`` in seconds, ``answer_en`` (English source) and ``answer_ko`` (Korean
reference). :class:`TalkReader` cuts a segment by seeking in the talk's file, so a segment of
a few seconds reads only those seconds, never the whole talk.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from koala.audio import TARGET_SR, load_audio
from koala.sources import SourceError

__all__ = ["TalkReader"]

# a segment may run this far past the end of its talk (rounding of published offsets)
END_TOLERANCE_S = 0.05


class TalkReader:
    """Cuts segments out of talk files; remembers each talk's length (header only)."""

    def __init__(self) -> None:
        self._seconds: dict[Path, float | None] = {}

    def talk_seconds(self, path: Path) -> float | None:
        """Length of a talk in seconds from its header (``None`` when the header is unreadable
        by soundfile, e.g. a format only FFmpeg decodes)."""
        if path not in self._seconds:
            try:
                import soundfile as sf

                info = sf.info(str(path))
                self._seconds[path] = info.frames / info.samplerate
            except Exception:
                self._seconds[path] = None
        return self._seconds[path]

    def segment(self, path: str | os.PathLike[str], offset: float, duration: float) -> np.ndarray:
        """``duration`` seconds from ``offset`` of the talk, 16 kHz mono float32."""
        p = Path(path)
        if offset < 0 or duration <= 0:
            raise SourceError(
                f"offset {offset} / duration {duration}",
                field="offset" if offset < 0 else "duration",
                expected="offset >= 0 and duration > 0 (seconds)",
                fix="correct the segment in the metadata (or pass skip_bad=True)",
            )
        total = self.talk_seconds(p)
        if total is not None and offset + duration > total + END_TOLERANCE_S:
            raise SourceError(
                f"segment {offset:.2f}+{duration:.2f}s runs past the end of {p.name} "
                f"({total:.2f}s)",
                field="offset",
                expected="a segment inside the talk",
                fix="check that the talk file is complete and matches the metadata",
            )
        return load_audio(p, TARGET_SR, offset=offset, duration=duration)
