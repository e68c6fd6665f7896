"""``koala-bench metrics``: make ``evaluate.load("koala/<name>")`` work offline, from any folder.

::

    koala-bench metrics install [NAME ...] [--namespace koala]
    koala-bench metrics list

``evaluate.load("koala/scf")`` resolves a ``namespace/name`` id to the Hub (the Space
``koala/scf``) and, when that fails (offline, or no such Space), falls back to its modules
cache: the most recently modified ``<HF_MODULES_CACHE>/evaluate_modules/metrics/koala--scf/
<hash>/scf.py`` (``evaluate.loading.CachedEvaluationModuleFactory``; ``<hash>`` is 64 hex
digits). ``install`` copies this package's modules there, under the hash ``evaluate`` itself
computes for the script (``evaluate.loading.files_to_hash``), with the ``__init__.py`` files
the import needs and the metric card. It is idempotent (an installed hash is left alone), and a
package whose module changed installs a new hash and removes the ones it installed before
(hash folders it did not write, such as a download from the Hub, are kept). With network and a
published Space, ``evaluate`` loads the Hub version first, as it intends.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import shutil
import sys
import uuid
from pathlib import Path

__all__ = [
    "METRIC_NAMES",
    "CacheNotWritableError",
    "UnknownMetricError",
    "add_arguments",
    "check_namespace",
    "install_metrics",
    "metric_dir",
    "modules_cache",
    "run",
]

# every evaluate module the package ships (metrics/<name>/<name>.py + README.md)
METRIC_NAMES = (
    "korean_cer",
    "choice_accuracy",
    "scf",
    "segment_accuracy",
    "korean_translation",
    "llm_judge",
)
DEFAULT_NAMESPACE = "koala"
MARKER = "koala_install.json"  # in each hash folder this command wrote


class UnknownMetricError(ValueError):
    """A module name the package does not ship; the message lists the modules."""


class CacheNotWritableError(OSError):
    """The modules cache cannot be written; the message names the folder and the fix."""


def check_namespace(namespace: str) -> str:
    """``namespace`` when ``<namespace>/<name>`` is a valid Hub id (``huggingface_hub``'s own
    rule: letters, digits, ``-``, ``_``, ``.``; no ``--`` or ``..``, no path separator), else
    ``ValueError``: the namespace becomes a folder name of the cache, so ``../..`` would write
    outside it."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        if not namespace or "/" in namespace:
            raise HFValidationError("one path component expected")
        validate_repo_id(f"{namespace}/{METRIC_NAMES[0]}")
    except HFValidationError as exc:
        raise ValueError(
            f"--namespace {namespace!r} is not a Hub namespace (letters, digits, '-', '_', '.'; "
            f"no '--' or '..'): {exc}"
        ) from None
    return namespace


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("koala-bench")
    except PackageNotFoundError:
        return "0+unknown"


