"""``koala-bench export``: the benchmark as Parquet shards plus a dataset card.

::

    koala-bench export --data-dir /data/KoALA --out koala_parquet [--configs pa_qa,sqa ...]
                       [--skip-bad] [--force] [--push-to-hub user/koala-bench]

writes, per config, ``OUT/data/<config>/test-00000-of-0000N.parquet`` (audio embedded as WAV
bytes, so the folder is self-contained) and ``OUT/README.md``: the dataset card filled from
``koala/dataset_card/README.md`` with YAML ``configs:`` (data files per config) and
``dataset_info:`` (features, row counts), the licence table and the known defects. Then, on
datasets 4/5 and without remote code::

    load_dataset("koala_parquet", "pa_qa", split="test")          # or streaming=True

A config that unites subsets (``sqa``) is not written twice: its ``data_files`` list the shards
of its subset configs (same schema, with the ``subset`` column).

Nothing is half-written: each config is built into a hidden temporary folder inside ``OUT``
(``.koala-tmp-*``, which ``load_dataset`` ignores) and renamed into place only when complete;
the card is rewritten (atomically) after each config, listing only complete configs. An
interrupted export leaves the previous state, or no trace of the config it was building; the
next export removes whatever ``.koala-tmp*`` files or folders it left.

Nothing is overwritten that the exporter did not write. ``OUT`` may not be, lie inside or hold
``--data-dir`` (or another source folder given). The card carries a marker line
(:data:`CARD_MARKER`); a ``README.md`` without it, or an ``export_report.json`` or
``data/<config>`` beside such a card (or beside none), is refused unless ``--force`` is given.
Files are written with the permissions of any new file (0666 less the umask), as the Parquet
shards are.

Exit codes of ``koala-bench export``: 0 done; 1 a write failed (a full disk, a read-only
folder: the message says what, where, and which configs already exported are intact); 2 bad
input or a refused ``--out``. Never a traceback.
"""

from __future__ import annotations

import argparse
import collections
import errno
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koala.builder.generate import DEFAULT_DIRS, FIX_DESCRIPTIONS, BuildOptions
from koala.builder.registry import ConfigSpec, UnknownConfigError, get_config, load_registry
from koala.sources import SourceError

__all__ = [
    "CARD_MARKER",
    "ExportError",
    "ExportResult",
    "add_arguments",
    "available",
    "export",
    "run",
]

logger = logging.getLogger("koala.export")

TMP_PREFIX = ".koala-tmp-"
REPORT_FILE = "export_report.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
# the line that marks a card as written by the exporter (which then may replace it)
CARD_MARKER = (
    "<!-- written by koala-bench export, which replaces this file on the next export; "
    "delete this line to keep the file (the exporter then refuses to overwrite it) -->"
)
DEFAULT_MAX_SHARD_SIZE = "500MB"


class ExportError(RuntimeError):
    """An export that cannot be done or did not complete: says what failed, where, and how to
    fix it. ``code`` is the exit code of ``koala-bench export`` (1 a write failed, 2 refused)."""

    def __init__(self, message: str, *, fix: str | None = None, code: int = 1) -> None:
        self.code = code
        super().__init__(message + (f". Fix: {fix}" if fix else ""))


