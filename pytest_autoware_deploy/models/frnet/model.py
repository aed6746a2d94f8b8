"""FRNet (AWML ``projects/FRNet``, Autoware ``autoware_lidar_frnet``) in plain PyTorch, mmdet3d parameter names.

Frustum-Range segmentation: every point belongs to one frustum (a range-image pixel: ring row, azimuth column);
``voxel_encoder`` (FrustumFeatureEncoder) lifts points with a per-point MLP and max-pools them into their frustum,
``backbone`` (FRNetBackbone) runs a 2D ResNet on the frustum image and fuses pixels and points back and forth at
every stage, ``decode_head`` (FRHead) predicts each point's class from its pixel and point features.

What makes it hard to deploy, kept as AWML's deploy export has it:

* the graph takes the host's frustum grouping as inputs: ``points (N, 4)``, ``coors (N, 3)`` (batch, row,
  column per point), ``voxel_coors (M, 3)`` (the unique frustums) and ``inverse_map (N,)`` (point -> frustum):
  ``torch.unique`` stays on the host;
* the point -> frustum max-pool is ``scatter_reduce(amax, include_self=True)`` over a tensor filled with the
  dtype's lowest value: exported as ONNX ``ScatterElements(reduction='max')`` (opset >= 16), the op TensorRT
  needs a plugin-free path for; the frustum -> pixel placement is ``ScatterND``; pixel -> point is ``GatherND``;
* TensorRT-RTX 1.7's parser refuses every scatter with a reduction (ScatterElements and ScatterND alike):
  ``FRNet(segment_max='sorted_scan')`` exports the same reductions as segmented scans over points the host
  sorted by frustum (``FRNetPipeline(sort_points=True)``; ``SegmentOps``), which it parses; AWML's form stays
  the default;
* sizes come from the data (``inverse_map.max() + 1`` frustums), so every shape is dynamic;
* the output is ``pred_probs`` (softmax, AWML's current export) or ``seg_logit`` (the raw scores Autoware's
  ``autoware_lidar_frnet`` node reads): ``FRNet(output='pred_probs'|'seg_logit')``.

Deploy mode throughout (``deploy=True`` in AWML: batch 1, the head returns the scores only). Strided stages
place several frustums on one pixel (``voxel_coors // stride``): the last write wins, as in AWML (ScatterND with
duplicate indices, whose order TensorRT does not promise; verification measures what that costs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

OUTPUTS = ("pred_probs", "seg_logit")


def _bn1d(c, eps, momentum):
    return nn.BatchNorm1d(c, eps=eps, momentum=momentum)


def _bn2d(c, eps, momentum):
    return nn.BatchNorm2d(c, eps=eps, momentum=momentum)


def _act(kind):
    return {"HSwish": nn.Hardswish, "LeakyReLU": nn.LeakyReLU, "ReLU": nn.ReLU}[kind]()


class _Scatter(torch.autograd.Function):
    """``self.scatter(0, index, src)`` / ``scatter_reduce(0, index, src, reduce, include_self=True)`` exported as ONE
    ``ScatterElements(axis=0, reduction=...)`` node, as AWML's registered symbolic does. torch's own symbolic wraps
    it in ``If`` nodes (a rank check) that ONNX Runtime's fp16 converter cannot rewire; an autograd Function
    keeps this local to FRNet instead of re-registering ``aten::scatter_reduce`` for every exported model."""

    @staticmethod
    def forward(ctx, data, index, src, reduction):
        if reduction == "none":
            return data.scatter(0, index, src)
        return data.scatter_reduce(0, index, src, reduce={"add": "sum", "max": "amax"}[reduction], include_self=True)

    @staticmethod
    def symbolic(g, data, index, src, reduction):
        return g.op("ScatterElements", data, index, src, axis_i=0, reduction_s=reduction)


def scatter(data, index, src, reduction="none"):
    """ScatterElements along axis 0 (``reduction`` none / add / max); differentiable through torch's own ops."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return _Scatter.apply(data, index, src, reduction)
    if reduction == "none":
        return data.scatter(0, index, src)
    return data.scatter_reduce(0, index, src, reduce={"add": "sum", "max": "amax"}[reduction], include_self=True)


