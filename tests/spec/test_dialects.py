"""Every generation of AWML deploy config, read as published (tests/spec/awml_configs mirrors the public
files): detection, key mapping, keys accepted but not used, and one clear error for a key no generation has."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.spec.dialects import detect, translate
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.spec.model import BackendId
from pytest_autoware_deploy.spec.model_config import read_config
from pytest_autoware_deploy.verify import Tolerance, compare_output

from .awml_workspace import CSC_MODEL, DEPLOY, SMALL_INPUTS, awml, save_checkpoint  # noqa: F401

CKPT = "work_dirs/calibration_classifier/best_accuracy_top1_epoch_28.pth"


@pytest.mark.parametrize("generation", sorted(DEPLOY))
def test_each_published_file_is_detected_as_its_generation(generation):
    raw = read_config(DEPLOY[generation], "spec")
    assert detect(raw).GENERATION == generation


def _checkpoint(root):
    from pytest_autoware_deploy.models.mm_registry import build_model
    from pytest_autoware_deploy.spec.model_config import load_model_config

    mc = load_model_config(root / CSC_MODEL)
    return save_checkpoint(build_model(mc.model, str(mc.file)), root / CKPT)


def _load(generation, **kw):
    opts = {"backend_config.model_inputs": SMALL_INPUTS} if generation != "components" else {
        "components.model.tensorrt_profile.input": SMALL_INPUTS[0]["input_shapes"]["input"]}
    opts.update(kw.pop("cfg_options", {}))
    return load_spec(DEPLOY[generation], model_config=CSC_MODEL, cfg_options=opts, **kw)


def test_framework_v1_maps_models_and_policy(awml, tmp_path):
    onnx = tmp_path / "end2end.onnx"
    onnx.write_bytes(b"")  # only its existence is checked at load time
    spec = _load("framework_v1", device="cpu", work_dir=tmp_path / "wd",
                 cfg_options={"runtime_io.onnx_file": str(onnx), "evaluation.models.onnx": str(onnx),
                              "evaluation.models.tensorrt": str(tmp_path / "end2end.engine")})
    assert spec.export_mode == "none"
    assert spec.cfg["runtime_io"]["onnx_file"] == str(onnx)
    # the code's evaluation.models keys are the backends; policy fp16 is TensorRT's, as in AWML
    assert [str(b) for b in spec.backends] == ["onnx", "tensorrt:fp16"]
    assert spec.cfg["backend_config"]["model_inputs"][0] == {"name": "input", "min_shape": [1, 5, 120, 192],
                                                             "opt_shape": [1, 5, 120, 192],
                                                             "max_shape": [2, 5, 120, 192]}
    assert spec.cfg["family"] == "calibration_status_classification"
    unused = {u["key"] for u in spec.dialect["unused"]}
    assert unused == {"codebase_config.type", "codebase_config.task", "codebase_config.model_type",
                      "backend_config.type", "onnx_config.type", "onnx_config.input_shape",
                      "evaluation.models.tensorrt"}


def test_framework_v1_models_to_evaluate_and_explicit_int8(awml, tmp_path):
    _checkpoint(awml)
    spec = _load("framework_v1", checkpoint=CKPT, device="cpu", work_dir=tmp_path / "wd",
                 cfg_options={"export.mode": "both", "evaluation.models": None,
                              "evaluation.models_to_evaluate": ["pytorch", "onnx", "tensorrt"],
                              "backend_config.common_config.precision_policy": "explicit_int8"})
    assert [str(b) for b in spec.backends] == ["pytorch", "onnx", "tensorrt:int8"]
    assert any("'explicit_int8' is the plugin's 'int8'" in n for n in spec.dialect["notes"])


def test_unified_v2_scenarios_tolerance_and_devices(awml, tmp_path):
    _checkpoint(awml)
    spec = _load("unified_v2", work_dir=tmp_path / "wd")
    # devices kept (no --device): evaluation on cuda:0, scenarios' aliases resolved through devices
    pairs = [(str(r), str(t)) for r, t in spec.verify_pairs]
    assert pairs == [("pytorch@cpu", "onnx@cpu"), ("onnx@cuda:0", "tensorrt:fp16@cuda:0")]
    assert [str(b) for b in spec.verify_targets()] == ["onnx@cpu", "tensorrt:fp16@cuda:0"]
    assert str(spec.reference_for(BackendId("onnx", "cpu"))) == "pytorch@cpu"
    assert {"pytorch@cuda:0", "onnx@cuda:0", "pytorch@cpu", "onnx@cpu"} <= {str(b) for b in spec.backends}
    assert spec.cfg["model"]["checkpoint"] == str(awml / CKPT)
    assert spec.cfg["runtime_io"]["info_pkl"] == str(awml / "data/t4dataset/calibration_info/"
                                                           "t4dataset_gen2_base_infos_test.pkl")
    assert spec.cfg["onnx_config"]["input_names"] == ["input"]  # from model_io
    assert spec.cfg["verification"]["num_samples"] == 1
    assert spec.cfg["verification"]["rtol"] == 0.0 and spec.cfg["verification"]["atol"] < 0.1
    assert spec.cfg["precision"]["tolerances"]["fp16"]["atol"] == spec.cfg["verification"]["atol"]
    assert any("max |diff| < 0.1" in n for n in spec.dialect["notes"])
    # --device cpu puts every backend and every scenario on the one device
    cpu = _load("unified_v2", device="cpu", work_dir=tmp_path / "wd")
    assert [(str(r), str(t)) for r, t in cpu.verify_pairs] == [("pytorch", "onnx"), ("onnx", "tensorrt:fp16")]
    assert [str(b) for b in cpu.backends] == ["pytorch", "onnx", "tensorrt:fp16"]


def test_components_single_graph_and_log_path(awml, tmp_path):
    _checkpoint(awml)
    spec = _load("components", device="cpu", work_dir=tmp_path / "wd")
    assert spec.cfg["onnx_config"]["save_file"] == "end2end.onnx"
    assert spec.cfg["backend_config"]["model_inputs"][0]["max_shape"] == [2, 5, 120, 192]
    # info_file is relative to the model config's data_root
    assert spec.cfg["runtime_io"]["info_pkl"] == str(awml / "data/t4dataset/calibration_info/"
                                                           "t4dataset_gen2_base_infos_test.pkl")
    assert spec.dialect["log_path"] == "deployment.log"
    assert "components.model.engine_file" in {u["key"] for u in spec.dialect["unused"]}
    assert spec.cfg["backend_config"]["common_config"]["max_workspace_size"] == 1 << 30


def test_mmdeploy_takes_data_from_the_model_config(awml, tmp_path):
    _checkpoint(awml)
    spec = _load("mmdeploy", checkpoint=CKPT, device="cpu", work_dir=tmp_path / "wd")
    assert spec.export_mode == "both"  # backend_config.type='tensorrt': ONNX then TensorRT, as mmdeploy
    assert [str(b) for b in spec.backends] == ["pytorch", "onnx", "tensorrt"]
    # the test split of the model config's test_dataloader (data_root + info_directory_path + file name)
    assert spec.cfg["runtime_io"]["info_pkl"].endswith("calibration_info/t4dataset_gen2_base_infos_test.pkl")
    assert spec.cfg["data"]["kwargs"]["lidar_range"] == 128.0  # the test pipeline's max_depth


def test_seed_form_with_a_type_model_config(awml, tmp_path):
    _checkpoint(awml)
    spec = load_spec(DEPLOY["seed"], model_config=CSC_MODEL, checkpoint=CKPT, device="cpu",
                     work_dir=tmp_path / "wd",
                     cfg_options={"runtime_io.info_pkl": str(awml / "data/t4dataset/calibration_info/"
                                                                    "t4dataset_gen2_base_infos_test.pkl")})
    assert spec.cfg["model"]["builder"].endswith("mm_registry:build_model")
    assert spec.dialect["generation"] == "seed" and spec.dialect["unused"] == []


@pytest.mark.parametrize("generation, option, key, hint", [
    ("seed", {"export.mdoe": "onnx"}, "export.mdoe", "did you mean 'mode'?"),
    ("framework_v1", {"evaluation.modles": {}}, "evaluation.modles", "did you mean 'models'?"),
    ("unified_v2", {"verification.tolerence": 0.1}, "verification.tolerence", "did you mean 'tolerance'?"),
    ("components", {"components.model.onnx_fille": "x.onnx"}, "components.model.onnx_fille",
     "did you mean 'onnx_file'?"),
    ("mmdeploy", {"onnx_config.opset_versoin": 17}, "onnx_config.opset_versoin", "did you mean 'opset_version'?"),
    ("unified_v2", {"evaluatoin": {}}, "evaluatoin", "did you mean 'evaluation'?"),
])
def test_a_key_no_generation_has_is_one_error(awml, tmp_path, generation, option, key, hint):
    _checkpoint(awml)
    with pytest.raises(SpecError) as info:
        _load(generation, checkpoint=CKPT, device="cpu", work_dir=tmp_path / "wd", cfg_options=option)
    assert str(info.value).startswith(f"{DEPLOY[generation]}: {key}: unknown key")
    assert hint in str(info.value)


def test_awml_file_without_model_config_says_what_is_missing(tmp_path):
    with pytest.raises(SpecError, match="AWML unified_v2 deploy config: the network comes from the model config"):
        load_spec(DEPLOY["unified_v2"])


def test_task_type_must_match_the_model(awml, tmp_path):
    _checkpoint(awml)
    with pytest.raises(SpecError, match="task_type: 'detection3d' does not match the model"):
        _load("unified_v2", device="cpu", work_dir=tmp_path / "wd", cfg_options={"task_type": "detection3d"})


def test_unused_keys_are_listed_once():
    raw = read_config(DEPLOY["unified_v2"], "spec")
    tr = translate(raw, DEPLOY["unified_v2"], device="cpu")
    keys = [u.key for u in tr.unused]
    assert len(keys) == len(set(keys))
    assert "onnx_config.simplify" not in keys  # applied (onnxslim), not "accepted, not used"


@pytest.mark.parametrize("generation", ["unified_v2", "components"])
@pytest.mark.parametrize("value", [True, False])
def test_simplify_maps_to_the_native_key(generation, value):
    raw = read_config(DEPLOY[generation], "spec")
    raw["onnx_config"]["simplify"] = value
    tr = translate(raw, DEPLOY[generation], device="cpu")
    assert tr.native["onnx_config"]["simplify"] is value
    assert "onnx_config.simplify" not in [u.key for u in tr.unused]


def test_simplify_without_an_export_is_listed_as_unused():
    raw = read_config(DEPLOY["unified_v2"], "spec")
    raw["export"]["mode"] = "none"
    raw["onnx_config"]["simplify"] = True
    tr = translate(raw, DEPLOY["unified_v2"], device="cpu")
    assert "simplify" not in tr.native.get("onnx_config", {})
    assert [u.reason for u in tr.unused if u.key == "onnx_config.simplify"] == [
        "export.mode='none': the given ONNX is evaluated as it is (no export to simplify)"]


@given(tol=st.floats(1e-6, 10.0), ratio=st.floats(0.0, 2.0))
def test_awml_tolerance_rule_is_kept_exactly(tol, ratio):
    """AWML passes when max |diff| < tolerance; the mapped native tolerance accepts exactly those diffs."""
    diff = tol * ratio
    atol = math.nextafter(tol, 0.0)
    ref = np.zeros(3)
    act = np.array([0.0, diff, -diff / 2])
    passed = compare_output(ref, act, Tolerance(atol, 0.0), "t").passed
    assert passed == (float(np.max(np.abs(act - ref))) < tol)
    assert compare_output(ref, np.array([0.0, tol, 0.0]), Tolerance(atol, 0.0), "t").passed is False


def test_a_missing_info_file_of_the_model_config_names_the_model_config(awml, tmp_path, monkeypatch):
    """AWML's relative paths are relative to its repository root (its tools run from there; many configs say
    ``data_root='data/t4dataset/'``): run elsewhere, the test split's info file is not found, and the error
    names the model config's key, not the deploy config."""
    ckpt = _checkpoint(awml)
    model = awml / CSC_MODEL
    text = model.read_text()
    for line, relative in (("data_root = ", '"data/t4dataset"'), ("info_directory_path = ", '"calibration_info/"')):
        old = next(x for x in text.splitlines() if x.startswith(line))
        text = text.replace(old, line + relative)  # mmengine joins a relative ann_file to data_root
    model.write_text(text)
    opts = {"backend_config.model_inputs": SMALL_INPUTS}

    def load(**extra):
        return load_spec(DEPLOY["mmdeploy"], model_config=model, checkpoint=ckpt, device="cpu",
                         work_dir=tmp_path / "wd", cfg_options={**opts, **extra})

    assert load().cfg["runtime_io"]["info_pkl"].startswith(str(awml))  # from the AWML root: found
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(SpecError) as info:
        load()
    text = str(info.value)
    assert text.startswith(f"{model}: test_dataloader.dataset.ann_file: the test split's info file "
                           f"{elsewhere}/data/t4dataset/")
    assert f"resolve against the directory the command runs from, as AWML's tools run from the AWML repository " \
           f"root (here: {elsewhere})" in text
    # the deploy config (or --cfg-options) may name the file instead: then the model config's is not needed
    given = awml / "data/t4dataset/calibration_info/t4dataset_gen2_base_infos_test.pkl"
    assert load(**{"runtime_io.info_pkl": str(given)}).cfg["runtime_io"]["info_pkl"] == str(given)


