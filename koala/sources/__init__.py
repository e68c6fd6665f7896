"""Readers of the benchmark's real source layouts, one module per layout.

* :mod:`koala.sources.koala_meta`: the published KoALA metadata (JSONL per set) and the KoALA
  audio root (``audio/``, ``audio_noise/``);
* :mod:`koala.sources.zeroth`: Zeroth-Korean (per-utterance FLAC + ``*.trans.txt``);
* :mod:`koala.sources.ksponspeech`: KsponSpeech eval (``eval_clean.trn`` / ``eval_other.trn`` +
  headerless 16-bit 16 kHz PCM);
* :mod:`koala.sources.common_voice`: Common Voice (``test.tsv`` + ``clips/*.mp3``);
* :mod:`koala.sources.etri`: ETRI En-Ko speech translation (one wav per talk, segments cut by
  ``offset`` and ``duration`` by seeking).

This module holds what they share: the error every reader raises for bad input
(:class:`SourceError`), reading text files line by line with line numbers (UTF-8, a leading
byte-order mark allowed; a line that is not UTF-8 is a bad row, not a crash:
:func:`read_lines`), JSONL reading on top of it, tolerant coercion of the fields that some
copies of the metadata store as strings (``"['front']"``, ``"True"``), and path resolution that
never leaves the data root, symbolic links included (:class:`AudioResolver`).
"""

from __future__ import annotations

import ast
import codecs
import json
import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "AudioResolver",
    "SourceError",
    "as_bool",
    "as_float",
    "as_int",
    "as_list",
    "as_text",
    "looks_noisy",
    "read_jsonl",
    "read_lines",
]


class SourceError(ValueError):
    """Bad input in a source: names the config, the source file, the line or row id, the field,
    what was expected, and how to fix it."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | os.PathLike[str] | None = None,
        line: int | None = None,
        row_id: str | None = None,
        field: str | None = None,
        expected: str | None = None,
        fix: str | None = None,
        config: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = str(source) if source is not None else None
        self.line = line
        self.row_id = row_id
        self.field = field
        self.expected = expected
        self.fix = fix
        self.config = config
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.config:
            where.append(f"config {self.config!r}")
        if self.source:
            where.append(self.source)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row_id is not None:
            where.append(f"id {self.row_id!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.expected:
            text += f"; expected {self.expected}"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text

    def where(self, **kwargs: Any) -> SourceError:
        """Fill in location fields that are still unknown (returns ``self``)."""
        for key, value in kwargs.items():
            if value is not None and getattr(self, key, None) is None:
                setattr(self, key, str(value) if key == "source" else value)
        self.args = (self._message(),)
        return self


def read_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str | SourceError]]:
    """Yield ``(line_number, text)`` for every line of a UTF-8 text file (1-based; the line
    ending removed, blank lines included).

    A byte-order mark at the start of the file is dropped (``utf-8-sig``: some editors on
    Windows write one). A line that is not UTF-8 is yielded as a :class:`SourceError` in place
    of its text, naming the file, the line and the offending byte (``not UTF-8 text at byte N``,
    N counted from 0 in the file as ``xxd`` shows it), so that a caller can skip it
    (``skip_bad``) and go on reading the lines after it.
    """
    p = Path(path)
    offset = 0
    with p.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            start, offset = offset, offset + len(raw)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, start = raw[len(codecs.BOM_UTF8) :], start + len(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield (
                    number,
                    SourceError(
                        f"not UTF-8 text at byte {start + exc.start} "
                        f"(0x{raw[exc.start]:02x}, counted from 0 in the file)",
                        source=p,
                        line=number,
                        expected="UTF-8 text",
                        fix="re-save the file as UTF-8 (from the Korean legacy encoding: "
                        "iconv -f cp949 -t utf-8), or repair or remove that line (or pass "
                        "skip_bad=True)",
                    ),
                )
                continue
            yield number, text.rstrip("\r\n")


def read_jsonl(
    path: str | os.PathLike[str],
) -> Iterator[tuple[int, dict[str, Any] | SourceError]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSONL file (1-based).

    A line that is not a JSON object, or not UTF-8 text (:func:`read_lines`; a byte-order mark
    at the start is allowed), is yielded as a :class:`SourceError` in place of the record, so
    that a caller can skip it (``skip_bad``) and go on reading.
    """
    p = Path(path)
    for number, line in read_lines(p):
        if isinstance(line, SourceError):
            yield number, line
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield (
                number,
                SourceError(
                    f"not valid JSON ({exc.msg} at column {exc.colno})",
                    source=p,
                    line=number,
                    expected="one JSON object per line",
                    fix="repair or remove that line (or pass skip_bad=True)",
                ),
            )
            continue
        if not isinstance(record, dict):
            yield (
                number,
                SourceError(
                    f"a JSON {type(record).__name__}, not an object",
                    source=p,
                    line=number,
                    expected="one JSON object per line",
                    fix="repair or remove that line (or pass skip_bad=True)",
                ),
            )
            continue
        yield number, record


