"""`autoware-deploy deploy_cfg model_cfg [checkpoint] --work-dir`: the seed's CLI shape, pytest's exit code."""

from __future__ import annotations

import subprocess
import sys

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
    assert "13 passed" in proc.stdout
    assert (tmp_path / "wd" / "deploy_report.json").is_file()


def test_cli_exit_code_is_pytests(tmp_path):
    spec = write_tiny_spec(tmp_path / "proj")
    proc = _cli(str(spec), "--backends", "pytorch", "--cfg-options", "evaluation.thresholds.min_accuracy=1.01",
                "--", "-k", "accuracy", cwd=tmp_path)
    assert proc.returncode == 1
    assert "accuracy 1.0000 < min_accuracy 1.0100" in proc.stdout
    proc = _cli(str(spec), "--backends", "pytorchh", cwd=tmp_path)
    assert proc.returncode == 4 and "did you mean 'pytorch'" in proc.stderr
