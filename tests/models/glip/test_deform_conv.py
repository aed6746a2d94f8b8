"""models/glip/deform_conv.py: mmcv's modulated deformable conv in GridSample, against ONNX Runtime's own
``DeformConv`` kernel (opset 19, an independent implementation) and against plain convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.glip.deform_conv import ModulatedDeformConv2d, modulated_deform_conv2d, reinterpret


def _ort_deform_conv(x, w, offset, b, mask, stride):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("DeformConv", ["x", "w", "offset", "b", "mask"], ["y"], kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1], strides=[stride, stride])
    graph = helper.make_graph([node], "dcn", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                              for n in ("x", "w", "offset", "b", "mask")],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(x=x, w=w, offset=offset, b=b, mask=mask))[0]


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), stride=st.sampled_from([1, 2]), seed=st.integers(0, 2 ** 16),
       scale=st.sampled_from([0.0, 0.7, 3.0]))
def test_grid_sample_dcn_equals_onnxruntime_deformconv(h, w, stride, seed, scale):
    """Fractional offsets, taps falling outside the map (zeros), modulation, stride 2, size-1 maps."""
    rng = np.random.default_rng(seed)
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    x = rng.normal(size=(2, 3, h, w)).astype(np.float32)
    wt = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    offset = (rng.normal(size=(2, 18, ho, wo)) * scale).astype(np.float32)
    mask = rng.uniform(size=(2, 9, ho, wo)).astype(np.float32)
    ours = modulated_deform_conv2d(*(torch.from_numpy(a) for a in (x, offset, mask, wt, b)), stride=stride)
    np.testing.assert_allclose(ours.numpy(), _ort_deform_conv(x, wt, offset, b, mask, stride), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride", [1, 2])
def test_zero_offsets_and_unit_masks_are_a_plain_convolution(stride):
    torch.manual_seed(0)
    conv = ModulatedDeformConv2d(3, 5, 3, stride, 1)
    x = torch.randn(1, 3, 9, 8)
    ho, wo = (9 - 1) // stride + 1, (8 - 1) // stride + 1
    out = conv(x, torch.zeros(1, 18, ho, wo), torch.ones(1, 9, ho, wo))
    torch.testing.assert_close(out, F.conv2d(x, conv.weight, conv.bias, stride, 1), rtol=1e-5, atol=1e-5)


def test_an_offset_map_larger_than_the_output_is_read_as_mmcvs_kernel_reads_it():
    """DyConv feeds the current level's offsets to the conv of the next, smaller level: mmcv reads the first
    channels*h*w values of each batch element; identical sizes are passed through."""
    t = torch.arange(2 * 18 * 4 * 4, dtype=torch.float32).reshape(2, 18, 4, 4)
    small = reinterpret(t, 18, (2, 2))
    assert small.shape == (2, 18, 2, 2)
    assert torch.equal(small[1].reshape(-1), t[1].reshape(-1)[:72])
    assert reinterpret(t, 18, (4, 4)) is t


def test_groups_other_than_one_are_refused():
    with pytest.raises(ValueError, match="groups=2; only 1 is implemented"):
        ModulatedDeformConv2d(4, 4, groups=2)