def scatter_max(values, index, size):
    """Max of ``values (N, C)`` per group ``index (N,)`` into ``(size, C)``: AWML's scatter_reduce(amax,
    include_self=True), exported as ScatterElements(reduction='max').

    AWML starts from ``torch.finfo(dtype).min`` (-3.4e38: -inf in fp16, and a constant the fp16 converter
    cannot place, measured: its ConstantOfShape broke the fp16 graph's topological order). Here each group
    starts from one of its own points instead (a plain ScatterElements first): the max over the group with
    one of its members counted twice is the same max, in any dtype; every frustum has a point by construction
    (the host's ``unique``), and a frustum without one (padding) holds 0 and is never read."""
    idx = index.unsqueeze(-1).expand(-1, values.size(1))
    seed = scatter(torch.zeros((size, values.size(1)), dtype=values.dtype, device=values.device), idx, values)
    return scatter(seed, idx, values, "max")


SEGMENT_FORMS = ("scatter_reduce", "sorted_scan")


def segment_scan(values, keys, steps, combine):
    """Inclusive segmented scan of ``values (N, C)`` over runs of equal ``keys (N,)`` (sorted): after step ``i``
    each row holds ``combine`` over its segment's last ``2**(i+1)`` rows (Hillis-Steele doubling), so ``steps``
    steps cover segments of up to ``2**steps`` rows. Slices, Equal, Where and Max/Add only: no scatter."""
    n = values.shape[0]
    for i in range(steps):
        s = 1 << i
        prev = torch.cat([values.new_zeros((s, values.shape[1])), values], 0)[:n]
        same = (torch.cat([keys.new_full((s,), -1), keys], 0)[:n] == keys).unsqueeze(-1)
        values = torch.where(same, combine(values, prev), values)
    return values


def segment_last(keys, size):
    """``(size,)`` index of each segment's last row (``keys`` sorted, every key in ``[0, size)`` present): one
    ScatterND without reduction whose only duplicate indices go to a discarded extra row."""
    n = keys.shape[0]
    is_last = keys != torch.cat([keys[1:], keys.new_full((1,), -1)], 0)
    target = torch.where(is_last, keys, torch.zeros_like(keys) + size)
    last = torch.zeros(size + 1, dtype=keys.dtype, device=keys.device)
    last[target] = torch.arange(n, dtype=keys.dtype, device=keys.device)
    return last[:size]


class SegmentOps:
    """The point -> frustum reductions in one of two ONNX forms with the same values:

    - ``scatter_reduce`` (AWML's export, the default): ScatterElements(reduction='max'/'add'), which TensorRT 10
      parses and TensorRT-RTX 1.7 refuses ("importScatterElements: Unsupported reduction type"; RTX also refuses
      ScatterND with a reduction and a ScatterElements whose indices outnumber the data rows);
    - ``sorted_scan``: the points arrive sorted by frustum (the host sorts them: ``FRNetPipeline(sort_points=
      True)``), each frustum's max/sum is a segmented scan (``scan_steps`` doubling steps: frustums of up to
      ``2**scan_steps`` points, which the host checks) read at the segment's last point. The max is exact (the
      same values in any order); a sum adds in another order (float rounding only).
    """

    def __init__(self, form="scatter_reduce", scan_steps=8):
        if form not in SEGMENT_FORMS:
            raise ValueError(f"segment_max={form!r}: one of {SEGMENT_FORMS}")
        self.form, self.scan_steps = form, int(scan_steps)

    def max(self, values, index, size):
        if self.form == "scatter_reduce":
            return scatter_max(values, index, size)
        return segment_scan(values, index, self.scan_steps, torch.maximum)[segment_last(index, size)]

    def sum(self, values, index, size):
        if self.form == "scatter_reduce":
            idx = index.unsqueeze(-1).expand(-1, values.size(1))
            zeros = torch.zeros(size, values.size(1), dtype=values.dtype, device=values.device)
            return scatter(zeros, idx, values, "add")
        return segment_scan(values, index, self.scan_steps, torch.add)[segment_last(index, size)]


