"""The plan of a run: every request of a config (row x condition x prompt variant, as its task
declares them) with its fingerprint, the records already done that it can keep, and the
requests still to send with their audio (:mod:`koala.runner` executes it).

A shard (``koala-bench run --shard K/N``) plans only its share of the requests:
:func:`in_shard` keeps a request when the sha256 of its ``(config, variant, condition, id)``
(as canonical JSON), read as a number, leaves ``K - 1`` divided by ``N``. The share depends
on nothing else (not the model, the prompts' text, the machine or Python's ``hash()``), so the
N shards of a run are disjoint and together hold every request. A shard's plan says which
shard it holds (``settings["shard"]``, ``"K/N"``; a merge of some shards lists them,
``"1/3+3/3"``) and how many requests the whole config has (``settings["full_plan"]``), so
that a shard alone, or some shards joined, is scored as part of its whole (:func:`shard_state`).

A request's fingerprint (:func:`request_fingerprint`) holds what can change its answer: the
prompt text, the labels shown, the condition, the audio sent and the model with its options.
What changes only the score is kept apart: the reference (its digest is in the plan beside
the fingerprint: a re-export that fixes a gold answer rewrites the record with the new
reference and asks nothing), the scoring protocol (read at score time; under ``published``
SCA-QA shows (A)-(D), which changes the prompt and so the fingerprint) and the model's input
limit ``max_audio_s`` (the score recomputes the ``truncated`` flag from the plan's limit).
Records of the fingerprint before this one (:func:`legacy_fingerprint`, which held the
protocol, the reference digest and ``max_audio_s``) are reused when the request they answer is
the same: the runner rewrites them with the current fingerprint (``"reused": "fingerprint
v1"``) instead of asking again."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from koala.data import as_rows, decode_audio
from koala.models import (
    Audio,
    Request,
    silence,
)
from koala.predictions import (
    ABSTAINED,
    FAILED,
    FORMAT_VERSION,
    OK,
    Key,
    canonical_json,
    fingerprint,
    ref_digest,
)
from koala.prompts import PROTOCOLS, PromptSet, task_of
from koala.tasks import get_task


def parse_shard(text: str) -> tuple[int, int]:
    """``(K, N)`` of ``"K/N"`` with ``1 <= K <= N``; else ``ValueError``."""
    k, slash, n = str(text).partition("/")
    try:
        shard = int(k), int(n)
    except ValueError:
        shard = (0, 0)
    if not slash or not 1 <= shard[0] <= shard[1]:
        raise ValueError(f"--shard {text!r}: write K/N with 1 <= K <= N (e.g. 2/4)")
    return shard


def in_shard(config: str, variant: str, condition: str, rid: str, shard: tuple[int, int]) -> bool:
    """Whether shard ``(K, N)`` holds the request ``(config, variant, condition, id)``: the
    first 8 bytes of the sha256 of ``canonical_json([config, variant, condition, id])``, as a
    big-endian number, modulo ``N`` equal ``K - 1``."""
    k, n = shard
    digest = hashlib.sha256(canonical_json([config, variant, condition, rid]).encode("utf-8"))
    return int.from_bytes(digest.digest()[:8], "big") % n == k - 1


@dataclass(frozen=True)
class ShardState:
    """Which shards of ``of`` a plan holds (``present``), and so which are ``missing``."""

    of: int
    present: tuple[int, ...]

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(k for k in range(1, self.of + 1) if k not in self.present)

    def names(self, ks: Iterable[int]) -> list[str]:
        return [f"{k}/{self.of}" for k in ks]

    @property
    def setting(self) -> str:
        """The plan setting: ``"K/N"``, or ``"K1/N+K2/N"`` for several shards."""
        return "+".join(self.names(self.present))


def shard_state(setting: Any) -> ShardState | None:
    """The shards a plan's ``shard`` setting names (``"K/N"``, or ``"1/3+3/3"`` after a
    merge of some shards); ``None`` when it holds every request (no setting, or all N shards
    of N). A setting naming shards of different N, or not of this form, is a ``ValueError``."""
    if setting is None:
        return None
    parts = [parse_shard(p) for p in str(setting).split("+")]
    ns = {n for _, n in parts}
    if len(ns) != 1:
        raise ValueError(f"shard {setting!r}: shards of different N do not make one plan")
    state = ShardState(ns.pop(), tuple(sorted({k for k, _ in parts})))
    return None if not state.missing else state


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class Item:
    """One request of the plan."""

    config: str
    task: str
    variant: str
    condition: str
    id: str
    prompt: str
    labels: tuple[str, ...] | None
    base: dict[str, Any]  # the record without the answer
    record: dict[str, Any] | None = None  # a record decided without calling the model
    request: Request | None = None
    # the other variants of the same clip and condition, answered by this item's one call
    # (a model that ignores the prompt, see share_by_clip)
    followers: list[Item] = field(default_factory=list)


@dataclass
class RowPlan:
    index: int
    items: list[Item]


def _digest(value: Any) -> str | None:
    """sha256 of one stored audio value: its bytes, else its path; ``None`` for null."""
    if value is None:
        return None
    if isinstance(value, Mapping) and ("bytes" in value or "path" in value):
        if value.get("bytes") is not None:
            return hashlib.sha256(value["bytes"]).hexdigest()
        if value.get("path") is None:
            return None
        return hashlib.sha256(b"path:" + str(value["path"]).encode("utf-8")).hexdigest()
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return hashlib.sha256(json.dumps(value, default=str).encode("utf-8")).hexdigest()


def audio_digests(
    rows: Any, columns: Sequence[str], batch_rows: int = 64
) -> dict[str, list[str | None]]:
    """Per audio column, the sha256 of each row's stored, undecoded audio bytes (of its path
    when only a path is stored; ``None`` for a null), read without decoding: from a
    :class:`koala.data.ParquetRows` one row group at a time, from a ``datasets.Dataset`` in
    Arrow batches of ``batch_rows`` rows."""
    out: dict[str, list[str | None]] = {c: [] for c in columns}
    if not columns:
        return out
    for row in as_rows(rows).iter_columns(list(columns), batch_rows):
        for c in columns:
            out[c].append(_digest(row[c]))
    return out


#: the version of :func:`request_fingerprint` (1: :func:`legacy_fingerprint`)
FINGERPRINT_VERSION = 2


def request_fingerprint(
    *,
    model: Mapping[str, Any],
    prompt: str | None,
    condition: str,
    text_audio: str | None,
    labels: Sequence[str] | None,
    audio: str | None,
) -> str:
    """The fingerprint of one request: what can change its answer. ``model`` is the model's
    identity (:func:`koala.runner.model_identity`: name, kind and target, the options that
    can change an answer), ``prompt`` the text sent, ``labels`` the choice labels shown,
    ``audio`` the digest of the stored audio it sends; ``text_audio`` (what a condition
    without the row's audio sends) is ``None`` for the conditions that send the row's audio.
    Not in it: the reference and the scoring protocol (they change the score, not the
    answer; the protocol's effect on the request, SCA-QA's (A)-(D), is in ``prompt`` and
    ``labels``), nor the model's input limit (it sets a flag the score recomputes)."""
    return fingerprint(
        {
            "format": FORMAT_VERSION,
            "fingerprint": FINGERPRINT_VERSION,
            "model": dict(model),
            "prompt": prompt,
            "condition": condition,
            "text_audio": text_audio,
            "labels": list(labels) if labels is not None else None,
            "audio": audio,
        }
    )


def legacy_fingerprint(
    *,
    model: Mapping[str, Any],
    prompt: str | None,
    condition: str,
    text_audio: str | None,
    labels: Sequence[str] | None,
    protocol: str,
    audio: str | None,
    ref: Any,
) -> str:
    """The fingerprint of version 1 (koala-bench before fingerprint version 2): the same
    parts as :func:`request_fingerprint` without its version, plus the run's protocol and the
    digest of the reference; ``model`` held every option but transport (``max_audio_s``
    included). Kept to recognise the records of older run folders."""
    return fingerprint(
        {
            "format": FORMAT_VERSION,
            "model": dict(model),
            "prompt": prompt,
            "condition": condition,
            "text_audio": text_audio,
            "labels": list(labels) if labels is not None else None,
            "protocol": protocol,
            "audio": audio,
            "ref": ref_digest(ref),
        }
    )


class DuplicateRowError(ValueError):
    """Two rows of a config have the same id (every request is keyed by it)."""


@dataclass
class ConfigWork:
    """The plan of one config: the rows with requests still to make, the fingerprint and
    reference digest of every request (done or not), the number of requests and of those
    already done; ``refreshed``: records of requests already answered, rewritten with the
    current fingerprint, reference or row fields (to append, no model call); ``full``: with
    a shard, the requests per variant of the whole config, and ``rows`` its rows."""

    rows: list[RowPlan]
    requests: dict[Key, str]
    total: int
    done: int
    refs: dict[Key, str] = field(default_factory=dict)
    refreshed: list[dict[str, Any]] = field(default_factory=list)
    full: Counter[str] = field(default_factory=Counter)
    n_rows: int = 0

    def full_plan(self) -> dict[str, Any]:
        """The ``full_plan`` setting of a shard's plan: the whole config's requests, per
        variant, and rows."""
        return {
            "requests": sum(self.full.values()),
            "variants": dict(self.full),
            "rows": self.n_rows,
        }


def plan_config(
    rows: Iterable[Mapping[str, Any]],
    config: str,
    model_name: str,
    model_tasks: frozenset[str] | None,
    prompts: PromptSet,
    done: Mapping[Key, Mapping[str, Any]],
    *,
    digests: Mapping[str, Sequence[str | None]] | None = None,
    model_id: Mapping[str, Any] | None = None,
    legacy_model_id: Mapping[str, Any] | None = None,
    text_audio: str = "silence",
    protocol: str = "koala",
    shard: tuple[int, int] | None = None,
    locate: Callable[[int], str | None] | None = None,
) -> ConfigWork:
    """Every request of ``config`` with its fingerprint, and those still to make (rows
    without their audio). ``digests`` are :func:`audio_digests` of the config's audio columns
    (a column absent from them counts as null, so the ``original`` condition is skipped).
    ``shard=(K, N)``: only the requests of shard K of N (:func:`in_shard`).

    A record in ``done`` answered (``ok`` or ``abstained``) with this request's fingerprint,
    or with its version-1 fingerprint (:func:`legacy_fingerprint` under ``legacy_model_id``,
    default ``model_id``, and either protocol), is kept; when its reference, fingerprint or
    row fields are not the current ones it is rewritten (``refreshed``), never asked again.
    Two rows with the same id raise :class:`DuplicateRowError` naming the id and both rows
    (``locate(index)`` says where a row lies, e.g. its file and row there)."""
    spec = get_task(task_of(config))
    task = spec.name
    prompts.variants(config)  # a prompt file without this task fails the config
    digests = digests or {}
    model_id = dict(model_id or {"name": model_name})
    legacy_id = dict(legacy_model_id or model_id)
    work = ConfigWork([], {}, 0, 0)
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        work.n_rows += 1
        rid = row.get("id")
        rid = str(rid) if rid is not None else f"#row{index}"
        if rid in seen:
            first = seen[rid]
            where = [locate(i) if locate is not None else None for i in (first, index)]
            at = f" ({where[0]}; {where[1]})" if all(where) else ""
            raise DuplicateRowError(
                f"config {config}: row id {rid!r} appears twice: rows {first} and {index} of "
                f"the config{at}. Every request is keyed by its row id, so one row's answers "
                "would stand for both: give every row its own id and export again"
            )
        seen[rid] = index
        ref = spec.ref(row)
        rdigest = ref_digest(ref)
        items: list[Item] = []
        for condition in spec.conditions:
            col = spec.audio_column(condition)
            col_digests = digests.get(col) if col else None
            audio = col_digests[index] if col_digests is not None else None
            if condition in spec.optional_conditions and audio is None:
                continue  # not published for this row
            for v in prompts.variants(config, row.get("subset")):
                if shard is not None:
                    work.full[v.name] += 1
                    if not in_shard(config, v.name, condition, rid, shard):
                        continue
                work.total += 1
                base: dict[str, Any] = {
                    "format": FORMAT_VERSION,
                    "model": model_name,
                    "config": config,
                    "task": task,
                    "variant": v.name,
                    "condition": condition,
                    "id": rid,
                    "subset": row.get("subset"),
                    "noise": row.get("noise"),
                    "ref": ref,
                }
                labels: tuple[str, ...] | None = None
                prompt: str | None = None
                error = None
                try:
                    if rid.startswith("#row"):
                        raise ValueError(f"config {config} row {index}: no 'id' field")
                    shown = spec.shown_labels(row, protocol)
                    labels = tuple(shown) if shown is not None else None
                    prompt = spec.build_prompt(v, row, condition, protocol)
                except (KeyError, TypeError, ValueError) as exc:
                    what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    error = f"config {config} row {rid}: cannot build the prompt: {what}"
                sent_text_audio = text_audio if col is None else None
                fp = request_fingerprint(
                    model=model_id,
                    prompt=prompt,
                    condition=condition,
                    text_audio=sent_text_audio,
                    labels=labels,
                    audio=audio,
                )
                key = (model_name, config, v.name, condition, rid)
                work.requests[key] = fp
                work.refs[key] = rdigest
                base["fingerprint"] = fp
                # the data the request was about (for comparing two runs on the same items)
                base["data_sha"] = _sha(canonical_json({"audio": audio, "ref": ref}))
                base["prompt_sha"] = _sha(prompt) if prompt is not None else None
                base["shown_labels"] = list(labels) if labels is not None else None
                if prompt is None:
                    rec = {**base, "status": FAILED, "prediction": None, "logprobs": None}
                    rec["error"] = error
                    items.append(Item(config, task, v.name, condition, rid, "", None, base, rec))
                    continue
                prev = done.get(key)
                if prev is not None and prev.get("status") in (OK, ABSTAINED):
                    reused = None
                    if prev.get("fingerprint") != fp:
                        old = {
                            legacy_fingerprint(
                                model=legacy_id,
                                prompt=prompt,
                                condition=condition,
                                text_audio=sent_text_audio,
                                labels=labels,
                                protocol=p,
                                audio=audio,
                                ref=prev.get("ref"),
                            )
                            for p in PROTOCOLS
                        }
                        reused = "fingerprint v1" if prev.get("fingerprint") in old else None
                    if prev.get("fingerprint") == fp or reused:
                        work.done += 1
                        if reused is None and any(prev.get(f) != x for f, x in base.items()):
                            same_ref = ref_digest(prev.get("ref")) == rdigest
                            reused = "row fields" if same_ref else "reference"
                        if reused is not None:
                            work.refreshed.append({**prev, **base, "reused": reused})
                        continue
                item = Item(config, task, v.name, condition, rid, prompt, labels, base)
                if model_tasks is not None and task not in model_tasks:
                    item.record = {
                        **base,
                        "status": ABSTAINED,
                        "prediction": None,
                        "logprobs": None,
                        "error": f"{model_name} does not do {task}",
                    }
                items.append(item)
        if items:
            work.rows.append(RowPlan(index, items))
    return work


def attach_audio(
    plan: RowPlan,
    audio_row: Mapping[str, Any],
    text_audio: str,
    cache: dict[str, Audio],
) -> None:
    """Decode the clips a row's pending items need and build their requests; a clip that
    fails to decode fails only its items."""
    cache.clear()
    for item in plan.items:
        if item.record is not None:
            continue
        try:
            col = get_task(item.task).audio_column(item.condition)
            if col is None:  # a condition without the row's audio (SCA-QA text-only)
                audio = silence(1.0) if text_audio == "silence" else None
            else:
                if col not in cache:
                    cache[col] = decode_audio(
                        audio_row.get(col), f"config {item.config} row {item.id} field {col!r}"
                    )
                audio = cache[col]
        except Exception as exc:
            item.record = {
                **item.base,
                "status": FAILED,
                "prediction": None,
                "logprobs": None,
                "error": str(exc),
            }
            continue
        item.request = Request(audio, item.prompt, item.labels, item.task)


def share_by_clip(plan: RowPlan) -> None:
    """For a model that ignores the prompt: make the first pending item of each condition of
    the row ask for every other variant of that condition (its ``followers``, which leave
    ``plan.items``): one call per clip and condition instead of one per prompt variant."""
    leaders: dict[str, Item] = {}
    kept: list[Item] = []
    for item in plan.items:
        if item.record is None and item.request is not None:
            leader = leaders.setdefault(item.condition, item)
            if leader is not item:
                leader.followers.append(item)
                continue
        kept.append(item)
    plan.items = kept
