"""Statistics for the latency gate: is this run slower than the baseline, beyond noise and beyond a minimum effect?

A point comparison (``current p95 > baseline p95 * 1.1``) either flakes on a shared machine or is set so loose it
catches nothing. Here every gated statistic is compared through its **ratio current/baseline** with a bootstrap
confidence interval over both sides' raw per-round timings (fixed seed: the same timings always give the same
verdict), against a threshold ratio ``t = max(1 + min_effect_pct/100, 1 + min_delta_ms/baseline)`` and the
**detection ratio** ``d = 2t - 1`` (twice the minimum effect: +10 % for the default +5 %):

- ``regressed``: the CI's lower bound is above ``t`` (confidently slower by more than the minimum effect);
- ``ok``: the CI's upper bound is at most ``d`` (confidently not slower by twice the minimum effect or more;
  identical timings never regress, and identical interleaved timings are always ok);
- ``inconclusive``: neither: the gate measures more rounds and decides again (:func:`gate_with_extensions`), at
  most ``max_extensions`` times.

Both ends need evidence: an *ok* is not a point ratio that happened to fall under ``t`` (a real +10 % measured at
+3 % by a noisy first batch), it is an interval that rules out the slowdown the gate is there to catch. Between
``t`` and ``d`` lies the indifference zone: a change in it may end either way, or inconclusive.

A first ``regressed`` is confirmed on a fresh batch of rounds before it counts (``confirm``): on a shared machine a
burst of someone else's work during the measurement is a real slowdown of the run, not of the code.

**Paired resampling** (:func:`gate_interleaved`, the re-timed gate): when the baseline's artifact is timed
interleaved with this run's (``bench.latency.interleaved_timings``: ABBA blocks of ``block`` calls), round ``i`` of
both sides lies in neighbouring blocks measured one after the other. The bootstrap then resamples *block pairs*
(the same blocks for both sides, :func:`paired_bootstrap_ratio_ci`) instead of each side's rounds independently:
whatever slowed the machine during a block (a burst, a load phase, a frequency change) stays on both sides of the
ratio in every replicate, as it did in the measurement, and a stretch of slow blocks is resampled as a stretch (a
block bootstrap: the rounds of a loaded machine are not independent). The statistic itself does not change:
each gated percentile (``p95`` included) of all of this run's rounds over the same percentile of all of the
baseline's, so the tail guarantee is the named percentile's; only its interval is taken in the measurement's own
design. Timings measured at different moments (stored baseline) have no pairs and are resampled independently.

Why this shape: extra rounds are spent only where the question is open, and a rule that never fails
without a confident lower bound cannot be tipped by one noisy run. The minimum effect absorbs what a
within-run interval cannot see: the machine's speed drifting between the baseline's run and this one.

A one-sided Mann-Whitney U test (normal approximation, tie-corrected; no scipy) is reported beside each verdict
as a distribution-wide second opinion; the decision is the bootstrap's, since it speaks about the named
percentile itself (Mann-Whitney tests a location shift of the whole distribution, not p95).

Raw timings are stored thinned (:func:`thin`): at most ``MAX_SAMPLES`` values, the order statistics at evenly
spaced ranks, so every percentile of the stored list matches the full list's within one rank step; bootstrapping
2000 values where there were more gives a (slightly) wider interval, never a narrower one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .latency import INTERLEAVE_BLOCK, PERCENTILES

MAX_SAMPLES = 2000  # stored raw timings per (spec, backend); also what one bootstrap side resamples
N_BOOT = 2000
SEED = 20261125
VERDICTS = ("ok", "inconclusive", "regressed")

# gated latency_ms key -> percentile (numpy, linear interpolation, as bench.latency.latency_stats_ms); "mean" apart
_Q = {"min": 0.0, "max": 100.0, "median": 50.0, **{f"p{p}": float(p) for p in PERCENTILES}}


def _array(samples, what="samples") -> np.ndarray:
    x = np.asarray(list(samples) if not isinstance(samples, np.ndarray) else samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"no {what}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contain NaN or infinity")
    return x


def statistic(samples, name: str) -> float:
    """The gated statistic ``name`` (a ``latency_ms`` key: min/mean/median/max/pNN) of raw samples."""
    x = _array(samples)
    if name == "mean":
        return float(x.mean())
    if name not in _Q:
        raise ValueError(f"cannot gate latency statistic {name!r} (expected one of mean, {', '.join(_Q)})")
    return float(np.percentile(x, _Q[name]))


def thin(samples, cap: int = MAX_SAMPLES) -> list[float]:
    """At most ``cap`` values, sorted: all of them, or the order statistics at ``cap`` evenly spaced ranks
    (minimum and maximum kept). Deterministic, and percentiles of the result track the full list's."""
    x = np.sort(_array(samples))
    if cap < 2:
        raise ValueError(f"cap must be at least 2, got {cap}")
    if x.size > cap:
        x = x[np.round(np.linspace(0, x.size - 1, cap)).astype(np.int64)]
    return [float(v) for v in x]


