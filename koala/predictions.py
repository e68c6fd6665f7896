"""The predictions format of a run directory: records, their fingerprints and the run's plan.

A run directory holds

* ``predictions.jsonl``: one JSON record per line, appended and fsynced by
  :class:`PredictionStore`. A record is keyed by ``(model, config, variant, condition, id)``
  (:func:`record_key`); the last record of a key wins. Every record carries
  ``"format": FORMAT_VERSION`` and a ``"fingerprint"`` of the request that produced it (the
  prompt text, condition, model spec and options, labels shown, protocol and digests of the
  audio and of the reference; see :mod:`koala.runner`).
* ``plan/<config>.json``: the plan of the latest invocation that ran the config
  (:class:`ConfigPlan`): every request it asks for with the fingerprint it expects and the
  digest of the reference it is scored against (:func:`ref_digest`), and the settings it ran
  with (``shard`` when it holds only some shards of the config's requests).
* ``run.json``: the manifest (what was run, when, with what).

:func:`current_records` joins the two: a record counts (is reused by the runner, is scored)
only when the plan asks for its key, its fingerprint matches and its reference is the plan's;
every other record is ignored and counted with the reason. The fingerprint covers what can
change the answer; the reference (gold answers, choices' text) changes only the score, so a
re-export that fixes a gold answer keeps the answer and the runner rewrites the record with
the new reference (see :mod:`koala.plan`). This module imports nothing of the runner or the models.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ABSTAINED",
    "FAILED",
    "FORMAT_VERSION",
    "MANIFEST",
    "NOT_PLANNED",
    "NO_PLAN",
    "OK",
    "PLAN_DIR",
    "PREDICTIONS",
    "STALE",
    "STALE_REF",
    "STATUSES",
    "ConfigPlan",
    "Key",
    "PredictionStore",
    "ReadStats",
    "WriteError",
    "current_records",
    "fingerprint",
    "load_plan",
    "read_predictions",
    "record_key",
    "ref_digest",
    "write_plan",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
PREDICTIONS = "predictions.jsonl"
MANIFEST = "run.json"
PLAN_DIR = "plan"
OK, FAILED, ABSTAINED = "ok", "failed", "abstained"
STATUSES = (OK, FAILED, ABSTAINED)
# why current_records ignores a record
STALE = "stale: fingerprint differs"
STALE_REF = "stale: reference differs"
NOT_PLANNED = "not in the plan"
NO_PLAN = "config not in the run's plan"

Key = tuple[str, str, str, str, str]


def record_key(rec: Mapping[str, Any]) -> Key:
    """``(model, config, variant, condition, id)`` of a record."""
    return (rec["model"], rec["config"], rec["variant"], rec["condition"], str(rec["id"]))


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace (one text per value)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def fingerprint(parts: Mapping[str, Any]) -> str:
    """The sha256 hex digest of the canonical JSON (sorted keys) of ``parts``."""
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


def ref_digest(ref: Any) -> str:
    """The sha256 hex digest of the canonical JSON of a record's ``ref``."""
    return hashlib.sha256(canonical_json(ref).encode("utf-8")).hexdigest()


# ============================================================================ reading


@dataclass
class ReadStats:
    """What reading a predictions file found besides the records it returns."""

    lines: int = 0
    records: int = 0  # well-formed records of this format version
    duplicates: int = 0  # keys seen more than once (the last record wins)
    corrupt: list[int] = field(default_factory=list)  # line numbers that were not JSON
    truncated_tail: bool = False
    # records of another format version (or none), per version ("none": no ``format`` field)
    other_versions: Counter[str] = field(default_factory=Counter)
    # records of this version with a missing or wrongly typed field: (line, field, message)
    malformed: list[tuple[int, str, str]] = field(default_factory=list)


_KEY_FIELDS = ("model", "config", "variant", "condition")


