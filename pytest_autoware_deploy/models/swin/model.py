"""Swin-T image backbone and GeneralizedLSSFPN neck as AWML's BEVFusion camera branch builds them.

Written here rather than wrapping ``transformers``' Swin because mmdet's parameter names and semantics do
not map onto it one to one: mmdet keeps one fused ``attn.w_msa.qkv`` (HF: separate query/key/value), merges
patches in ``nn.Unfold`` channel order (HF: the original repo's x0,x1,x2,x3 concat, which is why mmdet's
``convert_weights=True`` reorders ``downsample.reduction``/``downsample.norm``), and never shrinks the
window when a stage is smaller than it (HF does, so the two disagree on small inputs). Module names below
are mmdet's (``patch_embed.projection``, ``stages.N.blocks.M.attn.w_msa.relative_position_bias_table``,
``ffn.layers.0.0``, ``stages.N.downsample.reduction``, ``normI``) and mmcv ConvModule's (``conv``/``bn``),
so the ``img_backbone.*`` / ``img_neck.*`` part of an AWML BEVFusion checkpoint loads strictly;
``tests/models/swin`` checks the numbers against ``transformers``' SwinBackbone through the same
weight conversion mmdet applies to original Swin checkpoints.

``SwinImageBackbone`` is AWML's image-backbone ONNX (``TrtBevFusionImageBackboneContainer``):
``imgs`` uint8 [N, 3, H, W] -> ``(imgs.float() - mean) / std`` -> Swin -> GeneralizedLSSFPN -> the first
(stride-8) level -> ``image_feats`` [N, out_channels, H/8, W/8]. Only N is dynamic; the graph is
specialised to the export image size, as AWML's is (``image_dims`` in its deploy config).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# AWML BEVFusion data_preprocessor (bgr_to_rgb=False: channels are normalised in the order they are fed)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def static_size(x: torch.Tensor, dims=(-2, -1)) -> tuple:
    """Spatial sizes as Python ints, also while the ONNX exporter traces.

    Under tracing ``x.shape`` gives tensors; padding amounts, window counts and the shifted-window masks
    need ints. The image size is fixed in this graph (only the batch axis is dynamic, as in AWML's deploy
    config), so reading it as a constant is exact; verification at every declared shape checks that.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return tuple(int(x.shape[d]) for d in dims)


def zero_pad(x, dim: int, n: int):
    """Append ``n`` zeros along ``dim`` (mmdet's right/bottom padding).

    Written as a concat with expanded zeros: ``F.pad`` on a graph with a dynamic batch exports a
    reversed Slice of its pads that the exporter cannot fold (a warning, and runtime work)."""
    if not n:
        return x
    edge = torch.zeros_like(x.narrow(dim, 0, 1))
    sizes = [-1] * x.dim()
    sizes[dim] = n
    return torch.cat([x, edge.expand(*sizes)], dim)


