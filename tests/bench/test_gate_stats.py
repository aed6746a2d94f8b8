"""The latency gate's statistics: bootstrap CI of the ratio, Mann-Whitney, thinning, verdicts, extensions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.bench.gate_stats import (MAX_SAMPLES, bootstrap_ratio_ci, compare, gate_with_extensions,
                                                     mann_whitney_greater, statistic, thin, threshold_ratio)
from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.report.baseline import NO_SAMPLES, SAMPLES_KEY, check_gate, latency_gate
from pytest_autoware_deploy.spec.schema import validate

STATS = ["median", "p95", "mean", "p50", "p90", "p99", "min", "max"]
timings = st.lists(st.floats(0.01, 100, allow_nan=False), min_size=1, max_size=60)


def noisy(n, seed=0, scale=1.0, spread=0.1, outliers=0.03):
    """Timings shaped like a real benchmark: log-normal around ``scale`` ms with a few 3x slower outliers."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(0.0, spread, n) * scale
    x[rng.random(n) < outliers] *= 3
    return x


@settings(deadline=None)  # a bootstrap per example: no per-example deadline on a loaded machine
@given(x=timings, stats=st.lists(st.sampled_from(STATS), min_size=1, max_size=3, unique=True))
def test_identical_samples_are_ok(x, stats):
    """The same timings on both sides never regress, whatever their spread (point ratio exactly 1)."""
    for v in compare(x, list(x), stats, min_effect_pct=0.0):
        assert v.verdict == "ok" and v.ratio == 1.0 and v.ci[0] <= 1.0 <= v.ci[1]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31), stat=st.sampled_from(["median", "p95", "mean", "p90"]),
       n=st.integers(200, 600))
def test_a_2x_slowdown_with_enough_rounds_is_regressed(seed, stat, n):
    # no outliers here: where they make up ~5% of the rounds, p95 itself jumps between body and outliers
    # (a bootstrap honestly says so: the test_verdicts_at_the_boundaries kind of inconclusive)
    base = noisy(n, seed, outliers=0.0)
    cur = noisy(n, seed + 1, outliers=0.0) * 2
    [v] = compare(base, cur, [stat], min_effect_pct=10.0)
    assert v.verdict == "regressed", v


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31), stat=st.sampled_from(STATS), n=st.integers(5, 200),
       shifts=st.lists(st.floats(0.5, 3.0), min_size=2, max_size=5))
def test_the_verdict_is_monotonic_in_the_shift(seed, stat, n, shifts):
    """A larger multiplicative slowdown of the same timings never gives a milder verdict."""
    base, cur = noisy(n, seed), noisy(n, seed + 7)
    order = {"ok": 0, "inconclusive": 1, "regressed": 2}
    verdicts = [order[compare(base, cur * s, [stat], 5.0)[0].verdict] for s in sorted(shifts)]
    assert verdicts == sorted(verdicts)


def test_verdicts_at_the_boundaries():
    base = noisy(400, 1)
    assert compare(base, noisy(400, 2), ["median"], 5.0)[0].verdict == "ok"
    [v] = compare(base, noisy(400, 2) * 1.2, ["median"], 5.0)
    assert v.verdict == "regressed" and v.ci[0] > 1.05 and 1.1 < v.ratio < 1.3
    # a small sample, a modest slowdown: looks slower but the interval reaches below the minimum effect
    [v] = compare(noisy(8, 3), noisy(8, 4) * 1.12, ["p95"], 5.0)
    assert v.verdict == "inconclusive" and v.ratio > 1.05 and v.ci[0] <= 1.05


def test_same_timings_same_verdict_fixed_seed():
    base, cur = noisy(50, 5), noisy(50, 6) * 1.08
    assert compare(base, cur, ["median", "p95"], 5.0) == compare(base, cur, ["median", "p95"], 5.0)


def test_min_delta_raises_the_threshold():
    assert threshold_ratio(2.0, 5.0, 0.0) == pytest.approx(1.05)
    assert threshold_ratio(2.0, 5.0, 1.0) == pytest.approx(1.5)
    # +20% of 1 ms is 0.2 ms: under a 1 ms minimum delta, never a regression
    [v] = compare(noisy(400, 1), noisy(400, 2) * 1.2, ["median"], 5.0, min_delta_ms=1.0)
    assert v.verdict == "ok" and v.threshold == pytest.approx(1 + 1.0 / v.baseline_ms)


