"""``koala-bench prepare``: make ``load_dataset("koala-bench", CONFIG)`` work offline, anywhere.

::

    koala-bench prepare --data-dir /data/KoALA [--configs pa_qa sqa ...] [--skip-bad]
    koala-bench prepare --mini [--mini-dir demo_out/mini_source]
    koala-bench prepare --check [CONFIG ...]

``load_dataset("koala-bench", CONFIG)`` asks the Hub for a dataset named ``koala-bench`` and,
when that fails (offline), falls back to the datasets cache
(``datasets.load.CachedDatasetModuleFactory`` and ``datasets.packaged_modules.cache``): the
most recently modified folder ``<HF_DATASETS_CACHE>/koala-bench/<config>/<version>/<hash>/``
whose ``dataset_info.json`` names ``<config>``. Asked without a config, it lists the configs
found under the same ``<version>/<hash>`` ("There are multiple 'koala-bench' configurations in
the cache: ..."); asked for a config it has not, it lists those it has.

``prepare`` writes exactly that: each config is built by the ``KoalaBench`` builder (the
generator the Parquet export runs, so the rows, features and ``_noisy`` configs are those of
the export) into a hidden staging folder of the cache, then renamed into place. Every config
of one package version shares the ``<hash>`` (a digest of the package version and the config
registry), so the config listing sees them all. The Arrow files are the only copy written (no
Parquet in between); a config that unites subsets (``sqa``) is made of hard links to its
subset configs' files. Each folder carries ``koala_prepare.json`` naming the package version
that wrote it: :func:`check_prepared` (``prepare --check``) refuses data a different version
prepared, and a new ``prepare`` replaces it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from koala.builder.generate import BuildOptions
from koala.builder.registry import UnknownConfigError, config_dir, get_config, load_registry
from koala.sources import SourceError

__all__ = [
    "DATASET_NAME",
    "CacheNotWritableError",
    "PrepareResult",
    "PreparedDatasetError",
    "add_arguments",
    "check_prepared",
    "datasets_cache",
    "prepare",
    "prepared_configs",
    "run",
]

logger = logging.getLogger("koala.prepare")

DATASET_NAME = "koala-bench"
#: the exit status of ``prepare --check`` when a config is not prepared by this version
NOT_PREPARED = 3
MARKER = "koala_prepare.json"
SPLIT = "test"


class PreparedDatasetError(RuntimeError):
    """A config that is not prepared, or was prepared by another package version."""


class CacheNotWritableError(OSError):
    """The datasets cache cannot be written; the message names the folder and the fix."""


@dataclass
class PrepareResult:
    """What :func:`prepare` wrote: rows and folder per config."""

    rows: dict[str, int] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    replaced: list[Path] = field(default_factory=list)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("koala-bench")
    except PackageNotFoundError:
        return "0+unknown"


def datasets_cache(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The datasets cache ``load_dataset`` falls back to (``$HF_DATASETS_CACHE``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser().resolve()
    from datasets import config

    return Path(os.environ.get("HF_DATASETS_CACHE") or config.HF_DATASETS_CACHE).expanduser()


def _digest() -> str:
    """The ``<hash>`` folder of this package version: its version and the config registry."""
    h = hashlib.sha256(f"koala-bench {_version()}\n".encode())
    for file in sorted(config_dir().glob("*.yaml")):
        h.update(file.name.encode() + b"\n" + file.read_bytes())
    return h.hexdigest()[:16]


def _folders(root: Path, config: str) -> list[Path]:
    """The prepared folders of ``config``, oldest first (as datasets orders them)."""
    found = [p for p in root.glob(f"{config}/*/*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _marker(folder: Path) -> dict:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def prepared_configs(cache_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The configs prepared in the cache (any package version), sorted."""
    root = datasets_cache(cache_dir) / DATASET_NAME
    return sorted({p.parts[-3] for p in root.glob("*/*/*") if p.is_dir()})


