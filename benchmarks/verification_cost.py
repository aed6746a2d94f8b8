"""What streaming verification costs: seconds test_agreement / test_batch_invariance add to a plain run.

    .venv/bin/python benchmarks/verification_cost.py [--spec SPEC] [--pairs 2] [--policies auto,fp16] [--json out.json]

A plain run is ``-k test_accuracy`` with ``export.verify=False`` (every backend evaluated on every sample,
the evaluation's agreement hook off); the verifying run adds ``test_agreement`` (the hook: the reference's
kept outputs compared with each backend's, per sample) and ``test_batch_invariance``. Both run as fresh
pytest processes on the same warm artifact cache (one untimed warm-up run builds the export and derived
graphs first), in ABBA order so that a drift of the shared machine's speed cancels out; wall seconds per
process and pytest's own ``--durations`` numbers per test are reported. Two whole runs differ by more than
the cost on a shared machine, so the number to read is ``added_s``: the evaluation hook's own time (timed
around each call, in-process) plus the new tests' durations. Not a test: performance is never asserted in the suite.

    .venv/bin/python benchmarks/verification_cost.py --islands [--depths 8,32,128] [--json out.json]

measures the fp32-islands search (issue 13 §3) instead: on a chain of ``depth`` Linear+Add layers with one
fp16-hostile cancellation planted in the middle, the search (verify/islands.py) with real trial graphs (the
project's fp16 conversion, the fp16 emulation, ONNX Runtime) on 8 samples: trials, seconds, seconds per
trial, the nodes found; and through the plugin, the seconds a failing ``test_agreement`` spends searching
(the plant project of tests/test_plugin_verify.py, ``precision.islands.enabled`` True vs False, ABBA).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / "deploy_specs" / "calibration_status_classification.py"
PLAIN = "test_accuracy"
VERIFYING = "test_accuracy or test_agreement or test_batch_invariance"
_DURATION = re.compile(r"^\s*([\d.]+)s (call|setup|teardown)\s+\S+::(\S+)")


def run(args, work_dir: Path, keyword: str) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-disable",
           f"--deploy-config={args.spec}", f"--deploy-work-dir={work_dir}", "-k", keyword,
           "--durations=0", "--durations-min=0.0"]
    options = [f"precision.policies={args.policies.split(',')!r}"] if args.policies else []
    if keyword == PLAIN:  # no verification at all: the evaluation hook does nothing
        options.append("export.verify=False")
    if options:
        cmd += ["--deploy-cfg-options", *options]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit(f"pytest -k '{keyword}' exited with {proc.returncode}")
    tests: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        m = _DURATION.match(line)
        if m:
            tests[m.group(3)] = tests.get(m.group(3), 0.0) + float(m.group(1))
    return {"wall_s": wall, "tests_s": tests}


def hook_seconds(args, work_dir: Path) -> dict:
    """In this process: the verifying run once more, with the evaluation hook timed (perf_counter around each
    call). Machine drift between two runs does not enter this number: it is the hook's own time."""
    import contextlib
    import io

    import pytest

    from pytest_autoware_deploy import session

    spent = {"calls": 0, "s": 0.0}
    original = session.on_evaluated_sample

    def timed(*a, **kw):
        start = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            spent["calls"] += 1
            spent["s"] += time.perf_counter() - start

    session.on_evaluated_sample = timed
    argv = ["-p", "no:cacheprovider", "-q", "--benchmark-disable", f"--deploy-config={args.spec}",
            f"--deploy-work-dir={work_dir}", "-k", VERIFYING]
    if args.policies:
        argv += ["--deploy-cfg-options", f"precision.policies={args.policies.split(',')!r}"]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = pytest.main(argv)
    finally:
        session.on_evaluated_sample = original
    if rc != 0:
        raise SystemExit(f"in-process pytest exited with {rc}")
    return {"hook_calls": spent["calls"], "hook_s": round(spent["s"], 3)}