@pytest.mark.parametrize("generation", ["unified_v2", "components", "mmdeploy", "framework_v1"])
def test_onnx_metadata_passes_through_every_generation(generation):
    raw = read_config(DEPLOY[generation], "spec")
    raw.setdefault("onnx_config", {})["metadata"] = dict(domain="3D object detection", model_version=7,
                                                         props=dict(class_names=["car"]))
    tr = translate(raw, DEPLOY[generation], device="cpu")
    assert tr.native["onnx_config"]["metadata"] == raw["onnx_config"]["metadata"]


MMDEPLOY_BEVFUSION = DEPLOY["mmdeploy"].parent / "bevfusion_camera_point_bev_tensorrt_dynamic.py"
V2_CENTERPOINT = DEPLOY["unified_v2"].parent / "centerpoint_deploy_config.py"


def test_mmdeploy_helper_variables_are_accepted_and_listed():
    """AWML's BEVFusion camera deploy configs define depth_bins/feature_dims to compute their shapes."""
    raw = read_config(MMDEPLOY_BEVFUSION, "spec")
    assert detect(raw).GENERATION == "mmdeploy"
    tr = translate(raw, MMDEPLOY_BEVFUSION)
    unused = {u.key: u.reason for u in tr.unused}
    assert {"depth_bins", "feature_dims"} <= set(unused)
    assert "helper variable" in unused["depth_bins"]
    geom = next(i for i in tr.native["backend_config"]["model_inputs"] if i["name"] == "geom_feats")
    assert geom["max_shape"] == [6 * 129 * 48 * 96, 4]  # the helper's value went into the shapes
    raw["depth_binz"] = 129
    with pytest.raises(SpecError, match="depth_binz: unknown key"):
        translate(raw, MMDEPLOY_BEVFUSION)


