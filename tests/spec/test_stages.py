"""Stage specs derived from a pipeline spec, and the pipeline section's validation."""

from __future__ import annotations

import pytest

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.spec.stages import is_pipeline, stage_names, stage_spec

from ..conftest import write_pipeline_spec, write_tiny_spec


def test_stage_spec_carries_the_stage_names_axes_and_file(tmp_path):
    spec = load_spec(write_pipeline_spec(tmp_path))
    assert is_pipeline(spec) and stage_names(spec) == ["encoder", "head"]
    enc = stage_spec(spec, "encoder")
    assert enc.name == "tinypipe_spec/encoder" and enc.artifact_dir() == spec.artifact_dir() / "encoder"
    assert enc.input_names == ["items"] and enc.output_names == ["features"]
    assert enc.cfg["onnx_config"]["dynamic_axes"] == {"items": {0: "num_items"}, "features": {0: "num_items"}}
    assert enc.cfg["onnx_config"]["save_file"] == "tinypipe_spec.encoder.onnx"
    assert not is_pipeline(enc) and spec.cfg["onnx_config"]["output_names"] == ["logits"]  # parent untouched


def test_a_plain_spec_is_not_a_pipeline(tmp_path):
    assert not is_pipeline(load_spec(write_tiny_spec(tmp_path)))


@pytest.mark.parametrize("stages, message", [
    ("[dict(name='a', module='m', input_names=['x'])]", r"pipeline.stages\[0\].output_names: expected a non-empty list"),
    ("[dict(name='a', module='m', input_names=['x'], output_names=['y'], inputs=[])]",
     r"pipeline.stages\[0\].inputs: unknown key \(did you mean 'input_names'\?\)"),
    ("[dict(name='a', module='m', input_names=['x'], output_names=['y'])] * 2",
     r"pipeline.stages\[1\].name: 'a': stage names are unique"),
    ("['encoder']", r"pipeline.stages\[0\]: expected dict"),
])
def test_malformed_stages_name_the_key(tmp_path, stages, message):
    path = write_pipeline_spec(tmp_path, extra=f"pipeline = dict(host='tinypipe:Host', stages={stages})")
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_unknown_stage_is_an_error(tmp_path):
    with pytest.raises(SpecError, match=r"no stage 'x' \(stages: \['encoder', 'head'\]\)"):
        stage_spec(load_spec(write_pipeline_spec(tmp_path)), "x")