def builder_class() -> type:
    """The ``KoalaBench`` builder class of ``koala_bench.py`` (importable, or from the source
    checkout beside the ``koala`` package)."""
    try:
        module = importlib.import_module("koala_bench")
    except ImportError:
        path = REPO_ROOT / "koala_bench.py"
        if not path.is_file():
            raise ImportError(
                "koala_bench.py is neither importable nor beside the koala package; "
                "run from a source checkout of koala-bench"
            ) from None
        spec = importlib.util.spec_from_file_location("koala_bench", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["koala_bench"] = module
        spec.loader.exec_module(module)
    return module.KoalaBench


def card_template() -> str:
    """The dataset card template (``koala/dataset_card/README.md``, shipped in the wheel)."""
    for candidate in (
        Path(os.environ.get("KOALA_DATASET_CARD", "")),
        Path(__file__).resolve().parent / "dataset_card" / "README.md",
    ):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError(
        "koala/dataset_card/README.md not found; set KOALA_DATASET_CARD or reinstall koala-bench"
    )


def _members(spec: ConfigSpec) -> list[str]:
    """The configs whose shards make up ``spec`` (itself, or its subsets' configs)."""
    if not spec.union:
        return [spec.name]
    suffix = "_noisy" if spec.noise == "noisy" else ""
    return [f"{s.config}{suffix}" for s in spec.subsets]


def available(spec: ConfigSpec, options: BuildOptions) -> bool:
    """Whether the sources of every subset of ``spec`` are on disk (a quick check)."""
    for sub in spec.subsets:
        noisy = spec.noise == "noisy" and sub.noisy_kind == "published"
        if sub.source in ("koala", "etri"):
            file = sub.noisy_file if noisy else sub.clean
            ok = (options.meta_dir / str(file)).is_file()
            if not ok and sub.fallback == "zeroth" and not noisy:
                ok = options.source_dir("zeroth").is_dir()
        elif sub.source == "ksponspeech":
            ok = (options.source_dir("ksponspeech") / str(sub.trn)).is_file()
        elif sub.source == "common_voice":
            ok = (options.source_dir("common_voice") / str(sub.tsv or "test.tsv")).is_file()
        else:
            ok = options.source_dir(sub.source).is_dir()
        if not ok:
            return False
    return True


@dataclass
class ExportResult:
    """What an export wrote: rows per config and the build reports."""

    out: Path
    rows: dict[str, int] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_configs: list[str] = field(default_factory=list)


def _clean_stale(out: Path) -> None:
    """Remove every ``.koala-tmp*`` file or folder an interrupted export left in ``out``."""
    for stale in out.glob(".koala-tmp*"):
        logger.info("removing %s left by an interrupted export", stale)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _write_atomic(dest: Path, text: str, kind: str) -> None:
    """Write ``text`` to ``dest`` through a hidden temporary file (``.koala-tmp-<kind>-*``)
    renamed over it. The file is created like any new file (mode 0666 less the umask), as
    the Parquet shards are, not 0600 as ``tempfile.mkstemp`` would make it."""
    tmp = dest.parent / f"{TMP_PREFIX}{kind}-{uuid.uuid4().hex[:8]}{dest.suffix}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _replace_dir(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``; an existing ``dest`` is swapped out first (never merged)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if dest.exists():
        trash = dest.parent.parent / f"{TMP_PREFIX}old-{dest.name}-{uuid.uuid4().hex[:8]}"
        os.replace(dest, trash)
    os.replace(src, dest)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


ROW_GROUP_ROWS = 100  # rows per Parquet row group at most: small reads when streaming audio
# ... and at most this many bytes of audio per row group: a group of 100 PA-QA passages (1-2
# minutes each) held ~320 MB, twice (the rows and their Arrow copy), so the exporter's memory
# grew with clip length (measured: 1.39 GB peak for 160 clips of 100 s; see benchmarks/).
# A group's audio is now held once, in a buffer reused from group to group (_AudioColumn),
# and WRITE_AHEAD + 1 groups are held (one filling, the others with the writer thread):
# 16 MiB each kept the full export's peak RSS at 303 MB (32 MiB: 445 MB).
ROW_GROUP_BYTES = 16 * 2**20
WRITE_AHEAD = 1  # row groups handed to the writer thread and not yet written, at most


def _is_audio(field: Any) -> bool:
    """Whether a schema field is an audio column (``struct<bytes: binary, path: string>``)."""
    return str(field.type).startswith("struct<bytes")


def _parquet_options(schema: Any) -> dict[str, Any]:
    """Writer options: audio bytes are stored uncompressed, without dictionary or statistics
    (PCM does not compress and min/max of audio mean nothing); the rest is snappy."""
    audio_leaves = {f"{f.name}.bytes" for f in schema if _is_audio(f)}
    leaves = []
    for f in schema:
        if str(f.type).startswith("struct<"):
            leaves += [f"{f.name}.{child.name}" for child in f.type]
        else:
            leaves.append(f.name)
    rest = [c for c in leaves if c not in audio_leaves]
    return {
        "compression": {c: ("NONE" if c in audio_leaves else "SNAPPY") for c in leaves},
        "use_dictionary": rest,
        "write_statistics": rest,
    }


class _AudioColumn:
    """One audio column (``{"bytes", "path"}`` or ``None``) of a row group.

    Each row's bytes are copied, as the row comes, into one buffer that is kept from group to
    group and handed to Arrow without a copy: a group's audio is held once (not as the rows'
    ``bytes`` and again as their Arrow copy), and its memory is reused rather than allocated
    and faulted in anew for every group. The buffer is written to again only after the writer
    thread has written the group's table and let it go (:meth:`_Shards.write`)."""

    def __init__(self, field: Any) -> None:
        self.field = field
        self.buffer = bytearray()
        self.clear()

    def clear(self) -> None:
        self.offsets = [0]
        self.has_bytes: list[bool] = []
        self.paths: list[Any] = []
        self.present: list[bool] = []  # False: the value is None (a null struct)

    def add(self, value: Mapping[str, Any] | None) -> None:
        data = None if value is None else value.get("bytes")
        end = self.offsets[-1]
        if data is not None:
            start, end = end, end + len(data)
            self.buffer[start:end] = data  # grows the buffer when a group outgrows it
        self.offsets.append(end)
        self.has_bytes.append(data is not None)
        self.paths.append(None if value is None else value.get("path"))
        self.present.append(value is not None)

    def array(self) -> Any:
        import numpy as np
        import pyarrow as pa

        n, size = len(self.present), self.offsets[-1]
        if size > 2**31 - 1:  # the int32 offsets of pa.binary()
            raise ValueError(f"{size} bytes of audio in one row group (at most 2 GiB)")

        def mask(flags: list[bool]) -> Any:
            return None if all(flags) else pa.py_buffer(np.packbits(flags, bitorder="little"))

        data = pa.Array.from_buffers(
            pa.binary(),
            n,
            [
                mask(self.has_bytes),
                pa.py_buffer(np.array(self.offsets, dtype=np.int32)),
                pa.py_buffer(memoryview(self.buffer)[:size]),
            ],
        )
        paths = pa.array(self.paths, type=self.field.type.field("path").type)
        return pa.StructArray.from_arrays(
            [data, paths],
            fields=list(self.field.type),
            mask=None if all(self.present) else pa.array([not p for p in self.present]),
        )


class _RowGroup:
    """The rows of one Parquet row group held column by column, made into an Arrow table
    (:meth:`table`) that equals ``pa.Table.from_pylist(rows, schema=schema)``: a column a row
    lacks is null, a key the schema lacks is ignored, an audio value ``None`` is null."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.audio = {f.name: _AudioColumn(f) for f in schema if _is_audio(f)}
        self.values: dict[str, list[Any]] = {f.name: [] for f in schema if not _is_audio(f)}
        self.rows = 0
        self.audio_bytes = 0

    def audio_size(self, row: Mapping[str, Any]) -> int:
        """The bytes of audio ``row`` carries (in the schema's audio columns)."""
        size = 0
        for name in self.audio:
            value = row.get(name)
            if value is not None and value.get("bytes") is not None:
                size += len(value["bytes"])
        return size

    def add(self, row: Mapping[str, Any], audio_bytes: int) -> None:
        for name, values in self.values.items():
            values.append(row.get(name))
        for name, column in self.audio.items():
            column.add(row.get(name))
        self.rows += 1
        self.audio_bytes += audio_bytes

    def table(self) -> Any:
        import pyarrow as pa

        arrays = [
            self.audio[f.name].array()
            if f.name in self.audio
            else pa.array(self.values[f.name], type=f.type)
            for f in self.schema
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def clear(self) -> None:
        for values in self.values.values():
            values.clear()
        for column in self.audio.values():
            column.clear()
        self.rows = 0
        self.audio_bytes = 0


class _Shards:
    """Parquet shards in a folder, written a row group at a time by one writer thread while
    the caller fills the next group; a new shard is begun once the current one holds
    ``max_shard_size`` bytes (of Arrow data).

    Writing the full benchmark's 7 GB costs 10-20 s of the kernel's time (copying into the page
    cache), during which the caller reads and decodes the next files on the other core
    instead of waiting; pyarrow lets go of the GIL while it writes."""

    def __init__(self, folder: Path, schema: Any, max_shard_size: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.folder, self.schema, self.max_shard_size = folder, schema, max_shard_size
        self.options = _parquet_options(schema)
        self.paths: list[Path] = []
        self.writer: Any = None
        self.written = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="koala-parquet")
        self._pending: collections.deque[Any] = collections.deque()

    def _write(self, group: _RowGroup) -> None:
        """Write ``group`` as one row group, then clear it (its buffers may be filled again)."""
        import pyarrow.parquet as pq

        if self.writer is None or self.written >= self.max_shard_size:
            self._close_writer()
            self.paths.append(self.folder / f"shard-{len(self.paths):05d}.parquet")
            self.writer = pq.ParquetWriter(str(self.paths[-1]), self.schema, **self.options)
            self.written = 0
        table = group.table()
        self.writer.write_table(table, row_group_size=group.rows)
        self.written += table.nbytes
        del table  # lets go of the audio buffers before they are filled again
        group.clear()

    def write(self, group: _RowGroup) -> None:
        """Hand ``group`` to the writer thread, first waiting until fewer than
        :data:`WRITE_AHEAD` groups are queued or being written (the groups written meanwhile
        are cleared and may be filled again); a failed write raises here."""
        self.wait(WRITE_AHEAD - 1)
        self._pending.append(self._pool.submit(self._write, group))

    def wait(self, left: int = 0) -> None:
        """Wait until at most ``left`` writes are pending; a write's error is raised here."""
        while len(self._pending) > left:
            self._pending.popleft().result()

    def _close_writer(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
            self._close_writer()


def _write_parquet(
    rows: Any, features: Any, folder: Path, max_shard_size: int, name: str
) -> list[Path]:
    """Write ``rows`` as Parquet shards in ``folder``, one row group at a time (at most
    ROW_GROUP_ROWS rows and, past the first row, ROW_GROUP_BYTES bytes of audio each), so memory
    holds WRITE_AHEAD + 1 row groups whatever the number or the length of the clips: the one
    being filled and those handed to the writer thread (:class:`_Shards`). A group's columns
    are made Arrow arrays directly (:class:`_RowGroup`)."""
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    schema = features.arrow_schema
    shards = _Shards(folder, schema, max_shard_size)
    # filled in turn: when one is handed over, the WRITE_AHEAD before it at most are pending,
    # so the next one in turn is written and cleared
    groups = [_RowGroup(schema) for _ in range(WRITE_AHEAD + 1)]
    group = groups[0]

    def flush(full: _RowGroup) -> _RowGroup:
        shards.write(full)
        return groups[(groups.index(full) + 1) % len(groups)]

    try:
        for _key, row in tqdm(rows, desc=name, unit=" rows", leave=False):
            size = group.audio_size(row)
            if group.rows and group.audio_bytes + size > ROW_GROUP_BYTES:
                group = flush(group)
            group.add(row, size)
            del row  # its audio is in the group's buffer now
            if group.rows >= ROW_GROUP_ROWS:
                group = flush(group)
        if group.rows:
            shards.write(group)
    finally:
        shards.close()
    if not shards.paths:  # a config with no rows still gets one (empty) shard with its schema
        shards.paths.append(folder / "shard-00000.parquet")
        pq.write_table(schema.empty_table(), str(shards.paths[-1]))
    return shards.paths


def _build_one(
    name: str, out: Path, options: BuildOptions, max_shard_size: str | int
) -> tuple[int, dict[str, Any]]:
    """Build config ``name`` with the builder's generator into a hidden temporary folder,
    write its Parquet shards, and move the complete folder to ``out/data/<name>``."""
    from datasets.utils.py_utils import convert_file_size_to_int

    tmp = out / f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        builder = builder_class()(
            config_name=name,
            data_dir=str(options.data_dir),
            cache_dir=str(tmp / "cache"),
            metadata_dir=_opt(options.metadata_dir),
            zeroth_dir=_opt(options.zeroth_dir),
            kspon_dir=_opt(options.kspon_dir),
            common_voice_dir=_opt(options.common_voice_dir),
            etri_dir=_opt(options.etri_dir),
            skip_bad=options.skip_bad or None,
            kspon_transcript=options.kspon_transcript,
        )
        builder._split_generators(None)  # the builder's own checks (data_dir)
        final = tmp / "final"
        final.mkdir()
        shards = _write_parquet(
            builder._generate_examples(),
            builder.info.features,
            final,
            convert_file_size_to_int(max_shard_size),
            name,
        )
        for k, shard in enumerate(shards):
            os.replace(shard, final / f"test-{k:05d}-of-{len(shards):05d}.parquet")
        n_rows = _count_rows(final)
        report = builder.report.as_dict() if builder.report is not None else {}
        _replace_dir(final, out / "data" / name)
        return n_rows, report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _opt(value: Path | None) -> str | None:
    return None if value is None else str(value)


def _count_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(folder.glob("*.parquet")))


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*.parquet"))


def _exported(out: Path, registry: dict[str, ConfigSpec]) -> list[str]:
    """Configs whose data is complete in ``out`` (union configs when all members are)."""
    names = []
    for name, spec in registry.items():
        if all(
            (out / "data" / m).is_dir() and any((out / "data" / m).glob("*.parquet"))
            for m in _members(spec)
        ):
            names.append(name)
    return names


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _noise_note(spec: ConfigSpec) -> str:
    if spec.noise == "clean":
        return "clean"
    kinds = []
    for sub in spec.subsets:
        if sub.noisy_kind == "published":
            kinds.append("published noisy audio")
        else:
            r = sub.recipe or {}
            kinds.append(f"recipe: {r.get('noise_type')} @ {r.get('snr_db')} dB")
    return "; ".join(sorted(set(kinds)))


def _fingerprint(out: Path, names: list[str], registry: dict[str, ConfigSpec]) -> str:
    """A digest of the shards behind ``names`` (file names, sizes, modification times).

    It is written into each config's ``dataset_info`` (``description``) so that the card's
    YAML changes whenever the data does: ``datasets`` keys its cache of
    ``load_dataset(DIR, config)`` on the folder's name and that YAML (not on the data files),
    and would otherwise serve the rows of an earlier export of the same folder."""
    digest = hashlib.sha256()
    for name in names:
        for member in _members(registry[name]):
            for shard in sorted((out / "data" / member).glob("*.parquet")):
                st = shard.stat()
                digest.update(f"{member}/{shard.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def write_card(out: Path, reports: dict[str, dict[str, Any]] | None = None) -> Path:
    """(Re)write ``out/README.md`` for the configs complete in ``out`` (atomic), marked with
    :data:`CARD_MARKER` as the exporter's own."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    from koala.builder.features import features_for

    registry = load_registry()
    names = _exported(out, registry)
    template = card_template()
    _, _, rest = template.partition("---\n")
    front, _, body = rest.partition("\n---\n")
    import yaml

    card_data = DatasetCardData(**(yaml.safe_load(front) or {}))
    configs, infos, table = {}, {}, []
    for name in names:
        spec = registry[name]
        members = _members(spec)
        paths = [f"data/{m}/test-*.parquet" for m in members]
        configs[name] = {
            "data_files": [{"split": "test", "path": paths[0] if len(paths) == 1 else paths}]
        }
        n_rows = sum(_count_rows(out / "data" / m) for m in members)
        n_bytes = sum(_folder_bytes(out / "data" / m) for m in members)
        splits = SplitDict()
        splits.add(SplitInfo(name="test", num_bytes=n_bytes, num_examples=n_rows))
        infos[name] = DatasetInfo(
            features=features_for(spec.task),
            splits=splits,
            download_size=n_bytes,
            dataset_size=n_bytes,
        )
        licences = "; ".join(sorted({s.licence for s in spec.subsets if s.licence}))
        table.append(
            [
                f"`{name}`",
                spec.task,
                ", ".join(s.name for s in spec.subsets),
                _noise_note(spec),
                str(n_rows),
                licences,
            ]
        )
    MetadataConfigs(configs).to_dataset_card_data(card_data)
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    entries = card_data.get("dataset_info") or []
    for entry in [entries] if isinstance(entries, dict) else entries:
        name = entry.get("config_name")
        if name in registry:
            # the export's fingerprint in the YAML that datasets hashes for its cache key
            entry["description"] = (
                f"{registry[name].description} Export {_fingerprint(out, [name], registry)}."
            )
    reports = reports if reports is not None else _load_reports(out)
    report_rows = []
    for name in names:
        rep = reports.get(name)
        if not rep:
            continue
        fixes = "; ".join(
            f"{subset}: {kind} x{n}"
            for subset, kinds in rep.get("fixes", {}).items()
            for kind, n in kinds.items()
        )
        report_rows.append(
            [
                f"`{name}`",
                str(sum(rep.get("rows", {}).values())),
                fixes or "none",
                str(rep.get("skipped", 0)),
            ]
        )
    body = body.replace(
        "{{ configs_table }}",
        _table(table, ["config", "task", "subsets", "noise", "rows", "licence"])
        if table
        else "(no config exported yet)",
    )
    body = body.replace(
        "{{ export_report }}",
        _table(
            report_rows, ["config", "rows", "repairs applied (kind x count)", "bad rows skipped"]
        )
        + "\n\nRepair kinds: "
        + "; ".join(f"`{k}`: {v}" for k, v in FIX_DESCRIPTIONS.items())
        if report_rows
        else "(no build report)",
    )
    body = body.replace("{{ export_fingerprint }}", _fingerprint(out, names, registry))
    if CARD_MARKER not in body:
        body = f"{CARD_MARKER}\n{body}"
    dest = out / "README.md"
    _write_atomic(dest, f"---\n{card_yaml(card_data.to_dict())}\n---\n{body}", "card")
    return dest


def card_yaml(data: dict[str, Any]) -> str:
    """The card's YAML block: the text ``huggingface_hub``'s ``CardData.to_yaml`` writes (the
    same ``yaml.dump`` options), made by libyaml's emitter when PyYAML has it. The card is
    rewritten after every config of an export, and the pure-Python emitter took 0.1-0.3 s a
    time on the full benchmark's 35 configs."""
    import yaml

    dumper = getattr(yaml, "CDumper", yaml.Dumper)
    return yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False).strip()


def _load_reports(out: Path) -> dict[str, dict[str, Any]]:
    path = out / REPORT_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            logger.warning("%s is not valid JSON; starting a new report", path)
    return {}


def _save_reports(out: Path, reports: dict[str, dict[str, Any]]) -> None:
    _write_atomic(out / REPORT_FILE, json.dumps(reports, ensure_ascii=False, indent=1), "report")


def _split_names(values: list[str] | None) -> list[str]:
    """Config names given as ``a b``, ``a,b`` or ``"a, b"`` (as ``koala-bench run`` takes
    them), each once, in order."""
    names = [n for v in values or [] for n in v.replace(",", " ").split()]
    return list(dict.fromkeys(names))


def _is_ours(path: Path) -> bool:
    """Whether ``path`` is a card the exporter wrote (it holds :data:`CARD_MARKER`)."""
    try:
        return path.is_file() and CARD_MARKER.encode() in path.read_bytes()
    except OSError:
        return False


def _check_out(out: Path, sources: dict[str, Path], members: list[str], force: bool) -> None:
    """Refuse an ``out`` among the sources, an ``out`` that is a file, and (unless ``force``)
    replacing files the exporter did not write (see the module doc)."""
    real_out = Path(os.path.realpath(out))
    for flag, src in sources.items():
        real_src = Path(os.path.realpath(src))
        if real_out == real_src or real_src in real_out.parents:
            how = "is" if real_out == real_src else "lies inside"
        elif real_out in real_src.parents:
            how = "holds"
        else:
            continue
        raise ExportError(
            f"--out {str(out)!r} {how} {flag} {str(src)!r}: the export would write among the "
            "sources (its README.md over theirs); refused, also with --force",
            fix="pass an --out outside the source folders, e.g. a new folder beside them",
            code=2,
        )
    if out.exists() and not out.is_dir():
        raise ExportError(
            f"--out {str(out)!r} is a file, not a folder; nothing was written",
            fix="pass the path of a folder (new, or one koala-bench export wrote)",
            code=2,
        )
    if force or not out.is_dir() or _is_ours(out / "README.md"):
        return
    foreign = [
        p
        for p in (out / "README.md", out / REPORT_FILE, *(out / "data" / m for m in members))
        if p.exists() or p.is_symlink()
    ]
    if foreign:
        raise ExportError(
            f"--out {str(out)!r} holds {', '.join(str(p.relative_to(out)) for p in foreign)}, "
            "which koala-bench export did not write (no README.md carrying its marker line "
            f"{CARD_MARKER[:40]!r}...) and would replace; nothing was written",
            fix="pass a new or empty --out, or --force to replace them",
            code=2,
        )


def _write_failed(
    exc: OSError, out: Path, config: str | None, placed: bool, registry: dict[str, ConfigSpec]
) -> ExportError:
    """An :class:`ExportError` for a failed write (or read) during an export: what failed,
    where, what is intact, and the fix."""
    where = exc.filename or out
    what = exc.strerror or str(exc) or type(exc).__name__
    doing = f"exporting config {config!r}" if config else f"preparing the export folder {out}"
    try:
        intact = _exported(out, registry) if out.is_dir() else []
    except OSError:
        intact = []
    if config and placed:
        state = (
            f"{config!r} is in place but the card or the report could not be updated; "
            "run the export again"
        )
        intact = [n for n in intact if n != config]
    elif config:
        state = f"nothing of {config!r} was put in place"
    else:
        state = "nothing was written"
    kept = (
        f"the configs already exported in {out} are intact: {', '.join(intact)}"
        if intact
        else f"no config is exported in {out} yet"
    )
    real = Path(os.path.realpath(str(exc.filename))) if exc.filename else None
    if real is not None and not real.is_relative_to(os.path.realpath(out)):
        fix = f"make {where} readable, then export again"  # reading a source failed
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (
            f"free space on the disk of {out} (or pass an --out on another disk), then export again"
        )
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"make {out} writable (or pass another --out), then export again"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = "--out (or a folder on its path) is a file: pass the path of a folder"
    else:
        fix = f"check {where}, then export again"
    return ExportError(f"{doing} failed: {what} ({where}); {state}; {kept}", fix=fix, code=1)


def build_options(
    data_dir: str | os.PathLike[str],
    *,
    metadata_dir: str | os.PathLike[str] | None = None,
    zeroth_dir: str | os.PathLike[str] | None = None,
    kspon_dir: str | os.PathLike[str] | None = None,
    common_voice_dir: str | os.PathLike[str] | None = None,
    etri_dir: str | os.PathLike[str] | None = None,
    skip_bad: bool = False,
    kspon_transcript: str = "phonetic",
) -> BuildOptions:
    """The builder options of ``export`` and ``prepare``: folders resolved; raises
    ``SourceError`` when ``data_dir`` is not a folder."""

    def path(value: str | os.PathLike[str] | None) -> Path | None:
        return None if value is None else Path(value).expanduser().resolve()

    options = BuildOptions(
        data_dir=Path(data_dir).expanduser().resolve(),
        metadata_dir=path(metadata_dir),
        zeroth_dir=path(zeroth_dir),
        kspon_dir=path(kspon_dir),
        common_voice_dir=path(common_voice_dir),
        etri_dir=path(etri_dir),
        skip_bad=skip_bad,
        kspon_transcript=kspon_transcript,
    )
    if not options.data_dir.is_dir():
        raise SourceError(
            f"--data-dir {str(data_dir)!r} is not a folder",
            expected="the KoALA root (ASR/, SQA/, ..., audio/, audio_noise/)",
            fix="pass --data-dir pointing at the downloaded benchmark",
        )
    return options


def export(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    configs: list[str] | None = None,
    *,
    skip_bad: bool = False,
    metadata_dir: str | os.PathLike[str] | None = None,
    zeroth_dir: str | os.PathLike[str] | None = None,
    kspon_dir: str | os.PathLike[str] | None = None,
    common_voice_dir: str | os.PathLike[str] | None = None,
    etri_dir: str | os.PathLike[str] | None = None,
    kspon_transcript: str = "phonetic",
    max_shard_size: str | int = DEFAULT_MAX_SHARD_SIZE,
    force: bool = False,
) -> ExportResult:
    """Export ``configs`` (default: every config whose sources are present) to ``out``.

    ``configs`` may name several configs per item (``"a,b"``, ``"a, b"``). Raises
    :class:`ExportError` when ``out`` is refused (among the sources, a file, or holding files
    the exporter did not write, unless ``force``) or a write fails, and ``SourceError`` /
    ``UnknownConfigError`` for bad input."""
    from datasets.utils.py_utils import convert_file_size_to_int
    from tqdm.auto import tqdm

    options = build_options(
        data_dir,
        metadata_dir=metadata_dir,
        zeroth_dir=zeroth_dir,
        kspon_dir=kspon_dir,
        common_voice_dir=common_voice_dir,
        etri_dir=etri_dir,
        skip_bad=skip_bad,
        kspon_transcript=kspon_transcript,
    )
    try:
        shard_bytes = convert_file_size_to_int(max_shard_size)
    except (ValueError, TypeError):
        raise ExportError(
            f"--max-shard-size {max_shard_size!r} is not a size",
            fix="give bytes or a number with a unit: 500MB, 1GB, 200MiB",
            code=2,
        ) from None
    registry = load_registry()
    result = ExportResult(Path(out).expanduser().resolve())
    names = _split_names(configs)
    if names:
        wanted = [get_config(c).name for c in names]  # unknown names fail here
    else:
        wanted = []
        for name, spec in registry.items():
            if available(spec, options):
                wanted.append(name)
            else:
                result.skipped_configs.append(name)
        if result.skipped_configs:
            logger.info(
                "sources not found for %d configs, not exported: %s (looked in %s; defaults: %s)",
                len(result.skipped_configs),
                ", ".join(result.skipped_configs),
                options.data_dir,
                DEFAULT_DIRS,
            )
        if not wanted:
            raise SourceError(
                "no config has its sources under the data dir",
                source=options.data_dir,
                expected="the KoALA metadata folders (ASR/, SQA/, ...) or a corpus folder",
                fix="pass --data-dir (and --metadata-dir / --zeroth-dir / ... when elsewhere)",
            )
    to_build: list[str] = []
    for name in dict.fromkeys(wanted):
        for member in _members(registry[name]):
            if member not in to_build:
                to_build.append(member)
    sources = {
        flag: value
        for flag, value in (
            ("--data-dir", options.data_dir),
            ("--metadata-dir", options.metadata_dir),
            ("--zeroth-dir", options.zeroth_dir),
            ("--kspon-dir", options.kspon_dir),
            ("--common-voice-dir", options.common_voice_dir),
            ("--etri-dir", options.etri_dir),
        )
        if value is not None
    }
    _check_out(result.out, sources, to_build, force)
    try:
        result.out.mkdir(parents=True, exist_ok=True)
        _clean_stale(result.out)
        reports = _load_reports(result.out)
        write_card(result.out, reports)  # the folder is marked the exporter's before any data
    except OSError as exc:
        raise _write_failed(exc, result.out, None, False, registry) from None
    for name in tqdm(to_build, desc="export", unit="config"):
        logger.info("building %s", name)
        placed = False
        try:
            n_rows, report = _build_one(name, result.out, options, shard_bytes)
            placed = True
            result.rows[name] = n_rows
            result.reports[name] = report
            reports[name] = report
            for union in wanted:
                if registry[union].union and name in _members(registry[union]):
                    members = _members(registry[union])
                    reports[union] = _merge_reports(union, [reports.get(m, {}) for m in members])
            _save_reports(result.out, reports)
            write_card(result.out, reports)
        except OSError as exc:
            raise _write_failed(exc, result.out, name, placed, registry) from None
        logger.info("%s: %d rows -> %s", name, n_rows, result.out / "data" / name)
    for name in wanted:
        if registry[name].union:
            result.rows[name] = sum(result.rows.get(m, 0) for m in _members(registry[name]))
    return result


def _merge_reports(name: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"config": name, "rows": {}, "fixes": {}, "skipped": 0}
    for part in parts:
        merged["rows"].update(part.get("rows", {}))
        merged["fixes"].update(part.get("fixes", {}))
        merged["skipped"] += int(part.get("skipped", 0))
    return merged


def push_to_hub(out: Path, repo_id: str, private: bool = False) -> str:
    """Upload the export folder to the Hub as a dataset repository (huggingface-hub)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(out),
        repo_id=repo_id,
        repo_type="dataset",
        ignore_patterns=[f"{TMP_PREFIX}*", f"**/{TMP_PREFIX}*"],
        commit_message="koala-bench export",
    )
    return str(info)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the sources are: the options ``export`` and ``prepare`` share."""
    parser.add_argument("--metadata-dir", help="KoALA metadata folders (default: --data-dir)")
    for kind, default in DEFAULT_DIRS.items():
        flag = {"ksponspeech": "kspon"}.get(kind, kind).replace("_", "-")
        parser.add_argument(f"--{flag}-dir", help=f"{kind} corpus (default: DATA_DIR/{default})")
    parser.add_argument(
        "--kspon-transcript",
        choices=("phonetic", "spelling"),
        default="phonetic",
        help="side of KsponSpeech's dual transcripts (default: %(default)s)",
    )


def source_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`export` / :func:`koala.prepare.prepare` that
    :func:`add_source_arguments` (and ``--skip-bad``) give on the command line."""
    return {
        "skip_bad": args.skip_bad,
        "metadata_dir": args.metadata_dir,
        "zeroth_dir": args.zeroth_dir,
        "kspon_dir": args.kspon_dir,
        "common_voice_dir": args.common_voice_dir,
        "etri_dir": args.etri_dir,
        "kspon_transcript": args.kspon_transcript,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``koala-bench export``."""
    parser.add_argument("--data-dir", required=True, help="the KoALA root: metadata + audio/")
    parser.add_argument(
        "--out",
        required=True,
        help="folder to write the Parquet export to: new, or one koala-bench export wrote "
        "(outside --data-dir)",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        metavar="NAME",
        help="configs to export, space or comma separated (default: every config whose "
        "sources are found)",
    )
    parser.add_argument("--skip-bad", action="store_true", help="skip bad rows, log and count")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a README.md, export_report.json or data/<config> in --out that "
        "koala-bench export did not write (its card carries a marker line)",
    )
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="then upload to this Hub repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    add_source_arguments(parser)
    parser.add_argument(
        "--max-shard-size",
        default=DEFAULT_MAX_SHARD_SIZE,
        metavar="SIZE",
        help="largest Parquet shard, in bytes or with a unit: KB, MB, GB (powers of 1000) or "
        "KiB, MiB, GiB (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``koala-bench export``; returns the exit code (0 done, 1 a write failed, 2 bad
    input or a refused ``--out``)."""
    try:
        result = export(
            args.data_dir,
            args.out,
            args.configs,
            **source_arguments(args),
            max_shard_size=args.max_shard_size,
            force=getattr(args, "force", False),
        )
    except ExportError as exc:
        print(f"koala-bench export: error: {exc}", file=sys.stderr)
        return exc.code
    except (SourceError, UnknownConfigError) as exc:
        print(f"koala-bench export: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. a builder option the config does not allow
        print(f"koala-bench export: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read or write failure not tied to one config
        print(f"koala-bench export: error: {exc}", file=sys.stderr)
        return 1
    skipped = sum(int(r.get("skipped", 0)) for r in result.reports.values())
    for name, n in result.rows.items():
        print(f"{name}: {n} rows")
    print(f"wrote {result.out} ({len(result.rows)} configs; {skipped} bad rows skipped)")
    if args.push_to_hub:
        print(push_to_hub(result.out, args.push_to_hub, private=args.private))
    return 0
