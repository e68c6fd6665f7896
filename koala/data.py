"""Where a run's rows come from: an export folder (Parquet + dataset card) or a Hub id, loaded
with ``datasets`` and its audio left undecoded until a request needs it; a KoALA source tree is
recognised and refused with the command that exports it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from koala.models import (
    Audio,
    as_audio,
)

log = logging.getLogger(__name__)

DATA_ENV = "KOALA_BENCH_DATA"


def _card_configs(root: Path) -> list[Any] | None:
    """The YAML ``configs:`` block of the dataset card ``root/README.md`` (the block
    ``load_dataset(root, config)`` reads); ``None`` when there is no such block."""
    import yaml

    readme = root / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    # libyaml's parser when PyYAML has it: the full export's card (60 kB) took 0.38 s to
    # parse in pure Python, once per config of a run
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        meta = yaml.load(text.split("---", 2)[1], Loader=loader) or {}  # a safe loader
    except yaml.YAMLError as exc:
        raise ValueError(f"{readme}: the YAML header does not parse: {exc}") from None
    configs = meta.get("configs") if isinstance(meta, Mapping) else None
    return configs if isinstance(configs, list) else None


def _local_data_files(root: Path, config: str) -> list[str] | None:
    """The test-split files of ``config`` per the YAML ``configs:`` block of ``root/README.md``
    (the block ``load_dataset(root, config)`` reads); ``None`` when there is no such block."""
    import glob

    readme = root / "README.md"
    configs = _card_configs(root)
    if configs is None:
        return None
    names = [c.get("config_name") for c in configs if isinstance(c, Mapping)]
    entry = next(
        (c for c in configs if isinstance(c, Mapping) and c.get("config_name") == config), None
    )
    if entry is None:
        raise ValueError(f"{readme}: no config {config!r}; the export has {names}")
    spec = entry.get("data_files")
    if isinstance(spec, Mapping):
        spec = [{"split": k, "path": v} for k, v in spec.items()]
    if isinstance(spec, str | list) and not (
        isinstance(spec, list) and spec and isinstance(spec[0], Mapping)
    ):
        spec = [{"split": "test", "path": spec}]
    if not isinstance(spec, list):
        raise ValueError(f"{readme}: config {config!r} has no data_files")
    splits = {str(d.get("split", "train")): d.get("path") for d in spec if isinstance(d, Mapping)}
    patterns = splits.get("test", next(iter(splits.values())) if len(splits) == 1 else None)
    if patterns is None:
        raise ValueError(f"{readme}: config {config!r} has no 'test' split (has {list(splits)})")
    files: list[str] = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        files += sorted(glob.glob(str(root / pattern), recursive=True))
    if not files:
        raise ValueError(f"{readme}: config {config!r}: no file matches {patterns!r}")
    return files


# the metadata folders of the published KoALA layout (see koala.sources.koala_meta)
SOURCE_FOLDERS = ("ASR", "SQA", "Instruct", "SCA-QA", "PA-QA", "Translation")


def source_tree_error(data: str) -> str | None:
    """What to say when ``data`` is a KoALA source tree (the published layout: metadata JSONL
    files in ``ASR/``, ``SQA/``, ... and no dataset card with a ``configs:`` block) instead of
    an export; ``None`` otherwise. ``load_dataset`` would read such a folder as one
    ``default`` config ("BuilderConfig 'sqa_click' not found. Available: ['default']")."""
    import shlex

    root = Path(data)
    if not root.is_dir():
        return None
    found = sorted(
        str(f.relative_to(root)) for d in SOURCE_FOLDERS for f in (root / d).glob("*.jsonl")
    )
    if not found:
        return None
    try:
        if _card_configs(root) is not None:  # a card with configs: an export after all
            return None
    except ValueError:  # a broken card: the loader says what is wrong with it
        return None
    out = root.parent / f"{root.resolve().name}_parquet"
    command = shlex.join(["koala-bench", "export", "--data-dir", str(root), "--out", str(out)])
    return (
        f"{root} is a KoALA source tree (the published metadata, e.g. {found[0]}), not an "
        "export: the runner reads Parquet exports. Export it first:\n"
        f"    {command}\n"
        f"then run with --data {shlex.quote(str(out))}"
    )


def load_config(data: str, config: str, limit: int | None = None) -> Any:
    """The ``test`` split of ``config``, with audio columns left undecoded (the runner decodes
    them itself, off the event loop) and the first ``limit`` rows.

    A Hub id goes through ``load_dataset(data, config, split="test")``. For a local export the
    config's Parquet files are read from the README's YAML ``configs:`` block and loaded with
    ``load_dataset("parquet", data_files=...)``: datasets 5.2 keys its cache for
    ``load_dataset(DIR, config)`` on the directory's name and README only, so a re-exported
    directory (or another one with the same name) would silently load the old rows; explicit
    data files are keyed on their paths and modification times.
    """
    import datasets

    root = Path(data)
    refused = source_tree_error(data)
    if refused is not None:
        raise ValueError(refused)
    if root.is_dir():
        files = _local_data_files(root, config)
        if files is not None:
            builder = "parquet" if all(f.endswith(".parquet") for f in files) else None
            if builder is None:
                raise ValueError(f"{root}: config {config!r}: expected Parquet files, got {files}")
            ds = datasets.load_dataset(builder, data_files={"test": files}, split="test")
        else:
            ds = datasets.load_dataset(
                str(root), config, split="test", download_mode="force_redownload"
            )
    else:
        ds = datasets.load_dataset(data, config, split="test")
    for col in audio_columns(ds):
        ds = ds.cast_column(col, datasets.Audio(decode=False))
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


class ParquetRows:
    """The rows of a config's Parquet files, read where they lie, one row group at a time.

    What the runner reads from a local export: no copy into the ``datasets`` cache (a first
    ``load_dataset("parquet", ...)`` writes the whole config there again as Arrow: 6.7 GB for
    the full benchmark), and memory holds one row group (the exporter caps a row group at
    16 MiB of audio). Values are what ``datasets`` gives for the same files with the audio
    columns cast to ``Audio(decode=False)``: plain Python values, audio as
    ``{"bytes", "path"}``. ``limit`` keeps the first ``limit`` rows."""

    def __init__(self, files: Sequence[str], limit: int | None = None) -> None:
        import datasets
        import pyarrow.parquet as pq

        if not files:
            raise ValueError("no Parquet files")
        self.files = [str(f) for f in files]
        self._readers = [pq.ParquetFile(f) for f in self.files]
        schema = self._readers[0].schema_arrow
        for f, r in zip(self.files[1:], self._readers[1:], strict=True):
            if r.schema_arrow.names != schema.names:
                raise ValueError(
                    f"{f}: columns {r.schema_arrow.names} differ from {self.files[0]}'s "
                    f"{schema.names}"
                )
        self.features = datasets.Features.from_arrow_schema(schema)
        self.column_names: list[str] = list(schema.names)
        self.audio_columns = [c for c, f in self.features.items() if isinstance(f, datasets.Audio)]
        # (reader, row group, first row, rows) of every row group in order
        self._groups: list[tuple[int, int, int, int]] = []
        total = 0
        for k, r in enumerate(self._readers):
            for g in range(r.metadata.num_row_groups):
                if limit is not None and total >= limit:
                    break
                n = r.metadata.row_group(g).num_rows
                self._groups.append((k, g, total, n))
                total += n
        self._len = total if limit is None else min(total, limit)
        self._starts = [g[2] for g in self._groups]
        self._cached: tuple[int, tuple[str, ...], Any] | None = None

    def __len__(self) -> int:
        return self._len

    def _group(self, k: int, columns: Sequence[str]) -> Any:
        key = tuple(columns)
        if self._cached is None or self._cached[:2] != (k, key):
            reader, group, _, _ = self._groups[k]
            self._cached = (k, key, self._readers[reader].read_row_group(group, list(columns)))
        return self._cached[2]

    def iter_columns(self, columns: Sequence[str], batch_rows: int = 0) -> Iterator[dict[str, Any]]:
        """Every row's ``columns`` as a dict, in order, one row group in memory at a time
        (``batch_rows`` is :class:`DatasetRows`'; the file's row groups are the batches)."""
        for k, (_, _, first, n) in enumerate(self._groups):
            if first >= self._len:
                return
            table = self._group(k, columns)
            yield from table.slice(0, min(n, self._len - first)).to_pylist()

    def row(self, index: int, columns: Sequence[str]) -> dict[str, Any]:
        """Row ``index``'s ``columns`` (reads its row group unless it was the last one read)."""
        import bisect

        if not 0 <= index < self._len:
            raise IndexError(f"row {index} of {self._len}")
        k = bisect.bisect_right(self._starts, index) - 1
        return self._group(k, columns).slice(index - self._groups[k][2], 1).to_pylist()[0]


