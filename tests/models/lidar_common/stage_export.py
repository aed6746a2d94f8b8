"""Helper for the lidar families' tests: export one stage the way the harness does (legacy exporter,
opset 17) and run it in ONNX Runtime."""

from __future__ import annotations

import io

import numpy as np


def export_and_run(module, feed: dict, output_names, dynamic_axes, feeds_after=()):
    """Max |ONNX Runtime - PyTorch| per output for ``feed`` and every extra feed in ``feeds_after``."""
    import onnxruntime as ort
    import torch

    module = module.eval()
    args = tuple(torch.from_numpy(v) for v in feed.values())
    buf = io.BytesIO()
    torch.onnx.export(module, args, buf, opset_version=17, dynamo=False, input_names=list(feed),
                      output_names=list(output_names), dynamic_axes=dynamic_axes)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    errors = []
    for f in (feed, *feeds_after):
        with torch.no_grad():
            ref = module(*[torch.from_numpy(v) for v in f.values()])
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = sess.run(None, f)
        assert [g.shape for g in got] == [tuple(r.shape) for r in ref]
        errors.append({n: float(np.abs(g - r.numpy()).max()) for n, g, r in zip(output_names, got, ref)})
    return errors
