"""AWML's YOLOX_opt-ELAN parts in plain PyTorch: ELANDarknet (arch P5 / P5_ASPP), ELAN, DarknetBottleneckOpt,
Stem, ASPP and YOLOXPAFPN_ELAN (tier4/AWML ``projects/YOLOX_opt_elan/yolox/models``).

Why a separate module: YOLOX_opt-ELAN swaps mmdet's CSP blocks for ELAN blocks and the Focus stem for two strided
convs ("took away slice operations" for TensorRT), and uses ReLU6 throughout; the YOLOX head and the decoded
``(B, N, 5 + C)`` output Autoware's tensorrt_yolox reads are unchanged (``model.YOLOX``). Module and parameter
names follow AWML's source and mmcv's ConvModule (``conv``/``bn``), so an AWML checkpoint's ``state_dict``
(``backbone.stage1.1.main_conv.conv.weight``, ``backbone.stage1.1.aspp_modules.0.bn.running_var``,
``neck.top_down_blocks.0.blocks.1.conv2.bn.weight``) loads strictly. ``use_depthwise`` and ``conv_cfg`` are not
implemented (AWML's configs leave them at False / None); the builders in ``mm_types`` refuse them by key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("ReLU", "ReLU6", "Swish", "SiLU", "LeakyReLU")


class Swish(nn.Module):
    """mmcv's Swish, ``x * sigmoid(x)`` (same maths as SiLU; exported as Sigmoid + Mul)."""

    def forward(self, x):
        return x * torch.sigmoid(x)


def make_act(act_cfg) -> nn.Module:
    """The activation an mmcv ``act_cfg`` names; ``None`` means no activation (mmcv's rule)."""
    if act_cfg is None:
        return nn.Identity()
    kind = act_cfg.get("type")
    extra = {k: v for k, v in act_cfg.items() if k not in ("type", "inplace")}
    if kind == "LeakyReLU":
        return nn.LeakyReLU(extra.pop("negative_slope", 0.01))
    if extra:
        raise ValueError(f"act_cfg {act_cfg!r}: {kind} takes no {', '.join(sorted(extra))}")
    if kind == "ReLU":
        return nn.ReLU()
    if kind == "ReLU6":
        return nn.ReLU6()
    if kind in ("Swish", "SiLU"):
        return Swish()
    raise ValueError(f"act_cfg type {kind!r} is not implemented; implemented: {', '.join(ACTIVATIONS)}")


def norm_args(norm_cfg) -> dict:
    """BatchNorm eps/momentum from an mmcv ``norm_cfg`` (only BN is implemented)."""
    norm_cfg = dict(norm_cfg or {"type": "BN", "momentum": 0.03, "eps": 0.001})
    if norm_cfg.get("type", "BN") not in ("BN", "BN2d", "SyncBN"):
        raise ValueError(f"norm_cfg {norm_cfg!r}: only BN is implemented")
    return {"eps": norm_cfg.get("eps", 1e-5), "momentum": norm_cfg.get("momentum", 0.1)}


class ConvModule(nn.Module):
    """mmcv ConvModule with a norm layer: Conv2d (no bias) + BN + activation, parameter names ``conv``/``bn``."""

    def __init__(self, cin, cout, k, stride=1, padding=None, dilation=1, norm=None, act_cfg=None):
        super().__init__()
        padding = (k - 1) // 2 * dilation if padding is None else padding
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout, **(norm or norm_args(None)))
        self.activate = make_act(act_cfg)

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class Stem(nn.Module):
    """Two 3x3 ConvModules (the first strided) instead of Focus: ``stem.conv.0``, ``stem.conv.1``."""

    def __init__(self, cin, cout, k=3, stride=2, norm=None, act_cfg=None):
        super().__init__()
        self.conv = nn.Sequential(ConvModule(cin, cout, k, stride, 1, norm=norm, act_cfg=act_cfg),
                                  ConvModule(cout, cout, k, 1, 1, norm=norm, act_cfg=act_cfg))

    def forward(self, x):
        return self.conv(x)