class DatasetRows:
    """A ``datasets.Dataset`` (audio columns undecoded) seen as :class:`ParquetRows` is: what
    the runner reads from a Hub id or a caller's own ``loader``."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.features = ds.features
        self.column_names: list[str] = list(ds.column_names)
        self.audio_columns = audio_columns(ds)
        self._selected: dict[tuple[str, ...], Any] = {}

    def __len__(self) -> int:
        return len(self.ds)

    def _select(self, columns: Sequence[str]) -> Any:
        key = tuple(columns)
        if key not in self._selected:
            self._selected[key] = self.ds.select_columns(list(columns))
        return self._selected[key]

    def iter_columns(self, columns: Sequence[str], batch_rows: int = 64) -> Iterator[dict]:
        """Every row's ``columns`` in order (audio columns read from Arrow in batches of
        ``batch_rows`` rows, undecoded)."""
        if any(c in self.audio_columns for c in columns):
            table = self._select(columns).with_format("arrow")
            for start in range(0, len(self.ds), batch_rows):
                yield from table[start : start + batch_rows].to_pylist()
        else:
            yield from self._select(columns)

    def row(self, index: int, columns: Sequence[str]) -> dict[str, Any]:
        return self._select(columns)[index]


RowSource = ParquetRows | DatasetRows


def as_rows(data: Any) -> RowSource:
    """``data`` as a :data:`RowSource` (a ``datasets.Dataset`` is wrapped)."""
    return data if isinstance(data, ParquetRows | DatasetRows) else DatasetRows(data)


def open_rows(data: str, config: str, limit: int | None = None) -> RowSource:
    """The rows the runner reads: a local export's Parquet files where they lie
    (:class:`ParquetRows`), anything else through :func:`load_config`."""
    refused = source_tree_error(data)
    if refused is not None:
        raise ValueError(refused)
    root = Path(data)
    if root.is_dir():
        files = _local_data_files(root, config)
        if files is not None:
            if not all(f.endswith(".parquet") for f in files):
                raise ValueError(f"{root}: config {config!r}: expected Parquet files, got {files}")
            return ParquetRows(files, limit)
    return DatasetRows(load_config(data, config, limit))


def audio_columns(ds: Any) -> list[str]:
    """The columns of ``ds`` that hold audio (``datasets.Audio`` features)."""
    import datasets

    return [c for c, f in (ds.features or {}).items() if isinstance(f, datasets.Audio)]


def decode_audio(value: Any, where: str) -> Audio:
    """Decode an undecoded ``Audio`` value (``{"bytes", "path"}``) with soundfile, falling back
    to the ``datasets`` decoder (torchcodec/FFmpeg); decoded values pass through. Bytes of a
    16-bit PCM mono WAV (what ``koala-bench export`` stores) are not decoded here: the clip
    keeps them (:meth:`koala.models.Audio.from_wav`) and gives its samples when asked, the
    same values soundfile reads."""
    if value is None:
        raise ValueError(f"{where}: no audio (null)")
    if (
        isinstance(value, Mapping)
        and "array" not in value
        and ("bytes" in value or "path" in value)
    ):
        src = value.get("bytes") or value.get("path")
        if not src:
            raise ValueError(f"{where}: audio has neither bytes nor a path")
        if isinstance(src, bytes):
            stored = Audio.from_wav(src)  # 16-bit PCM mono WAV: decoded only if read
            if stored is not None:
                return stored
        try:
            import soundfile as sf

            arr, sr = sf.read(io.BytesIO(src) if isinstance(src, bytes) else src, dtype="float32")
            audio = as_audio((arr.T if arr.ndim == 2 else arr, sr))
        except Exception as sf_exc:
            try:
                import datasets

                decoded = datasets.Audio().decode_example(dict(value))
                audio = as_audio(decoded)
            except Exception as exc:
                raise ValueError(f"{where}: cannot decode audio ({sf_exc}; {exc})") from exc
        assert audio is not None
        return audio
    audio = as_audio(value)
    if audio is None:
        raise ValueError(f"{where}: no audio")
    return audio


def config_names(data: str) -> list[str]:
    """The configs of an export or Hub id (a source tree is refused, see
    :func:`source_tree_error`)."""
    import datasets

    refused = source_tree_error(data)
    if refused is not None:
        raise ValueError(refused)

    return list(datasets.get_dataset_config_names(data))
