"""The tiny model through real TensorRT on a real GPU, compared with ONNX Runtime on CPU.

Skipped wherever TensorRT or a CUDA device is missing, which is every machine of this project so far:
this test has never run here. It is the first thing to run on a machine with both.
"""

from __future__ import annotations

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here: the real-TensorRT test needs the "
                                             "'tensorrt' module (pip install '.[tensorrt]') and an NVIDIA GPU")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("torch has no CUDA device here: the real-TensorRT test needs an NVIDIA GPU and a CUDA build of "
                "torch", allow_module_level=True)

import onnxruntime as ort  # noqa: E402

from pytest_autoware_deploy.backends.tensorrt import TensorRTRunner  # noqa: E402
from pytest_autoware_deploy.export.tensorrt import build_engine  # noqa: E402

from ..fakes.fake_tensorrt import trt_spec, trt_tiny  # noqa: E402,F401 (fixtures)

# strongly_typed clears TF32, so fp32 math must match closely; auto lets TensorRT use TF32
TOLERANCE = {"strongly_typed": 1e-4, "auto": 1e-2}


@pytest.mark.parametrize("policy", sorted(TOLERANCE))
def test_tiny_engine_matches_onnxruntime(trt_spec, trt_tiny, policy):
    engine = build_engine(trt_spec, trt_tiny[1], policy=policy)
    assert engine.built and engine.path.stat().st_size > 0
    session = ort.InferenceSession(str(trt_tiny[1]), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    with TensorRTRunner(engine.path, "cuda:0") as runner:
        for batch in (1, 2, 4):  # min, opt, max of the profile
            feed = {"image": rng.standard_normal((batch, 3, 16, 16)).astype(np.float32)}
            out = runner.infer(feed)["logits"]
            ref = session.run(None, feed)[0]
            np.testing.assert_allclose(out, ref, atol=TOLERANCE[policy], rtol=TOLERANCE[policy])
        call = runner.prepare(feed)
        call()
        runner.synchronize()
    assert not build_engine(trt_spec, trt_tiny[1], policy=policy).built  # cached
