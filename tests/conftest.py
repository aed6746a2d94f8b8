"""Shared test helpers: a tiny model family written into a temp dir, as a user outside the repo would."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Import the native-extension libraries once, up front: pytester's in-process runs restore
# sys.modules afterwards, and re-importing onnx's nanobind extension in the same process breaks it.
import onnx  # noqa: F401
import onnx.checker  # noqa: F401
import onnx.shape_inference  # noqa: F401
import onnxruntime  # noqa: F401
import torch  # noqa: F401
import matplotlib.pyplot  # noqa: F401

# Hypothesis profiles. CI runs derandomized (examples seeded from each test's source, no example database,
# no deadline on a loaded 2-core runner), so a CI result is reproducible: the same commit and lock give the
# same examples. Locally the `dev` profile keeps exploring at random and replays failures from .hypothesis/.
# Reproduce CI locally with `CI=true make test` or `pytest --hypothesis-profile=ci`.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", parent=settings.get_profile("default"))


def hypothesis_profile(environ) -> str:
    """``ci`` when ``CI=true`` (GitHub Actions and `.ci/run` set it), else ``dev``. Hypothesis's own CI detection
    would pick its built-in ``ci`` profile for any ``CI`` value, ``CI=false`` included; this rule is explicit."""
    return "ci" if environ.get("CI", "").strip().lower() in ("true", "1") else "dev"


settings.load_profile(hypothesis_profile(os.environ))

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


def _write_project(directory: Path, module: str, module_text: str, name: str, spec_text: str, extra: str) -> Path:
    """A user's project outside the repo: the model module beside the spec file that names it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{module}.py").write_text(module_text)
    spec = directory / f"{name}.py"
    spec.write_text(spec_text.replace("{extra}", textwrap.dedent(extra)))
    return spec


def write_tiny_spec(directory: Path, name="tiny", extra="", checkpoint=None) -> Path:
    ckpt = f", checkpoint={checkpoint!r}" if checkpoint else ""
    return _write_project(directory, "tinymodel", TINY_MODULE, name, TINY_SPEC.replace("{checkpoint}", ckpt), extra)


@pytest.fixture
def tiny_spec(tmp_path):
    return write_tiny_spec(tmp_path / "user_project")


@pytest.fixture(autouse=True)
def _inner_runs_are_not_xdist_workers(monkeypatch):
    """pytest-benchmark disables itself when PYTEST_XDIST_WORKER is set; runs we start are not workers."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID", raising=False)


PIPELINE_MODULE = '''
import numpy as np
import torch
from torch import nn


class Encoder(nn.Module):
    """(num_items, 4) -> (num_items, 8): a pillar-feature-net stand-in (dynamic first axis)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 8)

    def forward(self, items):
        return torch.relu(self.lin(items))


class Head(nn.Module):
    """(1, 8, G, G) grid -> (1, 3) logits: a backbone+head stand-in."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, grid):
        return self.fc(torch.relu(self.conv(grid)).mean((2, 3)))


class TwoStage(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = Head()


def build():
    torch.manual_seed(0)
    return TwoStage().eval()


class Host:
    """Host code between the stages: scatter each item's features into its (x, y) grid cell."""

    def __init__(self, grid=4):
        self.grid = grid

    def run(self, inputs, call_stage):
        items = inputs["items"]
        feats = call_stage("encoder", {"items": items})["features"]
        grid = np.zeros((self.grid, self.grid, feats.shape[1]), np.float32)
        cells = np.clip(items[:, :2].astype(np.int64), 0, self.grid - 1)
        np.add.at(grid, (cells[:, 1], cells[:, 0]), feats)
        logits = call_stage("head", {"grid": np.ascontiguousarray(grid.transpose(2, 0, 1)[None])})["logits"]
        return {"logits": logits}


def _torch_stage(model):
    def call(name, feed):
        module = getattr(model, name)
        with torch.no_grad():
            out = module(*[torch.from_numpy(v) for v in feed.values()])
        return {"features" if name == "encoder" else "logits": out.numpy()}
    return call


def make_samples(n=8, seed=0):
    rng = np.random.default_rng(seed)
    model, host = build(), Host()
    out = []
    for _ in range(n):
        k = int(rng.integers(5, 13))
        items = np.concatenate([rng.uniform(0, 4, (k, 2)), rng.standard_normal((k, 2))], 1).astype(np.float32)
        target = int(host.run({"items": items}, _torch_stage(model))["logits"].argmax())
        out.append(dict(inputs={"items": items}, target=target))
    return out
'''

PIPELINE_SPEC = '''
export = dict(mode='onnx', work_dir='out')
onnx_config = dict(input_names=['items'], output_names=['logits'])
model = dict(builder='tinypipe:build')
pipeline = dict(host='tinypipe:Host', kwargs=dict(grid=4), stages=[
    dict(name='encoder', module='encoder', input_names=['items'], output_names=['features'],
         dynamic_axes={'items': {0: 'num_items'}, 'features': {0: 'num_items'}}),
    dict(name='head', module='head', input_names=['grid'], output_names=['logits']),
])
data = dict(loader='tinypipe:make_samples', kwargs=dict(n=8))
evaluation = dict(evaluator='classification', kwargs=dict(num_classes=3),
                  thresholds=dict(min_accuracy=0.99, max_drop=0.0))
verification = dict(num_samples=2, atol=1e-4, rtol=1e-3)
benchmark = dict(warmup=1, rounds=5)
{extra}
'''


def write_pipeline_spec(directory: Path, name="tinypipe_spec", extra="") -> Path:
    return _write_project(directory, "tinypipe", PIPELINE_MODULE, name, PIPELINE_SPEC, extra)
