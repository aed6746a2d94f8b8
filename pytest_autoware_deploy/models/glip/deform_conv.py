"""mmcv's ``ModulatedDeformConv2d`` (DCNv2) in standard ONNX ops: bilinear sampling by ``grid_sample``.

Why not ONNX's ``DeformConv`` (opset 19): ONNX Runtime's CPU provider runs it (the tests use it as the
independent reference), but the graph has to run on ONNX Runtime's CUDA provider and TensorRT too, and
``GridSample`` + ``MatMul`` is what every one of them runs. ``DeformConv`` also insists that the offset map has
the output's size, which GLIP's ``DyConv`` does not give it (see ``reinterpret``).

Sampling: output position ``(oy, ox)``, kernel tap ``k = (i, j)`` reads the input at ``(oy*s - p + i + dy_k,
ox*s - p + j + dx_k)`` bilinearly with zeros outside (mmcv's ``dmcn_im2col_bilinear``), weighted by the tap's
mask. Offsets are ``[dy_0, dx_0, dy_1, dx_1, ...]`` per tap (mmcv's, torchvision's and ONNX's layout).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..swin.model import static_size


def reinterpret(t: torch.Tensor, channels: int, hw: tuple) -> torch.Tensor:
    """``t`` as mmcv's kernel reads it for an output of size ``hw``: each batch element's memory taken as
    ``(channels, h, w)`` from its start. GLIP's ``DyConv`` passes the offset/mask of the *current* level to
    the convolution of the next (smaller) one; mmcv's CUDA kernel indexes ``offset[b]`` with the output's
    size, i.e. reads the first ``channels * h * w`` values. When the sizes agree this is the identity."""
    if static_size(t) == tuple(int(v) for v in hw):
        return t
    return t.flatten(1)[:, :channels * hw[0] * hw[1]].reshape(t.shape[0], channels, *hw)


def _normalized(p, size: int):
    """Pixel coordinate -> GridSample's [-1, 1] with pixel centres at (i + 0.5) / size (align_corners=False,
    exact for a size-1 axis too). A size-1 axis is written ``2p`` (equal to ``(2p + 1) / 1 - 1``): a Div by 1
    is a no-op ONNX Runtime deletes, and with it the fp16 rounding of an emulated graph."""
    return p * 2.0 if size == 1 else (2 * p + 1) / size - 1


def modulated_deform_conv2d(x, offset, mask, weight, bias=None, stride=1, padding=1):
    """DCNv2 for ``groups = deform_groups = 1``, dilation 1: ``x (N, C, H, W)``, ``offset (N, 2K, Ho, Wo)``,
    ``mask (N, K, Ho, Wo)``, ``weight (Co, C, kh, kw)`` -> ``(N, Co, Ho, Wo)``."""
    n, c = x.shape[:2]
    h, w = static_size(x)
    kh, kw = static_size(weight)
    k = kh * kw
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    offset = reinterpret(offset, 2 * k, (ho, wo)).reshape(n, k, 2, ho, wo)
    mask = reinterpret(mask, k, (ho, wo))
    ky, kx = torch.meshgrid(torch.arange(kh, dtype=x.dtype, device=x.device),
                            torch.arange(kw, dtype=x.dtype, device=x.device), indexing="ij")
    oy = torch.arange(ho, dtype=x.dtype, device=x.device) * stride - padding
    ox = torch.arange(wo, dtype=x.dtype, device=x.device) * stride - padding
    base_y = ky.reshape(k, 1, 1) + oy.view(1, ho, 1)  # (K, Ho, 1)
    base_x = kx.reshape(k, 1, 1) + ox.view(1, 1, wo)  # (K, 1, Wo)
    py = base_y.unsqueeze(0) + offset[:, :, 0]  # (N, K, Ho, Wo) input rows
    px = base_x.unsqueeze(0) + offset[:, :, 1]
    grid = torch.stack([_normalized(px, w), _normalized(py, h)], -1).reshape(n, k * ho, wo, 2)
    cols = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = cols.reshape(n, c, k, ho * wo) * mask.reshape(n, 1, k, ho * wo)
    out = torch.matmul(weight.reshape(weight.shape[0], c * k), cols.reshape(n, c * k, ho * wo))
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.reshape(n, -1, ho, wo)


class ModulatedDeformConv2d(nn.Module):
    """mmcv ``ModulatedDeformConv2d`` (parameters ``weight``, ``bias``); ``forward(x, offset, mask)``."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, groups=1, bias=True):
        super().__init__()
        if groups != 1:
            raise ValueError(f"ModulatedDeformConv2d: groups={groups}; only 1 is implemented (GLIP's)")
        self.stride, self.padding = int(stride), int(padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.uniform_(self.weight, -1 / math.sqrt(in_channels * kernel_size ** 2),
                         1 / math.sqrt(in_channels * kernel_size ** 2))  # mmcv's init_weights

    def forward(self, x, offset, mask):
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride, self.padding)
