"""CenterPoint's host code per step, numpy reference vs the PyTorch path, at full size (issue 16).

    .venv/bin/python benchmarks/lidar_host.py [--spec deploy_specs/centerpoint_full.py] [--rounds 20] [--json out.json]

The host code between and around the two ONNX stages (models/centerpoint/pipeline.py) on one sweep with
the spec's ``pipeline.kwargs`` (centerpoint_full.py: ±122.4 m, 0.24 m pillars, a 1020² canvas, 32 points
x 96000 pillars at most, top 500 -> circle NMS). The sweep is a synthetic ray-cast scene rendered at the
spec's range with a 128-ring lidar (``--rings``, ``--azimuth-step``): ≈200k points, a full-size sweep.
The stages are not run: the encoder's output and the head maps are random tensors of their real shapes
(heatmap logits around the spec's init bias, so hundreds of candidates reach the circle NMS).

Paths, each timed per step (median / p90 over ``--rounds`` after ``--warmup``; CUDA steps synchronised):

- ``numpy``: the CPU reference;
- ``torch:<device>``: the PyTorch path on the CPU and, when torch sees one, on CUDA, as the pipeline runs
  it today: sweep to the device, ``feed->host`` / ``canvas->host`` are the copies at the stage boundary
  (the runners take numpy arrays), ``pillars->dev`` brings the encoder's output back;
- the ``device-only`` total leaves those boundary copies out: what a core hook letting ``call_stage``
  take device tensors would give.

Both paths' outputs are compared for equality on every run (the tests do it properly; this is a guard).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_autoware_deploy.bench.measure import finish, format_table, load_average  # noqa: E402

DEFAULT_SPEC = ROOT / "deploy_specs" / "centerpoint_full.py"
BOUNDARY_STEPS = ("feed->host", "pillars->dev", "canvas->host")


def make_inputs(cfg, rings, azimuth_step, seed):
    """A full-size sweep at the spec's range, and random stage outputs of the spec's model's shapes."""
    from pytest_autoware_deploy.models.centerpoint.pipeline import CenterPointPipeline
    from pytest_autoware_deploy.models.lidar_common.synthetic import random_scene, render

    kwargs = dict(cfg["pipeline"]["kwargs"])
    kwargs.pop("host_device", None)
    host = CenterPointPipeline(**kwargs, host_device="numpy")
    rng = np.random.default_rng(seed)
    max_range = float(host.pcr[3])
    points = render(random_scene(rng, max_range), rng, max_range, rings=rings, azimuth_step=azimuth_step)[0]
    mkw = cfg["model"]["kwargs"]
    channels = int(mkw["pfn_channels"][-1])
    num_classes, init_bias = int(mkw["num_classes"]), float(mkw.get("init_bias", -2.19))
    factor = int(kwargs["out_size_factor"])
    h, w = host.ny // factor, host.nx // factor
    heads = {"heatmap": rng.normal(init_bias, 1.0, (1, num_classes, h, w)).astype(np.float32)}
    for name, c in (("reg", 2), ("height", 1), ("dim", 3), ("rot", 2), ("vel", 2)):
        heads[name] = rng.normal(0, 1, (1, c, h, w)).astype(np.float32)
    return host, points, channels, heads


class Timer:
    def __init__(self, sync):
        self.sync, self.times = sync, {}

    def step(self, name, fn, *args, **kwargs):
        self.sync()
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.sync()
        self.times.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
        return out


def run_numpy(t, host, points, pillars_fn, heads):
    from pytest_autoware_deploy.models.centerpoint.pipeline import decode_centerpoint
    from pytest_autoware_deploy.models.lidar_common.voxelize import pillar_features, scatter, voxelize

    pts = points[:, host.use_dims]
    vox = t.step("voxelize", voxelize, pts, host.voxel_size, host.pcr, host.max_points, host.max_voxels)
    feats = t.step("decorate", pillar_features, *vox, host.voxel_size, host.pcr)
    pillars = pillars_fn(len(feats))
    canvas = t.step("scatter", scatter, pillars, vox[2], host.nx, host.ny)
    dets = t.step("decode+nms", decode_centerpoint, heads, **host.decode_kwargs)
    return feats, canvas, dets


