"""Shared test helpers: a tiny model family written into a temp dir, as a user outside the repo would."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# Import the native-extension libraries once, up front: pytester's in-process runs restore
# sys.modules afterwards, and re-importing onnx's nanobind extension in the same process breaks it.
import onnx  # noqa: F401
import onnx.checker  # noqa: F401
import onnx.shape_inference  # noqa: F401
import onnxruntime  # noqa: F401
import torch  # noqa: F401
import matplotlib.pyplot  # noqa: F401

TINY_MODULE = '''
import numpy as np
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, width=8, classes=3, bake_batch=False, nan=False, delay_ms=0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, classes)
        self.bake_batch = bake_batch
        self.nan = nan
        self.delay_ms = delay_ms

    def forward(self, x):
        if self.delay_ms and not torch.onnx.is_in_onnx_export():  # a planted slow backend (eager only)
            import time
            time.sleep(self.delay_ms / 1000)
        y = self.head(self.body(x))
        if self.bake_batch:  # a classic export bug: int() turns the traced batch size into a constant
            y = y.reshape(int(x.shape[0]), -1)
        if self.nan and not torch.onnx.is_in_onnx_export():  # eager-only divergence: NaN in one element
            y = y.clone()
            y[0, 0] = float("nan")
        return y


def build(**kwargs):
    torch.manual_seed(0)
    return Tiny(**kwargs).eval()


def make_samples(n=12, size=16, seed=0, wrong_labels=0):
    rng = np.random.default_rng(seed)
    model = build()
    out = []
    for _ in range(n):
        x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            target = int(model(torch.from_numpy(x)).argmax(-1))  # labels the model gets right
        if len(out) < wrong_labels:  # a planted accuracy drop: the first labels are wrong
            target = (target + 1) % 3
        out.append(dict(inputs={"image": x}, target=target))
    return out
'''

TINY_SPEC = '''
export = dict(mode='onnx', work_dir='out')
onnx_config = dict(input_names=['image'], output_names=['logits'],
                   dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}})
model = dict(builder='tinymodel:build', kwargs=dict(width=8){checkpoint})
data = dict(loader='tinymodel:make_samples', kwargs=dict(n=12))
evaluation = dict(evaluator='classification', kwargs=dict(num_classes=3),
                  thresholds=dict(min_accuracy=0.99, max_drop=0.0))
verification = dict(num_samples=2, atol=1e-4, rtol=1e-3)
benchmark = dict(warmup=1, rounds=5)
{extra}
'''


def write_tiny_spec(directory: Path, name="tiny", extra="", checkpoint=None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tinymodel.py").write_text(TINY_MODULE)
    ckpt = f", checkpoint={checkpoint!r}" if checkpoint else ""
    spec = directory / f"{name}.py"
    spec.write_text(TINY_SPEC.replace("{checkpoint}", ckpt).replace("{extra}", textwrap.dedent(extra)))
    return spec


@pytest.fixture
def tiny_spec(tmp_path):
    return write_tiny_spec(tmp_path / "user_project")


@pytest.fixture(autouse=True)
def _inner_runs_are_not_xdist_workers(monkeypatch):
    """pytest-benchmark disables itself when PYTEST_XDIST_WORKER is set; runs we start are not workers."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID", raising=False)
