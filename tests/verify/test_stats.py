"""Comparator statistics, checked against their definitions with hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pytest_autoware_deploy.verify.stats import output_stats

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
shapes = st.tuples(st.integers(1, 4), st.integers(1, 6))


@given(data=st.data(), shape=shapes)
def test_stats_match_definitions(data, shape):
    ref = data.draw(arrays(np.float32, shape, elements=finite))
    act = data.draw(arrays(np.float32, shape, elements=finite))
    s = output_stats(ref, act)
    diff = np.abs(ref.astype(np.float64) - act.astype(np.float64))
    assert s["max_abs"] == pytest.approx(diff.max())
    assert s["mean_abs"] == pytest.approx(diff.mean())
    assert -1.0 <= s["cosine"] <= 1.0
    assert s["nan"] == s["inf"] == 0
    nz = ref != 0
    if nz.any() and (diff[~nz] == 0).all():
        assert s["max_rel"] == pytest.approx((diff[nz] / np.abs(ref[nz].astype(np.float64))).max())


@given(arr=arrays(np.float32, shapes, elements=finite))
def test_identical_arrays_have_zero_error(arr):
    s = output_stats(arr, arr.copy())
    assert s["max_abs"] == s["mean_abs"] == s["max_rel"] == 0.0
    assert s["cosine"] == pytest.approx(1.0)


@given(arr=arrays(np.float32, shapes, elements=st.floats(0.125, 8, width=32)), k=st.floats(0.5, 2))
def test_cosine_is_scale_invariant(arr, k):
    assert output_stats(arr, arr * np.float32(k))["cosine"] == pytest.approx(1.0, abs=1e-6)


def test_nan_and_inf_are_counted_not_propagated():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    act = np.array([1.0, np.nan, np.inf, 4.5])
    s = output_stats(ref, act)
    assert (s["nan"], s["inf"]) == (1, 1)
    assert s["max_abs"] == 0.5


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape mismatch"):
        output_stats(np.zeros(3), np.zeros(4))
