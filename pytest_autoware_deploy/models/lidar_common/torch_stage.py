"""A ``call_stage`` running each stage's PyTorch submodule: what the harness's reference backend does,
for training scripts and tests that drive a pipeline host without the plugin."""

from __future__ import annotations

import operator

import numpy as np


def torch_call_stage(model, output_names: dict):
    """``output_names``: stage (= submodule attribute path) -> its output names."""
    import torch

    def call(name, feed):
        module = operator.attrgetter(name)(model)
        with torch.no_grad():
            out = module(*[v if torch.is_tensor(v) else torch.from_numpy(np.ascontiguousarray(v))
                           for v in feed.values()])
        out = out if isinstance(out, tuple) else (out,)
        return {n: o.detach().cpu().numpy() for n, o in zip(output_names[name], out)}

    return call


def evaluate_pipeline(model, host, output_names: dict, info_pkl, classes, loader=None, **evaluator_kwargs) -> dict:
    """The PyTorch pipeline over an info file's frames -> the detection3d evaluator's result (training
    scripts report this; the bundled specs' ``test_accuracy`` measures the same on every backend). ``loader``:
    the family's sample loader ``(info_pkl, classes=...)`` (default: lidar sweeps)."""
    import torch

    from ...evaluate.detection3d import Detection3DEvaluator
    from .dataset import LidarSamples

    ev = Detection3DEvaluator(class_names=list(classes), **evaluator_kwargs)
    call = torch_call_stage(model.float().eval(), output_names)
    ds = (loader or LidarSamples)(info_pkl, classes=list(classes))
    with torch.inference_mode():
        for i in range(len(ds)):
            s = ds[i]
            ev.update(host.run(s["inputs"], call), s["target"])
    return ev.compute()