def _chain_onnx(depth: int, path: Path):
    """``depth`` residual blocks ``x + 0.1 relu(linear(x))``; block depth//2 adds and subtracts 2048 (fp16-hostile)."""
    import warnings

    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cancel):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.cancel = cancel

        def forward(self, x):
            y = x + 0.1 * torch.relu(self.fc(x))  # residual: a planted error survives the blocks after it
            return (y + 2048.0) - 2048.0 if self.cancel else y

    torch.manual_seed(0)
    model = nn.Sequential(*[Block(i == depth // 2) for i in range(depth)]).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(4, 16),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    return path


def islands_search_cost(depth: int, tmp: Path) -> dict:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from pytest_autoware_deploy.export.precision import skip_fp16_round_trips
    from pytest_autoware_deploy.verify.fp16_emulation import emulate_fp16
    from pytest_autoware_deploy.verify.islands import search_islands
    from pytest_autoware_deploy.verify.islands_state import candidate_nodes

    base = _chain_onnx(depth, tmp / f"chain{depth}.onnx")
    feeds = [np.random.default_rng(i).standard_normal((4, 16)).astype(np.float32) for i in range(8)]
    ref = ort.InferenceSession(str(base), providers=["CPUExecutionProvider"])
    want = [ref.run(None, {"x": f})[0] for f in feeds]

    def graph(nodes):
        model = convert_float_to_float16(onnx.load(str(base)), keep_io_types=True, node_block_list=list(nodes))
        skip_fp16_round_trips(model)
        return model

    def passes(nodes):
        emulated, _ = emulate_fp16(graph(nodes))
        sess = ort.InferenceSession(emulated.SerializeToString(), providers=["CPUExecutionProvider"])
        return all(np.allclose(sess.run(None, {"x": f})[0], w, atol=2e-2, rtol=2e-2) for f, w in zip(feeds, want))

    pure = tmp / f"chain{depth}.fp16.onnx"
    onnx.save(graph([]), str(pure))
    cands = candidate_nodes(base, pure, "fp16")
    start = time.perf_counter()
    result = search_islands(cands, passes, max_trials=200)
    seconds = time.perf_counter() - start
    return {"depth": depth, "candidates": len(cands), "trials": result.trials, "found": result.nodes,
            "seconds": round(seconds, 3), "s_per_trial": round(seconds / max(result.trials, 1), 4)}


def plugin_islands_cost(pairs: int, tmp: Path) -> dict:
    """Wall seconds of a failing fp16 test_agreement on the plant project with and without the search."""
    sys.path.insert(0, str(ROOT))
    from tests.test_plugin_verify import plant_spec

    spec = plant_spec(tmp / "plant", "cancel", extra="precision = dict(policies=['fp16'])")

    def once(enabled: bool) -> float:
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-disable",
               f"--deploy-config={spec}", "-k", "agreement", "--deploy-cfg-options",
               f"precision.islands.enabled={enabled}"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=spec.parent, capture_output=True, text=True)
        if "1 failed" not in proc.stdout:
            raise SystemExit(f"the plant run did not fail as planted:\n{proc.stdout[-3000:]}")
        return time.perf_counter() - start

    once(True)  # warm-up: export and every trial graph cached
    runs = {True: [], False: []}
    for enabled in [e for _ in range(pairs) for e in (False, True, True, False)]:
        runs[enabled].append(once(enabled))
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"plain_failure_s": round(med(runs[False]), 3), "with_search_s": round(med(runs[True]), 3),
            "added_s": round(med(runs[True]) - med(runs[False]), 3), "runs": {str(k): v for k, v in runs.items()}}


def islands_main(args):
    with tempfile.TemporaryDirectory(prefix="islands_cost_") as tmp:
        chains = [islands_search_cost(int(d), Path(tmp)) for d in args.depths.split(",")]
        for c in chains:
            print(f"depth {c['depth']:4d}: {c['candidates']:4d} candidates, {c['trials']:3d} trials, "
                  f"{c['seconds']:7.2f} s ({c['s_per_trial']:.3f} s/trial), found {c['found']}", flush=True)
        plugin = plugin_islands_cost(args.pairs, Path(tmp))
    summary = {"chains": chains, "plugin_plant": plugin}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--islands", action="store_true", help="measure the fp32-islands search instead")
    parser.add_argument("--depths", default="8,32,128")
    parser.add_argument("--spec", default=str(DEFAULT_SPEC))
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--policies", default="", help="comma-separated precision.policies (default: the spec's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.islands:
        return islands_main(args)
    with tempfile.TemporaryDirectory(prefix="verification_cost_") as tmp:
        work_dir = Path(tmp)
        run(args, work_dir, VERIFYING)  # warm-up: export, derived graphs, emulated fp16 graph cached
        results = {"plain": [], "verifying": []}
        order = [k for _ in range(args.pairs) for k in ("plain", "verifying", "verifying", "plain")][:2 * args.pairs]
        for kind in order:
            results[kind].append(run(args, work_dir, PLAIN if kind == "plain" else VERIFYING))
            print(f"{kind:10s} {results[kind][-1]['wall_s']:7.2f} s", flush=True)
        hook = hook_seconds(args, work_dir)
    plain = sorted(r["wall_s"] for r in results["plain"])
    verifying = sorted(r["wall_s"] for r in results["verifying"])
    med = lambda xs: xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2  # noqa: E731
    added = {name: round(sum(r["tests_s"].get(name, 0.0) for r in results["verifying"]) / len(results["verifying"]), 3)
             for r0 in results["verifying"] for name in r0["tests_s"]
             if name.startswith(("test_agreement", "test_batch_invariance"))}
    summary = {"spec": args.spec, "policies": args.policies or None, "pairs": args.pairs,
               "plain_wall_s": med(plain), "verifying_wall_s": med(verifying),
               "added_wall_s": round(med(verifying) - med(plain), 3), "new_tests_s": added, **hook,
               "added_s": round(hook["hook_s"] + sum(added.values()), 3),
               "accuracy_tests_s": {name: round(sum(r["tests_s"].get(name, 0.0) for r in results["plain"]) /
                                                len(results["plain"]), 3)
                                    for name in results["plain"][0]["tests_s"]}}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
