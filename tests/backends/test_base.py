"""The one input check every runner passes feeds through: safe casts, dynamic dims, one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_autoware_deploy.backends.base import Runner
from pytest_autoware_deploy.backends.inputs import TensorMeta, check_feed, safe_cast, shape_fits
from pytest_autoware_deploy.errors import InferenceError

from ..fakes.fake_tensorrt import fake_trt, trt_spec, trt_tiny  # noqa: F401 (fixtures)

WHERE = "onnx:fp16@cpu (model.onnx)"


def _meta(**inputs):
    return {name: TensorMeta.of(name, *spec) for name, spec in inputs.items()}


# -- dtypes ---------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=5),
                  elements=st.floats(-65504, 65504, width=32, allow_nan=False)))
def test_float32_that_fits_becomes_float16(values):
    out = check_feed(_meta(x=("float16", None)), {"x": values}, WHERE)["x"]
    assert out.dtype == np.float16 and out.shape == values.shape
    np.testing.assert_allclose(out.astype(np.float32), values, rtol=1e-3, atol=6e-8)


@settings(max_examples=40, deadline=None)
@given(big=st.floats(65505, 1e38), at=st.integers(0, 5))
def test_float32_beyond_float16_is_an_overflow_error(big, at):
    values = np.zeros(6, np.float32)
    values[at] = -big if at % 2 else big
    with pytest.raises(InferenceError, match=rf"{WHERE.replace('(', '[(]').replace(')', '[)]')}: input 'x' expects "
                                             r"dtype float16, given float32 \(shape \(6,\)\): values up to .* overflow "
                                             r"float16 \(max 65504\)"):
        check_feed(_meta(x=("float16", None)), {"x": values}, WHERE)


def test_inf_and_nan_pass_through_a_float_narrowing():
    """An inf already in the data is not an overflow the cast introduces."""
    out = safe_cast(np.array([np.inf, -np.inf, np.nan, 1.5], np.float32), "float16", "x", WHERE)
    assert np.isposinf(out[0]) and np.isneginf(out[1]) and np.isnan(out[2]) and out[3] == 1.5


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 8), elements=st.integers(-2**31, 2**31 - 1)))
def test_int64_that_fits_becomes_int32_and_back(values):
    narrowed = check_feed(_meta(i=("int32", None)), {"i": values}, WHERE)["i"]
    assert narrowed.dtype == np.int32
    widened = check_feed(_meta(i=("int64", None)), {"i": narrowed}, WHERE)["i"]
    assert widened.dtype == np.int64 and np.array_equal(widened, values)


@pytest.mark.parametrize("value", [2**31, -2**31 - 1, 2**40])
def test_int64_beyond_int32_is_an_error(value):
    with pytest.raises(InferenceError, match=rf"input 'i' expects dtype int32, given int64 .*values in \[.*{value}"
                                             rf".*do not fit int32"):
        check_feed(_meta(i=("int32", None)), {"i": np.array([0, value], np.int64)}, WHERE)


@pytest.mark.parametrize("given_dtype, want", [("float32", "int64"), ("float16", "int32"), ("float64", "uint8"),
                                               ("int64", "float32"), ("float32", "bool")])
def test_no_silent_cast_between_kinds(given_dtype, want):
    """Integral-looking floats included: float -> int is never silent, nor a lossy int -> float."""
    with pytest.raises(InferenceError, match=rf"input 'v' expects dtype {want}, given {given_dtype} .*no safe cast"):
        check_feed(_meta(v=(want, None)), {"v": np.arange(4).astype(given_dtype)}, WHERE)


@pytest.mark.parametrize("given_dtype, want", [("float16", "float32"), ("int32", "int64"), ("uint8", "float32"),
                                               ("bool", "int32")])
def test_widening_casts_are_exact(given_dtype, want):
    values = np.array([0, 1, 1, 0]).astype(given_dtype)
    out = check_feed(_meta(v=(want, None)), {"v": values}, WHERE)["v"]
    assert out.dtype == np.dtype(want) and np.array_equal(out, values.astype(want))


# -- shapes ---------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(dims=st.lists(st.one_of(st.integers(1, 6), st.just("batch"), st.none()), min_size=1, max_size=4),
       data=st.data())
def test_dynamic_dims_take_any_size_fixed_dims_only_their_own(dims, data):
    meta = TensorMeta.of("x", "float32", dims)
    given_shape = tuple(d if isinstance(d, int) else data.draw(st.integers(0, 7)) for d in dims)
    assert shape_fits(given_shape, meta.shape)
    check_feed({"x": meta}, {"x": np.zeros(given_shape, np.float32)}, WHERE)
    fixed = [i for i, d in enumerate(dims) if isinstance(d, int)]
    if fixed:
        wrong = list(given_shape)
        wrong[data.draw(st.sampled_from(fixed))] += 1
        with pytest.raises(InferenceError, match=rf"input 'x' has shape \({wrong[0]},.*outside the expected shape"):
            check_feed({"x": meta}, {"x": np.zeros(wrong, np.float32)}, WHERE)
    assert not shape_fits(given_shape + (1,), meta.shape)  # rank differs


def test_shape_error_names_input_expected_and_given():
    meta = _meta(image=("float16", ["batch", 3, 16, None]))
    with pytest.raises(InferenceError) as err:
        check_feed(meta, {"image": np.zeros((2, 3, 8, 8), np.float32)}, WHERE)
    assert str(err.value) == (f"{WHERE}: input 'image' has shape (2, 3, 8, 8), outside the expected shape "
                              "('batch', 3, 16, ?) ('?' and names are dynamic dims); given dtype float32, "
                              "expected float16")


def test_tensorrt_style_negative_dims_are_dynamic():
    assert TensorMeta.of("x", "float32", (-1, 3)).shape == (None, 3)


def test_missing_input_is_named_and_extra_keys_pass_through():
    meta = _meta(a=("float32", [None]), b=("int64", [None]))
    with pytest.raises(InferenceError, match=r"input 'b' missing from feed \(got \['a', 'c'\]\)"):
        check_feed(meta, {"a": np.zeros(2, np.float32), "c": 1}, WHERE)
    out = check_feed(meta, {"a": np.zeros(2, np.float32), "b": np.zeros(2, np.int32), "note": "kept"}, WHERE)
    assert out["b"].dtype == np.int64 and out["note"] == "kept"


def test_undeclared_metadata_leaves_the_value_untouched():
    value = [1, 2, 3]  # host code may take lists: nothing declared, nothing converted
    assert check_feed({"x": TensorMeta("x")}, {"x": value}, WHERE)["x"] is value


# -- the base class runs the check for every backend -----------------------------------------------
class Doubling(Runner):
    """The smallest real backend: numpy, one int32 input of shape (n, 2). What reaches ``_infer`` is recorded."""

    name = "doubling"

    def __init__(self):
        super().__init__()
        self.seen = []

    def _activate(self):
        pass

    def _input_metadata(self):
        return [TensorMeta.of("idx", "int32", ("n", 2))]

    def _infer(self, feed):
        self.seen.append(feed["idx"])
        return {"out": feed["idx"] * 2}


def test_infer_prepare_and_phases_all_see_checked_inputs():
    runner = Doubling()
    with pytest.raises(RuntimeError, match=r"doubling: get_input_metadata\(\) before activate\(\)"):
        runner.get_input_metadata()
    with runner:
        assert runner.get_input_metadata() == {"idx": TensorMeta("idx", np.dtype("int32"), ("n", 2))}
        out = runner.infer({"idx": np.array([[1, 2]], np.int64)})
        assert out["out"].dtype == np.int32 and runner.seen[-1].dtype == np.int32
        runner.prepare({"idx": np.array([[3, 4], [5, 6]], np.int64)})()
        assert runner.seen[-1].dtype == np.int32 and runner.seen[-1].shape == (2, 2)
        assert runner.phases({"idx": np.zeros((1, 2), np.int32)}) is None
        for call in (runner.infer, runner.prepare, runner.phases):
            with pytest.raises(InferenceError, match=r"doubling: input 'idx' expects dtype int32, given float32"):
                call({"idx": np.zeros((1, 2), np.float32)})
            with pytest.raises(InferenceError, match=r"doubling: input 'idx' has shape \(1, 3\), outside"):
                call({"idx": np.zeros((1, 3), np.int32)})
    assert len(runner.seen) == 2  # nothing unchecked reached the backend


def test_every_runner_must_declare_its_inputs():
    class NoMetadata(Runner):
        def _activate(self):
            pass

        def _infer(self, feed):
            return feed

    with pytest.raises(TypeError, match="_input_metadata"):
        NoMetadata()


@pytest.mark.parametrize("fake_trt", ["trt10", "trt11"], indirect=True)
def test_tensorrt_runner_declares_the_engines_inputs(fake_trt, trt_spec, trt_tiny):
    """TensorRT's metadata is the engine's (-1 = dynamic); a float64 feed is cast before binding."""
    from pytest_autoware_deploy.backends.tensorrt import TensorRTRunner
    from pytest_autoware_deploy.export.tensorrt import build_engine

    from ..fakes.fake_tensorrt import HostBuffers

    with TensorRTRunner(build_engine(trt_spec, trt_tiny[1]).path, "cuda:0", buffers=HostBuffers) as runner:
        assert runner.get_input_metadata() == {"image": TensorMeta("image", np.dtype("float32"), (None, 3, 16, 16))}
        x = np.random.default_rng(0).standard_normal((2, 3, 16, 16))
        np.testing.assert_array_equal(runner.infer({"image": x})["logits"],
                                      runner.infer({"image": x.astype(np.float32)})["logits"])


# -- a feed of torch tensors (a pipeline's host code on the device): tensors back, on the feed's device ------
def _relu_graph(path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])), path)
    return path


def test_a_tensor_feed_gets_tensors_back_from_a_host_backend(tmp_path):
    import torch

    from pytest_autoware_deploy.backends.onnxruntime import OnnxRuntimeRunner

    with OnnxRuntimeRunner(_relu_graph(tmp_path / "m.onnx")) as runner:
        out = runner.infer({"x": torch.tensor([[-1.0, 2.0, 3.0]])})
        assert torch.is_tensor(out["y"]) and out["y"].device.type == "cpu"
        assert out["y"].tolist() == [[0.0, 2.0, 3.0]]
        widened = runner.infer({"x": torch.tensor([[1, -2, 3]], dtype=torch.int16)})  # int16 -> float32 is safe
        assert widened["y"].dtype == torch.float32 and widened["y"].tolist() == [[1.0, 0.0, 3.0]]
        with pytest.raises(InferenceError, match=r"input 'x' expects dtype float32, given a float64 tensor on cpu "
                                                 r"\(shape \(1, 3\)\): only widening casts"):
            runner.infer({"x": torch.zeros(1, 3, dtype=torch.float64)})
        with pytest.raises(InferenceError, match=r"input 'x' has shape \(3,\), outside the expected shape"):
            runner.infer({"x": torch.zeros(3)})


def test_a_tensor_feed_stays_a_tensor_through_the_pytorch_runner():
    import torch

    from pytest_autoware_deploy.backends.pytorch import PyTorchRunner

    with PyTorchRunner(torch.nn.ReLU(), ["x"], ["y"]) as runner:
        out = runner.infer({"x": torch.tensor([[-1.0, 2.0]])})
    assert torch.is_tensor(out["y"]) and out["y"].tolist() == [[0.0, 2.0]]