def test_unified_v2_multi_file_is_listed_as_unused():
    raw = read_config(V2_CENTERPOINT, "spec")
    assert detect(raw).GENERATION == "unified_v2"
    tr = translate(raw, V2_CENTERPOINT)
    assert "onnx_config.multi_file" in [u.key for u in tr.unused]
    assert "multi_file" not in tr.native.get("onnx_config", {})


FRNET_FLAT = DEPLOY["seed"].parents[1] / "frnet_script" / "frnet_tensorrt_dynamic.py"
FRNET_T4 = DEPLOY["seed"].parents[1] / "awml/projects/FRNet/configs/deploy/t4dataset/frnet_tensorrt_dynamic.py"


def test_frnet_script_config_maps_profiles_and_lists_the_output_profile():
    raw = read_config(FRNET_FLAT, "spec")
    assert detect(raw).GENERATION == "frnet_script"
    tr = translate(raw, FRNET_FLAT)
    inputs = {i["name"]: i for i in tr.native["backend_config"]["model_inputs"]}
    assert list(inputs) == ["points", "coors", "voxel_coors", "inverse_map"]
    assert inputs["voxel_coors"]["max_shape"] == [60000, 3]
    assert tr.native["export"]["mode"] == "both"
    assert tr.native["onnx_config"]["output_names"] == ["seg_logit"]
    unused = [u.key for u in tr.unused]
    assert "tensorrt_config.seg_logit" in unused and "custom_imports" in unused