def check_prepared(config: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder ``load_dataset("koala-bench", config)`` reads offline. Raises
    :class:`~koala.builder.registry.UnknownConfigError` (listing the configs) for a name the
    registry does not know, and :class:`PreparedDatasetError` when the config is not prepared
    or when the folder datasets would read was prepared by another package version (named)."""
    name = get_config(config).name
    root = datasets_cache(cache_dir) / DATASET_NAME
    folders = _folders(root, name)
    if not folders:
        have = prepared_configs(cache_dir)
        raise PreparedDatasetError(
            f"config {name!r} of {DATASET_NAME!r} is not prepared in {root}"
            + (f" (prepared: {', '.join(have)})" if have else "")
            + f"; run: koala-bench prepare --data-dir /data/KoALA --configs {name}"
        )
    latest = folders[-1]
    wrote = _marker(latest).get("package_version", "an unknown version")
    if wrote != _version():
        raise PreparedDatasetError(
            f"{latest} (config {name!r}) was prepared by koala-bench {wrote}, but koala-bench "
            f"{_version()} is installed: its rows may differ; run koala-bench prepare again"
        )
    return latest


def _place(built: Path, dest: Path, marker: dict) -> None:
    """Write the marker into ``built`` and move it to ``dest`` (replacing an older one)."""
    (built / MARKER).write_text(json.dumps(marker, ensure_ascii=False), encoding="utf-8")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(built, dest)


def _build(name: str, options: BuildOptions, cache: Path, digest: str) -> tuple[Path, int]:
    """Build config ``name`` into a hidden staging folder of ``cache`` and put it in place."""
    from koala.export import builder_class

    staging = cache / f".koala-tmp-prepare-{uuid.uuid4().hex[:8]}"  # glob('*') skips it
    try:
        kwargs = {
            key: str(value)
            for key in ("metadata_dir", "zeroth_dir", "kspon_dir", "common_voice_dir", "etri_dir")
            if (value := getattr(options, key)) is not None
        }
        builder = builder_class()(
            config_name=name,
            data_dir=str(options.data_dir),
            cache_dir=str(staging),
            dataset_name=DATASET_NAME,
            hash=digest,
            skip_bad=options.skip_bad or None,
            kspon_transcript=options.kspon_transcript,
            **kwargs,
        )
        builder.download_and_prepare()
        built = Path(builder.cache_dir)
        rows = builder.info.splits[SPLIT].num_examples
        dest = cache / DATASET_NAME / name / built.parent.name / digest
        marker = {"package_version": _version(), "config": name, "rows": rows}
        _place(built, dest, marker)
        return dest, rows
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link_union(name: str, members: list[Path], cache: Path, digest: str) -> tuple[Path, int]:
    """The folder of union config ``name``: hard links to its members' Arrow files, renumbered
    as shards in member order (the order of the export's ``data_files``)."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.naming import filenames_for_dataset_split

    files: list[Path] = []
    lengths: list[int] = []
    for folder in members:
        split = DatasetInfo.from_directory(str(folder)).splits[SPLIT]
        shard_lengths = split.shard_lengths or [split.num_examples]
        names = filenames_for_dataset_split(
            str(folder), DATASET_NAME, SPLIT, "arrow", split.shard_lengths
        )
        for file, n in zip(names, shard_lengths, strict=True):
            if Path(file).is_file():
                files.append(Path(file))
                lengths.append(n)
    tmp = cache / DATASET_NAME / f".koala-tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        targets = filenames_for_dataset_split(str(tmp), DATASET_NAME, SPLIT, "arrow", lengths)
        for src, dst in zip(files, targets, strict=True):
            try:
                os.link(src, dst)
            except OSError:  # a file system without hard links: copy
                shutil.copyfile(src, dst)
        info = DatasetInfo.from_directory(str(members[0]))
        info.config_name = name
        info.description = get_config(name).description
        splits = SplitDict(dataset_name=DATASET_NAME)
        n_bytes = sum(f.stat().st_size for f in files)
        splits.add(
            SplitInfo(
                name=SPLIT,
                num_bytes=n_bytes,
                num_examples=sum(lengths),
                shard_lengths=lengths if len(lengths) > 1 else None,
                dataset_name=DATASET_NAME,
            )
        )
        info.splits = splits
        info.dataset_size = n_bytes
        info.write_to_directory(str(tmp))
        version = members[0].parent.name
        dest = cache / DATASET_NAME / name / version / digest
        marker = {"package_version": _version(), "config": name, "rows": sum(lengths)}
        _place(tmp, dest, marker)
        return dest, sum(lengths)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare(
    data_dir: str | os.PathLike[str],
    configs: list[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    skip_bad: bool = False,
    metadata_dir: str | os.PathLike[str] | None = None,
    zeroth_dir: str | os.PathLike[str] | None = None,
    kspon_dir: str | os.PathLike[str] | None = None,
    common_voice_dir: str | os.PathLike[str] | None = None,
    etri_dir: str | os.PathLike[str] | None = None,
    kspon_transcript: str = "phonetic",
) -> PrepareResult:
    """Prepare ``configs`` (default: every config whose sources are under ``data_dir``) where
    ``load_dataset("koala-bench", CONFIG)`` finds them offline. Folders of the same configs
    prepared by another package version are removed. Raises ``UnknownConfigError`` (listing
    the configs) and ``SourceError`` for bad input."""
    from koala.export import _split_names, available, build_options

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
    registry = load_registry()
    names = _split_names(configs)
    if names:
        wanted = [get_config(c).name for c in names]
    else:
        wanted = [n for n, spec in registry.items() if available(spec, options)]
        if not wanted:
            raise SourceError(
                "no config has its sources under the data dir",
                source=options.data_dir,
                expected="the KoALA metadata folders (ASR/, SQA/, ...) or a corpus folder",
                fix="pass --data-dir (and --metadata-dir / --zeroth-dir / ... when elsewhere)",
            )
    cache = datasets_cache(cache_dir)
    try:
        (cache / DATASET_NAME).mkdir(parents=True, exist_ok=True)
        with _exclusive(cache / DATASET_NAME / ".koala-prepare.lock"):
            return _prepare(wanted, registry, options, cache)
    except PermissionError as exc:
        raise CacheNotWritableError(
            f"cannot write the datasets cache {cache} ({exc.strerror}: {exc.filename}); set "
            "HF_DATASETS_CACHE (or HF_HOME) to a writable folder, or pass --cache-dir"
        ) from exc


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold the lock file ``path``; when another ``prepare`` holds it, say so and wait (two at
    once would replace each other's folders while they are being written)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("another koala-bench prepare is writing %s; waiting for it", path.parent)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _prepare(
    wanted: list[str], registry: dict, options: BuildOptions, cache: Path
) -> PrepareResult:
    from koala.export import _members

    digest = _digest()
    result = PrepareResult()
    for name in dict.fromkeys(wanted):
        for member in _members(registry[name]):
            if member not in result.folders:
                logger.info("preparing %s", member)
                result.folders[member], result.rows[member] = _build(member, options, cache, digest)
        if registry[name].union:
            members = [result.folders[m] for m in _members(registry[name])]
            result.folders[name], result.rows[name] = _link_union(name, members, cache, digest)
    for name, folder in result.folders.items():  # another package version's data
        for old in _folders(cache / DATASET_NAME, name):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
                result.replaced.append(old)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``koala-bench prepare``."""
    from koala.export import add_source_arguments

    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--data-dir", help="the KoALA root: metadata + audio/")
    what.add_argument(
        "--mini", action="store_true", help="the embedded mini benchmark (espeak-ng speech)"
    )
    what.add_argument(
        "--check",
        nargs="*",
        metavar="CONFIG",
        help="check that these configs (default: every prepared one) are prepared by this "
        "package version",
    )
    parser.add_argument(
        "--mini-dir",
        help="with --mini: build (or reuse) the mini source tree here (default: a temporary "
        "folder, removed afterwards)",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        metavar="NAME",
        help="configs to prepare, space or comma separated (default: every config whose "
        "sources are found)",
    )
    parser.add_argument("--skip-bad", action="store_true", help="skip bad rows, log and count")
    parser.add_argument("--cache-dir", help="the datasets cache (default: $HF_DATASETS_CACHE)")
    add_source_arguments(parser)


def _check(configs: list[str], cache_dir: str | None) -> int:
    names = configs or prepared_configs(cache_dir)
    if not names:
        print(
            f"koala-bench prepare: error: nothing is prepared in {datasets_cache(cache_dir)}",
            file=sys.stderr,
        )
        return NOT_PREPARED
    bad = 0
    for name in names:
        try:
            print(f"{name}: {check_prepared(name, cache_dir)}")
        except (PreparedDatasetError, UnknownConfigError) as exc:
            print(f"koala-bench prepare: error: {exc}", file=sys.stderr)
            bad += 1
    return NOT_PREPARED if bad else 0


def run(args: argparse.Namespace) -> int:
    """Run ``koala-bench prepare``; 0 done, 1 bad input or a cache that cannot be written (the
    message says which), 3 ``--check``: a config is not prepared by this package version."""
    if args.check is not None:
        return _check(args.check, args.cache_dir)
    from koala.export import source_arguments

    tmp = None
    try:
        data_dir = args.data_dir
        if args.mini:
            from koala.mini import build_mini_tree

            if args.mini_dir:
                data_dir = build_mini_tree(args.mini_dir)
            else:
                tmp = tempfile.mkdtemp(prefix="koala-mini-")
                data_dir = build_mini_tree(Path(tmp) / "mini_source")
        result = prepare(
            data_dir,
            args.configs,
            cache_dir=args.cache_dir,
            **source_arguments(args),
        )
    except (
        SourceError,
        UnknownConfigError,
        ValueError,
        FileExistsError,
        CacheNotWritableError,
    ) as exc:
        print(f"koala-bench prepare: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for name, n in result.rows.items():
        print(f"{name}: {n} rows -> {result.folders[name]}")
    for old in result.replaced:
        print(f"removed {old} (another package version's data)")
    first = next(iter(result.rows))
    print(f'prepared {len(result.rows)} configs: load_dataset("{DATASET_NAME}", "{first}")')
    return 0