def _missing(field: str) -> SourceError:
    return SourceError(
        "the field is missing",
        field=field,
        expected=f"a value for {field!r}",
        fix="add the field to the metadata row (or pass skip_bad=True to skip such rows)",
    )


def as_text(record: dict[str, Any], field: str, *, allow_empty: bool = False) -> str:
    """``record[field]`` as a string; missing, non-string or (unless allowed) empty is an error."""
    if field not in record or record[field] is None:
        raise _missing(field)
    value = record[field]
    if not isinstance(value, str):
        raise SourceError(
            f"a {type(value).__name__} ({value!r:.60})", field=field, expected="a string"
        )
    if not allow_empty and not value.strip():
        raise SourceError("the field is empty", field=field, expected="a non-empty string")
    return value


def as_list(record: dict[str, Any], field: str) -> list[Any]:
    """``record[field]`` as a list. Accepts a JSON list or the string of a Python/JSON list
    literal (``"['front', 'late']"``), as some copies of the metadata store them."""
    if field not in record or record[field] is None:
        raise _missing(field)
    value = record[field]
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise SourceError(
                f"the string {value!r:.60} is not a list literal",
                field=field,
                expected="a list, or the string of a list such as \"['front']\"",
            ) from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise SourceError(
            f"a {type(value).__name__} ({value!r:.60})", field=field, expected="a list"
        )
    return value


def as_bool(record: dict[str, Any], field: str) -> bool:
    """``record[field]`` as a bool; accepts ``true``/``false`` and the strings ``"True"``,
    ``"False"`` (any case), ``"1"``, ``"0"``."""
    if field not in record or record[field] is None:
        raise _missing(field)
    value = record[field]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise SourceError(f"{value!r:.60} is not a boolean", field=field, expected="true or false")


def as_float(record: dict[str, Any], field: str) -> float:
    """``record[field]`` as a finite float (numbers given as strings are accepted)."""
    if field not in record or record[field] is None:
        raise _missing(field)
    value = record[field]
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SourceError(
            f"{value!r:.60} is not a number", field=field, expected="a number"
        ) from None
    if out != out or out in (float("inf"), float("-inf")) or isinstance(value, bool):
        raise SourceError(f"{value!r:.60} is not a finite number", field=field, expected="a number")
    return out