class WindowMSA(nn.Module):
    """Window multi-head self-attention with a relative position bias (mmdet ``WindowMSA``)."""

    def __init__(self, embed_dims, num_heads, window_size, qkv_bias=True, qk_scale=None):
        super().__init__()
        self.embed_dims, self.num_heads, self.window_size = embed_dims, num_heads, window_size
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # mmdet's index (its checkpoints carry this buffer, so a strict load checks it is the same)
        seq1 = torch.arange(0, (2 * window_size - 1) * window_size, 2 * window_size - 1)
        seq2 = torch.arange(0, window_size)
        coords = (seq1[:, None] + seq2[None, :]).reshape(1, -1)
        self.register_buffer("relative_position_index", (coords + coords.T).flip(1).contiguous())
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.softmax = nn.Softmax(dim=-1)

    @staticmethod
    def num_windows(mask):
        return static_size(mask, (0,))[0]

    def forward(self, x, mask=None):
        n, c, h = self.window_size ** 2, self.embed_dims, self.num_heads
        qkv = self.qkv(x).reshape(-1, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, h)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            attn = (attn.view(-1, self.num_windows(mask), h, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(-1, h, n, n)
        attn = self.softmax(attn)
        return self.proj((attn @ v).transpose(1, 2).reshape(-1, n, c))


def shift_mask(h_pad, w_pad, window, shift) -> torch.Tensor:
    """mmdet's SW-MSA mask [nW, ws*ws, ws*ws]: 0 within a region, -100 across the cyclic-shift seams.

    Built in numpy so the exporter sees one constant, not the slice assignments that make it."""
    img = np.zeros((h_pad, w_pad), dtype=np.float32)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, hs in enumerate(cuts):
        for j, ws in enumerate(cuts):
            img[hs, ws] = i * 3 + j
    win = img.reshape(h_pad // window, window, w_pad // window, window).transpose(0, 2, 1, 3)
    win = win.reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    with warnings.catch_warnings():  # a constant by construction: the exporter's note says just that
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.from_numpy(np.where(diff != 0, -100.0, 0.0).astype(np.float32))


def window_partition(x, h, w, window, c):
    """[B, H, W, C] -> [B*nW, ws, ws, C] (row-major windows, as mmdet); sizes are ints so the traced
    graph has no shape arithmetic."""
    x = x.view(-1, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window, window, c)


def window_reverse(windows, h, w, window, c):
    x = windows.view(-1, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class ShiftWindowMSA(nn.Module):
    """(Shifted-)window attention on a token map; pads right/bottom to whole windows (mmdet semantics)."""

    def __init__(self, embed_dims, num_heads, window_size, shift_size=0, qkv_bias=True, qk_scale=None):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size {shift_size} must be in [0, window_size={window_size})")
        self.window_size, self.shift_size = window_size, shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, window_size, qkv_bias, qk_scale)

    def forward(self, query, hw_shape):
        (h, w), c, ws, s = hw_shape, self.w_msa.embed_dims, self.window_size, self.shift_size
        x = query.view(-1, h, w, c)
        pad_r, pad_b = (ws - w % ws) % ws, (ws - h % ws) % ws
        x = zero_pad(zero_pad(x, 2, pad_r), 1, pad_b)
        hp, wp = h + pad_b, w + pad_r
        mask = None
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
            mask = shift_mask(hp, wp, ws, s).to(x.dtype).to(x.device)
        windows = window_partition(x, hp, wp, ws, c).reshape(-1, ws * ws, c)
        x = window_reverse(self.w_msa(windows, mask).view(-1, ws, ws, c), hp, wp, ws, c)
        if s:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
        if pad_r or pad_b:
            x = x[:, :h, :w, :].contiguous()
        return x.view(-1, h * w, c)


class FFN(nn.Module):
    """mmcv FFN with two fcs: ``layers.0.0`` (fc1), GELU, ``layers.1`` (fc2); identity added by the caller."""

    def __init__(self, embed_dims, feedforward_channels):
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.GELU(),
                                                  nn.Dropout(0.0)),
                                    nn.Linear(feedforward_channels, embed_dims), nn.Dropout(0.0))

    def forward(self, x, identity):
        return identity + self.layers(x)


class SwinBlock(nn.Module):
    def __init__(self, embed_dims, num_heads, feedforward_channels, window_size=7, shift=False, qkv_bias=True,
                 qk_scale=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size, window_size // 2 if shift else 0,
                                   qkv_bias, qk_scale)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, feedforward_channels)

    def forward(self, x, hw_shape):
        x = x + self.attn(self.norm1(x), hw_shape)
        return self.ffn(self.norm2(x), identity=x)


