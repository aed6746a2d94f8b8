"""Why ONNX Runtime's CUDA-graph replay timed slower than its plain IOBinding call (docs/gpu-results.md, session 5):
the same small conv graph timed under several capture protocols, each replay's output checked against the plain run,
and the CUDA activity of a few replays listed (torch.profiler sees ONNX Runtime's kernels and copies through CUPTI).

    python benchmarks/ort_cuda_graph_probe.py [--shape 1,5,1860,2880] [--rounds 30] [--json out.json]

Protocols:
  plain          IOBinding on device buffers (what ``latency_ms`` times)
  runner         ``OnnxRuntimeRunner.graph_call`` as the plugin does it
  fresh_ptr      a new session with ``enable_cuda_graph``, inputs/outputs bound by pointer (torch tensors), no
                 ``session.run`` before the bound runs
  fresh_ortvalue the same with ONNX Runtime's own device OrtValues (the documented pattern)
  after_run      like fresh_ptr but one plain ``session.run`` with host numpy first (what ``_bound`` does)
Needs onnxruntime-gpu and a CUDA torch; elsewhere it says so and exits 0.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ort_host_copies import _graph, cuda_script_args  # noqa: E402  (the same small conv graph)


def _per_call_ms(fn, n, sync):
    out = []
    for _ in range(n):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        out.append(round((time.perf_counter() - t) * 1e3, 3))
    return out


def _summary(times):
    return {"median": statistics.median(times), "p90": float(np.percentile(times, 90)), "n": len(times)}


def _profile(fn, torch, n=3):
    """CUDA kernels and copies of ``n`` calls, aggregated by name (count, total device ms)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        dev_us = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if dev_us:
            rows.append({"name": e.key[:80], "count": e.count, "device_ms": round(dev_us / 1e3, 3)})
    return sorted(rows, key=lambda r: -r["device_ms"])[:12]


def main(argv=None) -> int:
    ns = cuda_script_args(argv, __doc__.split("\n\n")[0])
    if ns is None:
        return 0
    import onnxruntime as ort
    import torch

    from pytest_autoware_deploy.backends.onnxruntime import OnnxRuntimeRunner, providers_for

    shape = tuple(int(s) for s in ns.shape.split(","))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    sync = torch.cuda.synchronize
    res = {"shape": list(shape), "device": torch.cuda.get_device_name(0), "onnxruntime": ort.__version__,
           "torch": torch.__version__, "protocols": {}}

    def record(name, call, read, expected):
        first = _per_call_ms(call, 6, sync)  # regular runs, capture, first replays
        steady = _per_call_ms(call, ns.rounds, sync)
        got = read()
        entry = {"first_calls_ms": first, "steady_ms": _summary(steady),
                 "max_abs_diff_vs_plain": float(np.abs(got - expected).max())}
        try:
            entry["profile_3_calls"] = _profile(call, torch)
        except Exception as exc:  # profiler without CUPTI
            entry["profile_3_calls"] = f"unavailable: {exc}"
        res["protocols"][name] = entry
        print(name, json.dumps({k: v for k, v in entry.items() if k != "profile_3_calls"}), flush=True)

    def graph_session(path):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        providers = providers_for("cuda:0", True)
        providers[0] = (providers[0][0], dict(providers[0][1], enable_cuda_graph="1"))
        return ort.InferenceSession(path, sess_options=opts, providers=providers)

    def bind_ptr(session, out_shape, plain_run_first):
        if plain_run_first:
            session.run(None, {"x": x})
        xin = torch.from_numpy(x).to("cuda:0")
        yout = torch.empty(out_shape, device="cuda:0")
        b = session.io_binding()
        b.bind_input("x", "cuda", 0, np.float32, list(xin.shape), xin.data_ptr())
        b.bind_output("y", "cuda", 0, np.float32, list(yout.shape), yout.data_ptr())
        keep = (xin, yout, b)
        return (lambda: session.run_with_iobinding(b)), (lambda: yout.cpu().numpy()), keep

    with tempfile.TemporaryDirectory() as tmp:
        path = _graph(str(Path(tmp) / "m.onnx"), shape)
        runner = OnnxRuntimeRunner(path, "cuda:0")
        with runner:
            expected = np.asarray(runner.infer({"x": x})["y"])
            out_shape = expected.shape
            phases = runner.phases({"x": x})
            phases["h2d"]()
            record("plain", phases["compute"], lambda: np.asarray(phases["d2h"]()[0]), expected)
            graph = runner.graph_call({"x": x})
            if isinstance(graph, str):
                res["protocols"]["runner"] = graph
            else:
                outs = graph.bound
                record("runner", graph, lambda: np.asarray(outs["d2h"]()[0]), expected)
            for name, first in (("fresh_ptr", False), ("after_run", True)):
                try:
                    call, read, keep = bind_ptr(graph_session(path), out_shape, first)
                    record(name, call, read, expected)
                except Exception as exc:
                    res["protocols"][name] = f"failed: {str(exc).splitlines()[0]}"
            try:
                session = graph_session(path)
                xv = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
                yv = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, np.float32, "cuda", 0)
                b = session.io_binding()
                b.bind_ortvalue_input("x", xv)
                b.bind_ortvalue_output("y", yv)
                record("fresh_ortvalue", lambda: session.run_with_iobinding(b), lambda: yv.numpy(), expected)
            except Exception as exc:
                res["protocols"]["fresh_ortvalue"] = f"failed: {str(exc).splitlines()[0]}"
    if ns.json:
        Path(ns.json).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
