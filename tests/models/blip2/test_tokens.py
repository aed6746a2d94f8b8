"""verify/tokens.py and its ``verification.outputs`` entry: greedy token sequences, first divergent step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.verify.output_checks import output_checks, run_detection_check, verified_outputs
from pytest_autoware_deploy.verify.tokens import TokenTolerance, compare_tokens, first_divergence

REPO = Path(__file__).resolve().parents[3]
seqs = st.lists(st.integers(0, 19), min_size=1, max_size=16)


@given(seqs, st.data())
def test_first_divergence_is_the_first_changed_step(seq, data):
    ref = np.asarray(seq)
    assert first_divergence(ref, ref.copy()) == -1
    step = data.draw(st.integers(0, len(seq) - 1))
    act = ref.copy()
    act[step] = (act[step] + 1) % 20
    act[step + 1:] = data.draw(st.lists(st.integers(0, 19), min_size=len(seq) - step - 1,
                                        max_size=len(seq) - step - 1))
    assert first_divergence(ref, act) == step
    result = compare_tokens([ref], [act], TokenTolerance(), "where")
    assert not result.passed and result.stats["first_divergent_step"] == step
    assert f"diverge at step {step}" in result.message and result.message.startswith("where: ")
    assert result.stats["matched"] == step and result.stats["unmatched_ref"] == len(seq) - step
    # only the steps before the divergence are required: passes
    assert compare_tokens([ref], [act], TokenTolerance(steps=step), "where").passed == (step > 0)


def test_batch_reports_the_earliest_divergence_and_length_difference():
    refs = [np.array([4, 5, 6, 2]), np.array([4, 7, 8, 2])]
    acts = [np.array([4, 5, 9, 2]), np.array([4, 3, 8, 2])]
    r = compare_tokens(refs, acts, TokenTolerance(), "w")
    assert r.stats["first_divergent_step"] == 1 and "batch element 1" in r.message and "token 3 vs 7" in r.message
    assert first_divergence([1, 2, 3], [1, 2]) == 2
    assert not compare_tokens([np.array([1])], [], TokenTolerance(), "w").passed


def test_spec_entry_selects_the_token_comparator_and_validates_keys():
    spec = load_spec(REPO / "deploy_specs/blip2.py")
    check = output_checks(spec)["output_ids"]
    assert check.compare == "tokens" and "output_ids" in verified_outputs(spec)
    ref = {"output_ids": np.array([[4, 5, 9, 13, 14, 15, 2, 2]])}
    same = run_detection_check(spec, check, ref, {"output_ids": ref["output_ids"].copy()}, "auto", "w")
    assert same.passed and same.stats["matched"] == 8
    other = {"output_ids": np.array([[4, 5, 9, 13, 16, 15, 2, 2]])}
    bad = run_detection_check(spec, check, ref, other, "auto", "w")
    assert not bad.passed and bad.stats["first_divergent_step"] == 4

    with pytest.raises(SpecError, match=r"verification\.outputs\.output_ids\.stepz.*steps"):
        load_spec(REPO / "deploy_specs/blip2.py", cfg_options={"verification.outputs.output_ids.stepz": 3})