def check_name(name: str) -> str:
    """``name`` (or ``koala/<name>``) as a module name; :class:`UnknownMetricError` listing
    the modules otherwise."""
    bare = name.split("/", 1)[1] if name.count("/") == 1 else name
    if bare in METRIC_NAMES:
        return bare
    close = difflib.get_close_matches(bare, METRIC_NAMES, n=2, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise UnknownMetricError(
        f"unknown evaluate module {name!r}: {hint}the modules are "
        + ", ".join(f"koala/{n}" for n in METRIC_NAMES)
    )


def metric_dir(name: str) -> Path:
    """The folder of module ``name`` in the installed package (``koala_metrics/<name>``), or
    ``metrics/<name>`` beside the ``koala`` package in a source checkout."""
    name = check_name(name)
    spec = importlib.util.find_spec("koala_metrics")  # a namespace package: no __init__.py
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    roots.append(Path(__file__).resolve().parent.parent / "metrics")
    for root in roots:
        if (root / name / f"{name}.py").is_file():
            return root / name
    raise FileNotFoundError(f"{name}.py is not in the installed koala-bench; reinstall it")


def modules_cache() -> Path:
    """``<HF_MODULES_CACHE>/evaluate_modules/metrics``: where ``evaluate`` keeps (and, offline,
    finds) the metric scripts it loaded from the Hub."""
    from evaluate import config

    root = Path(os.environ.get("HF_MODULES_CACHE") or config.HF_MODULES_CACHE).expanduser()
    return root / config.MODULE_NAME_FOR_DYNAMIC_MODULES / "metrics"


def _touch_init(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").touch(exist_ok=True)


def install_metrics(
    names: list[str] | None = None,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    cache: str | os.PathLike[str] | None = None,
) -> dict[str, dict[str, object]]:
    """Install modules ``names`` (default: all) into ``evaluate``'s modules cache as
    ``<namespace>/<name>``. Returns, per name, ``{"status": "installed" | "current",
    "path": <the installed script>, "hash": <64 hex>, "removed": [<older hash folders>]}``."""
    from filelock import FileLock

    namespace = check_namespace(namespace)
    wanted = [check_name(n) for n in (names or METRIC_NAMES)]
    metrics_root = Path(cache) if cache is not None else modules_cache()
    try:
        _touch_init(metrics_root.parent)  # evaluate_modules/
        _touch_init(metrics_root)  # evaluate_modules/metrics/
        # one install at a time: two at once would replace each other's hash folders
        with FileLock(str(metrics_root / ".koala-install.lock")):
            return _install(wanted, namespace, metrics_root)
    except PermissionError as exc:
        raise CacheNotWritableError(
            f"cannot write evaluate's modules cache {metrics_root} ({exc.strerror}: "
            f"{exc.filename}); set HF_MODULES_CACHE (or HF_HOME) to a writable folder"
        ) from exc


def _install(names: list[str], namespace: str, metrics_root: Path) -> dict[str, dict[str, object]]:
    from evaluate.loading import files_to_hash

    version = _version()
    result: dict[str, dict[str, object]] = {}
    for name in names:
        source = metric_dir(name) / f"{name}.py"
        digest = files_to_hash([str(source)])
        home = metrics_root / f"{namespace}--{name}"
        _touch_init(home)
        target = home / digest
        script = target / f"{name}.py"
        status = "current"
        if not (script.is_file() and script.read_bytes() == source.read_bytes()):
            status = "installed"
            tmp = home / f".koala-tmp-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                (tmp / "__init__.py").touch()
                shutil.copyfile(source, tmp / f"{name}.py")
                card = source.parent / "README.md"
                if card.is_file():
                    shutil.copyfile(card, tmp / "README.md")
                meta = {"original file path": str(source), "local file path": str(script)}
                (tmp / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")
                (tmp / MARKER).write_text(
                    json.dumps({"package_version": version, "module": name, "hash": digest}),
                    encoding="utf-8",
                )
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        removed = []
        for other in sorted(home.iterdir()):
            if other != target and other.is_dir() and (other / MARKER).is_file():
                shutil.rmtree(other)
                removed.append(other.name)
        result[name] = {"status": status, "path": str(script), "hash": digest, "removed": removed}
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``koala-bench metrics``."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    inst = sub.add_parser(
        "install",
        help="copy the evaluate modules into evaluate's modules cache (offline "
        "evaluate.load('koala/<name>') from any folder)",
    )
    inst.add_argument("names", nargs="*", metavar="NAME", help="modules (default: all)")
    inst.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE, help="the id's namespace (%(default)s)"
    )
    sub.add_parser("list", help="the modules this package ships")


def run(args: argparse.Namespace) -> int:
    """Run ``koala-bench metrics``; 0 done, 1 bad input (an unknown module, a namespace that
    is not a Hub namespace) or a cache that cannot be written (the message says which)."""
    if args.action == "list":
        for name in METRIC_NAMES:
            print(f"koala/{name}\t{metric_dir(name)}")
        return 0
    try:
        done = install_metrics(args.names, namespace=args.namespace)
    except (UnknownMetricError, ValueError, CacheNotWritableError) as exc:
        print(f"koala-bench metrics: error: {exc}", file=sys.stderr)
        return 1
    for name, info in done.items():
        removed = f" (replaced {len(info['removed'])} older)" if info["removed"] else ""
        print(f"{args.namespace}/{name}: {info['status']}{removed} {info['path']}")
    return 0
