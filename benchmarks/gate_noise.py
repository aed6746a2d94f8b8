"""Latency gate under noise: false alarms over clean re-runs, and the smallest planted slowdown it catches.

    .venv/bin/python benchmarks/gate_noise.py [--json out.json] [--trials 20] [--spec SPEC]

What the plugin's ``test_gate_latency`` does, run many times in one process on the bundled spec (backend
``onnx``, ONNX Runtime CPU, the spec's own benchmark settings: 5 warm-up calls, 30 rounds):

1. a baseline run: a fresh session (``SpecState.runner``), warm-up and timed rounds with the plugin's own loop
   (``bench.latency.plan_rounds`` / ``timings``), written with ``save_baseline`` (raw timings included) and
   read back with ``read_baseline``, as ``--deploy-save-baseline`` / ``--deploy-baseline`` do;
2. ``--trials`` rounds of: one clean re-run and one re-run per planted slowdown (5, 10, 20, 50 %), in a rotated
   order so that a drift of the shared machine's speed hits every kind alike. Each re-run is a fresh session and
   is judged by ``report.baseline.latency_gate`` with the spec's ``gate`` section (statistical gate, extensions
   and confirmation included). ``--plant spin`` (default): a planted slowdown is extra busy work after each call,
   proportional to that call's measured time (``s`` x elapsed), so it scales the distribution by ``1 + s`` without
   changing its shape, and the extra work competes for the cores like real code would. ``--plant scale``:
   each measured timing is multiplied by ``1 + s`` (the gate's statistical power alone, with the real
   run-to-run noise and nothing else).

Reported: false alarms (clean re-runs judged ``regressed``; goal 0), the detection rate per planted slowdown,
and the smallest slowdown caught in every trial (goal: 10 % on CPU), with the extensions each verdict needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_autoware_deploy.bench.measure import finish, format_table, load_average  # noqa: E402

DEFAULT_SPEC = ROOT / "deploy_specs" / "calibration_status_classification.py"
SLOWDOWNS = (0.05, 0.10, 0.20, 0.50)
GOAL_SMALLEST = 0.10


def planted(call, slowdown: float):
    """``call`` made ``1 + slowdown`` times slower: busy-wait ``slowdown`` x the call's own elapsed time after it."""
    if slowdown <= 0:
        return call

    def slower():
        start = time.perf_counter()
        out = call()
        until = start + (time.perf_counter() - start) * (1 + slowdown)
        while time.perf_counter() < until:
            pass
        return out

    return slower


