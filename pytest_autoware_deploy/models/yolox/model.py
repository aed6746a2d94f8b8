"""YOLOX as mmdet builds it for AWML: CSPDarknet + YOLOXPAFPN + YOLOXHead, in plain PyTorch.

Module and parameter names are mmdet's (``backbone.stem.conv.conv.weight``,
``neck.top_down_blocks.0.main_conv.bn.running_mean``, ``bbox_head.multi_level_conv_cls.0.bias``), so
the ``state_dict`` of an AWML checkpoint (``projects/YOLOX*/configs``) loads strictly. ``forward``
returns what Autoware's ``tensorrt_yolox`` consumes, the export of ``tools/detection2d/deploy_yolox.py``
(official YOLOX ``export_onnx.py --decode_in_inference``): one tensor ``(B, N, 5 + C)`` per image of
``[cx, cy, w, h]`` in input pixels, sigmoid objectness and sigmoid class scores, levels stride 8, 16,
32 concatenated, each row-major. ``forward_raw`` gives the per-level head maps for training.

``deepen_factor``/``widen_factor`` are the mmdet knobs: YOLOX-S is 0.33/0.5 (AWML's YOLOX-S and
YOLOX_opt-S-TrafficLight), the bundled CPU demo checkpoints use 0.33/0.125.
"""

from __future__ import annotations

import torch
from torch import nn


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class ConvModule(nn.Module):
    """mmcv ConvModule: conv (no bias) + BN(momentum=0.03, eps=1e-3) + Swish, names ``conv``/``bn``.
    ``act`` may instead be a zero-argument callable making the activation (YOLOX_opt-ELAN's ReLU6 head)."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03)
        self.activate = act() if callable(act) else Swish() if act else nn.Identity()

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class Focus(nn.Module):
    """Space-to-depth then a conv (mmdet's order: top-left, bottom-left, top-right, bottom-right)."""

    def __init__(self, cin, cout, k=3):
        super().__init__()
        self.conv = ConvModule(cin * 4, cout, k)

    def forward(self, x):
        return self.conv(torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1))


class DarknetBottleneck(nn.Module):
    def __init__(self, cin, cout, expansion=1.0, add_identity=True):
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = ConvModule(cin, hidden, 1)
        self.conv2 = ConvModule(hidden, cout, 3)
        self.add_identity = add_identity and cin == cout

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    def __init__(self, cin, cout, num_blocks=1, add_identity=True, expand_ratio=0.5):
        super().__init__()
        mid = int(cout * expand_ratio)
        self.main_conv = ConvModule(cin, mid, 1)
        self.short_conv = ConvModule(cin, mid, 1)
        self.final_conv = ConvModule(2 * mid, cout, 1)
        self.blocks = nn.Sequential(*[DarknetBottleneck(mid, mid, 1.0, add_identity) for _ in range(num_blocks)])

    def forward(self, x):
        return self.final_conv(torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), 1))


class SPPBottleneck(nn.Module):
    def __init__(self, cin, cout, kernel_sizes=(5, 9, 13)):
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1)
        self.poolings = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernel_sizes])
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), cout, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [p(x) for p in self.poolings], 1))


class CSPDarknet(nn.Module):
    """arch P5: (64->128, 3 blocks), (128->256, 9), (256->512, 9), (512->1024, 3, SPP); out stages 2, 3, 4."""

    ARCH = [(64, 128, 3, True, False), (128, 256, 9, True, False), (256, 512, 9, True, False),
            (512, 1024, 3, False, True)]

    def __init__(self, deepen_factor=0.33, widen_factor=0.5):
        super().__init__()
        self.stem = Focus(3, int(self.ARCH[0][0] * widen_factor))
        for i, (cin, cout, n, add_identity, use_spp) in enumerate(self.ARCH):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            stage = [ConvModule(cin, cout, 3, stride=2)]
            if use_spp:
                stage.append(SPPBottleneck(cout, cout))
            stage.append(CSPLayer(cout, cout, max(round(n * deepen_factor), 1), add_identity))
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
        self.out_channels = [int(c * widen_factor) for c in (256, 512, 1024)]

    def forward(self, x):
        x = self.stage2(self.stage1(self.stem(x)))
        c3 = x
        c4 = self.stage3(c3)
        return c3, c4, self.stage4(c4)


