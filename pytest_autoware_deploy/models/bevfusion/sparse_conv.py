"""Sparse 3D convolution (spconv 2's SubMConv3d / SparseConv3d) in plain PyTorch, exported as AWML's custom ops.

AWML (``projects/SparseConvolution``) re-registers spconv's layers so that the ONNX export records two ops
per convolution, which Autoware's TensorRT plugins (``autoware_tensorrt_plugins``) implement:

- ``autoware::GetIndicePairsImplicitGemm(indices)`` -> ``out_inds (N_out, 4)``, ``pair_fwd (K, N_out)``,
  ``pair_mask_fwd (N_out, 1)``, ``mask_argsort_fwd (N_out,)``, ``num_act_out ()``, all int32: the *rule
  book*. ``indices`` are ``[batch, d0, d1, d2]`` (BEVFusion: ``[b, x, y, z]``); ``pair_fwd[k, o]`` is the row
  of the input voxel that kernel offset ``k`` (row-major over ``ksize``) brings to output voxel ``o``, or
  -1; ``pair_mask_fwd`` is the same as a bit mask (bit ``k`` set when the pair exists, spconv's uint32
  stored as int32) and ``mask_argsort_fwd`` orders the outputs by that mask (the GPU kernel groups outputs
  of equal masks; a reference does not need it). Attributes (AWML's names): ``batch_size``,
  ``spatial_shape``, ``algo``, ``ksize``, ``stride``, ``padding``, ``dilation``, ``out_padding``, ``subm``,
  ``transpose``, ``is_train``.
- ``autoware::ImplicitGemm(features, filters, pair_fwd, pair_mask_fwd, mask_argsort_fwd)`` -> ``(N_out,
  C_out)``: ``out[o] = sum_k features[pair_fwd[k, o]] @ filters[:, k, :].T``; ``filters`` in spconv 2's
  layout ``(C_out, k0, k1, k2, C_in)``. Attributes: ``is_train``, ``is_subm``, ``act_alpha``,
  ``act_beta``, ``output_scale``, ``output_add_scale`` (AWML's ``fp32_accum=None`` writes no attribute).

The rule book follows dense ``Conv3d`` (cross-correlation): a regular convolution's output ``o`` reads input
``o * stride - padding + k * dilation``, and its active outputs are every position some active input
reaches; a submanifold convolution keeps the input positions and reads ``o + (k - ksize // 2) * dilation``.
Outputs of a regular convolution are listed in increasing linear order (spconv's order depends on its hash
table; the tests compare after densifying). The autograd ``Function``s below compute in PyTorch and
carry ``symbolic`` methods: the TorchScript exporter (``torch.onnx.export(dynamo=False)``) records them as
the ``autoware`` ops, as AWML's export does; the dynamo exporter of torch 2.13 ignores ``symbolic`` and
would trace the PyTorch arithmetic instead, which is not the graph Autoware loads.
"""

from __future__ import annotations

from contextlib import contextmanager
from itertools import product

import torch
from torch import nn

DOMAIN = "autoware"
ALGO_MASK_IMPLICIT_GEMM = 1  # spconv.core.ConvAlgo.MaskImplicitGemm, what AWML's GPU export records


def _triple(v):
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)] * 3


def conv_out_shape(spatial_shape, ksize, stride, padding, dilation):
    """Output grid of a regular sparse convolution (dense Conv3d's formula)."""
    return [(s + 2 * p - d * (k - 1) - 1) // st + 1
            for s, k, st, p, d in zip(spatial_shape, ksize, stride, padding, dilation)]


def _linear(idx, shape):
    """``[b, d0, d1, d2]`` rows -> one int64 key per row (batch major)."""
    idx = idx.long()
    return ((idx[:, 0] * shape[0] + idx[:, 1]) * shape[1] + idx[:, 2]) * shape[2] + idx[:, 3]


