"""ONNX Runtime reference kernels for AWML's BEVFusion custom ops, so ONNX Runtime runs the graph Autoware loads.

Registered under the entry-point group ``pytest_autoware_deploy.ort_custom_ops`` (``custom_ops.py``) as
``SPARSE_CONV_OPS``: domain ``autoware``, ops ``GetIndicePairsImplicitGemm`` and ``ImplicitGemm`` (sparse
convolution) and ``QuickCumsumCuda`` (BEV pooling, a vectorised numpy kernel independent of ``bev_pool.py``). The
kernels are onnxruntime-extensions Python ops that call the same PyTorch code the model runs
(``sparse_conv.indice_pairs`` / ``gather_conv``), so the ONNX graph is verified against an independent
*graph* (its BN, ReLU, scatter, backbone and head run in ONNX Runtime) but the same sparse arithmetic.
Python ops live in the domain ``ai.onnx.contrib`` and take int/float/string attributes only, so
``prepare`` edits ONNX Runtime's in-memory copy: the domain becomes ``ai.onnx.contrib`` and every attribute
becomes a string (int lists comma-separated); the file on disk keeps ``autoware`` and AWML's attributes.
"""

from __future__ import annotations

DOMAIN = "autoware"
PYOP_DOMAIN = "ai.onnx.contrib"
PAIRS_ATTRS = ("batch_size", "spatial_shape", "algo", "ksize", "stride", "padding", "dilation", "out_padding",
               "subm", "transpose", "is_train")
GEMM_ATTRS = ("is_train", "is_subm", "act_alpha", "act_beta", "output_scale", "output_add_scale")
CUMSUM_ATTRS = ("batch_size", "dimension", "height", "width")

_registered = False


def _ints(text):
    return [int(v) for v in str(text).split(",") if v != ""]


def get_indice_pairs_implicit_gemm(indices, **attrs):
    """Numpy in, numpy out: ``out_inds, pair_fwd, pair_mask_fwd, mask_argsort_fwd, num_act_out`` (int32)."""
    import numpy as np
    import torch

    from .sparse_conv import indice_pairs, pair_masks

    if int(attrs.get("transpose", "0")) or _ints(attrs.get("out_padding", "0,0,0")) != [0, 0, 0]:
        raise NotImplementedError("autoware::GetIndicePairsImplicitGemm reference: transposed convolutions are "
                                  "not implemented (AWML's BEVFusion has none)")
    if indices.ndim != 2 or indices.shape[1] != 4:
        raise ValueError(f"autoware::GetIndicePairsImplicitGemm: indices must be (N, 4) [batch, x, y, z], "
                         f"got {indices.shape}")
    with torch.no_grad():
        out_idx, pairs, _ = indice_pairs(torch.from_numpy(np.ascontiguousarray(indices)), _ints(attrs["spatial_shape"]),
                                         _ints(attrs["ksize"]), _ints(attrs["stride"]), _ints(attrs["padding"]),
                                         _ints(attrs["dilation"]), bool(int(attrs["subm"])))
        mask, argsort = pair_masks(pairs)
    return (out_idx.numpy().astype(np.int32), pairs.numpy().astype(np.int32), mask.numpy(), argsort.numpy(),
            np.array(out_idx.shape[0], np.int32))


def implicit_gemm(features, filters, pair_fwd, pair_mask, mask_argsort, **attrs):
    """``(N_out, C_out)`` float32: the sum over kernel offsets of gathered features times the filter slice."""
    import numpy as np
    import torch

    from .sparse_conv import gather_conv

    if float(attrs.get("act_alpha", 0)) or float(attrs.get("act_beta", 0)) or \
            float(attrs.get("output_scale", 1)) != 1.0 or float(attrs.get("output_add_scale", 0)):
        raise NotImplementedError("autoware::ImplicitGemm reference: fused activation/scaling not implemented "
                                  f"(attributes {attrs})")
    with torch.no_grad():
        out = gather_conv(torch.from_numpy(np.ascontiguousarray(features, np.float32)),
                          torch.from_numpy(np.ascontiguousarray(filters, np.float32)),
                          torch.from_numpy(pair_fwd.astype(np.int64)))
    return out.numpy()