class PatchMerging(nn.Module):
    """mmcv PatchMerging (2x2, stride 2, 'corner' padding): tokens gathered in ``nn.Unfold`` order
    (channel c*4 + dy*2 + dx), written as a reshape so the graph has no Im2Col; then ``norm`` and
    ``reduction`` (no bias)."""

    def __init__(self, in_channels, out_channels, norm=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm = nn.LayerNorm(4 * in_channels) if norm else None
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x, hw_shape):
        (h, w), c = hw_shape, self.in_channels
        x = x.view(-1, h, w, c)
        x = zero_pad(zero_pad(x, 2, w % 2), 1, h % 2)
        h2, w2 = (h + h % 2) // 2, (w + w % 2) // 2
        x = x.view(-1, h2, 2, w2, 2, c).permute(0, 1, 3, 5, 2, 4).reshape(-1, h2 * w2, 4 * c)
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x), (h2, w2)


class SwinBlockSequence(nn.Module):
    def __init__(self, embed_dims, num_heads, feedforward_channels, depth, window_size=7, qkv_bias=True,
                 qk_scale=None, downsample=None):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(embed_dims, num_heads, feedforward_channels, window_size, i % 2 == 1, qkv_bias, qk_scale)
            for i in range(depth))
        self.downsample = downsample

    def forward(self, x, hw_shape):
        for block in self.blocks:
            x = block(x, hw_shape)
        if self.downsample is None:
            return x, hw_shape, x, hw_shape
        x_down, down_hw = self.downsample(x, hw_shape)
        return x_down, down_hw, x, hw_shape


class PatchEmbed(nn.Module):
    """mmcv PatchEmbed: pad right/bottom to whole patches ('corner'), ``projection`` conv, ``norm``."""

    def __init__(self, in_channels, embed_dims, patch_size, norm=True):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        self.norm = nn.LayerNorm(embed_dims) if norm else None

    def forward(self, x):
        h, w = static_size(x)
        p = self.patch_size
        pad_h, pad_w = (p - h % p) % p, (p - w % p) % p
        x = zero_pad(zero_pad(x, 3, pad_w), 2, pad_h)
        x = self.projection(x)
        hw = ((h + pad_h) // p, (w + pad_w) // p)
        x = x.flatten(2).transpose(1, 2)
        return (self.norm(x) if self.norm is not None else x), hw


class SwinTransformer(nn.Module):
    """mmdet ``SwinTransformer`` (inference): a list of [B, C_i, H_i, W_i] maps for ``out_indices``."""

    def __init__(self, in_channels=3, embed_dims=96, patch_size=4, window_size=7, mlp_ratio=4,
                 depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), out_indices=(0, 1, 2, 3), qkv_bias=True,
                 qk_scale=None, patch_norm=True):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} differ in length")
        bad = [i for i in out_indices if not 0 <= i < len(depths)]
        if bad:
            raise ValueError(f"out_indices {tuple(out_indices)}: {bad} not a stage index below {len(depths)}")
        for i, heads in enumerate(num_heads):
            if (embed_dims * 2 ** i) % heads:
                raise ValueError(f"stage {i}: {embed_dims * 2 ** i} channels do not split into {heads} heads")
        self.out_indices = tuple(out_indices)
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, patch_norm)
        self.stages = nn.ModuleList()
        dims = embed_dims
        for i, depth in enumerate(depths):
            down = PatchMerging(dims, 2 * dims, patch_norm) if i < len(depths) - 1 else None
            self.stages.append(SwinBlockSequence(dims, num_heads[i], int(mlp_ratio * dims), depth, window_size,
                                                 qkv_bias, qk_scale, down))
            if down is not None:
                dims = down.out_channels
        self.num_features = [int(embed_dims * 2 ** i) for i in range(len(depths))]
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(self.num_features[i]))

    def forward(self, x):
        x, hw = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw, out, out_hw = stage(x, hw)
            if i in self.out_indices:
                out = getattr(self, f"norm{i}")(out)
                outs.append(out.view(-1, *out_hw, self.num_features[i]).permute(0, 3, 1, 2).contiguous())
        return outs


