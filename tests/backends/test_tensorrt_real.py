"""The tiny model through real TensorRT / TensorRT-RTX on a real GPU, compared with ONNX Runtime on CPU.

Each module is skipped where it is not installed (that reason), and the engine is run only where the
module's runtime says it can run here (``engine_support``: TensorRT-RTX's engine-validity check, e.g.
"compute capability 9.0" on an H100; TensorRT: deserializing) -- otherwise skipped with the runtime's own
reason. TensorRT-RTX builds without a GPU, so its build half runs on CPU-only CI as well.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime as ort
import pytest

from pytest_autoware_deploy.backends.tensorrt import TensorRTRunner
from pytest_autoware_deploy.backends.trt_module import engine_support
from pytest_autoware_deploy.export.tensorrt import build_engine

from ..fakes.fake_tensorrt import trt_spec, trt_tiny  # noqa: F401 (fixtures)

# strongly_typed clears TF32, so fp32 math must match closely; auto lets TensorRT use TF32
TOLERANCE = {"strongly_typed": 1e-4, "auto": 1e-2}
INSTALL = {"tensorrt": "pip install '.[tensorrt]'", "tensorrt_rtx": "pip install tensorrt-rtx"}


def _module(name):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"'{name}' is not installed here ({INSTALL[name]}): the real-{name} test needs it")
    return name


@pytest.mark.parametrize("module", ["tensorrt", "tensorrt_rtx"])
@pytest.mark.parametrize("policy", sorted(TOLERANCE))
def test_tiny_engine_matches_onnxruntime(trt_spec, trt_tiny, policy, module):
    _module(module)
    if module == "tensorrt":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("torch has no CUDA device here: building a TensorRT engine needs an NVIDIA GPU")
    engine = build_engine(trt_spec, trt_tiny[1], policy=policy, module=module)
    assert engine.built and engine.path.stat().st_size == engine.info["bytes"] > 0
    verdict = engine_support(engine.path, module=module, device="cuda:0")
    if not verdict.ok:
        pytest.skip(verdict.reason)
    session = ort.InferenceSession(str(trt_tiny[1]), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    with TensorRTRunner(engine.path, "cuda:0", module=module) as runner:
        for batch in (1, 2, 4):  # min, opt, max of the profile
            feed = {"image": rng.standard_normal((batch, 3, 16, 16)).astype(np.float32)}
            out = runner.infer(feed)["logits"]
            ref = session.run(None, feed)[0]
            np.testing.assert_allclose(out, ref, atol=TOLERANCE[policy], rtol=TOLERANCE[policy])
        call = runner.prepare(feed)
        call()
        runner.synchronize()
    assert not build_engine(trt_spec, trt_tiny[1], policy=policy, module=module).built  # cached
