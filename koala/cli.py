"""The ``koala-bench`` command line.

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their subcommand runs, so
``koala-bench --help`` stays fast and a missing optional extra only breaks its own command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("koala.demo", "run the whole path on the embedded mini benchmark"),
    "mini": ("koala.mini", "build the embedded mini benchmark source tree (espeak-ng)"),
    "run": ("koala.runner", "run a model over configs into a resumable run directory"),
    "check": (
        "koala.check",
        "check that a model's answers depend on the audio (own clip, silence, another clip)",
    ),
    "merge": (
        "koala.merge",
        "join the run folders of one model (the shards of run --shard K/N) into one",
    ),
    "score": ("koala.score", "score a run directory with the evaluate modules"),
    "report": ("koala.report", "write results.json, results.md and plots for run directories"),
    "compare": (
        "koala.compare",
        "is model A really better than B: paired intervals, McNemar and Holm per config",
    ),
    "import": (
        "koala.import_logs",
        "turn lmms-eval or inspect_ai per-sample logs into a run folder (score/report/compare)",
    ),
    "export": (
        "koala.export",
        "write the benchmark as Parquet shards + a dataset card (load_dataset, no remote code)",
    ),
    "prepare": (
        "koala.prepare",
        'prepare configs for load_dataset("koala-bench", CONFIG), offline, from any folder',
    ),
    "metrics": (
        "koala.metrics_install",
        'install the evaluate modules for evaluate.load("koala/<name>"), offline',
    ),
    "publish": (
        "koala.publish",
        "upload the export (dataset) or the evaluate modules (Spaces) to the Hub",
    ),
}


#: the exit status of a usage error (a bad option or argument), for every command: argparse's
#: own is 2, which ``koala-bench run`` uses for "nothing could be answered"
USAGE_ERROR = 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, exiting :data:`USAGE_ERROR` on a usage error (argparse exits 2).

    Subcommand parsers are made by the same class, so every ``koala-bench`` command shares
    the rule; the modules' own ``main`` functions (``python -m koala.runner``) use it too."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="koala-bench",
        description="KoALa-Bench: Korean speech understanding and faithfulness of audio LMs",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``koala-bench`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