def quick_cumsum_cuda(x, geom_feats, interval_lengths, interval_starts, **attrs):
    """``autoware::QuickCumsumCuda`` in numpy: each interval's sum written to the cell ``[b, z, x, y]`` of its first
    point, ``(batch_size, dimension, height, width, C)`` float32 (zeros elsewhere). Vectorised: ``reduceat`` over the
    points the intervals cover."""
    import numpy as np

    b, d, h, w = (int(attrs[k]) for k in CUMSUM_ATTRS)
    x = np.ascontiguousarray(x, np.float32)
    out = np.zeros((b * d * h * w, x.shape[1]), np.float32)
    starts = np.asarray(interval_starts, np.int64).reshape(-1)
    lengths = np.asarray(interval_lengths, np.int64).reshape(-1)
    if len(starts):
        if (lengths <= 0).any() or (starts + lengths > len(x)).any() or (np.diff(starts) != lengths[:-1]).any():
            raise ValueError("autoware::QuickCumsumCuda reference: the intervals must tile the sorted points "
                             "(starts[i + 1] == starts[i] + lengths[i], all inside x), as the graph computes them")
        sums = np.add.reduceat(x[starts[0]:starts[-1] + lengths[-1]], starts - starts[0], axis=0)
        g = np.asarray(geom_feats, np.int64)[starts]
        out[((g[:, 3] * d + g[:, 2]) * h + g[:, 0]) * w + g[:, 1]] = sums
    return out.reshape(b, d, h, w, x.shape[1])


def register():
    """Declare the two Python ops with onnxruntime-extensions (once per process)."""
    global _registered
    if _registered:
        return
    from onnxruntime_extensions import PyCustomOpDef, onnx_op

    i32, f32 = PyCustomOpDef.dt_int32, PyCustomOpDef.dt_float
    onnx_op(op_type="GetIndicePairsImplicitGemm", inputs=[i32], outputs=[i32] * 5,
            attrs={a: PyCustomOpDef.dt_string for a in PAIRS_ATTRS})(get_indice_pairs_implicit_gemm)
    onnx_op(op_type="ImplicitGemm", inputs=[f32, f32, i32, i32, i32], outputs=[f32],
            attrs={a: PyCustomOpDef.dt_string for a in GEMM_ATTRS})(implicit_gemm)
    onnx_op(op_type="QuickCumsumCuda", inputs=[f32, i32, i32, i32], outputs=[f32],
            attrs={a: PyCustomOpDef.dt_string for a in CUMSUM_ATTRS})(quick_cumsum_cuda)
    _registered = True


def _as_string(attr):
    import onnx

    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode()
    return repr(value) if isinstance(value, float) else str(value)


class SparseConvOps:
    """The op set ``custom_ops.session_source`` finds through the entry point."""

    domain = DOMAIN
    ops = frozenset({"GetIndicePairsImplicitGemm", "ImplicitGemm", "QuickCumsumCuda"})

    def prepare(self, model, opts):
        import onnx
        from onnxruntime_extensions import get_library_path

        register()
        opts.register_custom_ops_library(get_library_path())
        declared = {"GetIndicePairsImplicitGemm": PAIRS_ATTRS, "ImplicitGemm": GEMM_ATTRS,
                    "QuickCumsumCuda": CUMSUM_ATTRS}
        for node in model.graph.node:
            if node.domain != DOMAIN or node.op_type not in self.ops:
                continue
            attrs = {a.name: _as_string(a) for a in node.attribute}
            missing = [a for a in declared[node.op_type] if a not in attrs]
            if missing:
                raise ValueError(f"node {node.name!r} ({DOMAIN}::{node.op_type}) lacks attributes {missing} "
                                 f"that AWML's export writes")
            del node.attribute[:]
            node.attribute.extend(onnx.helper.make_attribute(k, attrs[k]) for k in declared[node.op_type])
            node.domain = PYOP_DOMAIN
        if not any(o.domain == PYOP_DOMAIN for o in model.opset_import):
            model.opset_import.append(onnx.helper.make_opsetid(PYOP_DOMAIN, 1))
        return model


SPARSE_CONV_OPS = SparseConvOps()
