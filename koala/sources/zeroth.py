"""Zeroth-Korean: per-utterance FLAC files and one transcript file per speaker session.

Layout of the corpus (test set)::

    test_data_01/003/104/104_003_0019.flac
    test_data_01/003/104/104_003.trans.txt      lines "104_003_0019 <transcript>"

The KoALA metadata names the files by the absolute path of the authors' machine; the builder
finds them here by file name. Without the metadata, :func:`read_zeroth` reads the tree itself.
Transcript files are read as UTF-8 (a byte-order mark allowed); a line that is not is yielded
as a :class:`~koala.sources.SourceError` in place of its utterance (a bad row).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from koala.sources import SourceError, read_lines

__all__ = ["ZerothUtterance", "read_zeroth"]

AUDIO_SUFFIXES = (".flac", ".wav")


@dataclass(frozen=True)
class ZerothUtterance:
    """One utterance: id (``104_003_0019``), audio path, transcript (empty when the line has
    none: the builder reports it) and where it was read."""

    utt_id: str
    path: Path
    text: str
    source: Path
    line: int


def read_zeroth(root: str | os.PathLike[str]) -> Iterator[ZerothUtterance | SourceError]:
    """Every utterance of a Zeroth tree, ordered by transcript file then line (a line that is
    not UTF-8 text comes as a ``SourceError`` naming the file and line)."""
    base = Path(root)
    if not base.is_dir():
        raise SourceError(
            "Zeroth-Korean directory not found",
            source=base,
            expected="a folder with test_data_01/.../*.trans.txt and *.flac",
            fix="pass zeroth_dir= pointing at the unpacked Zeroth-Korean test set",
        )
    trans_files = sorted(base.rglob("*.trans.txt"))
    if not trans_files:
        raise SourceError(
            "no *.trans.txt transcript file under the Zeroth directory",
            source=base,
            expected="Zeroth-Korean layout test_data_01/003/104/104_003.trans.txt",
            fix="pass zeroth_dir= pointing at the unpacked Zeroth-Korean test set",
        )
    for trans in trans_files:
        for number, line in read_lines(trans):
            if isinstance(line, SourceError):
                yield line
                continue
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            audio = next(
                (
                    trans.parent / f"{utt_id}{s}"
                    for s in AUDIO_SUFFIXES
                    if (trans.parent / f"{utt_id}{s}").is_file()
                ),
                trans.parent / f"{utt_id}.flac",
            )
            yield ZerothUtterance(utt_id, audio, text.strip(), trans, number)
