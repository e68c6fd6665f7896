"""Common Voice (Mozilla): ``test.tsv`` and ``clips/*.mp3`` of one language release.

``test.tsv`` is tab-separated with a header row; the columns used are ``path`` (the clip's file
name under ``clips/``) and ``sentence`` (the prompt that was read). Other columns (client_id,
up_votes, age, gender, ...) are ignored. Fields are not quoted: a ``"`` is part of the text.
The file is read as UTF-8 (a byte-order mark allowed); a row that is not UTF-8 text is yielded
as a :class:`~koala.sources.SourceError` in its place (a bad row).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from koala.sources import SourceError, read_lines

__all__ = ["CommonVoiceRow", "read_tsv"]

REQUIRED_COLUMNS = ("path", "sentence")


@dataclass(frozen=True)
class CommonVoiceRow:
    """One row: line number (the header is line 1), clip file name, sentence."""

    line: int
    path: str
    sentence: str
    problem: str | None = None

    @property
    def utt_id(self) -> str:
        return Path(self.path).stem if self.path else f"line{self.line}"


def read_tsv(path: str | os.PathLike[str]) -> Iterator[CommonVoiceRow | SourceError]:
    """Rows of a Common Voice split file (a row that is not UTF-8 text comes as a
    ``SourceError`` naming the file, line and byte; a header that is not is raised)."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(
            "Common Voice split file not found",
            source=p,
            expected="test.tsv of a Common Voice release (with clips/ beside it)",
            fix="pass common_voice_dir= pointing at the language folder (e.g. cv-corpus-25.0/ko)",
        )
    lines = read_lines(p)
    header: list[str] | None = None
    for _number, text in lines:  # the header: the first line
        if isinstance(text, SourceError):
            raise text
        header = text.split("\t")
        break
    missing = [c for c in REQUIRED_COLUMNS if header is None or c not in header]
    if missing:
        raise SourceError(
            f"the header lacks the columns {missing}",
            source=p,
            line=1,
            expected=f"a tab-separated header with {list(REQUIRED_COLUMNS)}",
            fix="use the test.tsv of a Common Voice release",
        )
    assert header is not None
    col = {name: header.index(name) for name in REQUIRED_COLUMNS}
    for number, text in lines:
        if isinstance(text, SourceError):
            yield text
            continue
        cells = text.split("\t")  # unquoted (QUOTE_NONE): a row is a line, cells split by tabs
        if not any(c.strip() for c in cells):
            continue
        if len(cells) <= max(col.values()):
            yield CommonVoiceRow(
                number, "", "", f"{len(cells)} cells, fewer than the header's {len(header)}"
            )
            continue
        yield CommonVoiceRow(number, cells[col["path"]].strip(), cells[col["sentence"]].strip())
