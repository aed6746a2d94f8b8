"""`autoware-deploy deploy_cfg model_cfg [checkpoint] --work-dir`: the seed's CLI shape, pytest's exit code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from pytest_autoware_deploy.cli import build_parser, pytest_args

from .conftest import write_tiny_spec


def test_seed_cli_shape_maps_to_plugin_options():
    ns = build_parser().parse_args(["d.py", "m.py", "c.pth", "--work-dir", "w", "--device", "cuda:0",
                                    "--cfg-options", "verification.atol=1"])
    args = pytest_args(ns, ["-x"])
    for pair in (["--deploy-config", "d.py"], ["--deploy-model-config", "m.py"], ["--deploy-checkpoint", "c.pth"],
                 ["--deploy-work-dir", "w"], ["--deploy-device", "cuda:0"]):
        i = args.index(pair[0])
        assert args[i:i + 2] == pair
    assert args[-1] == "-x"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pytest_autoware_deploy", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_runs_spec_with_model_config_and_checkpoint(tmp_path):
    spec = write_tiny_spec(tmp_path / "proj")
    model_cfg = tmp_path / "model_cfg.py"
    model_cfg.write_text("model = dict(builder='tinymodel:build', kwargs=dict(width=8))\n")
    sys.path.insert(0, str(spec.parent))
    try:
        import tinymodel
        ckpt = tmp_path / "ckpt.pth"
        torch.save({"state_dict": tinymodel.build().state_dict()}, ckpt)
    finally:
        sys.path.remove(str(spec.parent))
    proc = _cli(str(spec), str(model_cfg), str(ckpt), "--work-dir", str(tmp_path / "wd"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "15 passed" in proc.stdout  # + test_agreement, test_batch_invariance
    assert (tmp_path / "wd" / "deploy_report.json").is_file()


def test_cli_exit_code_is_pytests(tmp_path):
    spec = write_tiny_spec(tmp_path / "proj")
    proc = _cli(str(spec), "--backends", "pytorch", "--cfg-options", "evaluation.thresholds.min_accuracy=1.01",
                "--", "-k", "accuracy", cwd=tmp_path)
    assert proc.returncode == 1
    assert "accuracy 1.0000 < min_accuracy 1.0100" in proc.stdout
    proc = _cli(str(spec), "--backends", "pytorchh", cwd=tmp_path)
    assert proc.returncode == 4 and "did you mean 'pytorch'" in proc.stderr


# -- AWML's files, unedited (tests/spec/awml_configs mirrors them) ------------------------------------------------

from pytest_autoware_deploy.cli import normalize  # noqa: E402

from .spec.awml_workspace import CSC_MODEL, DEPLOY, HERE, SMALL_INPUTS, make_workspace, save_checkpoint  # noqa: E402

QUICK = ["evaluation.num_samples=4", "benchmark.rounds=2", "benchmark.warmup=0", "benchmark.batch_sizes=[1]"]


def test_newest_cli_shape_names_the_project_first():
    parser = build_parser()
    ns = normalize(parser.parse_args(["centerpoint", "deploy_config.py", "model.py", "--log-level", "INFO"]), parser)
    assert (ns.project, ns.family, ns.deploy_cfg, ns.model_cfg, ns.checkpoint) == \
        ("centerpoint", "centerpoint", "deploy_config.py", "model.py", None)
    ns = normalize(parser.parse_args(["d.py", "m.py", "c.pth"]), parser)
    assert (ns.project, ns.deploy_cfg, ns.model_cfg, ns.checkpoint) == (None, "d.py", "m.py", "c.pth")


def test_unknown_project_and_rot_y_axis_reference_are_refused(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        normalize(parser.parse_args(["centerpiont", "d.py", "m.py"]), parser)
    assert "unknown project 'centerpiont'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        normalize(parser.parse_args(["centerpoint", "d.py", "m.py", "--rot-y-axis-reference"]), parser)
    assert "--rot-y-axis-reference" in capsys.readouterr().err


def _awml_cli(root, *args):
    import os

    env = dict(os.environ, PYTHONPATH=str(HERE / "site"))  # the mmpretrain stand-in, as if installed
    return subprocess.run([sys.executable, "-m", "pytest_autoware_deploy", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


def _csc_checkpoint(root, rel):
    from pytest_autoware_deploy.models.mm_registry import build_model
    from pytest_autoware_deploy.spec.model_config import load_model_config

    sys.path.insert(0, str(HERE / "site"))
    try:
        mc = load_model_config(root / CSC_MODEL)
    finally:
        sys.path.remove(str(HERE / "site"))
    return save_checkpoint(build_model(mc.model, str(mc.file)), root / rel)


def test_unified_v2_files_run_unedited_with_the_seed_cli(tmp_path):
    root = make_workspace(tmp_path / "AWML")
    ckpt = _csc_checkpoint(root, "ckpt/epoch_28.pth")
    small = "backend_config.model_inputs=" + repr(SMALL_INPUTS)
    proc = _awml_cli(root, str(DEPLOY["unified_v2"]), CSC_MODEL, str(ckpt), "--work-dir", str(tmp_path / "wd"),
                     "--device", "cpu", "--cfg-options", small, *QUICK)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    # the export mode's scenarios are the verification tests: onnx vs pytorch, tensorrt:fp16 vs onnx
    assert "TensorRT is not installed here" in out  # tensorrt:fp16 vs onnx: a skip saying why
    assert "Cross-Backend Comparison: deploy_config" in out
    assert "Latency:" in out and "onnx: PASSED" in out
    assert "accepted but not used here (9):" in out and "onnx_config.simplify:" not in out  # simplify: applied
    doc = json.loads((tmp_path / "wd" / "deploy_report.json").read_text())
    source = doc["specs"]["deploy_config"]["config_source"]
    assert source["generation"] == "unified_v2" and source["verify_pairs"] == [["pytorch", "onnx"],
                                                                              ["onnx", "tensorrt:fp16"]]


def test_components_file_runs_with_the_newest_cli_shape(tmp_path):
    root = make_workspace(tmp_path / "AWML")
    _csc_checkpoint(root, "work_dirs/calibration_classifier/best_accuracy_top1_epoch_28.pth")  # its checkpoint_path
    profile = "components.model.tensorrt_profile.input=" + repr(SMALL_INPUTS[0]["input_shapes"]["input"])
    proc = _awml_cli(root, "calibration", str(DEPLOY["components"]), CSC_MODEL, "--work-dir", str(tmp_path / "wd"),
                     "--device", "cpu", "--cfg-options", profile, *QUICK)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    log = tmp_path / "wd" / "deployment.log"  # deploy_log_path, relative to the work dir
    assert "Cross-Backend Comparison" in log.read_text()
    assert "components.model.engine_file" in log.read_text()
