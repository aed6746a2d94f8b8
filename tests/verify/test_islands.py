"""The fp32-islands search (verify/islands.py): on monotone predicates it returns exactly the blamed nodes, a
1-minimal set in general, within the trial bound; candidate nodes are the ones the policy changed."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_autoware_deploy.verify.islands import search_islands, trial_bound
from pytest_autoware_deploy.verify.islands_state import candidate_nodes, snippet

from . import planted


def names(n):
    return [f"n{i}" for i in range(n)]


def needs(required):
    required = set(required)
    calls = []

    def passes(nodes):
        calls.append(list(nodes))
        return required <= set(nodes)
    return passes, calls


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_monotone_predicate_returns_exactly_the_needed_nodes(data):
    n = data.draw(st.integers(1, 60))
    cands = names(n)
    required = data.draw(st.lists(st.sampled_from(cands), min_size=1, max_size=4, unique=True))
    passes, calls = needs(required)
    result = search_islands(cands, passes, max_trials=400)
    assert result.found and result.minimal
    assert result.nodes == [c for c in cands if c in required]  # topological order kept
    assert result.trials == len(calls) == len({frozenset(c) for c in calls})  # memoized: no trial twice
    if len(required) == 1:
        assert result.trials <= trial_bound(n)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_k_of_a_set_gives_a_one_minimal_answer(data):
    n = data.draw(st.integers(2, 40))
    cands = names(n)
    pool = set(data.draw(st.lists(st.sampled_from(cands), min_size=2, max_size=6, unique=True)))
    k = data.draw(st.integers(1, len(pool)))

    def passes(nodes):
        return len(pool & set(nodes)) >= k
    result = search_islands(cands, passes, max_trials=400)
    assert result.found and result.minimal and passes(result.nodes)
    assert all(not passes([x for x in result.nodes if x != drop]) for drop in result.nodes)
    assert len(result.nodes) == k


def test_pure_graph_passing_needs_nothing_and_unfixable_failure_is_said():
    ok = search_islands(names(5), lambda nodes: True)
    assert ok.found and ok.nodes == [] and ok.trials == 1 and "nothing to keep" in ok.reason
    bad = search_islands(names(5), lambda nodes: False)
    assert not bad.found and bad.trials == 2 and "not the policy's arithmetic" in bad.reason


def test_budget_returns_a_passing_set_flagged_not_minimal():
    cands = names(64)
    passes, _ = needs(["n3", "n40", "n41", "n60"])
    result = search_islands(cands, passes, max_trials=10)
    assert result.found and not result.minimal and "max_trials=10" in result.reason
    assert passes(result.nodes) and result.trials <= 10


def test_snippet_is_a_cfg_option_and_spec_lines():
    option, lines = snippet("fp16", ["/a/Add", "/a/Sub"])
    assert option == "\"precision.fp16.node_block_list=['/a/Add', '/a/Sub']\""
    assert lines == "precision = dict(fp16=dict(node_block_list=['/a/Add', '/a/Sub']))"
    assert snippet("int8", ["/m"])[0] == "\"precision.int8.nodes_to_exclude=['/m']\""


class Cancel(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return (self.fc(x) + 2048.0) - 2048.0


def test_candidates_are_the_nodes_the_policy_changed_in_topological_order(tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    base = planted.export(Cancel().eval(), x, tmp_path / "base.onnx", output_name="y")
    fp16 = tmp_path / "fp16.onnx"
    onnx.save(planted.to_fp16(onnx.load(str(base))), str(fp16))
    # Constants count: an fp16 constant (0.1) is rounded however its consumer computes
    assert candidate_nodes(base, fp16, "fp16") == ["/fc/Gemm", "/Constant", "/Add", "/Constant_1", "/Sub"]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": x}])

        def get_next(self):
            return next(self.it, None)
    int8 = tmp_path / "int8.onnx"
    quantize_static(str(base), str(int8), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Gemm"])
    # the Gemm is quantized; the Add reads its dequantized output (what excluding either may change)
    assert candidate_nodes(base, int8, "int8") == ["/fc/Gemm", "/Add"]
