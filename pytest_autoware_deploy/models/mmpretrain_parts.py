"""mmpretrain's ``ImageClassifier`` / ``ResNet`` / ``GlobalAveragePooling`` / ``LinearClsHead`` built from
``type=`` configs, with mmpretrain's parameter names (``backbone.layer1.0.conv1``, ``head.fc``).

``ResNet`` is mmpretrain's at any depth (18/34 BasicBlock, 50/101/152 Bottleneck), with ``in_channels``,
``stem_channels``, ``base_channels``, ``num_stages``, ``strides``, ``dilations``, ``out_indices``,
``style``, ``deep_stem`` and ``avg_down``. The families that deploy an
``ImageClassifier`` (CalibrationStatusClassification, MobileNetV2 traffic lights) register these builders in
their ``mm_types`` modules; the classifier's output convention (logits or softmax) is the family's.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import LinearClsHead
from .mm_registry import build


def _bn(channels, norm_cfg):
    cfg = norm_cfg or {}
    kind = cfg.get("type", "BN")
    if kind not in ("BN", "SyncBN", "BN2d"):
        raise ValueError(f"norm_cfg type {kind!r} is not supported here (BN, SyncBN)")
    return nn.BatchNorm2d(channels, eps=cfg.get("eps", 1e-5), momentum=cfg.get("momentum", 0.1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride=1, dilation=1, downsample=None, norm_cfg=None, style="pytorch"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, dilation, dilation, bias=False)
        self.bn1 = _bn(cout, norm_cfg)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _bn(cout, norm_cfg)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, cout, stride=1, dilation=1, downsample=None, norm_cfg=None, style="pytorch"):
        super().__init__()
        mid = cout // self.expansion
        s1, s2 = (1, stride) if style == "pytorch" else (stride, 1)
        self.conv1 = nn.Conv2d(cin, mid, 1, s1, bias=False)
        self.bn1 = _bn(mid, norm_cfg)
        self.conv2 = nn.Conv2d(mid, mid, 3, s2, dilation, dilation, bias=False)
        self.bn2 = _bn(mid, norm_cfg)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = _bn(cout, norm_cfg)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ConvBN(nn.Sequential):
    """mmcv ConvModule (conv, bn, ReLU) with its ``conv`` / ``bn`` names, for the deep stem."""

    def __init__(self, cin, cout, stride, norm_cfg):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = _bn(cout, norm_cfg)
        self.activate = nn.ReLU(inplace=True)


class ResNet(nn.Module):
    arch_settings = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
                     50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)),
                     152: (Bottleneck, (3, 8, 36, 3))}

    def __init__(self, depth, in_channels=3, stem_channels=64, base_channels=64, num_stages=4,
                 strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1), out_indices=(3,), style="pytorch",
                 deep_stem=False, avg_down=False, norm_cfg=None):
        super().__init__()
        if depth not in self.arch_settings:
            raise ValueError(f"invalid depth {depth} for ResNet (18, 34, 50, 101, 152)")
        if not 1 <= num_stages <= 4:
            raise ValueError(f"num_stages must be 1..4, got {num_stages}")
        block, stage_blocks = self.arch_settings[depth]
        self.deep_stem = deep_stem
        self.out_indices = tuple(i if i >= 0 else num_stages + i for i in out_indices)
        if deep_stem:
            self.stem = nn.Sequential(ConvBN(in_channels, stem_channels // 2, 2, norm_cfg),
                                      ConvBN(stem_channels // 2, stem_channels // 2, 1, norm_cfg),
                                      ConvBN(stem_channels // 2, stem_channels, 1, norm_cfg))
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, 2, 3, bias=False)
            self.bn1 = _bn(stem_channels, norm_cfg)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, cout = stem_channels, base_channels * block.expansion
        self.res_layers = []
        for i, n in enumerate(stage_blocks[:num_stages]):
            stride, dilation = strides[i], dilations[i]
            downsample = None
            if stride != 1 or cin != cout:
                parts = []
                if avg_down and stride != 1:
                    parts.append(nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False))
                parts += [nn.Conv2d(cin, cout, 1, 1 if avg_down else stride, bias=False), _bn(cout, norm_cfg)]
                downsample = nn.Sequential(*parts)
            blocks = [block(cin, cout, stride, dilation, downsample, norm_cfg, style)]
            blocks += [block(cout, cout, 1, dilation, None, norm_cfg, style) for _ in range(n - 1)]
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.res_layers.append(name)
            cin, cout = cout, cout * 2
        self.out_channels = [base_channels * block.expansion * 2 ** i for i in range(num_stages)]

    def forward(self, x):
        x = self.stem(x) if self.deep_stem else self.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class GlobalAveragePooling(nn.Module):
    """mmpretrain's neck: every feature map of the tuple pooled to (N, C)."""

    def forward(self, feats):
        return tuple(torch.flatten(nn.functional.adaptive_avg_pool2d(f, 1), 1) for f in feats)


class ImageClassifier(nn.Module):
    """backbone -> neck -> head on the last feature; ``softmax=True`` ends the graph in probabilities
    (mmdeploy's classifier export, what Autoware's traffic_light_classifier reads)."""

    def __init__(self, backbone, neck, head, softmax=False):
        super().__init__()
        self.backbone, self.neck, self.head = backbone, neck, head
        self.softmax = softmax

    def forward(self, x):
        feats = self.backbone(x)
        feats = feats if isinstance(feats, tuple) else (feats,)
        if self.neck is not None:
            feats = self.neck(feats)
        logits = self.head(feats[-1])
        return torch.softmax(logits, 1) if self.softmax else logits


# -- builders (the registry calls these with a config's keys) -------------------------------------------------

def build_image_classifier(backbone, head, neck=None, _key="model", softmax=False):
    return ImageClassifier(build(backbone, f"{_key}.backbone"),
                           None if neck is None else build(neck, f"{_key}.neck"),
                           build(head, f"{_key}.head"), softmax=softmax)


def build_resnet(depth, in_channels=3, stem_channels=64, base_channels=64, num_stages=4, strides=(1, 2, 2, 2),
                 dilations=(1, 1, 1, 1), out_indices=(3,), style="pytorch", deep_stem=False, avg_down=False,
                 norm_cfg=None, conv_cfg=None, expansion=None, zero_init_residual=True, drop_path_rate=0.0):
    if conv_cfg not in (None, {}) and (conv_cfg or {}).get("type", "Conv2d") != "Conv2d":
        raise ValueError(f"conv_cfg {conv_cfg!r}: only plain Conv2d is supported here")
    if expansion is not None and expansion != ResNet.arch_settings[depth][0].expansion:
        raise ValueError(f"expansion={expansion} differs from the block's; not supported here")
    return ResNet(depth, in_channels, stem_channels, base_channels, num_stages, strides, dilations, out_indices,
                  style, deep_stem, avg_down, norm_cfg)


def build_global_average_pooling(dim=2):
    if dim != 2:
        raise ValueError(f"GlobalAveragePooling dim={dim}: only 2D feature maps here")
    return GlobalAveragePooling()


def build_linear_cls_head(num_classes, in_channels, cal_acc=False, topk=(1,)):
    return LinearClsHead(in_channels, num_classes)
