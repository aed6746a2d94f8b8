"""The tolerance rule and its failure message."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pytest_autoware_deploy.verify.compare import Tolerance, compare_output

finite = st.floats(-100, 100, allow_nan=False, width=32)


@given(ref=arrays(np.float64, st.integers(1, 20), elements=finite), atol=st.floats(1e-6, 1),
       rtol=st.floats(0, 0.1), data=st.data())
def test_pass_rule_is_numpy_allclose(ref, atol, rtol, data):
    noise = data.draw(arrays(np.float64, ref.shape, elements=st.floats(-2, 2)))
    act = ref + noise * atol
    result = compare_output(ref, act, Tolerance(atol, rtol), "here")
    assert result.passed == bool(np.all(np.abs(act - ref) <= atol + rtol * np.abs(ref)))


def test_message_names_worst_element_values_and_tolerance():
    ref = np.zeros((2, 3))
    act = ref.copy()
    act[1, 2] = 0.5
    act[0, 0] = 0.01
    res = compare_output(ref, act, Tolerance(1e-3, 0.0), "spec s, backend onnx, output 'logits'")
    assert not res.passed
    assert res.message.startswith("spec s, backend onnx, output 'logits': 2/6 elements exceed atol=0.001, rtol=0")
    assert "worst at index [1, 2]: actual=0.5 reference=0" in res.message


def test_min_cosine():
    ref = np.array([1.0, 0.0])
    res = compare_output(ref, np.array([0.0, 1.0]), Tolerance(10, 0, min_cosine=0.99), "w")
    assert not res.passed and "cosine similarity 0.000000 < min_cosine 0.99" in res.message


def test_shared_nan_is_not_a_failure_but_new_nan_is():
    ref = np.array([np.nan, 1.0, 2.0])
    assert compare_output(ref, ref.copy(), Tolerance(1e-6, 0), "w").passed
    res = compare_output(ref, np.array([np.nan, np.nan, 2.0]), Tolerance(1e-6, 0), "w")
    assert not res.passed and "1 NaN and 0 Inf values" in res.message
