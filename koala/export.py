"""``koala-bench export``: the benchmark as Parquet shards plus a dataset card.

::

    koala-bench export --data-dir /data/KoALA --out koala_parquet [--configs pa_qa sqa ...]
                       [--skip-bad] [--push-to-hub user/koala-bench]

writes, per config, ``OUT/data/<config>/test-00000-of-0000N.parquet`` (audio embedded as WAV
bytes, so the folder is self-contained) and ``OUT/README.md``: the dataset card filled from
``dataset_card/README.md`` with YAML ``configs:`` (data files per config) and
``dataset_info:`` (features, row counts), the licence table and the known defects. Then, on
datasets 4/5 and without remote code::

    load_dataset("koala_parquet", "pa_qa", split="test")          # or streaming=True

A config that unites subsets (``sqa``) is not written twice: its ``data_files`` list the shards
of its subset configs (same schema, with the ``subset`` column).

Nothing is half-written: each config is built into a hidden temporary folder inside ``OUT``
(``.koala-tmp-*``, which ``load_dataset`` ignores) and renamed into place only when complete;
the card is rewritten (atomically) after each config, listing only complete configs. An
interrupted export leaves the previous state, or no trace of the config it was building.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koala.builder.generate import DEFAULT_DIRS, FIX_DESCRIPTIONS, BuildOptions
from koala.builder.registry import ConfigSpec, UnknownConfigError, get_config, load_registry
from koala.sources import SourceError

__all__ = ["ExportResult", "add_arguments", "available", "export", "run"]

logger = logging.getLogger("koala.export")

TMP_PREFIX = ".koala-tmp-"
REPORT_FILE = "export_report.json"
REPO_ROOT = Path(__file__).resolve().parent.parent


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
    """The dataset card template (``dataset_card/README.md``)."""
    for candidate in (
        Path(os.environ.get("KOALA_DATASET_CARD", "")),
        REPO_ROOT / "dataset_card" / "README.md",
    ):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError(
        "dataset_card/README.md not found; set KOALA_DATASET_CARD or use a source checkout"
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
    for stale in out.glob(f"{TMP_PREFIX}*"):
        logger.info("removing %s left by an interrupted export", stale)
        shutil.rmtree(stale, ignore_errors=True)


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


ROW_GROUP_ROWS = 100  # rows per Parquet row group: small reads when streaming audio


def _parquet_options(schema: Any) -> dict[str, Any]:
    """Writer options: audio bytes are stored uncompressed, without dictionary or statistics
    (PCM does not compress and min/max of audio mean nothing); the rest is snappy."""
    audio_leaves = {f"{f.name}.bytes" for f in schema if str(f.type).startswith("struct<bytes")}
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


def _write_parquet(
    rows: Any, features: Any, folder: Path, max_shard_size: int, name: str
) -> list[Path]:
    """Write ``rows`` as Parquet shards in ``folder`` (row groups of ROW_GROUP_ROWS rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    schema = features.arrow_schema
    options = _parquet_options(schema)
    shards: list[Path] = []
    writer = None
    written = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal writer, written
        if not batch:
            return
        if writer is None or written >= max_shard_size:
            if writer is not None:
                writer.close()
            shards.append(folder / f"shard-{len(shards):05d}.parquet")
            writer = pq.ParquetWriter(str(shards[-1]), schema, **options)
            written = 0
        table = pa.Table.from_pylist(batch, schema=schema)
        writer.write_table(table, row_group_size=len(batch))
        written += table.nbytes
        batch.clear()

    try:
        for _key, row in tqdm(rows, desc=name, unit=" rows", leave=False):
            batch.append(row)
            if len(batch) >= ROW_GROUP_ROWS:
                flush()
        flush()
    finally:
        if writer is not None:
            writer.close()
    if not shards:  # a config with no rows still gets one (empty) shard with its schema
        shards.append(folder / "shard-00000.parquet")
        pq.write_table(schema.empty_table(), str(shards[-1]))
    return shards


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
    """(Re)write ``out/README.md`` for the configs complete in ``out`` (atomic)."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

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
    card = DatasetCard(f"---\n{card_data.to_yaml()}\n---\n{body}")
    dest = out / "README.md"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f"{TMP_PREFIX}card-", suffix=".md")
    os.close(fd)
    try:
        Path(tmp).write_text(str(card), encoding="utf-8")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def _load_reports(out: Path) -> dict[str, dict[str, Any]]:
    path = out / REPORT_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            logger.warning("%s is not valid JSON; starting a new report", path)
    return {}


def _save_reports(out: Path, reports: dict[str, dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f"{TMP_PREFIX}report-", suffix=".json")
    os.close(fd)
    try:
        Path(tmp).write_text(json.dumps(reports, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, out / REPORT_FILE)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
    max_shard_size: str | int = "500MB",
) -> ExportResult:
    """Export ``configs`` (default: every config whose sources are present) to ``out``."""
    from tqdm.auto import tqdm

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
    registry = load_registry()
    result = ExportResult(Path(out).expanduser().resolve())
    if configs:
        wanted = [get_config(c).name for c in configs]  # unknown names fail here
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
    for name in wanted:
        for member in _members(registry[name]):
            if member not in to_build:
                to_build.append(member)
    result.out.mkdir(parents=True, exist_ok=True)
    _clean_stale(result.out)
    reports = _load_reports(result.out)
    for name in tqdm(to_build, desc="export", unit="config"):
        logger.info("building %s", name)
        n_rows, report = _build_one(name, result.out, options, max_shard_size)
        result.rows[name] = n_rows
        result.reports[name] = report
        reports[name] = report
        for union in wanted:
            if registry[union].union and name in _members(registry[union]):
                members = _members(registry[union])
                reports[union] = _merge_reports(union, [reports.get(m, {}) for m in members])
        _save_reports(result.out, reports)
        write_card(result.out, reports)
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``koala-bench export``."""
    parser.add_argument("--data-dir", required=True, help="the KoALA root: metadata + audio/")
    parser.add_argument("--out", required=True, help="folder to write the Parquet export to")
    parser.add_argument(
        "--configs",
        nargs="+",
        metavar="NAME",
        help="configs to export (default: every config whose sources are found)",
    )
    parser.add_argument("--skip-bad", action="store_true", help="skip bad rows, log and count")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="then upload to this Hub repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument("--metadata-dir", help="KoALA metadata folders (default: --data-dir)")
    for kind, default in DEFAULT_DIRS.items():
        flag = {"ksponspeech": "kspon"}.get(kind, kind).replace("_", "-")
        parser.add_argument(f"--{flag}-dir", help=f"{kind} corpus (default: DATA_DIR/{default})")
    parser.add_argument(
        "--kspon-transcript",
        choices=("phonetic", "spelling"),
        default="phonetic",
        help="side of KsponSpeech's dual transcripts",
    )
    parser.add_argument("--max-shard-size", default="500MB", help="Parquet shard size")


def run(args: argparse.Namespace) -> int:
    """Run ``koala-bench export``; returns the exit code."""
    try:
        result = export(
            args.data_dir,
            args.out,
            args.configs,
            skip_bad=args.skip_bad,
            metadata_dir=args.metadata_dir,
            zeroth_dir=args.zeroth_dir,
            kspon_dir=args.kspon_dir,
            common_voice_dir=args.common_voice_dir,
            etri_dir=args.etri_dir,
            kspon_transcript=args.kspon_transcript,
            max_shard_size=args.max_shard_size,
        )
    except (SourceError, UnknownConfigError) as exc:
        print(f"koala-bench export: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. a builder option the config does not allow
        print(f"koala-bench export: error: {exc}", file=sys.stderr)
        return 2
    skipped = sum(int(r.get("skipped", 0)) for r in result.reports.values())
    for name, n in result.rows.items():
        print(f"{name}: {n} rows")
    print(f"wrote {result.out} ({len(result.rows)} configs; {skipped} bad rows skipped)")
    if args.push_to_hub:
        print(push_to_hub(result.out, args.push_to_hub, private=args.private))
    return 0
