from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.evaluate.classification import ClassificationEvaluator


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=50))
def test_accuracy_and_confusion_matrix(pairs):
    ev = ClassificationEvaluator(class_names=["a", "b", "c"])
    for target, pred in pairs:
        logits = np.full((1, 3), -1.0)
        logits[0, pred] = 1.0
        ev.update({"out": logits}, target)
    res = ev.compute()
    assert res["accuracy"] == sum(t == p for t, p in pairs) / len(pairs)
    assert np.asarray(res["confusion_matrix"]).sum() == len(pairs)
    for i, name in enumerate("abc"):
        support = sum(t == i for t, _ in pairs)
        if support:
            assert res["per_class"][name] == sum(t == p == i for t, p in pairs) / support
        else:
            assert res["per_class"][name] is None


def test_batched_update_and_plot(tmp_path):
    ev = ClassificationEvaluator(num_classes=2)
    ev.update({"o": np.array([[0.1, 0.9], [0.8, 0.2]])}, np.array([1, 1]))
    res = ev.compute()
    assert res["accuracy"] == 0.5 and res["confusion_matrix"] == [[0, 0], [1, 1]]
    (png,) = ev.plot(res, tmp_path, "spec/onnx")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