class DarknetBottleneckOpt(nn.Module):
    """Two ``kernel_size`` convs (padding 1, as AWML's), identity added when shapes allow."""

    def __init__(self, cin, cout, k=1, expansion=0.5, add_identity=True, norm=None, act_cfg=None):
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = ConvModule(cin, hidden, k, 1, 1, norm=norm, act_cfg=act_cfg)
        self.conv2 = ConvModule(hidden, cout, k, 1, 1, norm=norm, act_cfg=act_cfg)
        self.add_identity = add_identity and cin == cout

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class ELAN(nn.Module):
    """Efficient layer aggregation: short branch + every bottleneck output of the main branch, concatenated,
    then a 1x1 ``final_conv`` over ``(num_blocks + 1) * mid`` channels."""

    def __init__(self, cin, cout, k=3, expand_ratio=1.0, num_blocks=3, add_identity=True, norm=None, act_cfg=None):
        super().__init__()
        mid = int(cout * expand_ratio)
        self.main_conv = ConvModule(cin, mid, 1, norm=norm, act_cfg=act_cfg)
        self.short_conv = ConvModule(cin, mid, 1, norm=norm, act_cfg=act_cfg)
        self.final_conv = ConvModule((num_blocks + 1) * mid, cout, 1, norm=norm, act_cfg=act_cfg)
        self.blocks = nn.Sequential(*[DarknetBottleneckOpt(mid, mid, k, 1.0, add_identity, norm, act_cfg)
                                      for _ in range(num_blocks)])

    def forward(self, x):
        outs = [self.short_conv(x)]
        y = self.main_conv(x)
        for block in self.blocks:
            y = block(y)
            outs.append(y)
        return self.final_conv(torch.cat(outs, 1))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 (dilation 1) or dilated 3x3 branch per dilation, a global-average
    branch upsampled back (bilinear, align_corners=True), concatenated, then a 3x3 ``final_conv``."""

    def __init__(self, cin, cout, dilations=(1, 6, 12, 18), norm=None, act_cfg=None):
        super().__init__()
        self.aspp_modules = nn.ModuleList([
            ConvModule(cin, cout, 1 if d == 1 else 3, 1, 0 if d == 1 else d, dilation=d, norm=norm, act_cfg=act_cfg)
            for d in dilations])
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvModule(cin, cout, 1, norm=norm,
                                                                                 act_cfg=act_cfg))
        self.final_conv = ConvModule((len(dilations) + 1) * cout, cout, 3, 1, 1, norm=norm, act_cfg=act_cfg)

    def forward(self, x):
        outs = [m(x) for m in self.aspp_modules]
        outs.append(F.interpolate(self.global_avg_pool(x), size=x.shape[2:], mode="bilinear", align_corners=True))
        return self.final_conv(torch.cat(outs, 1))


class ELANDarknet(nn.Module):
    """AWML's ELANDarknet. Rows: (in, out, num_blocks, expand_ratio, add_identity, use_aspp); stage ``i`` is a
    strided 3x3 ConvModule, [ASPP], ELAN. Outputs the stages in ``out_indices`` (stem = 0)."""

    ARCH = {
        "P5": [[32, 64, 1, 0.5, True, False], [64, 128, 3, 0.5, True, False], [128, 256, 3, 0.5, True, False],
               [256, 512, 1, 0.5, False, False]],
        "P5_ASPP": [[32, 64, 1, 0.5, False, True], [64, 128, 3, 0.5, False, True], [128, 256, 3, 0.5, False, True],
                    [256, 512, 1, 0.5, True, False]],
    }

    def __init__(self, arch="P5", deepen_factor=2.0, widen_factor=1.0, out_indices=(2, 3, 4),
                 aspp_dilations=(1, 6, 12, 18), arch_overwrite=None, norm=None, act_cfg=None):
        super().__init__()
        setting = arch_overwrite or self.ARCH[arch]
        self.out_indices = tuple(out_indices)
        self.stem = Stem(3, int(setting[0][0] * widen_factor), norm=norm, act_cfg=act_cfg)
        self.layers = ["stem"]
        for i, (cin, cout, n, ratio, add_identity, use_aspp) in enumerate(setting):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            stage = [ConvModule(cin, cout, 3, 2, 1, norm=norm, act_cfg=act_cfg)]
            if use_aspp:
                stage.append(ASPP(cout, cout, aspp_dilations, norm=norm, act_cfg=act_cfg))
            stage.append(ELAN(cout, cout, 3, ratio, max(round(n * deepen_factor), 1), add_identity, norm, act_cfg))
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
            self.layers.append(f"stage{i + 1}")
        widths = [int(setting[0][0] * widen_factor)] + [int(row[1] * widen_factor) for row in setting]
        self.out_channels = [widths[i] for i in self.out_indices]

    def forward(self, x):
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class YOLOXPAFPN_ELAN(nn.Module):  # noqa: N801 - AWML's type name
    """YOLOX's PAFPN with ELAN blocks (``num_elan_blocks`` bottlenecks, no identity, expand 0.5)."""

    def __init__(self, in_channels, out_channels, num_elan_blocks=2, upsample_mode="nearest", norm=None,
                 act_cfg=None):
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.upsample = nn.Upsample(scale_factor=2, mode=upsample_mode)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1, 0, -1):
            self.reduce_layers.append(ConvModule(in_channels[idx], in_channels[idx - 1], 1, norm=norm,
                                                 act_cfg=act_cfg))
            self.top_down_blocks.append(ELAN(in_channels[idx - 1] * 2, in_channels[idx - 1], 3, 0.5,
                                             num_elan_blocks, False, norm, act_cfg))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1):
            self.downsamples.append(ConvModule(in_channels[idx], in_channels[idx], 3, 2, 1, norm=norm,
                                               act_cfg=act_cfg))
            self.bottom_up_blocks.append(ELAN(in_channels[idx] * 2, in_channels[idx + 1], 3, 0.5, num_elan_blocks,
                                              False, norm, act_cfg))
        self.out_convs = nn.ModuleList([ConvModule(c, out_channels, 1, norm=norm, act_cfg=act_cfg)
                                        for c in in_channels])

    def forward(self, inputs):
        n = len(self.in_channels)
        inner = [inputs[-1]]
        for idx in range(n - 1, 0, -1):
            high = self.reduce_layers[n - 1 - idx](inner[0])
            inner[0] = high
            inner.insert(0, self.top_down_blocks[n - 1 - idx](torch.cat([self.upsample(high), inputs[idx - 1]], 1)))
        outs = [inner[0]]
        for idx in range(n - 1):
            outs.append(self.bottom_up_blocks[idx](torch.cat([self.downsamples[idx](outs[-1]), inner[idx + 1]], 1)))
        return [conv(o) for conv, o in zip(self.out_convs, outs)]
