"""Writing a synthetic split as one compressed ``.npz``, atomically (a reader never sees half a file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def savez_atomic(out, name: str, **arrays) -> Path:
    """``<out>/<name>`` (created with its folder) from ``arrays``; returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path