def test_message_names_percentile_ci_effect_and_rounds():
    [v] = compare(noisy(30, 1), noisy(60, 2) * 2, ["p95"], 5.0)
    text = str(v)
    assert text.startswith("latency p95: regressed, baseline ")
    for part in ("effect +", "(99% CI +", "threshold +5.0%", "rounds 30 baseline / 60 current", "Mann-Whitney p="):
        assert part in text, text


def test_bootstrap_ci_brackets_the_true_ratio():
    """On large samples of one distribution scaled by 1.3 the 99% interval holds 1.3 and is narrow."""
    base, cur = noisy(2000, 11), noisy(2000, 12) * 1.3
    for name, (lo, hi) in bootstrap_ratio_ci(base, cur, ["median", "mean", "p90"]).items():
        assert lo < 1.3 < hi and hi - lo < 0.1, (name, lo, hi)


def test_unknown_statistic_and_empty_samples_are_errors():
    with pytest.raises(ValueError, match="cannot gate latency statistic 'std'"):
        compare([1.0], [1.0], ["std"], 5.0)
    with pytest.raises(ValueError, match="no baseline samples"):
        compare([], [1.0], ["median"], 5.0)
    with pytest.raises(ValueError, match="NaN"):
        statistic([1.0, float("nan")], "median")


@given(b=st.lists(st.integers(0, 6), min_size=1, max_size=12), c=st.lists(st.integers(0, 6), min_size=1, max_size=12))
def test_mann_whitney_u_counts_pairs(b, c):
    """U = number of (baseline, current) pairs with current larger, ties counted half (brute force)."""
    u, p = mann_whitney_greater(b, c)
    assert u == sum((y > x) + 0.5 * (y == x) for x, y in itertools.product(b, c))
    assert 0.0 <= p <= 1.0
    if len(set(b) | set(c)) == 1:
        assert p == 1.0


def test_mann_whitney_p_matches_the_normal_approximation_by_hand():
    # [1,2,3] vs [4,5,6]: U=9, mean 4.5, var 3*3*7/12=5.25, z=(9-4.5-0.5)/sqrt(5.25); scipy's asymptotic p too
    u, p = mann_whitney_greater([1, 2, 3], [4, 5, 6])
    assert u == 9 and p == pytest.approx(0.5 * math.erfc(4 / math.sqrt(5.25) / math.sqrt(2)))
    assert p == pytest.approx(0.040428, abs=1e-5)
    # ties shrink the variance: [1,1,2] vs [2,3,3]: tie groups of 2,2,2 -> sum(t^3-t) = 18
    u, p = mann_whitney_greater([1, 1, 2], [2, 3, 3])
    var = 9 / 12 * (7 - 18 / 30)
    assert u == 8.5 and p == pytest.approx(0.5 * math.erfc((8.5 - 4.5 - 0.5) / math.sqrt(var) / math.sqrt(2)))


@given(x=st.lists(st.floats(0.001, 1e3, allow_nan=False), min_size=1, max_size=5000), cap=st.integers(2, 300))
def test_thin_keeps_at_most_cap_sorted_with_the_extremes(x, cap):
    out = thin(x, cap)
    assert len(out) == min(len(x), cap) and out == sorted(out)
    assert out[0] == min(x) and out[-1] == max(x)
    assert thin(x, cap) == out  # deterministic
    assert set(out) <= set(x)


def test_thinned_percentiles_track_the_full_list():
    x = noisy(50_000, 3)
    out = thin(x)
    assert len(out) == MAX_SAMPLES
    step = 1 / (MAX_SAMPLES - 1) * 100  # one rank step, in percent
    for q in (50, 90, 95, 99):
        assert np.percentile(x, q - step) <= np.percentile(out, q) <= np.percentile(x, q + step)


def test_inconclusive_doubles_the_rounds_until_it_decides():
    base = noisy(300, 3)  # a baseline of many rounds; this run starts with 6 rounds, 20% slower
    rng = np.random.default_rng(4)
    asked = []

    def measure(n):
        asked.append(n)
        return list(rng.lognormal(0, 0.1, n) * 1.2)

    assert compare(base, noisy(6, 4) * 1.2, ["median"], 5.0)[0].verdict == "inconclusive"
    result = gate_with_extensions(base, noisy(6, 4) * 1.2, measure, ["median"], 5.0, max_extensions=3, confirm=False)
    assert asked == [6, 12, 24][:result.extensions] and result.extensions >= 1
    assert len(result.current) == 6 * 2 ** result.extensions
    assert result.verdict == "regressed" and result.verdicts[0].rounds == (300, len(result.current))
    assert result.first == "inconclusive" and not result.confirmed
    assert result.describe() == f" (after {result.extensions} extension(s) of the rounds)"


