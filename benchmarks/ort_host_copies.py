"""ONNX Runtime's host<->device copies on CUDA: pageable numpy (OrtValue.update_inplace) vs pinned staging
(torch page-locked tensors bound by pointer, what ``OnnxRuntimeRunner`` uses when torch has CUDA), and the
calibration model's inference as a plain IOBinding run vs a CUDA graph replay (issue 16, section 1).

    python benchmarks/ort_host_copies.py [--shape 1,5,1860,2880] [--rounds 30] [--json out.json]

The default shape is CalibrationStatusClassification's full-size input (5 channels at 1860x2880, float32,
107 MB). Needs onnxruntime-gpu and a CUDA torch; on a machine without them it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _ms(fn, rounds, warmup=3, sync=None):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(rounds):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append((time.perf_counter() - t) * 1e3)
    return {"median": statistics.median(out), "p90": float(np.percentile(out, 90)), "rounds": rounds}


def _graph(path, shape):
    """A small conv net on ``shape`` (the input copy dominates; the compute is there to capture)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = shape[1]
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, c, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], strides=[4, 4], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [shape[0], 8, 1, 1])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def cuda_ort_missing() -> str:
    """Why this machine cannot run the CUDA measurements ('' when it can)."""
    try:
        import onnxruntime as ort
        import torch
    except ImportError as exc:
        return str(exc)
    if not torch.cuda.is_available() or "CUDAExecutionProvider" not in ort.get_available_providers():
        return "needs a CUDA torch and onnxruntime-gpu (CUDAExecutionProvider)"
    return ""


def cuda_script_args(argv, description):
    """The ORT CUDA scripts' command line (--shape, --rounds, --json), with the project importable; None, after
    saying why, where this machine cannot run them."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--shape", default="1,5,1860,2880")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--json", default=None)
    ns = p.parse_args(argv)
    why_not = cuda_ort_missing()
    if why_not:
        print(f"skipped: {why_not}")
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    return ns


def main(argv=None) -> int:
    ns = cuda_script_args(argv, __doc__.split("\n\n")[0])
    if ns is None:
        return 0
    import onnxruntime as ort
    import torch

    from pytest_autoware_deploy.backends.onnxruntime import OnnxRuntimeRunner

    shape = tuple(int(s) for s in ns.shape.split(","))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    sync = torch.cuda.synchronize
    results = {"shape": list(shape), "megabytes": x.nbytes / 1e6, "device": torch.cuda.get_device_name(0),
               "onnxruntime": ort.__version__}
    dev = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    results["h2d_pageable_ortvalue_ms"] = _ms(lambda: dev.update_inplace(x), ns.rounds, sync=sync)
    pinned = torch.from_numpy(x).pin_memory()
    target = torch.empty(shape, device="cuda:0")
    results["h2d_pinned_torch_ms"] = _ms(lambda: target.copy_(pinned, non_blocking=True), ns.rounds, sync=sync)
    with tempfile.TemporaryDirectory() as tmp:
        runner = OnnxRuntimeRunner(_graph(str(Path(tmp) / "m.onnx"), shape), "cuda:0")
        with runner:
            phases = runner.phases({"x": x})
            results["runner_host_memory"] = runner.host_memory
            results["runner_h2d_ms"] = _ms(phases["h2d"], ns.rounds, sync=sync)
            results["runner_compute_ms"] = _ms(phases["compute"], ns.rounds, sync=sync)
            graph = runner.graph_call({"x": x})
            if isinstance(graph, str):
                results["cuda_graph"] = graph
            else:
                results["cuda_graph_replay_ms"] = _ms(graph, ns.rounds, sync=sync)
    print(json.dumps(results, indent=2))
    if ns.json:
        Path(ns.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
