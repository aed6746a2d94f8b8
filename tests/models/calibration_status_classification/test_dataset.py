"""AWML's on-disk format: the synthetic generator writes it, the safe loader reads it."""

from __future__ import annotations

import hashlib
import os
import pickle

import numpy as np
import pytest

from pytest_autoware_deploy.models.calibration_status_classification.dataset import (
    CalibrationSamples, InfoFileError, load_info)
from pytest_autoware_deploy.models.calibration_status_classification.synthetic import write_split


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    out = tmp_path_factory.mktemp("calib")
    return write_split(out, "val", 6, seed=2, height=48, width=64)


def _digest(directory):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(directory)):
        for f in sorted(files):
            h.update(f.encode())
            with open(os.path.join(root, f), "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_generator_is_deterministic(split, tmp_path):
    again = write_split(tmp_path, "val", 6, seed=2, height=48, width=64)
    assert _digest(split.parent / "val") == _digest(again.parent / "val")
    assert split.read_bytes() == again.read_bytes()


def test_info_has_awml_layout(split):
    info = load_info(split)
    entry = info["data_list"][0]
    assert np.asarray(entry["image"]["cam2img"]).shape == (3, 3)
    assert np.asarray(entry["image"]["lidar2cam"]).shape == (4, 4)
    assert entry["lidar_points"]["num_pts_feats"] == 5
    pts = np.fromfile(split.parent / entry["lidar_points"]["lidar_path"], np.float32).reshape(-1, 5)
    assert len(pts) > 1000


def test_samples_are_deterministic_and_labelled(split):
    a, b = CalibrationSamples(split), CalibrationSamples(split)
    assert len(a) == 6
    for i in range(6):
        sa, sb = a[i], b[i]
        assert sa["inputs"]["input"].shape == (1, 5, 48, 64)
        assert sa["target"] in (0, 1)
        np.testing.assert_array_equal(sa["inputs"]["input"], sb["inputs"]["input"])
    assert {a[i]["target"] for i in range(6)} == {0, 1}


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/should_not_exist",))

    bad = tmp_path / "info.pkl"
    bad.write_bytes(pickle.dumps({"data_list": [Evil()]}))
    with pytest.raises(InfoFileError, match=r"refuses to load global '(posix|os)\.system'"):
        load_info(bad)


def test_missing_and_malformed_info(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_info(tmp_path / "nope.pkl")
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps({"infos": []}))
    with pytest.raises(InfoFileError, match="expected a dict with a 'data_list' list"):
        load_info(wrong)
