"""KsponSpeech evaluation sets (AI Hub): ``eval_clean.trn`` / ``eval_other.trn`` + raw PCM.

Each line of a ``.trn`` file is ``<path> :: <transcript>``, e.g.::

    KsponSpeech_eval/eval_clean/KsponSpeech_E00001.pcm :: o/ 그래서 (3G)/(쓰리 쥐)를 썼어

The audio is headerless little-endian 16-bit 16 kHz mono PCM. The path prefix differs between
copies of the corpus, so files are found by name under the KsponSpeech folder (the path as
written is tried first, inside the folder only).

The transcripts follow the corpus' dual-transcription rules: ``(spelling)/(pronunciation)``
pairs, noise tags ``b/`` (breath), ``l/`` (laughter), ``o/`` (other speaker), ``n/`` (noise),
``u/`` (unintelligible), ``+`` (repetition), ``*`` (unclear), and ``/`` after fillers
(``어/``). :func:`clean_transcript` keeps one side of each pair (the pronunciation by default:
the KoALa-Bench CER applies no number normalisation, and Zeroth spells numbers out too) and
removes the tags.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from koala.normalize import StripKsponAnnotations
from koala.sources import SourceError, read_lines

__all__ = ["TRANSCRIPT_FORMS", "KsponLine", "clean_transcript", "read_trn"]

TRANSCRIPT_FORMS = ("phonetic", "spelling")


def clean_transcript(text: str, form: str = "phonetic") -> str:
    """The transcript with one side of each ``(spelling)/(pronunciation)`` pair and no tags.

    >>> clean_transcript("o/ 그래서 (3G)/(쓰리 쥐)를 어/ 썼어+ b/")
    '그래서 쓰리 쥐를 어 썼어'
    """
    if form not in TRANSCRIPT_FORMS:
        raise ValueError(f"form={form!r}: choose one of {TRANSCRIPT_FORMS}")
    return StripKsponAnnotations(keep="pronunciation" if form == "phonetic" else "spelling")(text)


@dataclass(frozen=True)
class KsponLine:
    """One ``.trn`` line: its number, the audio path as written and the raw transcript
    (``problem`` says what is wrong with a malformed line)."""

    line: int
    path: str
    transcript: str
    problem: str | None = None

    @property
    def utt_id(self) -> str:
        return Path(self.path.replace("\\", "/")).stem if self.path else f"line{self.line}"


def read_trn(path: str | os.PathLike[str]) -> Iterator[KsponLine | SourceError]:
    """Every non-blank line of a KsponSpeech ``.trn`` file, read as UTF-8 (a byte-order mark
    allowed); a line that is not UTF-8 text comes as a ``SourceError`` naming the file, the
    line and the byte (a bad row: re-save a CP949 file as UTF-8)."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(
            "KsponSpeech transcript file not found",
            source=p,
            expected="eval_clean.trn / eval_other.trn from AI Hub (KsponSpeech_scripts)",
            fix="pass kspon_dir= pointing at the folder that holds the .trn files and the PCM",
        )
    for number, line in read_lines(p):
        if isinstance(line, SourceError):
            yield line
            continue
        if not line.strip():
            continue
        audio, sep, text = line.partition(" :: ")
        if not sep:
            yield KsponLine(number, "", "", "no ' :: ' between the path and the transcript")
        elif not audio.strip():
            yield KsponLine(number, "", text.strip(), "no audio path before ' :: '")
        else:
            yield KsponLine(number, audio.strip(), text.strip())
