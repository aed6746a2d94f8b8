"""Harness overhead: the latency the plugin reports for backend ``onnx`` vs a bare ONNX Runtime loop.

    .venv/bin/python benchmarks/harness_overhead.py [--json out.json] [--pairs 6] [--rounds 1000]

In ONE process, alternating blocks (A B B A ...) so that a drift of the shared machine's speed
cancels out:

- plugin: ``pytest.main([... --deploy-config=SPEC -k 'latency and onnx' --benchmark-json=...])`` in
  this process, i.e. test_latency through pytest-benchmark; its ``extra_info.latency_ms`` is what
  the plugin reports (and what ``deploy_report.json`` gets);
- raw: ``onnxruntime.InferenceSession.run`` on the same ONNX file (the cached export the plugin's
  runner loads), same input (the spec's example input), same session options (ORT's default
  thread count, as the plugin uses outside xdist), the same warm-up calls and timed rounds, each
  round timed with ``time.perf_counter`` like pytest-benchmark's default timer.

Every block gets a fresh session on both sides (the plugin makes one per pytest session).
Ratio plugin/raw of the median and of p95, per pair of blocks; the goal is a median ratio <= 1.03.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_autoware_deploy.bench.measure import (finish, abba_order, format_table,  # noqa: E402
                                                  load_average, pair_ratios, summarize)

DEFAULT_SPEC = ROOT / "deploy_specs" / "calibration_status_classification.py"
GOAL_MEDIAN_RATIO = 1.03


def plugin_block(args, work_dir: Path, json_path: Path, log) -> tuple[dict, list[float]]:
    """One in-process pytest run of test_latency[...-onnx]; returns (extra_info.latency_ms, raw data in s)."""
    import pytest

    argv = ["-p", "no:cacheprovider", "-q", f"--deploy-config={args.spec}", f"--deploy-work-dir={work_dir}",
            "--deploy-cfg-options", f"benchmark.warmup={args.warmup}", f"benchmark.rounds={args.rounds}",
            "-k", "latency and onnx", f"--benchmark-json={json_path}"]
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        rc = pytest.main(argv)
    if rc != 0:
        raise SystemExit(f"pytest exited with {rc}; see {log.name}")
    doc = json.loads(json_path.read_text())
    [bench] = [b for b in doc["benchmarks"] if b["fullname"].split("::")[-1].startswith("test_latency[")
               and b["extra_info"].get("backend") == "onnx"]
    return bench["extra_info"]["latency_ms"], bench["stats"]["data"]


def raw_block(onnx_path: Path, feed: dict, warmup: int, rounds: int) -> list[float]:
    """A bare loop over a fresh session: max(warmup, 1) untimed calls, then ``rounds`` timed ones."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 0  # ORT's default, as OnnxRuntimeRunner outside pytest-xdist
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    run = session.run
    for _ in range(max(warmup, 1)):
        run(None, feed)
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        run(None, feed)
        out.append(time.perf_counter() - start)
    return out


def stats_ms(data_s) -> dict:
    t = np.asarray(data_s) * 1e3
    return {"median": float(np.median(t)), "p95": float(np.percentile(t, 95)), "mean": float(t.mean()),
            "min": float(t.min()), "rounds": int(t.size)}


def example_feed(spec_path, work_dir):
    """The input test_latency times: the spec's example input (runtime_io.sample_idx at the opt shape)."""
    from pytest_autoware_deploy.report.store import ReportStore
    from pytest_autoware_deploy.session import SpecState
    from pytest_autoware_deploy.spec.load import load_spec

    spec = load_spec(spec_path, work_dir=work_dir)
    return spec, SpecState(spec, ReportStore()).example_inputs()