def _boot_stats(x: np.ndarray, names, n_boot: int, rng) -> dict[str, np.ndarray]:
    """``n_boot`` bootstrap replicates of each statistic (one shared resampling, in chunks to bound memory)."""
    out = {n: np.empty(n_boot) for n in names}
    chunk = max(1, 4_000_000 // x.size)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        _store_stats(out, x[rng.integers(0, x.size, size=(stop - start, x.size))], slice(start, stop))
    return out


def _store_stats(out: dict, resampled: np.ndarray, rows: slice):
    """Each statistic in ``out`` of every row of ``resampled`` (one replicate per row), into ``out[name][rows]``."""
    qs = [n for n in out if n != "mean"]
    if qs:
        for n, v in zip(qs, np.percentile(resampled, [_Q[n] for n in qs], axis=1)):
            out[n][rows] = v
    if "mean" in out:
        out["mean"][rows] = resampled.mean(axis=1)


def bootstrap_ratio_ci(baseline, current, names, confidence: float = 0.99, n_boot: int = N_BOOT,
                       seed: int = SEED) -> dict[str, tuple[float, float]]:
    """Two-sided percentile-bootstrap CI of ``stat(current) / stat(baseline)`` per statistic in ``names``,
    both sides resampled independently (more than ``MAX_SAMPLES`` values are thinned first)."""
    names = _check_names(names, confidence)
    base, cur = np.asarray(thin(baseline)), np.asarray(thin(current))
    rng = np.random.default_rng(seed)
    b, c = _boot_stats(base, names, n_boot, rng), _boot_stats(cur, names, n_boot, rng)
    return {n: _ratio_interval(c[n], b[n], confidence) for n in names}


def _ratio_interval(c: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = c / b
    ratios = np.where(np.isnan(ratios), 1.0, ratios)  # 0/0: both sides zero, no change
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _check_names(names, confidence):
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    names = list(names)
    for n in names:
        if n != "mean" and n not in _Q:
            statistic([1.0], n)  # the one error message for an unknown statistic
    return names


def paired_units(n: int, block: int) -> np.ndarray:
    """Round indices of the ``n // block`` whole block pairs, one row per pair: rounds ``[k*block, (k+1)*block)`` of
    each side. Rounds past the last whole block (fewer than ``block``) are in no unit."""
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    k = n // block
    return np.arange(k * block).reshape(k, block)


def paired_bootstrap_ratio_ci(baseline, current, names, block: int = INTERLEAVE_BLOCK, confidence: float = 0.99,
                              n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, tuple[float, float]]:
    """Two-sided percentile-bootstrap CI of ``stat(current) / stat(baseline)`` for interleaved timings: both
    lists in measuring order, equally long, round ``i`` of each in the ``i // block``-th block of its side. Each
    replicate draws block pairs with replacement and takes *the same* blocks on both sides (a paired block
    bootstrap: what slowed the machine during a block weighs on both sides of every replicate's ratio, as it did
    in the measurement). Needs at least two whole block pairs; rounds past the last whole block stay in the point
    estimate, not in the resampling."""
    names = _check_names(names, confidence)
    base, cur = _array(baseline, "baseline samples"), _array(current, "current samples")
    if base.size != cur.size:
        raise ValueError(f"paired timings need as many baseline as current rounds, got {base.size} and {cur.size}")
    units = paired_units(base.size, block)
    if len(units) < 2:
        raise ValueError(f"paired timings need at least 2 whole blocks of {block} rounds, got {base.size} rounds")
    rng = np.random.default_rng(seed)
    k = len(units)
    per = k * block
    out_b = {n: np.empty(n_boot) for n in names}
    out_c = {n: np.empty(n_boot) for n in names}
    chunk = max(1, 4_000_000 // per)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = units[rng.integers(0, k, size=(stop - start, k))].reshape(stop - start, per)
        for side, out in ((base, out_b), (cur, out_c)):
            _store_stats(out, side[idx], slice(start, stop))
    return {n: _ratio_interval(out_c[n], out_b[n], confidence) for n in names}


def mann_whitney_greater(baseline, current) -> tuple[float, float]:
    """One-sided Mann-Whitney U test that ``current`` tends to be larger than ``baseline``: (U, p).

    U counts pairs (b, c) with c > b (ties count 1/2). p comes from the normal approximation with the
    tie-corrected variance and a continuity correction; p = 1 when every value is equal (no evidence)."""
    b, c = _array(baseline, "baseline samples"), _array(current, "current samples")
    n1, n2 = b.size, c.size
    allv = np.concatenate([b, c])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(allv.size)
    sorted_v = allv[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, counts)
    u = float(ranks[n1:].sum() - n2 * (n2 + 1) / 2.0)
    n = n1 + n2
    tie_term = float((counts ** 3 - counts).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return u, 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return u, 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class LatencyVerdict:
    """One gated statistic's comparison. ``ci`` is None for a point comparison (a baseline without raw timings)."""

    stat: str
    verdict: str  # one of VERDICTS
    baseline_ms: float
    current_ms: float
    ratio: float
    ci: tuple[float, float] | None
    threshold: float  # ratio above which a change counts (minimum effect, minimum delta)
    confidence: float | None
    rounds: tuple[int, int]  # (baseline, current) raw timings compared
    mann_whitney_p: float | None = None
    note: str = ""
    detect: float | None = None  # ok needs the CI's upper end at most this ratio (detect_ratio(threshold))
    paired_block: int | None = None  # the CI resampled block pairs of this many rounds (interleaved timings)

    @property
    def effect_pct(self) -> float:
        return (self.ratio - 1) * 100

    def __str__(self):
        text = (f"latency {self.stat}: {self.verdict}, baseline {self.baseline_ms:.6g} ms, current "
                f"{self.current_ms:.6g} ms, effect {self.effect_pct:+.1f}%")
        if self.ci is not None:
            lo, hi = ((v - 1) * 100 for v in self.ci)
            paired = f", paired blocks of {self.paired_block}" if self.paired_block else ""
            text += f" ({self.confidence:.0%} CI {lo:+.1f}% .. {hi:+.1f}%{paired})"
        text += f", threshold +{(self.threshold - 1) * 100:.1f}%"
        if self.detect is not None and self.ci is not None:
            text += f", ok up to +{(self.detect - 1) * 100:.1f}%"
        text += f", rounds {self.rounds[0]} baseline / {self.rounds[1]} current"
        if self.mann_whitney_p is not None:
            text += f", Mann-Whitney p={self.mann_whitney_p:.2g}"
        return text + (f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["effect_pct"] = self.effect_pct
        return d


def threshold_ratio(baseline_stat: float, min_effect_pct: float, min_delta_ms: float = 0.0) -> float:
    """The ratio a change must exceed: the minimum effect, or the minimum delta relative to the baseline."""
    t = 1 + min_effect_pct / 100.0
    if min_delta_ms > 0:
        t = max(t, 1 + min_delta_ms / baseline_stat) if baseline_stat > 0 else math.inf
    return t


def detect_ratio(threshold: float) -> float:
    """The ratio an *ok* must rule out: twice the threshold's excess over 1 (+10 % for a +5 % minimum effect).
    A slowdown at least this large is never *ok*; between the threshold and it, the indifference zone."""
    return 2 * threshold - 1 if math.isfinite(threshold) else math.inf


def verdict_for(ci: tuple[float, float], threshold: float) -> str:
    """regressed: the interval lies above the threshold; ok: it lies at or below :func:`detect_ratio`;
    inconclusive: neither (it reaches down to the threshold or below, and up past the detection ratio)."""
    lo, hi = ci
    if lo > threshold:
        return "regressed"
    return "ok" if hi <= detect_ratio(threshold) else "inconclusive"


def compare(baseline, current, names, min_effect_pct: float, min_delta_ms: float = 0.0, confidence: float = 0.99,
            n_boot: int = N_BOOT, seed: int = SEED, block: int | None = None) -> list[LatencyVerdict]:
    """A verdict per statistic in ``names`` for raw timings in ms (see the module docstring for the rule).

    ``block``: the two lists are interleaved timings in measuring order (``bench.latency.interleaved_timings``
    with this block size): the interval resamples block pairs (:func:`paired_bootstrap_ratio_ci`). Falls back to
    independent resampling when the lists differ in length or hold fewer than two whole blocks."""
    base, cur = _array(baseline, "baseline samples"), _array(current, "current samples")
    paired = bool(block) and base.size == cur.size and base.size // block >= 2
    if paired:
        cis = paired_bootstrap_ratio_ci(base, cur, names, block, confidence, n_boot, seed)
    else:
        cis = bootstrap_ratio_ci(base, cur, names, confidence, n_boot, seed)
    _, p = mann_whitney_greater(thin(base), thin(cur))
    out = []
    for n in names:
        b, c = statistic(base, n), statistic(cur, n)
        ratio = c / b if b > 0 else (1.0 if c == b else math.inf)
        t = threshold_ratio(b, min_effect_pct, min_delta_ms)
        out.append(LatencyVerdict(n, verdict_for(cis[n], t), b, c, ratio, cis[n], t, confidence,
                                  (int(base.size), int(cur.size)), p, detect=detect_ratio(t),
                                  paired_block=block if paired else None))
    return out


def worst(verdicts) -> str:
    """regressed > inconclusive > ok."""
    return max((v.verdict for v in verdicts), key=VERDICTS.index, default="ok")


@dataclass
class GateResult:
    verdicts: list  # of LatencyVerdict, the last decision
    current: list  # raw timings (ms) the last decision compared
    extensions: int  # how many times more rounds were measured for an inconclusive verdict
    confirmed: bool = False  # a first "regressed" was re-measured on a fresh batch of rounds
    first: str | None = None  # the verdict before any extension or confirmation
    baseline: list | None = None  # the baseline's timings (ms) when they were re-measured beside this run's

    @property
    def verdict(self) -> str:
        return worst(self.verdicts)

    def describe(self) -> str:
        """How the decision was reached, for the failure message: '' when the first measurement decided."""
        parts = []
        if self.extensions:
            parts.append(f"{self.extensions} extension(s) of the rounds")
        if self.confirmed:
            parts.append("the first 'regressed' re-measured on a fresh batch, which decided")
        return f" (after {' and '.join(parts)})" if parts else ""


def gate_with_extensions(baseline, current, measure, names, min_effect_pct: float, min_delta_ms: float = 0.0,
                         confidence: float = 0.99, max_extensions: int = 5, confirm: bool = True,
                         n_boot: int = N_BOOT, seed: int = SEED) -> GateResult:
    """Decide on ``current``, measuring more where needed; ``measure(n)`` returns ``n`` more rounds (ms).

    - inconclusive: this run's rounds are doubled and the gate decides again, at most ``max_extensions`` times
      (the default 5: up to 32 times the first batch);
    - regressed (with ``confirm``): once, a fresh batch of as many rounds replaces this run's timings and the gate
      decides on it alone (extensions still allowed within the same budget). A burst of other users' work
      during the first measurement does not reproduce; a real regression does.
    """
    result = _decide(list(baseline), list(current), lambda n: (None, measure(n)), names, min_effect_pct,
                     min_delta_ms, confidence, max_extensions, confirm, n_boot, seed)
    result.baseline = None
    return result


def gate_interleaved(measure_pair, rounds: int, names, min_effect_pct: float, min_delta_ms: float = 0.0,
                     confidence: float = 0.99, max_extensions: int = 5, confirm: bool = True,
                     n_boot: int = N_BOOT, seed: int = SEED, block: int = INTERLEAVE_BLOCK) -> GateResult:
    """The gate with the baseline re-measured beside this run: ``measure_pair(n)`` returns ``n`` more rounds
    (ms) of the baseline's artifact and of this run's, taken interleaved in ABBA blocks of ``block`` calls
    (``bench.latency.interleaved_timings``), each list in measuring order. Extensions add rounds to both sides;
    a confirmation re-measures both. Same statistics and verdicts as :func:`gate_with_extensions`, the interval
    resampling block pairs (:func:`paired_bootstrap_ratio_ci`)."""
    base, current = (list(x) for x in measure_pair(rounds))
    return _decide(base, current, measure_pair, names, min_effect_pct, min_delta_ms, confidence, max_extensions,
                   confirm, n_boot, seed, block)


def _decide(base, current, measure_pair, names, min_effect_pct, min_delta_ms, confidence, max_extensions, confirm,
            n_boot, seed, block=None) -> GateResult:
    """The extension/confirmation loop; ``measure_pair(n)`` -> (more baseline rounds or None to keep the
    baseline as it is, more rounds of this run)."""
    verdicts = compare(base, current, names, min_effect_pct, min_delta_ms, confidence, n_boot, seed, block)
    first = worst(verdicts)
    extensions, confirmed = 0, False
    while True:
        state = worst(verdicts)
        if state == "inconclusive" and extensions < max_extensions:
            more_base, more = measure_pair(len(current))
            extensions += 1
            current = current + list(more)
            base = base + list(more_base) if more_base is not None else base
        elif state == "regressed" and confirm and not confirmed:
            more_base, more = measure_pair(len(current))
            confirmed = True
            current = list(more)
            base = list(more_base) if more_base is not None else base
        else:
            break
        if not more or (more_base is not None and not more_base):
            raise ValueError("measure() returned no timings")
        verdicts = compare(base, current, names, min_effect_pct, min_delta_ms, confidence, n_boot, seed, block)
    return GateResult(verdicts, current, extensions, confirmed, first, baseline=base)
