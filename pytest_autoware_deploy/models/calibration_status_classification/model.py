"""ResNet18 classifier with 5 input channels, as AWML builds it through mmpretrain.

``ImageClassifier(backbone=ResNet(depth=18, in_channels=5), neck=GlobalAveragePooling,
head=LinearClsHead(num_classes=2))``. Module names follow mmpretrain (``backbone.layer1.0.conv1``,
``head.fc``) so an AWML checkpoint's ``state_dict`` loads as is. ``base_channels`` (64 in AWML)
can be reduced for the bundled CPU demo; the architecture is otherwise the same.
"""

from __future__ import annotations

import torch
from torch import nn

from ..common import LinearClsHead


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """mmpretrain ResNet (style='pytorch'), BasicBlock stages; returns the last stage's feature map."""

    arch_settings = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

    def __init__(self, depth=18, in_channels=5, base_channels=64):
        super().__init__()
        blocks = self.arch_settings[depth]
        self.conv1 = nn.Conv2d(in_channels, base_channels, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = base_channels
        for i, n in enumerate(blocks):
            out = base_channels * 2 ** i
            layers = [BasicBlock(channels, out, stride=1 if i == 0 else 2)]
            layers += [BasicBlock(out, out) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            channels = out
        self.out_channels = channels

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class CalibrationStatusClassifier(nn.Module):
    """Input ``(N, 5, H, W)`` float32 already normalised; output logits ``(N, num_classes)``."""

    def __init__(self, in_channels=5, num_classes=2, depth=18, base_channels=64):
        super().__init__()
        self.backbone = ResNet(depth, in_channels, base_channels)
        self.neck = nn.AdaptiveAvgPool2d(1)  # mmpretrain GlobalAveragePooling
        self.head = LinearClsHead(self.backbone.out_channels, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.neck(self.backbone(x)), 1))


def build_model(in_channels=5, num_classes=2, depth=18, base_channels=64):
    return CalibrationStatusClassifier(in_channels, num_classes, depth, base_channels)
