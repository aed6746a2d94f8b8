"""BEV pooling of BEVFusion's camera branch as AWML exports it: ``autoware::QuickCumsumCuda``.

The frustum features arrive sorted by ``ranks`` (host-precomputed, see ``camera_geometry.py``); equal ranks are
contiguous *intervals*. ``QuickCumsumCuda(x (P, C), geom_feats (P, 4) int32 [x, y, z, b], interval_lengths (I,)
int32, interval_starts (I,) int32)`` sums each interval and writes the sum to the cell of the interval's first
point: ``out[b, z, x, y, :]``, shape ``(batch_size, dimension, height, width, C)`` (attributes ``batch_size``,
``dimension``, ``height``, ``width``: AWML's ``bev_pool`` passes ``B, nx[2], nx[0], nx[1]``). Cells no interval
reaches are zero. That is the CUDA kernel's semantics (a per-*rank* sum), and what the reference here and the
ONNX Runtime kernel (``ort_ops.quick_cumsum``) compute.

The interval starts/lengths are computed *inside* the graph from ``ranks`` (``bev_pool_intervals``), as AWML's
inference path does, so the exported main body takes ``geom_feats, kept, ranks, indices`` like Autoware feeds it.
Exported with the TorchScript exporter the Function becomes one ``autoware::QuickCumsumCuda`` node (its
``symbolic``); torch 2.13's dynamo exporter ignores ``symbolic`` and would trace the PyTorch sum instead.
"""

from __future__ import annotations

import torch

DOMAIN = "autoware"


def per_interval_sum(x, geom_feats, interval_lengths, interval_starts, batch_size, dimension, height, width):
    """The kernel's arithmetic in PyTorch: ``(batch_size, dimension, height, width, C)``."""
    n, c = x.shape
    out = x.new_zeros(batch_size * dimension * height * width, c)
    if interval_starts.numel() == 0:
        return out.view(batch_size, dimension, height, width, c)
    starts, lengths = interval_starts.long(), interval_lengths.long()
    seg = torch.repeat_interleave(torch.arange(len(starts), device=x.device), lengths)  # interval of each point
    first = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)  # seg's first slot
    rows = starts[seg] + torch.arange(len(seg), device=x.device) - first
    sums = x.new_zeros(len(starts), c).index_add_(0, seg, x[rows])
    g = geom_feats[starts].long()
    cell = ((g[:, 3] * dimension + g[:, 2]) * height + g[:, 0]) * width + g[:, 1]
    out[cell] = sums
    return out.view(batch_size, dimension, height, width, c)


class QuickCumsumCuda(torch.autograd.Function):
    """AWML's ``bev_pool.QuickCumsumCuda`` (inference): the symbolic emits ``autoware::QuickCumsumCuda``."""

    @staticmethod
    def symbolic(g, x, geom_feats, interval_lengths, interval_starts, batch_size, dimension, height, width):
        out = g.op(f"{DOMAIN}::QuickCumsumCuda", x, geom_feats, interval_lengths, interval_starts,
                   batch_size_i=batch_size, dimension_i=dimension, height_i=height, width_i=width, outputs=1)
        t = x.type()
        if hasattr(t, "with_sizes") and t.sizes() is not None:
            out.setType(t.with_sizes([batch_size, dimension, height, width, t.sizes()[-1]]))
        return out

    @staticmethod
    def forward(ctx, x, geom_feats, interval_lengths, interval_starts, batch_size, dimension, height, width):
        from .sparse_conv import _untraced

        with _untraced():
            return per_interval_sum(x, geom_feats, interval_lengths, interval_starts, batch_size, dimension,
                                    height, width)


def bev_pool_intervals(ranks, num_points):
    """AWML's inference-path intervals: starts where the sorted rank changes, lengths up to the next start."""
    change = torch.ones_like(ranks, dtype=torch.bool)
    change[1:] = ranks[1:] != ranks[:-1]
    starts = torch.nonzero(change).view(-1)
    ends = torch.cat([starts[1:], starts.new_full((1,), 0) + num_points])
    return (ends - starts).int(), starts.int()


def bev_pool_precomputed(x, geom_feats, kept, ranks, indices, nx):
    """``x (B, N, D, fH, fW, C)`` camera frustum features -> BEV ``(B, C * nz, nx, ny)`` (AWML's
    ``bev_pool_precomputed`` + ``bev_pool``: keep, sort, QuickCumsumCuda, permute, collapse z)."""
    b, c = x.shape[0], x.shape[-1]
    x = x.reshape(-1, c)[kept][indices]
    lengths, starts = bev_pool_intervals(ranks, x.shape[0])
    args = (x, geom_feats.int(), lengths, starts, int(b), int(nx[2]), int(nx[0]), int(nx[1]))
    # the Function in the export (one graph node); eager and training: the same sum, differentiable
    out = QuickCumsumCuda.apply(*args) if torch.onnx.is_in_onnx_export() else per_interval_sum(*args)
    out = out.permute(0, 4, 1, 2, 3)  # (B, C, nz, nx, ny)
    return torch.cat(out.unbind(dim=2), 1)
