"""The PyTorch sparse convolution against spconv 2.3.8's CPU build (densified) and against dense Conv3d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.bevfusion.sparse_conv import (SparseConv3d, SparseTensor, SubMConv3d,
                                                                 indice_pairs, pair_masks)

spconv = pytest.importorskip("spconv.pytorch", reason="spconv (dev dependency) is the reference implementation")


def random_voxels(seed, shape, n, channels, batch=1):
    g = torch.Generator().manual_seed(seed)
    total = shape[0] * shape[1] * shape[2]
    rows = []
    for b in range(batch):
        flat = torch.randperm(total, generator=g)[:n]
        rows.append(torch.stack([torch.full_like(flat, b), flat // (shape[1] * shape[2]),
                                 (flat // shape[2]) % shape[1], flat % shape[2]], 1))
    idx = torch.cat(rows).int()
    return torch.randn(len(idx), channels, generator=g), idx


def densify(feats, idx, shape, batch=1):
    return SparseTensor(feats, idx, shape, batch).dense()


CASES = [  # (subm, ksize, stride, padding): the layers BEVFusionSparseEncoder uses, and a few more
    (True, 3, 1, 1), (True, (3, 1, 3), 1, 0), (False, 3, 2, 1), (False, 3, 2, 0), (False, 3, 2, (1, 1, 0)),
    (False, 2, 2, 0),
]
# not (False, 3, 1, 1) nor (False, (1, 1, 3), (1, 1, 2), 0): spconv 2.3.8's CPU build gives a regular conv with a
# stride of 1 along an axis different values from call to call on the same input (up to 0.37 over 30 calls; the
# anisotropic case failed 1 run in 4 under pytest-xdist): those are checked against dense Conv3d instead
# (test_regular_conv_is_dense_conv3d_at_active_sites, test_anisotropic_conv_is_dense_conv3d)


@pytest.mark.parametrize("subm,ksize,stride,padding", CASES)
@pytest.mark.parametrize("seed", [7, 8])
def test_matches_spconv_densified(subm, ksize, stride, padding, seed):
    """Batch 1, the deployed graph's (batch 2 is checked against dense Conv3d in the property test)."""
    batch = 1
    shape = [11, 9, 7]
    feats, idx = random_voxels(seed, shape, 60, 4, batch)
    cls, ref_cls = (SubMConv3d, spconv.SubMConv3d) if subm else (SparseConv3d, spconv.SparseConv3d)
    torch.manual_seed(seed)  # the same weights whatever ran before in this process
    ours = cls(4, 5, ksize, stride=stride, padding=padding, bias=True)
    ref = ref_cls(4, 5, ksize, stride=stride, padding=padding, bias=True)
    assert tuple(ref.weight.shape) == tuple(ours.weight.shape)  # spconv 2's (C_out, k0, k1, k2, C_in)
    with torch.no_grad():
        torch.nn.init.normal_(ours.bias)
        ref.weight.copy_(ours.weight)
        ref.bias.copy_(ours.bias)
        got = ours(SparseTensor(feats, idx, shape, batch))
        want = ref(spconv.SparseConvTensor(feats, idx, shape, batch))
    assert got.spatial_shape == list(want.spatial_shape)
    # the same set of active output sites as spconv (its rulebook), and at them the values of a dense Conv3d with
    # the same weights: spconv 2.3.8's CPU build is not deterministic in its values (see CASES; 1 run in 4 under
    # pytest-xdist differed), so its values are no reference; a submanifold conv is the dense conv centred on
    # each input site
    got_keys = {tuple(r) for r in got.indices.tolist()}
    assert got_keys == {tuple(r) for r in want.indices.tolist()}
    ks = ksize if isinstance(ksize, tuple) else (ksize,) * 3
    pad = tuple(k // 2 for k in ks) if subm else padding
    dense = torch.nn.functional.conv3d(densify(feats, idx, shape, batch), ours.weight.permute(0, 4, 1, 2, 3),
                                       ours.bias, stride=stride, padding=pad)
    mask = densify(torch.ones(len(got.indices), 1), got.indices, got.spatial_shape, batch) > 0
    assert dense.shape == got.dense().shape
    torch.testing.assert_close(got.dense() * mask, dense * mask, atol=1e-5, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), k=st.sampled_from([1, 2, 3]), s=st.sampled_from([1, 2]),
       p=st.integers(0, 1), batch=st.integers(1, 2))
def test_regular_conv_is_dense_conv3d_at_active_sites(seed, n, k, s, p, batch):
    """Property: densified, a regular sparse conv (no bias) is dense Conv3d with the weights permuted: the
    outputs no active input reaches are zero on both sides."""
    shape = [6, 5, 4]
    feats, idx = random_voxels(seed, shape, min(n, 120), 3, batch)
    conv = SparseConv3d(3, 2, k, stride=s, padding=p, bias=False)
    with torch.no_grad():
        out = conv(SparseTensor(feats, idx, shape, batch))
        dense_in = densify(feats, idx, shape, batch)
        want = torch.nn.functional.conv3d(dense_in, conv.weight.permute(0, 4, 1, 2, 3), stride=s, padding=p)
    got = out.dense()
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", [7, 8])
def test_anisotropic_conv_is_dense_conv3d(seed):
    """The (1, 1, 3) kernel with stride (1, 1, 2) (a z-only downsampling), densified, is dense Conv3d."""
    shape = [11, 9, 7]
    feats, idx = random_voxels(seed, shape, 60, 4)
    torch.manual_seed(seed)
    conv = SparseConv3d(4, 5, (1, 1, 3), stride=(1, 1, 2), padding=0, bias=False)
    with torch.no_grad():
        got = conv(SparseTensor(feats, idx, shape)).dense()
        want = torch.nn.functional.conv3d(densify(feats, idx, shape), conv.weight.permute(0, 4, 1, 2, 3),
                                          stride=(1, 1, 2))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60))
def test_submanifold_keeps_sites_and_equals_dense_there(seed, n):
    shape = [5, 6, 4]
    feats, idx = random_voxels(seed, shape, n, 3)
    conv = SubMConv3d(3, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        out = conv(SparseTensor(feats, idx, shape))
        want = torch.nn.functional.conv3d(densify(feats, idx, shape), conv.weight.permute(0, 4, 1, 2, 3), padding=1)
    assert torch.equal(out.indices, idx)
    mask = densify(torch.ones(len(idx), 1), idx, shape) > 0
    torch.testing.assert_close(out.dense() * mask, want * mask, atol=1e-5, rtol=1e-5)


def test_pair_masks_are_the_pairs_as_bits():
    feats, idx = random_voxels(3, [6, 6, 6], 50, 1)
    _, pairs, _ = indice_pairs(idx, [6, 6, 6], 3, 1, 1, 1, subm=True)
    mask, argsort = pair_masks(pairs)
    bits = mask.view(-1).long() & 0xFFFFFFFF
    for k in range(pairs.shape[0]):
        assert torch.equal(((bits >> k) & 1).bool(), pairs[k] >= 0)
    assert torch.all(bits[argsort.long()][:-1] >= bits[argsort.long()][1:])
    assert torch.all(pairs[13] == torch.arange(len(idx)))  # the centre offset of a submanifold conv is itself
