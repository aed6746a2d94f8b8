"""An AWML checkout as a user has it, for tests: the mirrored public config files (tests/spec/awml_configs,
each headed by the repo, commit and path it mirrors) copied into a temporary AWML root, with the bundled
synthetic data where AWML's files expect the data. Only paths are changed, as a user changes them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "awml_configs"
REPO = Path(__file__).resolve().parents[2]
SYNTH = REPO / "data" / "synthetic"
CSC_MODEL = "projects/CalibrationStatusClassification/configs/t4dataset/resnet18_5ch_1xb16-50e_j6gen2.py"
CP_MODEL = "projects/CenterPoint/configs/t4dataset/Centerpoint/second_secfpn_8xb16_121m_j6gen2_base_amp_t4metric_v2.py"
YOLOX_MODEL = "projects/YOLOX_opt/configs/t4dataset/YOLOX_opt-S-TrafficLight/yolox_s_tlr_416x416_pedcar_t4dataset.py"
DEPLOY = {
    "seed": HERE / "seed" / "deploy_config_eval.py",
    "framework_v1": HERE / "framework_v1" / "resnet18_5ch.py",
    "unified_v2": HERE / "unified_v2" / "deploy_config.py",
    "components": HERE / "components" / "calibration_deploy_config.py",
    "mmdeploy": HERE / "mmdeploy" / "resnet18_5ch.py",
}
CP_DEPLOY = HERE / "components" / "centerpoint_deploy_config.py"
# the shapes AWML declares are 1080x1920..2160x3840; the synthetic frames are 120x192
SMALL_INPUTS = [{"input_shapes": {"input": {"min_shape": [1, 5, 120, 192], "opt_shape": [1, 5, 120, 192],
                                            "max_shape": [2, 5, 120, 192]}}}]


def need(path: Path):
    if not path.exists():
        pytest.skip(f"{path} is missing: run `make data` (and `make data-lidar`) first")


def make_workspace(root: Path) -> Path:
    """A copy of the mirrored AWML tree at ``root`` with data where its configs look for it."""
    need(SYNTH / "calibration_status_classification" / "info_val.pkl")
    shutil.copytree(HERE / "awml", root, dirs_exist_ok=True)
    data_root = root / "data/t4dataset"  # AWML's /workspace/data/t4dataset on this machine
    model = root / CSC_MODEL
    model.write_text(model.read_text().replace("/workspace/data/t4dataset", str(data_root)))
    info = data_root / "calibration_info/t4dataset_gen2_base_infos_test.pkl"
    info.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SYNTH / "calibration_status_classification" / "info_val.pkl", info)
    (data_root / "val").symlink_to(SYNTH / "calibration_status_classification" / "val")
    if (SYNTH / "lidar" / "info_val.pkl").is_file():  # CenterPoint: info_file under the model's data_root
        lidar = root / "data/t4dataset/info/t4dataset_j6gen2_base_infos_test.pkl"
        lidar.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SYNTH / "lidar" / "info_val.pkl", lidar)
        (root / "data/t4dataset/lidar").symlink_to(SYNTH / "lidar" / "lidar")
    return root


@pytest.fixture
def awml(tmp_path, monkeypatch):
    """cwd = an AWML root (its tools run from there); the mmpretrain stand-in importable."""
    root = make_workspace(tmp_path / "AWML")
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(HERE / "site"))
    return root


def save_checkpoint(model, path: Path, openmmlab=True):
    """A checkpoint as mmengine's Runner writes it (meta with numpy values, a message hub holding
    HistoryBuffer objects, the data preprocessor's buffers), or a plain state dict."""
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer

    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if not openmmlab:
        torch.save(state, path)
        return path
    hist = HistoryBuffer()
    hist.update(0.5)
    state = {**state, "data_preprocessor.mean": torch.zeros(5, 1, 1), "data_preprocessor.std": torch.ones(5, 1, 1)}
    torch.save({"meta": {"epoch": 28, "seed": np.int64(42), "mmengine_version": "0.10.7",
                         "dataset_meta": {"classes": ("miscalibrated", "calibrated")}},
                "state_dict": state, "message_hub": {"log_scalars": {"train/loss": hist}},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]}}, path)
    return path