def as_int(record: dict[str, Any], field: str) -> int:
    """``record[field]`` as an int (integral strings are accepted)."""
    if field not in record or record[field] is None:
        raise _missing(field)
    value = record[field]
    if isinstance(value, bool):
        raise SourceError(f"{value!r} is a boolean", field=field, expected="an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise SourceError(f"{value!r:.60} is not an integer", field=field, expected="an integer")


def looks_noisy(raw: str) -> bool:
    """Whether a published audio path points at noisy audio: a directory ``audio_noise`` or
    ``*_noise``, or a file name ending in ``_noisy``/``_noise`` (``000000_tts_noisy.wav``)."""
    # the parts and the stem as PurePosixPath gives them, without building one per row
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return False
    name = parts[-1]
    dot = name.rfind(".")
    dirs, stem = parts[:-1], name[:dot] if 0 < dot < len(name) - 1 else name
    return (
        any(d == "audio_noise" or d.endswith("_noise") for d in dirs)
        or stem.endswith("_noisy")
        or stem.endswith("_noise")
    )


def _inside(root: Path, candidate: str) -> bool:
    root_s = os.path.normpath(os.path.abspath(root))
    cand_s = os.path.normpath(os.path.abspath(candidate))
    return cand_s == root_s or cand_s.startswith(root_s + os.sep)


def _hub_blobs(real_root: Path) -> Path | None:
    """The ``blobs/`` folder of the Hugging Face hub cache repository whose snapshot holds
    ``real_root`` (``.../datasets--o--n/snapshots/<rev>/...``), else ``None``."""
    parts = real_root.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots" and parts[i - 1].startswith(("datasets--", "models--")):
            blobs = Path(*parts[:i]) / "blobs"
            return blobs if blobs.is_dir() else None
    return None


class AudioResolver:
    """Resolves the published ``raw`` audio paths inside a data root, never outside it.

    * A relative path is joined to ``root``; one that escapes it (``../../etc/passwd``) is
      refused. When ``root/raw`` does not exist, ``root/audio/raw`` is tried (the published
      PA-QA noisy file lists the clean audio as ``mctest_final/...``, relative to ``audio/``).
    * An absolute path is used as is only when it lies inside ``root`` or a search dir.
      Otherwise (the authors' machine: ``/data/.../Ko-Speech-Eval/audio/zeroth_korean/
      104_003_0019.flac``) the part from the last ``audio``/``audio_noise`` directory on is
      tried under ``root``.
    * Failing that, the file is looked up **by file name** in the ``search_dirs`` (the folders
      of the external corpora: the Zeroth tree, the ETRI talks, ...), never elsewhere, so a
      missing KoALA file is never replaced by a file of the same name from another set. The
      file-name index is built once, on first need. Ties go to the file whose path shares the
      longest suffix with the published path; a remaining tie is an error.
    * Whatever way a file is found, its real path (symbolic links resolved) must lie inside the
      root or a search dir (their real paths too, so a root or corpus folder that is itself a
      link is fine): a link inside the data root that leads out of it is refused, never
      followed into the export. One exception: a root inside a Hugging Face hub cache
      snapshot (``datasets--<owner>--<name>/snapshots/<revision>/...``, as
      ``huggingface_hub.snapshot_download`` leaves it) may link into that repository's
      ``blobs/`` folder, where the hub keeps the files of every snapshot.
    """

    def __init__(self, root: str | os.PathLike[str], search_dirs: Sequence[Path] = ()) -> None:
        self.root = Path(root)
        self._root_s = os.fspath(self.root)
        self.search_dirs = [Path(d) for d in search_dirs if d is not None]
        self._index: dict[str, list[Path]] | None = None
        self._real_roots: list[str] | None = None
        self._real_dirs: dict[str, str] = {}

    def _name_index(self) -> dict[str, list[Path]]:
        if self._index is None:
            index: dict[str, list[Path]] = {}
            seen: set[str] = set()
            for base in self.search_dirs:
                if not base.is_dir():
                    continue
                for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
                    dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                    for name in filenames:
                        full = os.path.join(dirpath, name)
                        if full in seen:
                            continue
                        seen.add(full)
                        index.setdefault(name, []).append(Path(full))
            self._index = index
        return self._index

    def _by_name(self, raw_parts: Sequence[str]) -> list[Path]:
        hits = self._name_index().get(raw_parts[-1], [])
        if len(hits) <= 1:
            return hits

        def shared_suffix(p: Path) -> int:
            n = 0
            for a, b in zip(reversed(p.parts), reversed(raw_parts), strict=False):
                if a != b:
                    break
                n += 1
            return n

        best = max(shared_suffix(p) for p in hits)
        return [p for p in hits if shared_suffix(p) == best]

    def _allowed(self) -> list[str]:
        """Real paths of the root and the search dirs (and of a hub cache's ``blobs/``)."""
        if self._real_roots is None:
            roots: list[str] = []
            for base in (self.root, *self.search_dirs):
                real = os.path.realpath(base)
                roots.append(real)
                blobs = _hub_blobs(Path(real))
                if blobs is not None:
                    roots.append(os.fspath(blobs))
            self._real_roots = roots
        return self._real_roots

    def _realpath(self, path: str) -> str:
        """``os.path.realpath(path)``, with the real path of each folder looked up once: a
        file that is not itself a symbolic link costs one ``lstat`` (not one per component
        of its path, per row)."""
        folder, name = os.path.split(path)
        if name in ("", ".", "..") or not os.path.isabs(folder):
            return os.path.realpath(path)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return os.path.realpath(path)
        except OSError:
            return os.path.realpath(path)
        real = self._real_dirs.get(folder)
        if real is None:
            real = self._real_dirs[folder] = os.path.realpath(folder)
        return os.path.join(real, name)

    def confine(self, path: str | os.PathLike[str], raw: Any = None, field: str = "raw") -> Path:
        """``path`` itself when its real path (symbolic links resolved) lies inside the root or
        a search dir; a ``SourceError`` naming ``field`` otherwise."""
        real = self._realpath(os.fspath(path))
        if any(real == r or real.startswith(r + os.sep) for r in self._allowed()):
            return path if isinstance(path, Path) else Path(path)
        raise SourceError(
            f"{str(raw if raw is not None else path)!r} is {os.fspath(path)}, a symbolic link "
            f"(or inside a linked folder) that leads out of the data root to {real}; refused",
            field=field,
            expected="a file whose real path lies inside the data root "
            f"{str(self.root)!r} (or a source dir)",
            fix="replace the link by the file itself, or pass the folder it points into as "
            "the data root (or as the source dir: zeroth_dir=, etri_dir=, ...)",
        )

    def resolve(self, raw: Any, field: str = "raw") -> Path:
        """The file ``raw`` names, inside the root or the search dirs; ``SourceError`` if it is
        missing, ambiguous or outside (symbolic links leading out included)."""
        return self.confine(self._find(raw, field), raw, field)

    def _find(self, raw: Any, field: str) -> Path:
        if not isinstance(raw, str) or not raw.strip():
            raise SourceError(
                f"{raw!r:.60} is not a path", field=field, expected="the path of an audio file"
            )
        posix = raw.strip().replace("\\", "/")
        if not posix.startswith("/"):  # the common case, kept cheap: one stat
            rel = posixpath.normpath(posix)
            if not rel.startswith(".."):
                first = os.path.join(self._root_s, rel)
                if os.path.isfile(first):
                    return Path(first)
        pure = PurePosixPath(posix)
        tried: list[str] = []
        if pure.is_absolute():
            if _inside(self.root, posix) or any(_inside(d, posix) for d in self.search_dirs):
                p = Path(posix)
                if p.is_file():
                    return p
                tried.append(posix)
            parts = pure.parts
            cut = max(
                (i for i, part in enumerate(parts) if part in ("audio", "audio_noise")),
                default=None,
            )
            if cut is not None:
                rel = posixpath.normpath("/".join(parts[cut:]))
                if not rel.startswith(".."):
                    cand = self.root / rel
                    tried.append(str(cand))
                    if cand.is_file():
                        return cand
        else:
            rel = posixpath.normpath(posix)
            if rel.startswith("..") or rel.startswith("/"):
                raise SourceError(
                    f"the path {raw!r} escapes the data root {str(self.root)!r}; refused",
                    field=field,
                    expected="a path inside the data root",
                    fix="correct the path in the metadata (paths are relative to the data root)",
                )
            for cand in (self.root / rel, self.root / "audio" / rel):
                if rel.split("/")[0] in ("audio", "audio_noise") and cand != self.root / rel:
                    continue
                tried.append(str(cand))
                if cand.is_file():
                    return cand
        hits = self._by_name(pure.parts)
        if len(hits) == 1:
            return hits[0]
        where = ", ".join(str(d) for d in self.search_dirs) or "(no search dir)"
        if len(hits) > 1:
            raise SourceError(
                f"{raw!r} matches several files by name: {[str(h) for h in hits[:4]]}",
                field=field,
                expected="one audio file",
                fix="remove the duplicate files or give the full relative path in the metadata",
            )
        if pure.is_absolute() and not tried:
            raise SourceError(
                f"the absolute path {raw!r} lies outside the data root and no file named "
                f"{pure.name!r} is under {where}; refused",
                field=field,
                expected="a path inside the data root, or a file of that name under it",
                fix="put the audio under the data root (or pass the source directory)",
            )
        raise SourceError(
            f"audio file not found (looked at {tried[:3]}, and for {pure.name!r} under {where})",
            field=field,
            expected="an existing audio file",
            fix="download the audio into the data root (KoALA audio: audio/ and audio_noise/), "
            "pass the source directory (zeroth_dir=, etri_dir=, ...), or skip_bad=True",
        )