class YOLOXPAFPN(nn.Module):
    def __init__(self, in_channels, out_channels, num_csp_blocks=1):
        super().__init__()
        self.in_channels = in_channels
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1, 0, -1):
            self.reduce_layers.append(ConvModule(in_channels[idx], in_channels[idx - 1], 1))
            self.top_down_blocks.append(CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1], num_csp_blocks,
                                                 add_identity=False))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1):
            self.downsamples.append(ConvModule(in_channels[idx], in_channels[idx], 3, stride=2))
            self.bottom_up_blocks.append(CSPLayer(in_channels[idx] * 2, in_channels[idx + 1], num_csp_blocks,
                                                  add_identity=False))
        self.out_convs = nn.ModuleList([ConvModule(c, out_channels, 1) for c in in_channels])

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


class YOLOXHead(nn.Module):
    def __init__(self, num_classes, in_channels, feat_channels, stacked_convs=2, strides=(8, 16, 32), act=True):
        super().__init__()
        self.num_classes = num_classes
        self.strides = strides

        def convs():
            return nn.Sequential(*[ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, act=act)
                                   for i in range(stacked_convs)])

        self.multi_level_cls_convs = nn.ModuleList([convs() for _ in strides])
        self.multi_level_reg_convs = nn.ModuleList([convs() for _ in strides])
        self.multi_level_conv_cls = nn.ModuleList([nn.Conv2d(feat_channels, num_classes, 1) for _ in strides])
        self.multi_level_conv_reg = nn.ModuleList([nn.Conv2d(feat_channels, 4, 1) for _ in strides])
        self.multi_level_conv_obj = nn.ModuleList([nn.Conv2d(feat_channels, 1, 1) for _ in strides])
        prior = -4.59511985013459  # mmdet bias_init_with_prob(0.01)
        for conv in list(self.multi_level_conv_cls) + list(self.multi_level_conv_obj):
            nn.init.constant_(conv.bias, prior)

    def forward(self, feats):
        """Per level: (cls logits (B, C, H, W), box deltas (B, 4, H, W), objectness logit (B, 1, H, W))."""
        out = []
        for i, x in enumerate(feats):
            reg = self.multi_level_reg_convs[i](x)
            out.append((self.multi_level_conv_cls[i](self.multi_level_cls_convs[i](x)),
                        self.multi_level_conv_reg[i](reg), self.multi_level_conv_obj[i](reg)))
        return out


class YOLOX(nn.Module):
    """Input ``(B, 3, H, W)`` float32, 0-255 BGR as mmdet's YOLOX data preprocessor leaves it (no
    mean/std), H and W multiples of 32; output ``(B, N, 5 + num_classes)`` decoded (see module doc).
    ``backbone``/``neck`` (built modules, the neck with ``out_channels``) replace CSPDarknet/YOLOXPAFPN, e.g.
    YOLOX_opt-ELAN's (``elan.py``); ``head_act`` is the head's activation factory (default Swish)."""

    def __init__(self, num_classes=80, deepen_factor=0.33, widen_factor=0.5, neck_channels=None, backbone=None,
                 neck=None, head_act=True):
        super().__init__()
        if backbone is not None:
            self.backbone, self.neck = backbone, neck
            width = neck.out_channels
        else:
            self.backbone = CSPDarknet(deepen_factor, widen_factor)
            chans = self.backbone.out_channels
            width = neck_channels or chans[0]
            self.neck = YOLOXPAFPN(chans, width, max(round(3 * deepen_factor), 1))
        self.bbox_head = YOLOXHead(num_classes, width, width, act=head_act)

    def forward_raw(self, x):
        return self.bbox_head(self.neck(self.backbone(x)))

    def forward(self, x):
        return decode(self.forward_raw(x), self.bbox_head.strides)


def grid_priors(h, w, stride, device=None):
    """Top-left anchor points of a level, row-major: ``(H*W, 2)`` as (x, y) in input pixels / stride."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack((xs, ys), -1).reshape(-1, 2).float()


def decode(levels, strides):
    """Official YOLOX ``decode_outputs``: ``(pred_xy + grid) * stride``, ``exp(pred_wh) * stride``."""
    outs = []
    for (cls, reg, obj), stride in zip(levels, strides):
        b, _, h, w = cls.shape
        pred = torch.cat((reg, obj.sigmoid(), cls.sigmoid()), 1).flatten(2).permute(0, 2, 1)
        grid = grid_priors(h, w, stride, cls.device)
        xy = (pred[..., :2] + grid) * stride
        wh = torch.exp(pred[..., 2:4]) * stride
        outs.append(torch.cat((xy, wh, pred[..., 4:]), -1))
    return torch.cat(outs, 1)


def build_model(num_classes=80, deepen_factor=0.33, widen_factor=0.5):
    return YOLOX(num_classes, deepen_factor, widen_factor)