def plugin_onnx_file(spec, work_dir: Path) -> Path:
    """The cached export the plugin's onnx runner loads: the cache entry of the report's ``export_key``."""
    from pytest_autoware_deploy.export.cache import ArtifactCache

    report = json.loads((work_dir / "deploy_report.json").read_text())
    key = report["specs"][spec.name]["export_key"]
    return ArtifactCache(spec.artifact_dir() / "cache").entry("onnx", key) / "model.onnx"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(DEFAULT_SPEC))
    ap.add_argument("--work-dir", default=str(ROOT / "work_dirs" / "benchmarks" / "harness_overhead"),
                    help="plugin work dir (export cache, pytest log, per-block benchmark JSON)")
    ap.add_argument("--pairs", type=int, default=6, help="pairs of (plugin, raw) blocks, ABBA order")
    ap.add_argument("--warmup", type=int, default=50, help="untimed calls per block (benchmark.warmup)")
    ap.add_argument("--rounds", type=int, default=1000, help="timed calls per block (benchmark.rounds)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    load_before = load_average()
    args.spec = str(Path(args.spec).resolve())
    args.json = args.json and str(Path(args.json).resolve())
    work_dir = Path(args.work_dir).resolve()
    os.chdir(ROOT)  # pytest.main finds the project's rootdir and ini here
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "pytest.log"

    with open(log_path, "w") as log:
        # Untimed priming run: exports the ONNX into the work dir's cache, imports everything.
        plugin_block(argparse.Namespace(**{**vars(args), "warmup": 1, "rounds": 5}), work_dir,
                     work_dir / "prime.json", log)
        spec, feed = example_feed(args.spec, work_dir)
        onnx_path = plugin_onnx_file(spec, work_dir)

        blocks = {"plugin": [], "raw": []}
        for i, who in enumerate(abba_order(args.pairs, "plugin", "raw")):
            if who == "plugin":
                reported, data = plugin_block(args, work_dir, work_dir / f"block{i}.json", log)
                entry = {"block": i, "reported_ms": reported, "data_ms": stats_ms(data)}
            else:
                data = raw_block(onnx_path, feed, args.warmup, args.rounds)
                entry = {"block": i, "data_ms": stats_ms(data)}
            entry["_data"] = data
            blocks[who].append(entry)
            print(f"block {i}: {who:6s} median {entry['data_ms']['median']:.4f} ms", file=sys.stderr)

    plugin_median = [b["reported_ms"]["median"] for b in blocks["plugin"]]
    plugin_p95 = [b["reported_ms"]["p95"] for b in blocks["plugin"]]
    raw_median = [b["data_ms"]["median"] for b in blocks["raw"]]
    raw_p95 = [b["data_ms"]["p95"] for b in blocks["raw"]]
    pooled_plugin = stats_ms([t for b in blocks["plugin"] for t in b.pop("_data")])
    pooled_raw = stats_ms([t for b in blocks["raw"] for t in b.pop("_data")])
    median_ratio = summarize(pair_ratios(plugin_median, raw_median))
    p95_ratio = summarize(pair_ratios(plugin_p95, raw_p95))

    rows = []
    for k in range(args.pairs):
        p, r = blocks["plugin"][k], blocks["raw"][k]
        rows.append([k, f"{p['reported_ms']['median']:.4f}", f"{r['data_ms']['median']:.4f}",
                     f"{plugin_median[k] / raw_median[k]:.3f}", f"{p['reported_ms']['p95']:.4f}",
                     f"{r['data_ms']['p95']:.4f}", f"{plugin_p95[k] / raw_p95[k]:.3f}"])
    rows.append(["pooled", f"{pooled_plugin['median']:.4f}", f"{pooled_raw['median']:.4f}",
                 f"{pooled_plugin['median'] / pooled_raw['median']:.3f}", f"{pooled_plugin['p95']:.4f}",
                 f"{pooled_raw['p95']:.4f}", f"{pooled_plugin['p95'] / pooled_raw['p95']:.3f}"])
    print(f"\nHarness overhead: {spec.name}, backend onnx on CPU, {args.pairs} pairs of blocks (ABBA), "
          f"{args.warmup} warm-up + {args.rounds} timed calls per block\n")
    print(format_table(["pair", "plugin med ms", "raw med ms", "ratio", "plugin p95 ms", "raw p95 ms", "ratio"],
                       rows))
    ok = median_ratio["median"] <= GOAL_MEDIAN_RATIO
    print(f"\nmedian ratio plugin/raw: {median_ratio['median']:.3f} (pairs {median_ratio['min']:.3f}-"
          f"{median_ratio['max']:.3f}; goal <= {GOAL_MEDIAN_RATIO}: {'met' if ok else 'MISSED'})")
    print(f"p95 ratio plugin/raw:    {p95_ratio['median']:.3f} (pairs {p95_ratio['min']:.3f}-{p95_ratio['max']:.3f})")

    result = {"benchmark": "harness_overhead", "spec": spec.name, "backend": "onnx",
              "onnx_file": str(onnx_path), "input_shapes": {k: list(v.shape) for k, v in feed.items()},
              "pairs": args.pairs, "warmup": args.warmup, "rounds": args.rounds, "order": "ABBA",
              "blocks": blocks, "pooled": {"plugin": pooled_plugin, "raw": pooled_raw},
              "median_ratio": median_ratio, "p95_ratio": p95_ratio, "goal_median_ratio": GOAL_MEDIAN_RATIO,
              "goal_met": ok, "pytest_log": str(log_path)}
    return finish(result, args.json, load_before, ROOT)


if __name__ == "__main__":
    main()
