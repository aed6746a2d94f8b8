"""Spec validation: defaults, types, and the closest-key suggestion (hypothesis over the schema)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.spec.schema import SCHEMA, validate

SECTIONS = sorted(k for k, f in SCHEMA.items() if f.children)


def test_empty_spec_gets_every_default():
    values = validate({}, "s.py")
    assert values["export"]["mode"] == "onnx"
    assert values["verification"]["atol"] == 1e-3
    assert values["backend_config"]["common_config"]["precision_policy"] == "auto"


def test_helper_variables_starting_with_underscore_are_ignored():
    assert "_img" not in validate({"_img": (96, 160)}, "s.py")


@given(section=st.sampled_from(SECTIONS), data=st.data())
def test_misspelled_subkey_names_the_dotted_key_and_suggests(section, data):
    key = data.draw(st.sampled_from(sorted(SCHEMA[section].children)))
    if len(key) < 5:
        return
    i = data.draw(st.integers(1, len(key) - 2))
    typo = key[:i] + key[i + 1:]  # drop one letter
    if typo in SCHEMA[section].children:
        return
    with pytest.raises(SpecError) as err:
        validate({section: {typo: 1}}, "spec.py")
    msg = str(err.value)
    assert msg.startswith(f"spec.py: {section}.{typo}: unknown key")
    assert "did you mean" in msg


@given(value=st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2), st.booleans()))
def test_wrong_type_is_rejected_with_expected_type(value):
    with pytest.raises(SpecError) as err:
        validate({"verification": {"atol": value}}, "spec.py")
    assert "verification.atol: expected int or float" in str(err.value)


@given(atol=st.floats(0, 1, allow_nan=False), rounds=st.integers(1, 1000), verify=st.booleans(),
       mode=st.sampled_from(["onnx", "trt", "both", "none"]))
def test_valid_values_round_trip(atol, rounds, verify, mode):
    values = validate({"verification": {"atol": atol}, "benchmark": {"rounds": rounds},
                       "export": {"verify": verify, "mode": mode}}, "s.py")
    assert values["verification"]["atol"] == atol
    assert values["benchmark"]["rounds"] == rounds
    assert values["export"] == {**values["export"], "verify": verify, "mode": mode}


def test_choice_error_suggests():
    with pytest.raises(SpecError, match=r"export.mode: 'onxx' is not one of .* \(did you mean 'onnx'\?\)"):
        validate({"export": {"mode": "onxx"}}, "s.py")


def test_bool_is_not_an_int():
    with pytest.raises(SpecError, match="benchmark.rounds: expected int, got bool"):
        validate({"benchmark": {"rounds": True}}, "s.py")
