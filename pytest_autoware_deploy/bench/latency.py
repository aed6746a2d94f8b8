"""Latency statistics in milliseconds from raw per-call timings (seconds)."""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def latency_stats_ms(timings_s) -> dict:
    """min/max/mean/median/p50/p90/p95/p99/std in ms (linear interpolation, numpy's default)."""
    t = np.asarray(list(timings_s), dtype=np.float64) * 1e3
    if t.size == 0:
        raise ValueError("no timings")
    stats = {"min": float(t.min()), "max": float(t.max()), "mean": float(t.mean()),
             "median": float(np.median(t)), "std": float(t.std(ddof=1)) if t.size > 1 else 0.0,
             "rounds": int(t.size)}
    for p in PERCENTILES:
        stats[f"p{p}"] = float(np.percentile(t, p))
    return stats


def timed_call(run, synchronize):
    """Wrap ``run`` so one benchmark round includes the wait for queued device work."""
    if synchronize is None:
        return run

    def call():
        out = run()
        synchronize()
        return out

    return call


def end_to_end_timings(runner, feed, warmup, rounds):
    """Seconds per ``runner.infer`` (host inputs in, host outputs out): what a caller without
    device-resident buffers pays, reported beside the device-resident latency."""
    import time

    for _ in range(warmup):
        runner.infer(feed)
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        runner.infer(feed)
        out.append(time.perf_counter() - start)
    return out
