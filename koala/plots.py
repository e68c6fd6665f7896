"""Matplotlib without a display, and saving a figure atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["plt", "save"]


def plt() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save(fig: Any, path: Path) -> None:
    """Write ``fig`` as PNG to ``path`` (a temporary file renamed into place) and close it."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
    plt().close(fig)
