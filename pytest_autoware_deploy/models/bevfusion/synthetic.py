"""The family's synthetic split: the shared lidar scenes (``lidar_common/synthetic.py``), val seed."""

from __future__ import annotations

from pathlib import Path


def write_demo_split(out_dir: Path, frames: int):
    """Write ``frames`` deterministic val sweeps under ``out_dir``; returns the spec key to override and the
    info file (the bundled specs read ``../data/synthetic/lidar/info_val.pkl``, the same scenes)."""
    from ..lidar_common.synthetic import SEEDS, write_split

    return "runtime_io.info_pkl", Path(write_split(Path(out_dir), "val", int(frames), SEEDS["val"]))
