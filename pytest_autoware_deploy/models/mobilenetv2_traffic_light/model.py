"""MobileNetV2 traffic-light classifier as AWML builds it through mmpretrain.

``ImageClassifier(backbone=MobileNetV2(widen_factor=1.0), neck=GlobalAveragePooling,
head=LinearClsHead(in_channels=1280, num_classes=11))`` (``projects/MobileNetv2``). Module names are
mmpretrain's (``backbone.conv1.conv``, ``backbone.layer3.1.conv.0.bn``, ``backbone.conv2``, ``head.fc``)
so an AWML checkpoint's ``state_dict`` loads strictly. The exported graph ends in a softmax, as
mmdeploy's classifier export does and Autoware's ``traffic_light_classifier`` reads it (probabilities).
``widen_factor`` below 1 keeps the 1280-channel last conv, as mmpretrain does.
"""

from __future__ import annotations

import torch
from torch import nn

from ..common import LinearClsHead


def make_divisible(value, divisor=8, min_ratio=0.9):
    """mmpretrain's ``make_divisible``: round to a multiple of ``divisor``, never below 90 %."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < min_ratio * value else new


class ConvModule(nn.Module):
    """mmcv ConvModule: conv (no bias) + BN + optional ReLU6, names ``conv``/``bn``."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.activate = nn.ReLU6() if act else nn.Identity()

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res_connect = stride == 1 and cin == cout
        layers = [ConvModule(cin, hidden, 1)] if expand_ratio != 1 else []
        layers += [ConvModule(hidden, hidden, 3, stride, groups=hidden), ConvModule(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # expand ratio, channels, blocks, stride
    ARCH = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, widen_factor=1.0):
        super().__init__()
        cin = make_divisible(32 * widen_factor)
        self.conv1 = ConvModule(3, cin, 3, stride=2)
        for i, (t, c, n, s) in enumerate(self.ARCH):
            cout = make_divisible(c * widen_factor)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(cin, cout, s if j == 0 else 1, t))
                cin = cout
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_channels = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(cin, self.out_channels, 1)

    def forward(self, x):
        x = self.conv1(x)
        for i in range(len(self.ARCH)):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.conv2(x)


class TrafficLightClassifier(nn.Module):
    """Input ``(N, 3, S, S)`` RGB normalised with ImageNet mean/std; output class probabilities ``(N, C)``."""

    def __init__(self, num_classes=11, widen_factor=1.0):
        super().__init__()
        self.backbone = MobileNetV2(widen_factor)
        self.neck = nn.AdaptiveAvgPool2d(1)  # mmpretrain GlobalAveragePooling
        self.head = LinearClsHead(self.backbone.out_channels, num_classes)

    def logits(self, x):
        return self.head(torch.flatten(self.neck(self.backbone(x)), 1))

    def forward(self, x):
        return torch.softmax(self.logits(x), 1)


def build_model(num_classes=11, widen_factor=1.0):
    return TrafficLightClassifier(num_classes, widen_factor)
