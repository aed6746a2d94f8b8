"""PyTorch backends on different devices each get their own module; the ONNX export runs on one fixed device.

No GPU here: a second device is torch's ``meta`` device, which, like CUDA, is somewhere the CPU reference's
weights must not end up (issue 10.1: with ``pytorch@cuda:0`` the CPU reference held CUDA weights and the
export's device depended on test order). The CUDA run of the README example is the last test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pytest_autoware_deploy.backends.inputs import TensorMeta
from pytest_autoware_deploy.backends.pytorch import PyTorchRunner
from pytest_autoware_deploy.errors import BackendUnavailable, InferenceError
from pytest_autoware_deploy.export.onnx import export_key, export_onnx
from pytest_autoware_deploy.export.pytorch_model import build_model, model_on_device
from pytest_autoware_deploy.report.store import ReportStore
from pytest_autoware_deploy.session import SpecState
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.spec.model import BackendId

from ..conftest import write_tiny_spec
from ..test_plugin import run


def _devices(module):
    return {t.device.type for t in [*module.parameters(), *module.buffers()]}


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_spec(tmp_path / "proj")


def test_a_runner_on_another_device_never_moves_the_model_it_is_given(tiny):
    model = build_model(load_spec(tiny))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with PyTorchRunner(model, ["image"], ["logits"], "meta") as runner:
        assert runner.model is not model and _devices(runner.model) == {"meta"}
        assert _devices(model) == {"cpu"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with PyTorchRunner(model, ["image"], ["logits"], "cpu") as runner:
        assert runner.model is model  # on its own device: no copy


def test_model_on_device_copies_only_when_needed(tiny):
    model = build_model(load_spec(tiny))
    assert model_on_device(model, "cpu") is model
    moved = model_on_device(model, "meta")
    assert moved is not model and _devices(moved) == {"meta"} and _devices(model) == {"cpu"}
    assert model_on_device(moved, "meta") is moved


def test_a_second_pytorch_device_leaves_the_reference_and_the_export_alone(tiny):
    """The issue's session: a reference ``pytorch``, a ``pytorch`` on another device, ``onnx`` exported after both."""
    spec = load_spec(tiny, backends=["pytorch", "pytorch@meta", "onnx"])
    store = ReportStore()
    state = SpecState(spec, store)
    feed = state.samples[0]["inputs"]
    with torch.no_grad():
        expected = build_model(spec)(torch.from_numpy(feed["image"])).numpy()

    state.runner(BackendId("pytorch", "meta"))  # activated first, as when its tests run first
    assert _devices(state.model) == {"cpu"}
    reference = state.infer(BackendId("pytorch"), feed, "sample 0")["logits"]
    np.testing.assert_allclose(reference, expected, rtol=1e-6, atol=1e-6)

    onnx_out = state.infer(BackendId("onnx"), feed, "sample 0")["logits"]  # exported after the meta runner
    np.testing.assert_allclose(onnx_out, expected, rtol=1e-4, atol=1e-5)
    assert store.entry(spec.name)["export_device"] == "cpu"
    meta = json.loads((state.onnx.path.parent / "meta.json").read_text())
    assert meta["device"] == "cpu"
    state.close()


def test_the_export_device_is_part_of_the_key(tiny):
    cpu = load_spec(tiny)
    model = build_model(cpu)
    example = {"image": np.zeros((1, 3, 16, 16), np.float32)}
    keys = {device: export_key(load_spec(tiny, device=device), model, example)
            for device in ("cpu", "cuda:0", "cuda:1", "cuda")}
    assert keys["cpu"] != keys["cuda:0"]
    assert keys["cuda:0"] == keys["cuda:1"] == keys["cuda"]  # the same export on any GPU: shared, not redone


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message torch gives without a CUDA device")
def test_export_on_a_device_torch_lacks_is_unavailable_not_a_silent_cpu_export(tiny):
    spec = load_spec(tiny, device="cuda:0")
    example = {"image": np.zeros((1, 3, 16, 16), np.float32)}
    with pytest.raises(BackendUnavailable, match=r"ONNX export \(export.device\) on cuda:0: torch has no CUDA device"):
        export_onnx(spec, build_model(spec), example)


def test_declared_inputs_are_the_pytorch_runners_metadata(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path / "proj", extra="""
        backend_config = dict(model_inputs=[dict(name='image', min_shape=(1, 3, 16, 16), opt_shape=(2, 3, 16, 16),
                                                 max_shape=(4, 3, 16, 16), dtype='float32')])
    """))
    state = SpecState(spec, ReportStore())
    runner = state.runner(BackendId("pytorch"))
    assert runner.get_input_metadata() == {"image": TensorMeta("image", np.dtype("float32"), ("batch", 3, 16, 16))}
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16))  # float64: torch would refuse it against fp32 weights
    out = runner.infer({"image": x})["logits"]
    np.testing.assert_allclose(out, runner.infer({"image": x.astype(np.float32)})["logits"])
    with pytest.raises(InferenceError, match=r"pytorch@cpu: input 'image' has shape \(3, 3, 8, 8\), outside the "
                                             r"expected shape \('batch', 3, 16, 16\)"):
        runner.infer({"image": np.zeros((3, 3, 8, 8), np.float32)})
    state.close()


def test_undeclared_inputs_take_any_dtype_and_shape(tiny):
    state = SpecState(load_spec(tiny), ReportStore())
    assert state.runner(BackendId("pytorch")).get_input_metadata() == {"image": TensorMeta("image")}
    state.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: the README's pytorch@cuda:0 example")
def test_readme_cuda_example_passes(pytester, tiny):
    result = run(pytester, f"--deploy-config={tiny}", "--deploy-backends=pytorch@cuda:0,onnx")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0 and outcomes["passed"] > 0, outcomes
