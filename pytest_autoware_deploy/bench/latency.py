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


def plan_rounds(call, warmup: int, rounds: int, min_time_s: float) -> int:
    """Run the warm-up calls and return the timed rounds: ``rounds``, or more to fill ``min_time_s``
    (trtexec's --iterations / --duration: whichever asks for more)."""
    import math
    import time

    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        call()
    per_call = (time.perf_counter() - start) / max(warmup, 1)
    if min_time_s > 0 and per_call > 0:
        rounds = max(rounds, math.ceil(min_time_s / per_call))
    return rounds


def timings(call, rounds: int) -> list[float]:
    """Seconds per call, perf_counter around each (used when pytest-benchmark is not timing)."""
    import time

    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


INTERLEAVE_BLOCK = 5  # calls per block of interleaved_timings; the re-timed gate pairs its rounds by these blocks


def interleaved_timings(baseline_call, current_call, rounds: int, block: int = INTERLEAVE_BLOCK) -> tuple[list, list]:
    """``rounds`` seconds-per-call of each, measured in ABBA order in blocks of ``block`` calls (baseline,
    current, current, baseline, ...): a drift of a shared machine's speed during the measurement falls on
    both sides alike, which comparing with timings taken at another moment cannot give.

    Both lists keep the measuring order, so rounds ``i`` of the two sides lie in neighbouring blocks (block
    ``i // block`` of each side, measured one after the other): ``bench.gate_stats`` resamples them as pairs."""
    base, cur = [], []
    order = ((baseline_call, base), (current_call, cur), (current_call, cur), (baseline_call, base))
    i = 0
    while len(base) < rounds or len(cur) < rounds:
        call, out = order[i % 4]
        i += 1
        want = min(block, rounds - len(out))
        if want > 0:
            out += timings(call, want)
    return base, cur


def end_to_end_timings(runner, feed, warmup, rounds):
    """Seconds per ``runner.infer`` (host inputs in, host outputs out): what a caller without
    device-resident buffers pays, reported beside the device-resident latency."""
    for _ in range(warmup):
        runner.infer(feed)
    return timings(lambda: runner.infer(feed), rounds)


def phase_timings(phases: dict, synchronize, warmup: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per phase (h2d / compute / d2h) per round, trtexec-style.

    Each phase is bracketed by CUDA events on torch's current stream and followed by
    ``synchronize``: for backends that enqueue on that stream (pytorch, TensorRT here) the events
    time the device work itself; ONNX Runtime runs on its own stream but each of its phases is
    synchronous, so there the events bracket the completed call. Without CUDA in torch, perf_counter.
    """
    import time

    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    for _ in range(max(warmup, 1)):
        for fn in phases.values():
            fn()
        synchronize()
    out = {name: [] for name in phases}
    for _ in range(rounds):
        for name, fn in phases.items():
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                synchronize()
                end.synchronize()
                out[name].append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                synchronize()
                out[name].append(time.perf_counter() - t0)
    return out


def throughput(batch: int, latency_ms: dict) -> float:
    """Samples per second at the median latency (MLPerf 'offline'-style: one batch per call)."""
    return batch / (latency_ms["median"] / 1e3) if latency_ms["median"] > 0 else float("inf")
