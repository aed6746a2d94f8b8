from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.bench.latency import latency_stats_ms, timed_call


@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_in_ms(timings):
    s = latency_stats_ms(timings)
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]
    assert s["min"] == pytest.approx(min(timings) * 1e3)
    assert s["median"] == pytest.approx(np.median(timings) * 1e3)
    assert s["rounds"] == len(timings)


def test_empty_timings_raise():
    with pytest.raises(ValueError):
        latency_stats_ms([])


def test_timed_call_synchronizes_after_each_run():
    order = []
    call = timed_call(lambda: order.append("run"), lambda: order.append("sync"))
    call()
    assert order == ["run", "sync"]


def test_phase_timings_time_every_phase_in_order():
    from pytest_autoware_deploy.bench.latency import phase_timings

    calls = []
    phases = {name: (lambda n=name: calls.append(n)) for name in ("h2d", "compute", "d2h")}
    synced = []
    out = phase_timings(phases, lambda: synced.append(1), warmup=1, rounds=3)
    assert list(out) == ["h2d", "compute", "d2h"] and all(len(v) == 3 for v in out.values())
    assert calls == ["h2d", "compute", "d2h"] * 4  # one warm-up round, three timed
    assert len(synced) == 1 + 3 * 3  # after the warm-up round and after every timed phase


def test_throughput_is_batch_over_median():
    from pytest_autoware_deploy.bench.latency import throughput

    assert throughput(4, {"median": 2.0}) == 2000.0