class FrustumFeatureEncoder(nn.Module):
    segments = SegmentOps()  # FRNet sets its own (segment_max)

    def __init__(self, in_channels=4, feat_channels=(64, 128, 256, 256), with_distance=True, with_cluster_center=True,
                 with_pre_norm=True, feat_compression=16, eps=1e-3, momentum=0.01):
        super().__init__()
        self._with_distance, self._with_cluster_center = with_distance, with_cluster_center
        c_in = in_channels + int(with_distance) + 3 * int(with_cluster_center)
        self.pre_norm = _bn1d(c_in, eps, momentum) if with_pre_norm else None
        chans = [c_in, *feat_channels]
        layers = []
        for i in range(len(feat_channels)):
            if i == len(feat_channels) - 1:
                layers.append(nn.Linear(chans[i], chans[i + 1]))
            else:
                layers.append(nn.Sequential(nn.Linear(chans[i], chans[i + 1], bias=False),
                                            _bn1d(chans[i + 1], eps, momentum), nn.ReLU(inplace=True)))
        self.ffe_layers = nn.ModuleList(layers)
        self.compression_layers = (nn.Sequential(nn.Linear(feat_channels[-1], feat_compression), nn.ReLU(inplace=True))
                                   if feat_compression else None)

    def forward(self, points, inverse_map, num_frustums):
        feats = [points]
        if self._with_distance:
            feats.append(torch.norm(points[:, :3], 2, 1, keepdim=True))
        if self._with_cluster_center:
            count = self.segments.sum(torch.ones_like(points), inverse_map, num_frustums)
            total = self.segments.sum(points, inverse_map, num_frustums)
            mean = (total / count)[inverse_map]
            feats.append(points[:, :3] - mean[:, :3])
        x = torch.cat(feats, dim=-1)
        if self.pre_norm is not None:
            x = self.pre_norm(x)
        point_feats = []
        for layer in self.ffe_layers:
            x = layer(x)
            point_feats.append(x)
        voxel_feats = self.segments.max(x, inverse_map, num_frustums)
        if self.compression_layers is not None:
            voxel_feats = self.compression_layers(voxel_feats)
        return voxel_feats, point_feats


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None, act="HSwish", eps=1e-3, momentum=0.01):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _bn2d(planes, eps, momentum)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = _bn2d(planes, eps, momentum)
        self.relu = _act(act)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ConvModule(nn.Module):
    """mmcv's ConvModule (conv without bias, BN, activation): FRNetBackbone's ``fuse_layer{i}``."""

    def __init__(self, cin, cout, act, eps, momentum):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = _bn2d(cout, eps, momentum)
        self.activate = _act(act)

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class FRNetBackbone(nn.Module):
    ARCH = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

    segments = SegmentOps()  # FRNet sets its own (segment_max)

    def __init__(self, in_channels=16, point_in_channels=384, output_shape=(64, 512), depth=34, stem_channels=128,
                 out_channels=(128, 128, 128, 128), strides=(1, 2, 2, 2), fuse_channels=(256, 128), act="HSwish",
                 eps=1e-3, momentum=0.01):
        super().__init__()
        self.ny, self.nx = (int(v) for v in output_shape)
        blocks = self.ARCH[depth]
        self.act, self.eps, self.momentum = act, eps, momentum
        self.stem = nn.Sequential(self._conv(in_channels, stem_channels // 2), _bn2d(stem_channels // 2, eps, momentum),
                                  _act(act), self._conv(stem_channels // 2, stem_channels),
                                  _bn2d(stem_channels, eps, momentum), _act(act),
                                  self._conv(stem_channels, stem_channels), _bn2d(stem_channels, eps, momentum), _act(act))
        self.point_stem = self._point(point_in_channels, stem_channels)
        self.fusion_stem = self._fusion(stem_channels * 2, stem_channels)
        self.point_fusion_layers, self.pixel_fusion_layers = nn.ModuleList(), nn.ModuleList()
        self.attention_layers = nn.ModuleList()
        self.strides, total, inplanes = [], 1, stem_channels
        for i, n in enumerate(blocks):
            total *= strides[i]
            self.strides.append(total)
            planes = out_channels[i]
            down = None
            if strides[i] != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=strides[i], bias=False),
                                     _bn2d(planes, eps, momentum))
            layer = [BasicBlock(inplanes, planes, strides[i], down, act, eps, momentum)]
            layer += [BasicBlock(planes, planes, 1, None, act, eps, momentum) for _ in range(1, n)]
            self.point_fusion_layers.append(self._point(inplanes + planes, planes))
            self.pixel_fusion_layers.append(self._fusion(planes * 2, planes))
            self.attention_layers.append(nn.Sequential(self._conv(planes, planes), _bn2d(planes, eps, momentum),
                                                       _act(act), self._conv(planes, planes),
                                                       _bn2d(planes, eps, momentum), nn.Sigmoid()))
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes
        self.num_stages = len(blocks)
        cin = stem_channels + sum(out_channels)
        for i, c in enumerate(fuse_channels):
            self.add_module(f"fuse_layer{i + 1}", ConvModule(cin, c, act, eps, momentum))
            self.add_module(f"point_fuse_layer{i + 1}", self._point(cin, c))
            cin = c
        self.num_fuse = len(fuse_channels)

    @staticmethod
    def _conv(cin, cout):
        return nn.Conv2d(cin, cout, 3, padding=1, bias=False)

    def _point(self, cin, cout):
        return nn.Sequential(nn.Linear(cin, cout, bias=False), _bn1d(cout, self.eps, self.momentum), nn.ReLU(inplace=True))

    def _fusion(self, cin, cout):
        return nn.Sequential(self._conv(cin, cout), _bn2d(cout, self.eps, self.momentum), _act(self.act))

    def frustum2pixel(self, feats, coors, stride):
        """Frustum features -> the (1, C, H/s, W/s) image: ScatterND (last write wins on shared pixels)."""
        ny, nx = self.ny // stride, self.nx // stride
        pixel = torch.zeros((1, ny, nx, feats.shape[-1]), dtype=feats.dtype, device=feats.device)
        pixel[coors[:, 0], coors[:, 1], coors[:, 2]] = feats
        return pixel.permute(0, 3, 1, 2).contiguous()

    @staticmethod
    def pixel2point(pixel, coors, stride):
        pixel = pixel.permute(0, 2, 3, 1).contiguous()
        return pixel[coors[:, 0], torch.div(coors[:, 1], stride, rounding_mode="floor"),
                     torch.div(coors[:, 2], stride, rounding_mode="floor")]

    def forward(self, voxel_feats, point_feats, coors, voxel_coors, inverse_map, num_frustums):
        point = point_feats[-1]
        x = self.stem(self.frustum2pixel(voxel_feats, voxel_coors, 1))
        point = self.point_stem(torch.cat((self.pixel2point(x, coors, 1), point), dim=1))
        pix = self.frustum2pixel(self.segments.max(point, inverse_map, num_frustums), voxel_coors, 1)
        x = self.fusion_stem(torch.cat((pix, x), dim=1))
        outs, out_points = [x], [point]
        for i in range(self.num_stages):
            s = self.strides[i]
            x = getattr(self, f"layer{i + 1}")(x)
            point = self.point_fusion_layers[i](torch.cat((self.pixel2point(x, coors, s), point), dim=1))
            strided = torch.div(voxel_coors, s, rounding_mode="floor")
            pix = self.frustum2pixel(self.segments.max(point, inverse_map, num_frustums), strided, s)
            fuse = self.pixel_fusion_layers[i](torch.cat((pix, x), dim=1))
            x = fuse * self.attention_layers[i](fuse) + x
            outs.append(x)
            out_points.append(point)
        size = outs[0].shape[2:]
        img = torch.cat([F.interpolate(o, size=size, mode="bilinear", align_corners=True) for o in outs], dim=1)
        pts = torch.cat(out_points, dim=1)
        for i in range(self.num_fuse):
            img = getattr(self, f"fuse_layer{i + 1}")(img)
            pts = getattr(self, f"point_fuse_layer{i + 1}")(pts)
        return img, pts