def run_torch(t, host, points, pillars_fn, heads, device):
    import torch

    from pytest_autoware_deploy.models.centerpoint.pipeline import decode_centerpoint
    from pytest_autoware_deploy.models.lidar_common.host_device import on_device, stage_feed
    from pytest_autoware_deploy.models.lidar_common.voxelize_torch import (pillar_features_torch, scatter_torch,
                                                                           voxelize_torch)

    pts = t.step("points->dev", on_device, points, device)
    pts = pts[:, torch.tensor(host.use_dims, device=device)]
    vox = t.step("voxelize", voxelize_torch, pts, host.voxel_size, host.pcr, host.max_points, host.max_voxels)
    feats_dev = t.step("decorate", pillar_features_torch, *vox, host.voxel_size, host.pcr)
    feats = t.step("feed->host", stage_feed, {"input_features": feats_dev})["input_features"]
    pillars = t.step("pillars->dev", on_device, pillars_fn(len(feats)), device)
    canvas_dev = t.step("scatter", scatter_torch, pillars, vox[2], host.nx, host.ny)
    canvas = t.step("canvas->host", stage_feed, {"spatial_features": canvas_dev})["spatial_features"]
    dets = t.step("decode+nms", decode_centerpoint, heads, **host.decode_kwargs, device=device)
    return feats, canvas, dets


def summarise(times, rounds):
    rows = {}
    for name, values in times.items():
        v = np.asarray(values[-rounds:])
        rows[name] = {"median": float(np.median(v)), "p90": float(np.percentile(v, 90))}
    per_round = [sum(vals[i] for vals in times.values()) for i in range(-rounds, 0)]
    rows["total"] = {"median": float(np.median(per_round)), "p90": float(np.percentile(per_round, 90))}
    inner = [sum(vals[i] for k, vals in times.items() if k not in BOUNDARY_STEPS + ("points->dev",))
             for i in range(-rounds, 0)]
    if any(k in times for k in BOUNDARY_STEPS):
        rows["device-only total"] = {"median": float(np.median(inner)), "p90": float(np.percentile(inner, 90))}
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(DEFAULT_SPEC))
    ap.add_argument("--rings", type=int, default=128)
    ap.add_argument("--azimuth-step", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--devices", default="auto", help="comma-separated torch devices; auto: cpu, and cuda if any")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    load_before = load_average()

    import torch

    from pytest_autoware_deploy.spec.model_config import read_config

    # the config as written (_base_ merged): only pipeline.kwargs and model.kwargs are read, so the script
    # runs where the package is importable but not installed (no family registry needed)
    cfg = read_config(Path(args.spec), "spec")
    host, points, channels, heads = make_inputs(cfg, args.rings, args.azimuth_step, args.seed)
    rng = np.random.default_rng(1)
    pillar_bank = rng.normal(0, 1, (host.max_voxels, 1, channels)).astype(np.float32)

    def pillars_fn(n):  # the encoder's output (V, 1, C), a fixed array per voxel count
        return pillar_bank[:n]

    if args.devices == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    paths = {"numpy": None, **{f"torch:{d}": torch.device(d) for d in devices}}
    results, reference = {}, None
    for label, device in paths.items():
        sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
        t = Timer(sync)
        for _ in range(args.warmup + args.rounds):
            if device is None:
                out = run_numpy(t, host, points, pillars_fn, heads)
            else:
                out = run_torch(t, host, points, pillars_fn, heads, device)
        if reference is None:
            reference = out
            num_voxels, num_dets = len(out[0]), len(out[2]["scores"])
        else:
            same = (np.array_equal(reference[0], out[0]) and np.array_equal(reference[1], out[1])
                    and all(np.array_equal(reference[2][k], out[2][k]) for k in reference[2]))
            if not same:
                raise SystemExit(f"{label}: outputs differ from the numpy reference")
        results[label] = summarise(t.times, args.rounds)

    steps = ["points->dev", "voxelize", "decorate", "feed->host", "pillars->dev", "scatter", "canvas->host",
             "decode+nms", "total", "device-only total"]
    rows = [[s] + [(f"{results[p][s]['median']:.2f} / {results[p][s]['p90']:.2f}" if s in results[p] else "-")
                   for p in paths] for s in steps]
    print(f"spec {Path(args.spec).name}: {len(points)} points, {num_voxels} pillars (max {host.max_voxels} x "
          f"{host.max_points}), canvas {host.ny}x{host.nx}, heatmap {tuple(heads['heatmap'].shape)}, "
          f"{num_dets} boxes after NMS; ms median / p90 over {args.rounds} rounds")
    print(format_table(["step"] + list(paths), rows))
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
    result = {"spec": str(args.spec), "points": int(len(points)), "pillars": int(num_voxels),
              "detections": int(num_dets), "rounds": args.rounds, "warmup": args.warmup,
              "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
              "paths": results, "threads": torch.get_num_threads(), "median_of": "per-round sums for totals"}
    finish(result, args.json, load_before, ROOT)
    return result


if __name__ == "__main__":
    main()
