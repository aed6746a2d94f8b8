"""Build the spec's ``torch.nn.Module`` and load its checkpoint safely (``weights_only=True``)."""

from __future__ import annotations

import inspect
import sys

from ..errors import ArtifactError, SpecError
from ..spec.resolve import call_from_spec
from .cache import file_digest


def build_model(spec):
    """Call ``model.builder(**model.kwargs)``, load ``model.checkpoint`` strictly, return it in eval mode."""
    import torch

    mcfg = spec.cfg["model"]
    model = call_from_spec(mcfg["builder"], mcfg["kwargs"], spec, "model.builder", "model.kwargs")
    if not isinstance(model, torch.nn.Module):
        raise SpecError(spec.file, "model.builder", f"{mcfg['builder']} returned {type(model).__name__}, "
                        "expected a torch.nn.Module")
    if mcfg["checkpoint"]:
        load_checkpoint(model, mcfg["checkpoint"], mcfg["checkpoint_key"])
    return model.eval()


def load_checkpoint(model, path, key=None):
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"checkpoint {path}: file not found") from None
    except Exception as exc:
        raise ArtifactError(f"checkpoint {path}: cannot be loaded with weights_only=True "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if key is None and isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        key = "state_dict"
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise ArtifactError(f"checkpoint {path}: no key {key!r} (found: {sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__})")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise ArtifactError(f"checkpoint {path}: expected a state_dict (dict of tensors), got {type(obj).__name__}")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and hasattr(state[k], "shape") and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        lines = [f"checkpoint {path} does not fit the model {type(model).__name__}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", mismatched)):
            if items:
                more = f" ... and {len(items) - 8} more" if len(items) > 8 else ""
                lines.append(f"  {title} ({len(items)}): {', '.join(items[:8])}{more}")
        raise ArtifactError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def model_source_digests(model, builder_ref: str) -> dict:
    """Hashes of the source files defining the model's classes and its builder: a code change re-exports."""
    files = set()
    for module in model.modules():
        try:
            files.add(inspect.getsourcefile(type(module)))
        except TypeError:
            pass
    mod = sys.modules.get(builder_ref.partition(":")[0])
    if mod is not None and getattr(mod, "__file__", None):
        files.add(mod.__file__)
    torch_dir = sys.modules["torch"].__file__.rsplit("/", 1)[0]
    return {f: file_digest(f) for f in sorted(x for x in files if x and not x.startswith(torch_dir))}
