"""verification.outputs in a spec: validation errors name the key; derived outputs get tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.verify.output_checks import output_checks, verified_outputs

SPEC = Path(__file__).resolve().parents[2] / "deploy_specs" / "yolox_opt_traffic_light.py"


def test_bundled_detection_check_and_its_policy_overrides():
    spec = load_spec(SPEC)
    check = output_checks(spec)["dets"]
    assert verified_outputs(spec) == ["output", "dets"]
    assert check.tolerance_for("auto").max_unmatched == 0
    int8 = check.tolerance_for("int8")
    assert int8.max_unmatched == 1 and int8.iou == check.tolerance.iou


def test_auto_on_cuda_takes_the_tf32_entry_over_auto_and_only_there():
    """'auto' on CUDA is TF32 math (policies.effective_policy): a spec's fp32_tf32 entry applies there, layered
    over its auto entry; on the CPU (or with no device) auto keeps its own."""
    spec = load_spec(SPEC, cfg_options={"verification.outputs.dets.policies.fp32_tf32": {"score_atol": 0.07},
                                        "verification.outputs.dets.policies.auto": {"box_atol": 3.0,
                                                                                    "score_atol": 0.01}})
    check = output_checks(spec)["dets"]
    cpu, cuda, plain = check.tolerance_for("auto", "cpu"), check.tolerance_for("auto", "cuda:0"), check.tolerance_for("auto")
    assert (cpu.score_atol, cpu.box_atol) == (plain.score_atol, plain.box_atol) == (0.01, 3.0)
    assert (cuda.score_atol, cuda.box_atol) == (0.07, 3.0)
    assert check.tolerance_for("fp16", "cuda:0") == check.tolerance_for("fp16")  # only auto changes meaning on CUDA


@pytest.mark.parametrize("spec_name, key, value", [("frnet", "score_atol", 0.03),
                                                    ("centerpoint_convnextpc", "yaw_atol", 0.1)])
def test_bundled_specs_give_tf32_its_measured_room_on_cuda_only(spec_name, key, value):
    spec = load_spec(SPEC.parent / f"{spec_name}.py")
    check = next(iter(output_checks(spec).values()))
    assert getattr(check.tolerance_for("auto", "cuda:0"), key) == value
    assert getattr(check.tolerance_for("auto", "cpu"), key) == getattr(check.tolerance, key) < value


def test_element_wise_tolerance_of_auto_on_cuda_is_the_specs_tf32_entry():
    from pytest_autoware_deploy.policies import tolerance_for

    spec = load_spec(SPEC.parent / "frnet.py")
    assert tolerance_for(spec, "auto", "cuda:0")["atol"] == 0.03  # measured on the H100: 0.019
    assert tolerance_for(spec, "auto", "cpu")["atol"] == spec.cfg["verification"]["atol"] == 1e-3
    assert tolerance_for(spec, "fp16", "cuda:0") == tolerance_for(spec, "fp16", "cpu")


@pytest.mark.parametrize("option, key, text", [
    ({"verification.outputs.dets.iou": 1.5}, "verification.outputs.dets.iou", "0 < iou <= 1"),
    ({"verification.outputs.dets.box_tol": 1}, "verification.outputs.dets.box_tol", "did you mean 'box_atol'"),
    ({"verification.outputs.dets.compare": "detections3"}, "verification.outputs.dets.compare", "detections2d"),
    ({"verification.outputs.dets.decoder": "nocolon"}, "verification.outputs.dets.decoder", "module.path:callable"),
    ({"verification.outputs.dets.max_unmatched": 0.5}, "verification.outputs.dets.max_unmatched", "non-negative"),
    ({"verification.outputs.dets.policies": {"int8": {"score_atl": 1}}},
     "verification.outputs.dets.policies.int8.score_atl", "did you mean 'score_atol'"),
    ({"verification.outputs.logits": {"compare": "allclose"}}, "verification.outputs.logits", "not an ONNX output"),
])
def test_bad_entries_are_one_error_naming_the_key(option, key, text):
    with pytest.raises(SpecError) as info:
        load_spec(SPEC, cfg_options=option)
    assert info.value.key == key and text in str(info.value)


def test_decoder_failures_are_one_error_naming_the_key():
    import numpy as np

    from pytest_autoware_deploy.verify.output_checks import run_detection_check

    spec = load_spec(SPEC, cfg_options={"verification.outputs.dets.decoder_kwargs.output_name": "boxes"})
    check = output_checks(spec)["dets"]
    outputs = {"output": np.zeros((1, 4, 8), np.float32)}
    with pytest.raises(SpecError) as info:
        run_detection_check(spec, check, outputs, outputs, "auto", "here")
    assert info.value.key == "verification.outputs.dets.decoder"
    assert "no output 'boxes'" in str(info.value) and "{'output': (1, 4, 8)}" in str(info.value)
    spec = load_spec(SPEC, cfg_options={"verification.outputs.dets.decoder_kwargs.nms": 0.5})
    with pytest.raises(SpecError, match="decoder_kwargs: .*rejected them"):
        run_detection_check(spec, output_checks(spec)["dets"], outputs, outputs, "auto", "here")