def _problem(rec: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first missing or wrongly typed field of a record, as ``(field, message)``."""
    for f in (*_KEY_FIELDS, "task", "fingerprint"):
        if f not in rec:
            return f, "missing"
        if not isinstance(rec[f], str) or not rec[f]:
            return f, f"expected a non-empty string, got {rec[f]!r}"
    if "id" not in rec:
        return "id", "missing"
    rid = rec["id"]
    if isinstance(rid, bool) or not isinstance(rid, str | int) or rid == "":
        return "id", f"expected a non-empty string, got {rid!r}"
    if "status" not in rec:
        return "status", "missing"
    if rec["status"] not in STATUSES:
        return "status", f"expected one of {list(STATUSES)}, got {rec['status']!r}"
    if "prediction" not in rec:
        return "prediction", "missing"
    pred = rec["prediction"]
    if rec["status"] == OK and not isinstance(pred, str):
        return "prediction", f"an {OK!r} record needs a string, got {pred!r}"
    if pred is not None and not isinstance(pred, str):
        return "prediction", f"expected a string or null, got {type(pred).__name__}"
    if "ref" not in rec:
        return "ref", "missing"
    if not isinstance(rec["ref"], Mapping):
        return "ref", f"expected a mapping, got {type(rec['ref']).__name__}"
    for f, kinds, what in (
        ("logprobs", (Mapping,), "a mapping"),
        ("error", (str,), "a string"),
        ("subset", (str,), "a string"),
        ("noise", (str,), "a string"),
        ("shown_labels", (list,), "a list of strings"),
    ):
        v = rec.get(f)
        if v is not None and not isinstance(v, kinds):
            return f, f"expected {what} or null, got {type(v).__name__}"
    labels = rec.get("shown_labels")
    if labels is not None and not all(isinstance(x, str) for x in labels):
        return "shown_labels", f"expected a list of strings, got {labels!r}"
    return None


def read_predictions(path: str | Path) -> tuple[dict[Key, dict[str, Any]], ReadStats]:
    """The last well-formed record per key of a predictions file, and what reading found.

    A last line without a newline (a run killed mid-write) is ignored; a line that is not
    JSON is skipped and listed in ``corrupt``; a record of another format version (or with no
    ``format``) is not returned and counted per version in ``other_versions``; a record with
    a missing or wrongly typed field is not returned and listed as ``(line, field, message)``
    in ``malformed``.
    """
    p = Path(path)
    out: dict[Key, dict[str, Any]] = {}
    st = ReadStats()
    if not p.exists():
        return out, st
    lines = p.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        st.truncated_tail = True
        lines.pop()
    for n, raw in enumerate(lines, 1):
        st.lines += 1
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            st.corrupt.append(n)
            log.warning("%s line %d: not JSON; skipped", p, n)
            continue
        if not isinstance(rec, dict):
            st.malformed.append((n, "(record)", f"not a JSON object: {type(rec).__name__}"))
            continue
        if rec.get("format") != FORMAT_VERSION:
            st.other_versions[str(rec["format"]) if "format" in rec else "none"] += 1
            continue
        problem = _problem(rec)
        if problem is not None:
            st.malformed.append((n, *problem))
            log.warning("%s line %d: field %r: %s; skipped", p, n, *problem)
            continue
        key = record_key(rec)
        st.records += 1
        if key in out:
            st.duplicates += 1
        out[key] = rec
    if st.other_versions:
        log.warning(
            "%s: %d record(s) of another format version %s (this version: %d) ignored",
            p,
            sum(st.other_versions.values()),
            dict(st.other_versions),
            FORMAT_VERSION,
        )
    return out, st


# ============================================================================ writing


class WriteError(RuntimeError):
    """The predictions file could not be written (the cause is the ``OSError``)."""


class PredictionStore:
    """Append-only JSONL of records with group commit: :meth:`put` queues a record, a writer
    thread appends everything queued, flushes and fsyncs, then counts it committed.

    When a write fails the writer stops: :attr:`failed` turns true, :attr:`error` holds the
    exception, :meth:`put` and :meth:`drain` raise :class:`WriteError`, and :attr:`lost`
    (``submitted - committed``) is the number of records handed over but not on disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._queue: list[bytes] = []
        self._cv = threading.Condition()
        self._submitted = 0
        self._committed = 0
        self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._file: io.BufferedWriter | None = None

    def open(self) -> None:
        """Cut a truncated last line off (a killed run's partial record), then append."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with open(self.path, "rb+") as f:
                data = f.read()
                if data and not data.endswith(b"\n"):
                    cut = data.rfind(b"\n") + 1
                    log.warning(
                        "%s: dropping a truncated last line (%d bytes) left by an interrupted run",
                        self.path,
                        len(data) - cut,
                    )
                    f.truncate(cut)
                    f.flush()
                    os.fsync(f.fileno())
        self._file = open(self.path, "ab")
        self._thread = threading.Thread(target=self._write_loop, name="koala-writer", daemon=True)
        self._thread.start()

    def _failure(self) -> WriteError:
        return WriteError(f"{self.path}: cannot write predictions: {self._error}")

    def put(self, record: Mapping[str, Any]) -> None:
        """Queue one record (raises :class:`WriteError` once the writer has failed; the
        record then counts as submitted and lost)."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._cv:
            self._submitted += 1
            if self._error is not None:
                raise self._failure() from self._error
            self._queue.append(line.encode("utf-8"))
            self._cv.notify_all()

    def _write_batch(self, blob: bytes) -> None:
        assert self._file is not None
        self._file.write(blob)
        self._file.flush()
        os.fsync(self._file.fileno())

    def _write_loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                batch, self._queue = self._queue, []
                closing = self._closing
            if batch:
                try:
                    self._write_batch(b"".join(batch))
                except BaseException as exc:
                    log.error("%s: writing predictions failed: %s", self.path, exc)
                    with self._cv:
                        self._error = exc
                        self._queue.clear()
                        self._cv.notify_all()
                    return
                with self._cv:
                    self._committed += len(batch)
                    self._cv.notify_all()
            if closing and not batch:
                return

    def drain(self) -> None:
        """Wait until every record put so far is on disk (raises :class:`WriteError` when the
        writer failed)."""
        with self._cv:
            while self._committed < self._submitted and self._error is None:
                self._cv.wait()
            if self._error is not None:
                raise self._failure() from self._error

    def close(self) -> None:
        if self._thread is not None:
            with self._cv:
                self._closing = True
                self._cv.notify_all()
            self._thread.join()
            self._thread = None
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:  # the flush of an already failed file
                log.error("%s: closing failed: %s", self.path, exc)
            self._file = None

    @property
    def committed(self) -> int:
        """Records on disk (fsynced)."""
        return self._committed

    @property
    def submitted(self) -> int:
        """Records handed to :meth:`put`."""
        return self._submitted

    @property
    def lost(self) -> int:
        """Records submitted but never committed (non-zero only after a failure)."""
        with self._cv:
            return self._submitted - self._committed if self._error is not None else 0

    @property
    def failed(self) -> bool:
        return self._error is not None

    @property
    def error(self) -> BaseException | None:
        return self._error


# ============================================================================ the plan


@dataclass
class ConfigPlan:
    """What the latest invocation that ran ``config`` asked for: every request's key with
    the fingerprint it expects (``requests``) and the digest of its reference (``refs``,
    :func:`ref_digest`; empty in plans written before references were kept apart), their
    number (``planned``) and the settings it ran with (model spec and options, prompts sha256
    and variant names, SCA-QA text-audio mode, protocol, limit, data, the model's input limit
    ``max_audio_s``; ``shard`` and ``full_plan`` when the plan holds only some shards of the
    config's requests, see :func:`koala.plan.shard_state`)."""

    config: str
    task: str
    planned: int
    requests: dict[Key, str]
    settings: dict[str, Any] = field(default_factory=dict)
    refs: dict[Key, str] = field(default_factory=dict)


def _plan_path(run_dir: str | Path, config: str) -> Path:
    if not config or "/" in config or "\\" in config or config.startswith("."):
        raise ValueError(f"config name {config!r} cannot name a plan file")
    return Path(run_dir) / PLAN_DIR / f"{config}.json"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_plan(run_dir: str | Path, config: str, plan: ConfigPlan) -> Path:
    """Write (atomically) ``RUN_DIR/plan/<config>.json``, replacing that config's plan."""
    if plan.config != config:
        raise ValueError(f"write_plan({config!r}): the plan is of config {plan.config!r}")
    data = {
        "format": FORMAT_VERSION,
        "config": plan.config,
        "task": plan.task,
        "planned": plan.planned,
        "settings": plan.settings,
        "requests": [
            [*key, fp, plan.refs[key]] if key in plan.refs else [*key, fp]
            for key, fp in plan.requests.items()
        ],
    }
    path = _plan_path(run_dir, config)
    _atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    return path


def load_plan(run_dir: str | Path) -> dict[str, ConfigPlan]:
    """Every config's plan in ``RUN_DIR/plan/`` (empty when there is none); a plan file that
    does not parse raises ``ValueError`` naming it."""
    out: dict[str, ConfigPlan] = {}
    for path in sorted((Path(run_dir) / PLAN_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT_VERSION}")
            requests: dict[Key, str] = {}
            refs: dict[Key, str] = {}
            for row in data["requests"]:
                # [model, config, variant, condition, id, fingerprint(, reference digest)]
                if not isinstance(row, list) or len(row) not in (6, 7):
                    raise ValueError(f"bad request entry {row!r}")
                key = (row[0], row[1], row[2], row[3], str(row[4]))
                if not all(isinstance(x, str) for x in row[5:]):
                    raise ValueError(f"bad request entry {row!r}")
                requests[key] = row[5]
                if len(row) == 7:
                    refs[key] = row[6]
            plan = ConfigPlan(
                config=str(data["config"]),
                task=str(data["task"]),
                planned=int(data["planned"]),
                requests=requests,
                settings=dict(data.get("settings") or {}),
                refs=refs,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: not a plan file of this version: {exc}") from None
        out[plan.config] = plan
    return out


def current_records(
    records: Mapping[Key, Mapping[str, Any]], plans: Mapping[str, ConfigPlan]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Counter[str]]]:
    """Per config, the records its plan asks for whose fingerprint matches and whose
    reference is the plan's (the ones to score; every planned config has an entry), and per
    config the ignored records counted by reason: :data:`STALE` (the plan asks for the key
    with another fingerprint), :data:`STALE_REF` (the same request, scored against another
    reference: a re-export changed a gold answer and the run was not resumed since),
    :data:`NOT_PLANNED` (another variant, condition, model or row) and :data:`NO_PLAN` (no
    plan for the record's config)."""
    current: dict[str, list[dict[str, Any]]] = {c: [] for c in plans}
    ignored: dict[str, Counter[str]] = {c: Counter() for c in plans}
    for key, rec in records.items():
        config = key[1]
        plan = plans.get(config)
        if plan is None:
            ignored.setdefault(config, Counter())[NO_PLAN] += 1
        elif key not in plan.requests:
            ignored[config][NOT_PLANNED] += 1
        elif rec.get("fingerprint") != plan.requests[key]:
            ignored[config][STALE] += 1
        elif key in plan.refs and ref_digest(rec.get("ref")) != plan.refs[key]:
            ignored[config][STALE_REF] += 1
        else:
            current[config].append(dict(rec))
    return current, ignored
