"""AWML's ``ConvNeXt_PC`` pillar backbone (``projects/ConvNeXt_PC``, from PillarNeSt) in plain PyTorch.

Why a separate module: CenterPoint-ConvNeXtPC swaps SECOND for this backbone and keeps everything else
(pillar encoder, SECONDFPN, CenterHead, the two ONNX stages), so only ``pts_backbone`` changes.
What makes it different to deploy, kept here exactly as AWML builds it:

* no stem: stage 0 runs on the BEV canvas at full resolution, and its width is forced to ``in_channels``
  (AWML overwrites ``out_channels[0]``), ``first_downsample=1``;
* every later stage starts with ``LayerNorm2d`` + a 2x2 stride-2 conv (``downsample_layers.i.{0,1}``);
* blocks are mmpretrain's ``ConvNeXtBlock``: depthwise 7x7 (or a large kernel for the stages in
  ``large_arch``), a channel-last LayerNorm, two Linear layers with exact GELU, layer scale ``gamma``;
* the stages in ``out_indices`` are LayerNorm-ed again (``norm{i}``) before the neck.

LayerNorm over the channels at every block is the fp16 risk (the variance of wide BEV features);
exported as ``LayerNormalization`` (opset 17), which ONNX Runtime's fp16 converter keeps in fp32.
Parameter names match mmpretrain/AWML so an AWML checkpoint loads strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` map (mmpretrain's ``LN2d``)."""

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2).contiguous()


class ConvNeXtBlock(nn.Module):
    """mmpretrain's ``ConvNeXtBlock`` with ``linear_pw_conv=True`` (AWML's only setting), no GRN, no drop path
    at inference. ``kernel_size`` > 7 is AWML's ``ConvNeXtBlockLarge``."""

    def __init__(self, in_channels, kernel_size=7, mlp_ratio=4.0, layer_scale_init_value=1e-6, eps=1e-6):
        super().__init__()
        self.depthwise_conv = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                                        groups=in_channels)
        self.norm = nn.LayerNorm(in_channels, eps=eps)
        mid = int(mlp_ratio * in_channels)
        self.pointwise_conv1 = nn.Linear(in_channels, mid)
        self.act = nn.GELU()
        self.pointwise_conv2 = nn.Linear(mid, in_channels)
        self.gamma = (nn.Parameter(layer_scale_init_value * torch.ones(in_channels))
                      if layer_scale_init_value > 0 else None)

    def forward(self, x):
        shortcut = x
        x = self.depthwise_conv(x).permute(0, 2, 3, 1)  # channel-last for the LayerNorm and the Linear layers
        x = self.pointwise_conv2(self.act(self.pointwise_conv1(self.norm(x))))
        x = x.permute(0, 3, 1, 2)
        if self.gamma is not None:
            x = x * self.gamma.view(1, -1, 1, 1)
        return shortcut + x


class ConvNeXtPC(nn.Module):
    """``ConvNeXt_PC(in_channels, out_channels, depths, out_indices, ...)``: returns the ``out_indices`` stages'
    normalised maps, strides ``2**i`` of the canvas (no stem). ``large_arch=dict(stages, large_kernel_sizes)``
    gives those stages AWML's large-kernel blocks; AWML picks the kernel at ``stages.index(3)`` for every large
    stage (its code), reproduced so its checkpoints keep their shapes."""

    def __init__(self, in_channels, out_channels, depths, out_indices=(2, 3, 4), layer_scale_init_value=1e-6,
                 eps=1e-6, large_arch=None, first_downsample=1):
        super().__init__()
        if first_downsample != 1:
            raise ValueError(f"first_downsample={first_downsample}: only 1 (no stem, AWML's configs) is implemented")
        channels = list(out_channels)
        channels[0] = in_channels  # AWML: stage 0 keeps the canvas width whatever out_channels[0] says
        self.channels, self.out_indices = channels, [i if i >= 0 else len(depths) + i for i in out_indices]
        large = set((large_arch or {}).get("stages", ()))
        large_k = None
        if large:
            large_k = list(large_arch["large_kernel_sizes"])[list(large_arch["stages"]).index(3)]
        self.downsample_layers = nn.ModuleList([None])
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            if i >= 1:
                # AWML's own LayerNorm2d here, at nn.LayerNorm's default eps 1e-5 (norm_cfg's eps is not passed)
                self.downsample_layers.append(nn.Sequential(LayerNorm2d(channels[i - 1], eps=1e-5),
                                                            nn.Conv2d(channels[i - 1], channels[i], 2, stride=2)))
            k = large_k if i in large else 7
            self.stages.append(nn.Sequential(*[ConvNeXtBlock(channels[i], k, layer_scale_init_value=layer_scale_init_value,
                                                             eps=eps) for _ in range(depth)]))
            if i in self.out_indices:
                self.add_module(f"norm{i}", LayerNorm2d(channels[i], eps=eps))

    @property
    def out_channels(self):
        return [self.channels[i] for i in self.out_indices]

    def forward(self, x):
        outs = []
        for i, stage in enumerate(self.stages):
            if i >= 1:
                x = self.downsample_layers[i](x)
            x = stage(x)
            if i in self.out_indices:
                outs.append(getattr(self, f"norm{i}")(x))
        return tuple(outs)