class FRHead(nn.Module):
    def __init__(self, in_channels=128, middle_channels=(128, 256, 128, 64), channels=64, num_classes=27, eps=1e-3,
                 momentum=0.01):
        super().__init__()
        self.mlps = nn.ModuleList()
        for c in middle_channels:
            self.mlps.append(nn.Sequential(nn.Linear(in_channels, c, bias=False), _bn1d(c, eps, momentum),
                                           nn.ReLU(inplace=True)))
            in_channels = c
        self.conv_seg = nn.Linear(channels, num_classes)

    def forward(self, img, point_backbone, point_feats, coors):
        feats = img.permute(0, 2, 3, 1)[coors[:, 0], coors[:, 1], coors[:, 2]]
        enc = point_feats[:-1]
        for i, mlp in enumerate(self.mlps):
            feats = mlp(feats) + (point_backbone if i == 0 else enc[-i])
        return self.conv_seg(feats)


class FRNet(nn.Module):
    """``forward(points, coors, voxel_coors, inverse_map)`` -> per-point class scores ``(N, num_classes)``."""

    def __init__(self, num_classes=27, in_channels=4, feat_channels=(64, 128, 256, 256), feat_compression=16,
                 with_distance=True, with_cluster_center=True, with_pre_norm=True, output_shape=(64, 512), depth=34,
                 stem_channels=128, out_channels=(128, 128, 128, 128), strides=(1, 2, 2, 2),
                 fuse_channels=(256, 128), act="HSwish", middle_channels=(128, 256, 128, 64), channels=64,
                 output="pred_probs", eps=1e-3, momentum=0.01, segment_max="scatter_reduce", scan_steps=8):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r}: one of {OUTPUTS}")
        self.output = output
        segments = SegmentOps(segment_max, scan_steps)
        self.voxel_encoder = FrustumFeatureEncoder(in_channels, feat_channels, with_distance, with_cluster_center,
                                                   with_pre_norm, feat_compression, eps, momentum)
        self.backbone = FRNetBackbone(feat_compression or feat_channels[-1], stem_channels + feat_channels[-1],
                                      output_shape, depth, stem_channels, out_channels, strides, fuse_channels, act,
                                      eps, momentum)
        self.decode_head = FRHead(fuse_channels[-1], middle_channels, channels, num_classes, eps, momentum)
        self.voxel_encoder.segments = self.backbone.segments = segments  # not a module: no state-dict keys

    def logits(self, points, coors, voxel_coors, inverse_map):
        # AWML: the frustums the points use (voxel_coors may be padded past them). Guarded against an inverse map
        # pointing past voxel_coors (inputs that do not belong together: the harness's generated profile-shaped
        # inputs, a host bug): clamped, never an out-of-bounds scatter (undefined in TensorRT). No-ops on real input.
        num = torch.clamp(inverse_map.max() + 1, max=voxel_coors.shape[0])
        inverse_map = inverse_map.clamp(min=0).minimum(num - 1)
        voxel_coors = voxel_coors[:num]
        voxel_feats, point_feats = self.voxel_encoder(points, inverse_map, num)
        img, pts = self.backbone(voxel_feats, point_feats, coors, voxel_coors, inverse_map, num)
        return self.decode_head(img, pts, point_feats, coors)

    @property
    def end2end(self) -> "FRNet":
        """The pipeline stage's module: the whole network is the one graph (a property, so the state dict keeps
        mmdet3d's names)."""
        return self

    def forward(self, points, coors, voxel_coors, inverse_map):
        logits = self.logits(points, coors, voxel_coors, inverse_map)
        return torch.softmax(logits, dim=-1) if self.output == "pred_probs" else logits


def build_model(**kwargs):
    """The family's ``model.builder`` (defaults: AWML's T4 OT128 model, 27 classes)."""
    torch.manual_seed(0)
    return FRNet(**kwargs).eval()