def test_a_regression_is_confirmed_on_a_fresh_batch():
    """A first 'regressed' is re-measured: a burst during the first batch does not reproduce, a real one does."""
    base = noisy(300, 3)
    burst = noisy(30, 4) * 1.6  # someone else's job ran during this run's first 30 rounds
    asked = []

    def calm(n):
        asked.append(n)
        return list(noisy(n, 5))

    result = gate_with_extensions(base, burst, calm, ["median"], 5.0)
    assert result.first == "regressed" and result.confirmed and asked == [30]
    assert result.verdict == "ok" and result.current == list(noisy(30, 5))
    assert "fresh batch" in result.describe()

    result = gate_with_extensions(base, burst, lambda n: list(noisy(n, 6) * 1.6), ["median"], 5.0)
    assert result.first == result.verdict == "regressed" and result.confirmed
    unconfirmed = gate_with_extensions(base, burst, calm, ["median"], 5.0, confirm=False)
    assert unconfirmed.verdict == "regressed" and not unconfirmed.confirmed and unconfirmed.current == list(burst)


def test_extensions_are_bounded_and_an_undecided_gate_stays_inconclusive():
    calls = []

    def measure(n):  # +12.5% in the mean, but the 8-round baseline keeps the interval wide: never decided
        calls.append(n)
        return [1.0, 3.5] * (n // 2)

    result = gate_with_extensions([1.0, 3.0] * 4, [1.0, 3.5] * 4, measure, ["mean"], 5.0, max_extensions=2)
    assert calls == [8, 16] and result.extensions == 2 and result.verdict == "inconclusive"
    assert len(result.current) == 32
    none = gate_with_extensions([1.0, 3.0] * 4, [1.0, 3.5] * 4, measure, ["mean"], 5.0, max_extensions=0)
    assert none.extensions == 0 and none.verdict == "inconclusive" and len(calls) == 2


GATE = validate({}, "s.py")["gate"]


def test_baseline_without_raw_timings_falls_back_to_the_point_comparison():
    entry = {"latency_ms": {"median": 1.0, "p95": 2.0, "rounds": 30}}
    current = {"median": 1.2, "p95": 2.1, "rounds": 30}
    result = latency_gate(entry, current, None, None, GATE)
    assert [v.verdict for v in result.verdicts] == ["regressed", "ok"]  # +20% > 10%, +5% <= 10%
    assert all(v.ci is None and v.note == NO_SAMPLES for v in result.verdicts)
    assert str(result.verdicts[0]).endswith(NO_SAMPLES) and result.extensions == 0
    assert latency_gate(entry, current, None, None, GATE, tolerance_override=50).verdict == "ok"


def test_latency_gate_uses_raw_timings_and_the_override():
    base = noisy(30, 1)
    entry = {"latency_ms": {"median": float(np.median(base))}, SAMPLES_KEY: thin(base)}
    cur = noisy(30, 2) * 1.5
    result = latency_gate(entry, {}, list(cur), lambda n: list(noisy(n, 3) * 1.5), GATE)
    assert result.verdict == "regressed" and result.verdicts[0].ci is not None and result.confirmed
    assert [v.stat for v in result.verdicts] == ["median", "p95"]
    assert latency_gate(entry, {}, list(cur), None, GATE, tolerance_override=1e9).verdict == "ok"


@pytest.mark.parametrize("key,value,expected", [
    ("latency_confidence", 1.0, "s.py: gate.latency_confidence: expected a number in (0, 1), got 1.0"),
    ("latency_confidence", 0, "s.py: gate.latency_confidence: expected a number in (0, 1), got 0"),
    ("latency_max_extensions", -1, "s.py: gate.latency_max_extensions: expected a value >= 0, got -1"),
    ("latency_min_effect_pct", -5, "s.py: gate.latency_min_effect_pct: expected a value >= 0, got -5"),
])
def test_gate_ranges_are_one_spec_error(key, value, expected):
    gate = validate({"gate": {key: value}}, "s.py")["gate"]
    with pytest.raises(SpecError) as err:
        check_gate(gate, "s.py")
    assert str(err.value) == expected


def test_gate_keys_are_validated():
    with pytest.raises(SpecError, match=r"gate.latency_inconclusive: 'warn' is not one of 'pass', 'fail'"):
        validate({"gate": {"latency_inconclusive": "warn"}}, "s.py")
    gate = validate({}, "s.py")["gate"]
    assert (gate["latency_min_effect_pct"], gate["latency_confidence"], gate["latency_max_extensions"],
            gate["latency_inconclusive"], gate["latency_confirm"]) == (5.0, 0.99, 3, "pass", True)
