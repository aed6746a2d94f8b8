"""Where a lidar pipeline's host code runs: the ``host_device`` setting of ``pipeline.kwargs``.

- ``'auto'`` (default): PyTorch on CUDA when torch sees a GPU (a deployment's host code runs on the GPU,
  as Autoware's CUDA kernels do), else the numpy reference;
- ``'numpy'``: the numpy reference (``voxelize.py``, ``boxes.py``), whatever the machine;
- ``'torch'``: PyTorch on CUDA when available, else on the CPU;
- a torch device string (``'cpu'``, ``'cuda'``, ``'cuda:1'``): PyTorch on that device.

Both paths give bit-identical results (tests/models/lidar_common). The host object is built once per
spec, before any backend, so 'auto' looks at the machine, not at the backend a stage runs on.

Runners take torch tensors as well as numpy arrays (``Runner.infer``): a tensor feed comes back as tensors
on its device, and ONNX Runtime / PyTorch on CUDA never leave it (CenterPoint's host feeds its stages so).
``stage_feed`` copies device tensors to the host for hosts whose decoding reads numpy (into pinned memory on
CUDA); ``on_device`` brings a stage's outputs (either kind) to the host code's device.
"""

from __future__ import annotations

import sys

import numpy as np

CHOICES = ("auto", "numpy", "torch")


def resolve_host_device(setting):
    """``None`` for the numpy path, else the ``torch.device`` the host code runs on.

    A bad value raises ``TypeError`` so that the spec loader's ``call_from_spec`` reports it as one
    ``SpecError`` naming ``pipeline.kwargs``."""
    setting = "auto" if setting is None else setting
    if not isinstance(setting, str):
        raise TypeError(f"host_device must be one of {CHOICES} or a torch device string, got {setting!r}")
    if setting == "numpy":
        return None
    if setting == "auto":
        try:
            import torch
        except ImportError:
            return None
        return torch.device("cuda") if torch.cuda.is_available() else None
    import torch

    if setting == "torch":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(setting)
    except RuntimeError:
        raise TypeError(f"host_device must be one of {CHOICES} or a torch device string ('cpu', 'cuda:0'), "
                        f"got {setting!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TypeError(f"host_device={setting!r}, but torch sees no CUDA device here; use 'auto'")
    return device


def on_device(value, device):
    """A stage output (numpy array or tensor) as a tensor on ``device``."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    return torch.from_numpy(np.ascontiguousarray(value)).to(device)


def to_numpy(value):
    """A tensor (any device) or array as a numpy array; CUDA tensors go through pinned memory."""
    if isinstance(value, np.ndarray) or "torch" not in sys.modules:  # the numpy path never imports torch
        return np.asarray(value)
    import torch

    if not isinstance(value, torch.Tensor):
        return np.asarray(value)
    if value.device.type == "cuda":
        host = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
        host.copy_(value)  # synchronous: the array is complete when returned
        return host.numpy()
    return value.detach().numpy()


def stage_feed(feed: dict) -> dict:
    """Device tensors copied to the host at a stage boundary, for hosts that decode stage outputs in numpy;
    a host that handles tensor outputs passes its tensors to ``call_stage`` directly (no copy)."""
    return {k: to_numpy(v) for k, v in feed.items()}
