"""TF32 matrix products on the CPU: what an H100 computes for an fp32 MatMul/Conv under TF32, emulated in PyTorch.

Why: ONNX Runtime's CUDA EP and TensorRT run fp32 matrix products and convolutions in TF32 by default
(``policies.effective_policy``: 'auto' on CUDA), rounding both operands to TF32's 10-bit mantissa (fp16's)
and accumulating in fp32. A graph whose fp32 result is sensitive to that (large coordinates through a
MatMul, then a log) agrees on the CPU and fails on the GPU; emulating the rounding finds it without a GPU.
``EmulateTF32`` rounds the operands of the matrix-product ops (``F.linear``, ``matmul``, ``@``, ``mm``,
``bmm``, ``einsum``, ``conv1d/2d``) to TF32 (round to nearest, ties away from zero, on the bit pattern) and
lets PyTorch compute the rest in fp32, which is TF32 math up to the accumulation order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_MANTISSA_DROP = 23 - 10  # fp32 keeps 23 mantissa bits, TF32 10


def tf32_round(x):
    """``x`` (float32 tensor) rounded to the nearest TF32 value; anything else unchanged."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
        return x
    bits = x.contiguous().view(torch.int32)
    half = 1 << (_MANTISSA_DROP - 1)
    rounded = ((bits + half) & ~((1 << _MANTISSA_DROP) - 1)).view(torch.float32)
    return torch.where(torch.isfinite(x), rounded, x)


class EmulateTF32(TorchFunctionMode):
    """``with EmulateTF32(): model(...)``: the matrix products' float32 operands rounded to TF32."""

    OPS = {F.linear, torch.matmul, torch.Tensor.__matmul__, torch.mm, torch.bmm, torch.addmm, F.conv1d, F.conv2d}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.einsum:
            args = (args[0], *[tf32_round(a) for a in args[1:]])
        elif func in self.OPS:
            args = tuple(tf32_round(a) for a in args)
            kwargs = {k: tf32_round(v) for k, v in kwargs.items()}
        return func(*args, **kwargs)