class ConvModule(nn.Module):
    """mmcv ConvModule with BN2d and ReLU: ``conv`` (no bias: a norm follows), ``bn``."""

    def __init__(self, cin, cout, k, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.activate = nn.ReLU()

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class GeneralizedLSSFPN(nn.Module):
    """AWML/mit-han-lab ``GeneralizedLSSFPN``: top-down, upsample -> concat -> 1x1 -> 3x3 per level.

    Returns ``len(in_channels) - 1`` maps, highest resolution first; BEVFusion uses the first.
    """

    def __init__(self, in_channels, out_channels, num_outs, start_level=0, align_corners=False):
        super().__init__()
        if num_outs < len(in_channels) - start_level:
            raise ValueError(f"num_outs {num_outs} < {len(in_channels) - start_level} input levels")
        self.in_channels, self.align_corners = list(in_channels), align_corners
        end = len(in_channels) - 1
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, end):
            extra = in_channels[i + 1] if i == end - 1 else out_channels
            self.lateral_convs.append(ConvModule(in_channels[i] + extra, out_channels, 1))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1))

    def forward(self, inputs):
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"{len(inputs)} feature maps for in_channels {self.in_channels}")
        laterals = list(inputs)
        for i in range(len(laterals) - 2, -1, -1):
            up = F.interpolate(laterals[i + 1], size=static_size(laterals[i]), mode="bilinear",
                               align_corners=self.align_corners)
            laterals[i] = self.fpn_convs[i](self.lateral_convs[i](torch.cat([laterals[i], up], dim=1)))
        return tuple(laterals[:-1])


class SwinImageBackbone(nn.Module):
    """AWML's BEVFusion image-backbone graph: ``imgs`` uint8 [N,3,H,W] -> ``image_feats`` [N,C,H/8,W/8].

    ``img_backbone`` / ``img_neck`` are named as in a BEVFusion checkpoint; mean/std are buffers left out
    of the state dict (AWML's container holds them as plain tensors), so the state dict is exactly the
    checkpoint's image branch.
    """

    def __init__(self, img_backbone: nn.Module, img_neck: nn.Module, mean=MEAN, std=STD):
        super().__init__()
        self.img_backbone, self.img_neck = img_backbone, img_neck
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, imgs):
        x = (imgs.float() - self.mean) / self.std
        feats = self.img_neck(self.img_backbone(x))
        return feats[0] if isinstance(feats, (tuple, list)) else feats


def init_weights(model: nn.Module) -> nn.Module:
    """mmdet's from-scratch init (no checkpoint): truncated normal 0.02 for linear layers and the relative
    position tables, zero biases, LayerNorm 1/0; convs keep PyTorch's default (mmcv's kaiming is close)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, WindowMSA):
            nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
    return model


def build_model(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4,
                patch_size=4, out_indices=(1, 2, 3), qkv_bias=True, qk_scale=None, patch_norm=True,
                out_channels=256, mean=MEAN, std=STD, align_corners=False, seed=0):
    """The image-backbone graph as a plain nn.Module; defaults are AWML's Swin-T + GeneralizedLSSFPN
    (embed 96, depths 2,2,6,2, heads 3,6,12,24, window 7, out_indices 1,2,3 -> in_channels 192,384,768,
    out_channels 256). Weights are initialised as mmdet does from scratch, from ``seed`` (the global RNG is
    left as it was), so a spec without a checkpoint gets the same random network in every run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = SwinTransformer(3, embed_dims, patch_size, window_size, mlp_ratio, tuple(depths),
                                   tuple(num_heads), tuple(out_indices), qkv_bias, qk_scale, patch_norm)
        in_channels = [backbone.num_features[i] for i in out_indices]
        neck = GeneralizedLSSFPN(in_channels, out_channels, num_outs=len(in_channels), align_corners=align_corners)
        model = init_weights(SwinImageBackbone(backbone, neck, mean, std))
    return model.eval()
