"""``koala-bench demo``: the main job on the embedded mini benchmark."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="where the demo writes its run")


def run(args: argparse.Namespace) -> int:
    print(
        "koala-bench demo: PLACEHOLDER. The runner, models and mini benchmark are not built yet "
        "(issue 4); nothing was evaluated. The metrics already work: see README 'Metrics'."
    )
    return 0
