"""Build the spec's ``torch.nn.Module``, load its checkpoint safely (``weights_only=True``), place it on a device.

The built model is the CPU reference and is never moved: ``Module.to`` works in place, so a runner or an
export on another device works on a copy of its own (``model_on_device``). One module shared and moved
by each user in turn left the CPU reference with CUDA weights after ``pytorch@cuda:0`` ran, and made the
ONNX export's device depend on test order.
"""

from __future__ import annotations

from ..errors import SpecError
from ..spec.resolve import call_from_spec


def build_model(spec):
    """Call ``model.builder(**model.kwargs)``, load ``model.checkpoint`` strictly, return it in eval mode."""
    import torch

    mcfg = spec.cfg["model"]
    model = call_from_spec(mcfg["builder"], mcfg["kwargs"], spec, "model.builder", "model.kwargs")
    if not isinstance(model, torch.nn.Module):
        raise SpecError(spec.file, "model.builder", f"{mcfg['builder']} returned {type(model).__name__}, "
                        "expected a torch.nn.Module")
    from .signature import check_forward_inputs

    check_forward_inputs(model, spec)  # input_names vs forward: one SpecError, not torch's TypeError per test
    if mcfg["checkpoint"]:
        from .checkpoint import load_checkpoint as load_any  # OpenMMLab or plain state dicts

        load_any(model, mcfg["checkpoint"], mcfg["checkpoint_key"])
    return model.eval()


def export_device(spec) -> str:
    """The one device every ONNX export of ``spec`` runs on: ``export.device`` (``--deploy-device``), never
    wherever a runner happened to leave the model. Its type is part of the export's cache key."""
    return str(spec.device or "cpu")


def resolve_device(device: str, user: str = "pytorch"):
    """``torch.device`` of ``device`` with a CUDA index filled in; BackendUnavailable where torch cannot use it."""
    import torch

    from ..errors import BackendUnavailable

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BackendUnavailable(f"{user} on {device!r}: not a torch device ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailable(f"{user} on {device}: torch has no CUDA device here")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def model_on_device(model, device, user: str = "pytorch"):
    """``model`` itself when all its parameters and buffers are on ``device``, else a copy moved there.

    Never moves ``model``: users on other devices (a CUDA runner, a CUDA export) share the CPU reference
    only by reading it. The copy is a ``deepcopy``, so its weights are the reference's even for a builder
    without a checkpoint or seed.
    """
    import copy
    import itertools

    dev = resolve_device(str(device), user)
    if all(t.device == dev for t in itertools.chain(model.parameters(), model.buffers())):
        return model
    return copy.deepcopy(model).to(dev)


def load_checkpoint(model, path, key=None):
    """Load ``path`` into ``model`` strictly with ``weights_only=True`` (plain or OpenMMLab checkpoints; the
    missing/unexpected/mis-shaped keys are listed): ``export.checkpoint.load_checkpoint``, kept under this name."""
    from .checkpoint import load_checkpoint as load_any

    load_any(model, path, key)
