"""Loading spec files: mmengine _base_ inheritance, overrides, relative paths, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.spec.load import load_spec, parse_cfg_options

from ..conftest import write_tiny_spec


def test_base_inheritance_and_relative_paths(tmp_path):
    spec = write_tiny_spec(tmp_path / "proj")
    child = tmp_path / "proj" / "child.py"
    child.write_text("_base_ = ['./tiny.py']\nverification = dict(atol=0.5)\nname = 'child'\n")
    loaded = load_spec(child)
    assert loaded.name == "child"
    assert loaded.cfg["verification"]["atol"] == 0.5
    assert loaded.cfg["verification"]["num_samples"] == 2  # inherited
    assert loaded.work_dir == (tmp_path / "proj" / "out").resolve()
    assert spec.is_file()


def test_overrides_from_command_line(tmp_path):
    spec = write_tiny_spec(tmp_path)
    loaded = load_spec(spec, cfg_options={"verification.atol": 1e-6}, device="cuda:1",
                       work_dir=tmp_path / "wd", backends=["onnx@cuda:0"])
    assert loaded.cfg["verification"]["atol"] == 1e-6
    assert loaded.device == "cuda:1"
    assert loaded.work_dir == (tmp_path / "wd").resolve()
    assert [str(b) for b in loaded.backends] == ["onnx@cuda:0"]


@given(key=st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True),
       value=st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                       st.lists(st.integers(), max_size=3)))
def test_cfg_options_parse_python_literals(key, value):
    assert parse_cfg_options([f"{key}={value!r}"]) == {key: value}


def test_cfg_option_without_equals_is_an_error():
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        parse_cfg_options(["verification.atol"])


@pytest.mark.parametrize("extra, message", [
    ("model = dict(builder='tinymodel:build', checkpoint='missing.pth')", "model.checkpoint: checkpoint file not found"),
    ("runtime_io = dict(info_pkl='nope.pkl')", "runtime_io.info_pkl: dataset info file not found"),
    ("export = dict(mode='none')", "runtime_io.onnx_file: export.mode='none' (evaluation only) needs"),
    ("backend_config = dict(model_inputs=[dict(name='img', shape=(1, 3, 16, 16))])",
     "backend_config.model_inputs[0].name: 'img' is not one of onnx_config.input_names ['image']"),
    ("backend_config = dict(model_inputs=[dict(name='image', min_shape=(4, 3, 16, 16), max_shape=(1, 3, 16, 16))])",
     "min_shape (4, 3, 16, 16) exceeds max_shape (1, 3, 16, 16)"),
    ("family = 'calibration_status_clasification'", "unknown model family 'calibration_status_clasification' "
                                                    "(did you mean 'calibration_status_classification'?)"),
    ("evaluation = dict(models_to_evaluate=['pytorch', 'onnxrt'])", "unknown backend 'onnxrt'"),
])
def test_bad_input_is_one_clear_error(tmp_path, extra, message):
    spec = write_tiny_spec(tmp_path, extra=extra)
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert message in str(err.value)
    assert str(spec) in str(err.value)


def test_syntax_error_in_spec_names_the_file(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("export = dict(mode='onnx'\n")
    with pytest.raises(SpecError, match=r"bad.py: cannot read the spec: SyntaxError"):
        load_spec(bad)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="deploy spec file not found"):
        load_spec(tmp_path / "nope.py")
