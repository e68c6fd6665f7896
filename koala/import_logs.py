"""``koala-bench import lmms-eval LOG_DIR --out RUN_DIR`` and ``koala-bench import inspect LOG
--out RUN_DIR``: a harness's per-sample logs as a koala-bench run, so ``koala-bench score``,
``report`` and ``compare`` work on them (SCF and PA-QA segments included)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["HARNESSES", "add_arguments", "import_logs", "main", "run"]

# harness -> module with ``read_logs(path, **options) -> (model, records, source)``
HARNESSES: dict[str, str] = {
    "lmms-eval": "koala.integrations.lmms_eval_import",
    "inspect": "koala.integrations.inspect_import",
}
#: harness -> the ``read_logs`` options it takes (``run``: lmms-eval runs to read; ``epoch``:
#: the inspect epoch to import)
OPTIONS: dict[str, tuple[str, ...]] = {"lmms-eval": ("run",), "inspect": ("epoch",)}


def import_logs(
    harness: str, path: str, out: str, model: str | None = None, **options: Any
) -> dict[str, Any]:
    """Read ``path`` (the harness's log folder or file) and write the run folder ``out``;
    ``model`` overrides the model name the logs give; ``options`` (``None`` values ignored)
    go to the harness's reader (:data:`OPTIONS`)."""
    from koala.integrations.run_writer import write_run

    if harness not in HARNESSES:
        raise ValueError(f"unknown harness {harness!r}; use one of {sorted(HARNESSES)}")
    given = {k: v for k, v in options.items() if v is not None}
    wrong = sorted(set(given) - set(OPTIONS[harness]))
    if wrong:
        raise ValueError(f"--{', --'.join(wrong)}: not an option of the {harness} import")
    reader = importlib.import_module(HARNESSES[harness])
    logged_model, records, source = reader.read_logs(path, **given)
    return write_run(out, model or logged_model, records, source=source)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("harness", choices=sorted(HARNESSES), help="which harness wrote the logs")
    parser.add_argument(
        "path",
        help="lmms-eval: the --output_path folder of a run with --log_samples; inspect: an "
        ".eval or .json log file (or a folder of them)",
    )
    parser.add_argument("--out", required=True, help="run folder to write (new, or an import)")
    parser.add_argument("--model", default=None, help="model name (default: the logs' own)")
    parser.add_argument(
        "--run",
        default=None,
        help="lmms-eval: the run(s) to read, by date (<date>_samples_...) or the path of one "
        "of their files, comma separated (needed when several runs answer one task)",
    )
    parser.add_argument(
        "--epoch",
        type=int,
        default=None,
        help="inspect: the epoch to import (needed when the logs hold several)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        got = import_logs(
            args.harness,
            args.path,
            args.out,
            args.model,
            run=getattr(args, "run", None),
            epoch=getattr(args, "epoch", None),
        )
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"koala-bench import: {exc}", file=sys.stderr)
        return 1
    print(
        f"imported {got['records']} records of {len(got['configs'])} configs "
        f"({', '.join(got['configs'])}) into {args.out}; status {got['status']}",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from koala.cli import ArgumentParser

    parser = ArgumentParser(prog="koala-bench import", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
