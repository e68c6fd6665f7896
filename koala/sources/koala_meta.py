"""The published KoALA metadata (one JSONL per set and noise condition) and its audio root.

Layout (as published; the audio comes from the Hugging Face dataset ``scailaboratory/KoALA``)::

    ROOT/ASR/zeroth_korean_test_{clean,other}.jsonl      raw: absolute path of the authors' machine
    ROOT/SQA/{click,kobest_boolq}_{clean,other}.jsonl, SQA/KCSAT_{clean,noise}.jsonl
    ROOT/Instruct/{alpaca,kudge,openhermes,vicuna}_{clean,other}.jsonl
    ROOT/SCA-QA/{history_before_chosun,history_after_chosun,k-sports,kpop}_{clean,other}.jsonl
    ROOT/PA-QA/mctest_{clean,other}.jsonl
    ROOT/Translation/etri_tst-{COMMON,HE}_clean.jsonl
    ROOT/audio/<set>/...          clean speech, e.g. audio/click/000000.wav
    ROOT/audio_noise/<set>_noise/...   noisy speech, e.g. audio_noise/click_noise/000000_noisy.wav

Each row names its audio in ``raw`` (resolved by :class:`koala.sources.AudioResolver`). The noisy
files are named ``_other`` or ``_noise``. The clean and noisy files list the same items in the
same order, keyed by ``index``; :func:`partner_paths` pairs them so that a row whose ``raw``
points at the other condition (the published PA-QA files have the two swapped) can be detected
per row and put right (:func:`fix_swapped`). A row that repeats an earlier row of its file
exactly (every field equal: :func:`record_digest`) is a copy, not a second question on the same
recording; the builder keeps one copy, and :func:`partner_paths` skips copies too so that the
two files' keys stay aligned.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from koala.sources import SourceError, looks_noisy, read_jsonl

__all__ = ["fix_swapped", "occurrence_keys", "partner_paths", "read_set", "record_digest"]


def read_set(
    path: str | os.PathLike[str],
) -> Iterator[tuple[int, dict[str, Any] | SourceError]]:
    """``(line, record)`` of one published metadata file; a missing file is a ``SourceError``."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(
            "metadata file not found",
            source=p,
            expected="the published KoALA metadata JSONL",
            fix="pass data_dir= (or metadata_dir=) pointing at the folder that holds "
            f"{p.parent.name}/{p.name}",
        )
    yield from read_jsonl(p)


def record_digest(record: dict[str, Any]) -> str:
    """A digest equal for two records exactly when every field is equal (whatever the order
    of the keys or the spacing of the line): the mark of an exact duplicate row."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def occurrence_keys(records: Any, id_field: str = "index") -> Iterator[str]:
    """A key per record: its ``id_field``, then ``<id>-2``, ``<id>-3`` for repeats (the
    published K-SAT files reuse an ``index`` when one recording carries two questions)."""
    seen: dict[str, int] = {}
    for _line, record in records:
        key = str(record.get(id_field, "")) if isinstance(record, dict) else ""
        seen[key] = seen.get(key, 0) + 1
        yield key if seen[key] == 1 else f"{key}-{seen[key]}"


def partner_paths(
    path: str | os.PathLike[str] | None, id_field: str = "index", raw_field: str = "raw"
) -> dict[str, str]:
    """``key -> raw`` of the other noise condition's file (empty when it does not exist).
    Exact duplicate rows are skipped, as the builder skips them."""
    if path is None or not Path(path).is_file():
        return {}
    records, seen = [], set()
    for line, record in read_jsonl(path):
        if isinstance(record, dict):
            digest = record_digest(record)
            if digest in seen:
                continue
            seen.add(digest)
        records.append((line, record))
    out: dict[str, str] = {}
    for key, (_line, record) in zip(occurrence_keys(records, id_field), records, strict=True):
        raw = record.get(raw_field) if isinstance(record, dict) else None
        if isinstance(raw, str):
            out[key] = raw
    return out


def fix_swapped(raw: str, partner_raw: str | None, want_noisy: bool) -> tuple[str, bool]:
    """Put right a row whose audio path points at the other noise condition.

    A clean row whose ``raw`` looks noisy (``audio_noise/...``, ``*_noisy.wav``) while the
    matching noisy row's ``raw`` looks clean is swapped, and vice versa. Returns the path to use
    and whether it was swapped. Nothing is changed when the partner is unknown or agrees.
    """
    if partner_raw is None:
        return raw, False
    if looks_noisy(raw) != want_noisy and looks_noisy(partner_raw) == want_noisy:
        return partner_raw, True
    return raw, False