def test_frnet_script_config_inheriting_the_model_config_lists_the_base_once():
    raw = read_config(FRNET_T4, "spec")
    assert "model" in raw  # the whole model config came through _base_
    assert detect(raw).GENERATION == "frnet_script"
    tr = translate(raw, FRNET_T4)
    unused = {u.key: u.reason for u in tr.unused}
    assert "model" not in tr.native  # the inherited type= model is not read from the deploy config
    assert "the file inherits a model config" in unused["_base_"]
    assert "num_classes" in unused
    assert [i["name"] for i in tr.native["backend_config"]["model_inputs"]] == [
        "points", "coors", "voxel_coors", "inverse_map"]


@pytest.mark.parametrize("edit, key", [
    (lambda raw: raw["tensorrt_config"]["points"].update(max_shpe=[1, 4]), "tensorrt_config.points.max_shpe"),
    (lambda raw: raw.update(onnx_confg={}), "onnx_confg"),
])
def test_frnet_script_wrong_key_is_one_error(edit, key):
    raw = read_config(FRNET_FLAT, "spec")
    edit(raw)
    with pytest.raises(SpecError) as info:
        translate(raw, FRNET_FLAT)
    assert str(info.value).startswith(f"{FRNET_FLAT}: {key}: unknown key")


def test_frnet_script_config_with_a_base_still_refuses_a_key_the_base_lacks():
    raw = read_config(FRNET_T4, "spec")
    raw["tensorrt_confg"] = {}
    with pytest.raises(SpecError, match="tensorrt_confg: unknown key"):
        translate(raw, FRNET_T4)