class Run:
    """One 'pytest session' of the gate: a fresh runner, warmed up as test_latency does."""

    def __init__(self, spec, backend, slowdown=0.0, plant="spin", ort_threads=0):
        from pytest_autoware_deploy.bench.latency import plan_rounds, timed_call
        from pytest_autoware_deploy.report.store import ReportStore
        from pytest_autoware_deploy.session import SpecState

        self.state = SpecState(spec, ReportStore())
        if ort_threads:  # what the plugin's onnx runner does under pytest-xdist (a share of the cores, no spinning)
            from pytest_autoware_deploy.backends.onnxruntime import OnnxRuntimeRunner

            runner = self.runner = OnnxRuntimeRunner(self.state.policy_onnx(backend.policy_name).path, "cpu",
                                                     intra_op_threads=ort_threads)
            runner.activate()
        else:
            runner = self.state.runner(backend)
        bcfg = spec.cfg["benchmark"]
        call = timed_call(runner.prepare(self.state.example_inputs()), runner.synchronize)
        self.call = planted(call, slowdown) if plant == "spin" else call
        self.factor = 1 + slowdown if plant == "scale" else 1.0
        self.rounds = plan_rounds(self.call, bcfg["warmup"], bcfg["rounds"], bcfg["min_time_s"])

    def measure(self, n):
        from pytest_autoware_deploy.bench.latency import timings

        return [t * 1e3 * self.factor for t in timings(self.call, n)]

    def close(self):
        if getattr(self, "runner", None) is not None:
            self.runner.deactivate()
        self.state.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(DEFAULT_SPEC))
    ap.add_argument("--work-dir", default=str(ROOT / "work_dirs" / "benchmarks" / "gate_noise"),
                    help="plugin work dir (export cache, the saved baseline)")
    ap.add_argument("--trials", type=int, default=20, help="clean re-runs, and re-runs per planted slowdown")
    ap.add_argument("--plant", choices=("spin", "scale"), default="spin",
                    help="spin: busy work proportional to each call; scale: measured timings multiplied")
    ap.add_argument("--ort-threads", type=int, default=0,
                    help="ONNX Runtime intra-op threads (0: the plugin's default, ORT's own choice; N: as the plugin "
                         "runs under pytest-xdist, N threads without spinning)")
    ap.add_argument("--mode", choices=("stored", "retime"), default="stored",
                    help="stored: each re-run vs the baseline's saved timings (--deploy-baseline); retime: the "
                         "baseline's artifact re-timed interleaved with the re-run (--deploy-baseline-retime)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    load_before = load_average()

    from pytest_autoware_deploy.bench.latency import interleaved_timings, latency_stats_ms
    from pytest_autoware_deploy.bench.gate_stats import thin
    from pytest_autoware_deploy.report.baseline import (SAMPLES_KEY, baseline_backend, latency_gate,
                                                        latency_gate_retimed, read_baseline, save_baseline)
    from pytest_autoware_deploy.spec.load import load_spec
    from pytest_autoware_deploy.spec.model import BackendId

    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = load_spec(Path(args.spec).resolve(), work_dir=work_dir)
    backend = BackendId("onnx")
    gate = spec.cfg["gate"]

    # exports (or reuses) the ONNX graph, then times the baseline
    base_run = Run(spec, backend, ort_threads=args.ort_threads)
    samples = base_run.measure(base_run.rounds)
    base_run.close()
    baseline_path = work_dir / "baseline.json"
    save_baseline(baseline_path, {spec.name: {"backends": {str(backend): {
        "latency_ms": latency_stats_ms([s / 1e3 for s in samples]), SAMPLES_KEY: thin(samples)}}}})
    entry = baseline_backend(read_baseline(baseline_path).specs, spec.name, str(backend))
    print(f"baseline: {len(samples)} rounds, median {entry['latency_ms']['median']:.4f} ms, "
          f"p95 {entry['latency_ms']['p95']:.4f} ms", file=sys.stderr)

    kinds = [0.0, *SLOWDOWNS]
    trials = {k: [] for k in kinds}
    start = time.perf_counter()
    for i in range(args.trials):
        order = kinds[i % len(kinds):] + kinds[:i % len(kinds)]
        for slowdown in order:
            load = load_average()
            run = Run(spec, backend, slowdown, args.plant, args.ort_threads)
            if args.mode == "retime":  # a fresh session of the baseline's artifact (unplanted), ABBA with the re-run
                base = Run(spec, backend, 0.0, args.plant, args.ort_threads)

                def measure_pair(n, base=base, run=run):
                    b, c = interleaved_timings(base.call, run.call, n)
                    return [t * 1e3 for t in b], [t * 1e3 * run.factor for t in c]

                result = latency_gate_retimed(measure_pair, run.rounds, gate)
                base.close()
            else:
                current = run.measure(run.rounds)
                result = latency_gate(entry, latency_stats_ms([c / 1e3 for c in current]), current, run.measure,
                                      gate)
            run.close()
            trials[slowdown].append({
                "verdict": result.verdict, "first": result.first, "confirmed": result.confirmed,
                "extensions": result.extensions, "rounds": len(result.current), "load_1min": load and load[0],
                "verdicts": {v.stat: {"verdict": v.verdict, "ratio": v.ratio, "ci": v.ci} for v in result.verdicts}})
        print(f"trial {i}: " + ", ".join(f"{k:.0%} {trials[k][-1]['verdict']}" for k in kinds), file=sys.stderr)
    elapsed = time.perf_counter() - start

    rows, summary = [], {}
    for k in kinds:
        ts = trials[k]
        counts = {v: sum(t["verdict"] == v for t in ts) for v in ("ok", "inconclusive", "regressed")}
        median_ratio = sorted(t["verdicts"]["median"]["ratio"] for t in ts)[len(ts) // 2] \
            if "median" in ts[0]["verdicts"] else None
        summary[f"{k:.2f}"] = {**counts, "trials": len(ts), "detection_rate": counts["regressed"] / len(ts),
                               "extended": sum(t["extensions"] > 0 for t in ts),
                               "first_regressed": sum(t["first"] == "regressed" for t in ts),
                               "max_extensions": max(t["extensions"] for t in ts),
                               "median_rounds": sorted(t["rounds"] for t in ts)[len(ts) // 2],
                               "max_rounds": max(t["rounds"] for t in ts),
                               "median_ratio_of_medians": median_ratio}
        rows.append([f"{k:.0%}" if k else "clean", len(ts), counts["regressed"], counts["inconclusive"], counts["ok"],
                     summary[f"{k:.2f}"]["first_regressed"], summary[f"{k:.2f}"]["extended"],
                     f"{summary[f'{k:.2f}']['median_rounds']} / {summary[f'{k:.2f}']['max_rounds']}",
                     f"{median_ratio:.3f}" if median_ratio else "-"])
    false_alarms = summary["0.00"]["regressed"]
    caught = [k for k in SLOWDOWNS if summary[f"{k:.2f}"]["regressed"] == args.trials]
    smallest = min(caught) if caught else None
    print(format_table(["planted", "runs", "regressed", "inconclusive", "ok", "first regressed", "extended",
                        "rounds decided on (median / max)", "median ratio"], rows))
    loads = [t["load_1min"] for ts in trials.values() for t in ts if t["load_1min"] is not None]
    print(f"\nfalse alarms: {false_alarms}/{args.trials} clean re-runs (goal 0); smallest slowdown caught in every "
          f"trial: {'none' if smallest is None else f'{smallest:.0%}'} (goal {GOAL_SMALLEST:.0%}); "
          f"gate: percentiles {gate['latency_percentiles']}, min effect {gate['latency_min_effect_pct']}%, "
          f"confidence {gate['latency_confidence']}, up to {gate['latency_max_extensions']} extensions; "
          f"{elapsed:.0f} s; mode {args.mode}; plant {args.plant}; ORT threads {args.ort_threads or 'default'}; "
          f"1-min load during the trials {min(loads, default=0):.1f}.."
          f"{max(loads, default=0):.1f} on {len(os.sched_getaffinity(0))} cores")
    finish({"benchmark": "gate_noise", "spec": str(Path(args.spec).resolve().relative_to(ROOT)),
            "backend": str(backend), "mode": args.mode, "plant": args.plant, "ort_threads": args.ort_threads,
            "benchmark_settings": spec.cfg["benchmark"], "gate": gate,
            "baseline": {"rounds": len(samples), "latency_ms": entry["latency_ms"]},
            "trials": args.trials, "summary": summary, "false_alarms": false_alarms,
            "smallest_caught": smallest, "goals": {"false_alarms": 0, "smallest_caught": GOAL_SMALLEST},
            "elapsed_s": elapsed, "runs": {f"{k:.2f}": v for k, v in trials.items()}},
           args.json, load_before, ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
