"""export/onnx.py and export/signature.py: input names vs forward, the exporter's warnings kept with the export."""

from __future__ import annotations

import keyword
import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.export.onnx import export_onnx
from pytest_autoware_deploy.export.pytorch_model import build_model
from pytest_autoware_deploy.export.signature import check_forward_inputs, forward_input_problems
from pytest_autoware_deploy.report.store import ReportStore
from pytest_autoware_deploy.session import SpecState
from pytest_autoware_deploy.spec.load import load_spec

from ..conftest import write_pipeline_spec, write_tiny_spec


def _forward(params: str):
    ns = {}
    exec(f"def forward({params}):\n    pass", ns)
    return ns["forward"]


NAMES = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s)),
                 min_size=1, max_size=5, unique=True)


@given(names=NAMES)
def test_names_equal_to_forward_parameters_fit(names):
    assert forward_input_problems(_forward(", ".join(names)), names) == []


@given(names=NAMES)
def test_a_name_too_many_or_too_few_is_reported(names):
    forward = _forward(", ".join(names))
    assert any("too many" in p for p in forward_input_problems(forward, names + ["zz_extra"]))
    assert any("would get no input" in p for p in forward_input_problems(forward, names[:-1]))


@given(names=NAMES.filter(lambda n: len(n) >= 2), data=st.data())
def test_parameter_names_in_another_order_are_reported(names, data):
    i, j = data.draw(st.lists(st.integers(0, len(names) - 1), min_size=2, max_size=2, unique=True))
    swapped = list(names)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    problems = forward_input_problems(_forward(", ".join(names)), swapped)
    assert any(f"'{names[i]}' is input {j + 1} but forward's parameter {i + 1}" in p for p in problems)


@pytest.mark.parametrize("params, names, expected", [
    ("x", ["image"], None),                                  # graph names need not be parameter names
    ("x, scale=1.0", ["image"], None),                       # a defaulted parameter may stay unfed
    ("*args", ["a", "b", "c"], None),                        # *args takes any number
    ("voxels, *rest", ["voxels", "num_points"], None),
    ("image, mask", ["image", "msk"], "looks like a misspelling of forward's parameter 'mask'"),
    ("image, mask", ["images", "masks"], None),              # no name is a parameter's: names are free
    ("**inputs", ["image"], "by keyword only (**kwargs)"),
    ("x, *, flag", ["x"], "keyword-only parameter(s) ['flag']"),
])
def test_forward_signatures(params, names, expected):
    problems = forward_input_problems(_forward(params), names)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_mismatch_is_one_spec_error_naming_key_names_and_signature(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path, extra="onnx_config = dict(input_names=['image', 'mask'])"))
    with pytest.raises(SpecError) as err:
        build_model(spec)
    text = str(err.value)
    assert text.startswith(f"{spec.file}: onnx_config.input_names: ['image', 'mask'] do not fit Tiny.forward(x)")
    assert "['mask'] too many" in text


def test_a_pipeline_checks_each_stage_against_its_own_names(tmp_path):
    spec = load_spec(write_pipeline_spec(tmp_path, extra="""
        pipeline = dict(host='tinypipe:Host', kwargs=dict(grid=4), stages=[
            dict(name='encoder', module='encoder', input_names=['items'], output_names=['features']),
            dict(name='head', module='head', input_names=['grid', 'extra'], output_names=['logits'])])
    """))
    with pytest.raises(SpecError) as err:
        build_model(spec)
    assert "pipeline.stages[1].input_names: ['grid', 'extra'] do not fit Head.forward(grid)" in str(err.value)


def test_a_pipelines_own_input_names_are_not_checked_against_its_forward(tmp_path):
    spec = load_spec(write_pipeline_spec(tmp_path))
    check_forward_inputs(build_model(spec), spec)  # TwoStage has no forward: its inputs go to the host code


BAKED_BATCH = "model = dict(builder='tinymodel:build', kwargs=dict(width=8, bake_batch=True))"


def _state(spec):
    return SpecState(spec, ReportStore())


def test_exporter_warnings_are_recorded_and_survive_a_warm_cache(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path, extra=BAKED_BATCH))
    state = _state(spec)
    cold = export_onnx(spec, state.model, state.example_inputs())
    assert cold.built
    tracer = [w for w in cold.warnings if w["category"] == "TracerWarning"]
    assert len(tracer) == 1 and "Python integer" in tracer[0]["message"]
    assert tracer[0]["where"].startswith(str(tmp_path / "tinymodel.py") + ":")
    assert not [w for w in cold.warnings if "Deprecat" in w["category"]]  # the exporter's API notices: dropped
    state = _state(spec)
    warm = export_onnx(spec, state.model, state.example_inputs())
    assert not warm.built and warm.path == cold.path
    assert warm.warnings == cold.warnings


def test_a_clean_export_has_no_warnings(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path))
    state = _state(spec)
    assert export_onnx(spec, state.model, state.example_inputs()).warnings == []


def test_a_warm_export_writes_nothing(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path))
    state = _state(spec)
    export_onnx(spec, state.model, state.example_inputs())
    before = _tree(tmp_path / "out")
    state = _state(spec)
    assert not export_onnx(spec, state.model, state.example_inputs()).built
    assert _tree(tmp_path / "out") == before


def _tree(root):
    """Every file and directory under ``root`` with its mtime and size: any write shows."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mtime_ns, st.st_size)
    return out


def test_forward_check_runs_before_torch_sees_the_inputs(tmp_path):
    """export_onnx itself checks too (a stage spec's model is a submodule, never built by build_model)."""
    spec = load_spec(write_tiny_spec(tmp_path, extra="onnx_config = dict(input_names=['image', 'mask'])"))
    model = torch.nn.Linear(3, 3)
    with pytest.raises(SpecError, match=r"onnx_config.input_names: \['image', 'mask'\] do not fit Linear.forward"):
        export_onnx(spec, model, {})