def _unlinear(key, shape):
    d2 = key % shape[2]
    r = key // shape[2]
    d1 = r % shape[1]
    r = r // shape[1]
    return torch.stack([r // shape[0], r % shape[0], d1, d2], 1)


def _lookup(sorted_keys, order, query):
    """Row of each ``query`` key among the active inputs (``sorted_keys`` = their sorted keys, ``order`` the
    rows in that order), -1 where absent. On the CPU through numpy's searchsorted (several times faster than
    torch's here), elsewhere torch's."""
    if sorted_keys.numel() == 0:
        return torch.full_like(query, -1)
    if sorted_keys.device.type == "cpu":
        import numpy as np

        pos = torch.from_numpy(np.searchsorted(sorted_keys.numpy(), query.numpy()))
    else:
        pos = torch.searchsorted(sorted_keys, query)
    pos = pos.clamp(max=sorted_keys.numel() - 1)
    return torch.where(sorted_keys[pos] == query, order[pos], torch.full_like(query, -1))


def _pairs_at(out_idx, in_pos, in_shape, sorted_keys, order):
    """``pair (K, N_out)``: the input row at ``in_pos (K, N_out, 3)`` (batch of ``out_idx``), -1 if none."""
    hi = torch.tensor(in_shape, device=in_pos.device)
    ok = ((in_pos >= 0) & (in_pos < hi)).all(-1)
    k, n = in_pos.shape[:2]
    batch = out_idx[:, :1].expand(k, n, 1) if n else out_idx.new_zeros((k, 0, 1))
    key = _linear(torch.cat([batch, in_pos.clamp(min=0)], -1).reshape(-1, 4), in_shape).view(k, n)
    found = _lookup(sorted_keys, order, key.reshape(-1)).view(k, n)
    return torch.where(ok, found, torch.full_like(found, -1))


def indice_pairs(indices, spatial_shape, ksize, stride, padding, dilation, subm):
    """The rule book of one convolution: ``(out_inds, pair_fwd (K, N_out) int64, out_shape)``.

    ``indices`` (N, 4) int ``[b, d0, d1, d2]``; rows must be unique (a voxelization's output is)."""
    ksize, stride, padding, dilation = map(_triple, (ksize, stride, padding, dilation))
    spatial_shape = [int(s) for s in spatial_shape]
    idx = indices.long()
    dev = idx.device
    offsets = torch.tensor(list(product(*[range(k) for k in ksize])), dtype=torch.long, device=dev)  # (K, 3)
    dil = torch.tensor(dilation, device=dev)
    sorted_keys, order = torch.sort(_linear(idx, spatial_shape))
    if subm:
        centre = torch.tensor([k // 2 for k in ksize], device=dev)
        pos = idx[None, :, 1:] + ((offsets - centre) * dil)[:, None, :]
        return indices, _pairs_at(idx, pos, spatial_shape, sorted_keys, order), spatial_shape
    out_shape = conv_out_shape(spatial_shape, ksize, stride, padding, dilation)
    st, pad = torch.tensor(stride, device=dev), torch.tensor(padding, device=dev)
    num = idx[None, :, 1:] + pad - (offsets * dil)[:, None, :]  # (K, N, 3): outputs reached, times stride
    ok = ((num % st) == 0).all(-1) & (num >= 0).all(-1) & ((num // st) < torch.tensor(out_shape, device=dev)).all(-1)
    batch = idx[None, :, :1].expand(len(offsets), -1, -1)
    cand = torch.cat([batch, num // st], -1)[ok]
    out_keys = torch.unique(_linear(cand, out_shape))  # sorted
    out_idx = _unlinear(out_keys, out_shape)
    pos = out_idx[None, :, 1:] * st - pad + (offsets * dil)[:, None, :]
    return out_idx.to(indices.dtype), _pairs_at(out_idx, pos, spatial_shape, sorted_keys, order), out_shape


def pair_masks(pair_fwd):
    """spconv's per-output mask (bit k: offset k has an input; int32 holding the uint32 bits) and its argsort."""
    k = pair_fwd.shape[0]
    if k > 32:
        raise ValueError(f"ImplicitGemm masks hold at most 32 kernel offsets, got {k}")
    bits = torch.tensor([1 << i for i in range(k)], dtype=torch.int64, device=pair_fwd.device)
    mask = ((pair_fwd >= 0).long() * bits[:, None]).sum(0)
    argsort = torch.argsort(mask, descending=True, stable=True)
    mask = torch.where(mask >= 1 << 31, mask - (1 << 32), mask)  # the uint32 bit pattern as int32
    return mask.to(torch.int32).view(-1, 1), argsort.to(torch.int32)


def gather_conv(features, filters, pair_fwd):
    """``out[o] = sum_k features[pair_fwd[k, o]] @ filters[:, k].T`` (filters ``(C_out, *ksize, C_in)``);
    differentiable (the demo is trained through it)."""
    c_out, c_in = filters.shape[0], filters.shape[-1]
    w = filters.reshape(c_out, -1, c_in)  # (C_out, K, C_in)
    padded = torch.cat([features, features.new_zeros((1, c_in))])
    idx = torch.where(pair_fwd >= 0, pair_fwd, torch.full_like(pair_fwd, features.shape[0])).long()
    return torch.einsum("kni,oki->no", padded[idx], w)


@contextmanager
def _untraced():
    """Run a custom op's PyTorch body outside the TorchScript tracer: the exporter records the op from its
    ``symbolic``; tracing the body too would record (and lint) thousands of nodes it then throws away."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


class GetIndicePairsImplicitGemm(torch.autograd.Function):
    """AWML's ``sparse_functional.GetIndicePairsImplicitGemm``: the rule book as one graph node."""

    @staticmethod
    def symbolic(g, indices, batch_size, spatial_shape, algo, ksize, stride, padding, dilation, out_padding, subm,
                 transpose, is_train):
        outs = g.op(f"{DOMAIN}::GetIndicePairsImplicitGemm", indices, batch_size_i=batch_size,
                    spatial_shape_i=spatial_shape, algo_i=algo, ksize_i=ksize, stride_i=stride, padding_i=padding,
                    dilation_i=dilation, out_padding_i=out_padding, subm_i=int(subm), transpose_i=int(transpose),
                    is_train_i=int(is_train), outputs=5)
        k = 1
        for v in ksize:
            k *= v
        t = indices.type()
        if hasattr(t, "with_sizes"):
            for out, sizes in zip(outs, ([None, 4], [k, None], [None, 1], [None], [])):
                out.setType(t.with_sizes(sizes))
        return outs

    @staticmethod
    def forward(ctx, indices, batch_size, spatial_shape, algo, ksize, stride, padding, dilation, out_padding, subm,
                transpose, is_train):
        with _untraced():
            out_idx, pairs, _ = indice_pairs(indices, spatial_shape, ksize, stride, padding, dilation, subm)
            mask, argsort = pair_masks(pairs)
            num = torch.tensor(out_idx.shape[0], dtype=torch.int32)
        return out_idx.to(torch.int32), pairs.to(torch.int32), mask, argsort, num


class ImplicitGemm(torch.autograd.Function):
    """AWML's ``sparse_functional.ImplicitGemm`` (inference: no bias, no activation inside)."""

    @staticmethod
    def symbolic(g, features, filters, pair_fwd, pair_mask, mask_argsort, is_subm):
        out = g.op(f"{DOMAIN}::ImplicitGemm", features, filters, pair_fwd, pair_mask, mask_argsort, is_train_i=0,
                   is_subm_i=int(is_subm), act_alpha_f=0.0, act_beta_f=0.0, output_scale_f=1.0,
                   output_add_scale_f=0.0, outputs=1)
        t = features.type()
        if hasattr(t, "with_sizes"):
            out.setType(t.with_sizes([None, filters.type().sizes()[0] if filters.type().sizes() else None]))
        return out

    @staticmethod
    def forward(ctx, features, filters, pair_fwd, pair_mask, mask_argsort, is_subm):
        with _untraced():
            return gather_conv(features, filters, pair_fwd.long())


class SparseTensor:
    """spconv's ``SparseConvTensor``, reduced: features (N, C), indices (N, 4) int32, spatial shape, batch size,
    and the rule books of earlier layers by ``indice_key`` (a submanifold layer with a known key reuses them)."""

    def __init__(self, features, indices, spatial_shape, batch_size=1, indice_dict=None):
        self.features, self.indices = features, indices
        self.spatial_shape, self.batch_size = [int(s) for s in spatial_shape], int(batch_size)
        self.indice_dict = dict(indice_dict or {})

    def replace_feature(self, features):
        return SparseTensor(features, self.indices, self.spatial_shape, self.batch_size, self.indice_dict)

    def dense(self, channels_first=True):
        """``(B, C, d0, d1, d2)`` (spconv's ``dense()``): a scatter of the features into a zero grid."""
        c = self.features.shape[1]
        key = _linear(self.indices, self.spatial_shape)
        total = self.batch_size * self.spatial_shape[0] * self.spatial_shape[1] * self.spatial_shape[2]
        grid = self.features.new_zeros((total, c)).index_put((key,), self.features)
        grid = grid.view(self.batch_size, *self.spatial_shape, c)
        return grid.permute(0, 4, 1, 2, 3).contiguous() if channels_first else grid


class SparseConvolution(nn.Module):
    """spconv 2's layer: ``weight (C_out, k0, k1, k2, C_in)``, optional ``bias``; the rule book is built by
    ``GetIndicePairsImplicitGemm`` (or reused by ``indice_key``) and applied by ``ImplicitGemm``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 subm=False, indice_key=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _triple(kernel_size), _triple(stride)
        self.padding, self.dilation = _triple(padding), _triple(dilation)
        self.subm, self.indice_key = subm, indice_key
        if subm:
            self.stride = [1, 1, 1]
        self.weight = nn.Parameter(torch.empty(out_channels, *self.kernel_size, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1] * self.kernel_size[2]
        nn.init.uniform_(self.weight, -(1 / fan_in) ** 0.5 * 3 ** 0.5, (1 / fan_in) ** 0.5 * 3 ** 0.5)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, subm={self.subm}, indice_key={self.indice_key}")

    def forward(self, x: SparseTensor) -> SparseTensor:
        if self.subm:
            out_shape = x.spatial_shape
        else:
            out_shape = conv_out_shape(x.spatial_shape, self.kernel_size, self.stride, self.padding, self.dilation)
        key = self.indice_key
        if key is None and self.subm and not torch.onnx.is_in_onnx_export():
            # eager only: a submanifold rule book depends on the sites alone, so layers without a key reuse it
            # (the export keeps AWML's graph: one GetIndicePairsImplicitGemm per unkeyed layer)
            key = ("subm", tuple(x.spatial_shape), tuple(self.kernel_size), tuple(self.dilation), id(x.indices))
        cached = x.indice_dict.get(key) if key is not None and self.subm else None
        if cached is not None and cached[0] is not x.indices:
            cached = None
        if cached is not None:
            out_inds, pair, mask, argsort = cached
        else:
            out_inds, pair, mask, argsort, _num = GetIndicePairsImplicitGemm.apply(
                x.indices, x.batch_size, x.spatial_shape, ALGO_MASK_IMPLICIT_GEMM, self.kernel_size, self.stride,
                self.padding, self.dilation, [0, 0, 0], self.subm, False, not self.subm or self.training)
        if torch.onnx.is_in_onnx_export():
            feats = ImplicitGemm.apply(x.features, self.weight, pair, mask, argsort, self.subm)
        else:  # training and eager inference: differentiable
            feats = gather_conv(x.features, self.weight, pair.long())
        if self.bias is not None:
            feats = feats + self.bias
        out = SparseTensor(feats, out_inds, out_shape, x.batch_size, x.indice_dict)
        if key is not None and cached is None and self.subm:
            out.indice_dict[key] = (out_inds, pair, mask, argsort)
        return out


class SubMConv3d(SparseConvolution):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 indice_key=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias, True, indice_key)


class SparseConv3d(SparseConvolution):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 indice_key=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias, False, indice_key)


class SparseSequential(nn.Sequential):
    """spconv's ``SparseSequential``: sparse layers get the tensor, the others (BN1d, ReLU) its features."""

    def forward(self, x):
        for module in self:
            if isinstance(module, (SparseConvolution, SparseSequential, SparseBasicBlock)):
                x = module(x)
            else:
                x = x.replace_feature(module(x.features))
        return x


class SparseBasicBlock(nn.Module):
    """mmdet3d's ``SparseBasicBlock`` (ResNet basic block of SubMConv3d): conv1, bn1, ReLU, conv2, bn2, + x, ReLU."""

    def __init__(self, inplanes, planes, norm_eps=1e-3, norm_momentum=0.01, indice_key=None):
        super().__init__()
        self.conv1 = SubMConv3d(inplanes, planes, 3, padding=1, bias=False, indice_key=indice_key)
        self.bn1 = nn.BatchNorm1d(planes, eps=norm_eps, momentum=norm_momentum)
        self.conv2 = SubMConv3d(planes, planes, 3, padding=1, bias=False, indice_key=indice_key)
        self.bn2 = nn.BatchNorm1d(planes, eps=norm_eps, momentum=norm_momentum)

    def forward(self, x):
        identity = x.features
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.bn2(out.features) + identity))
