"""Checkpoints as OpenMMLab (mmengine's Runner) and plain PyTorch write them: read with ``weights_only=True``,
loaded strictly.

mmengine saves ``{"meta", "state_dict", "message_hub", "optimizer", "param_schedulers", ...}``; its meta and
message hub hold numpy scalars and mmengine objects (``HistoryBuffer``), which ``weights_only=True``
refuses. None of them is needed: each such global is stood in for by an inert placeholder (no code of the
checkpoint's runs; the placeholders only keep what the pickle hands them), and only tensors are used.
Beside the model's weights a checkpoint may hold:

- ``data_preprocessor.*``: the mmengine model's normalisation buffers (mean/std); the loaders normalise
  here, so they are dropped and listed;
- ``ema_state_dict``: mmengine's EMAHook swaps the averaged weights into ``state_dict`` when saving and keeps
  the raw ones there; ``state_dict`` is what AWML evaluates, so it is used;
- ``ema_<name>`` keys inside ``state_dict`` (mmdet 2.x's ExpMomentumEMAHook copies): dropped and listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ArtifactError

DROPPED_PREFIXES = ("data_preprocessor.",)
WRAPPER_PREFIXES = ("module.",)  # DataParallel / DistributedDataParallel


@dataclass
class CheckpointContents:
    state: dict
    key: str | None                                  # where the state dict was found ("state_dict", None: top)
    dropped: list = field(default_factory=list)      # keys not loaded, with why
    meta: dict = field(default_factory=dict)         # plain values of OpenMMLab's meta (epoch, versions)


class _Placeholder:
    """Stands in for any class or function a checkpoint's metadata pickles; runs nothing of it."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state

    def __call__(self, *args, **kwargs):
        return _Placeholder(*args, **kwargs)


def _placeholder_for(name: str):
    return type(name.rsplit(".", 1)[-1], (_Placeholder,), {"__module__": name.rsplit(".", 1)[0]})


def read_checkpoint(path) -> object:
    """``torch.load(weights_only=True)``; the globals only metadata needs are given inert placeholders."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"checkpoint {path}: file not found") from None
    except Exception as first:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            names = []
        if not names:
            raise ArtifactError(f"checkpoint {path}: cannot be loaded with weights_only=True "
                                f"({type(first).__name__}: {str(first).splitlines()[0]})") from None
    stubs = [(_placeholder_for(n), n) for n in names]
    try:
        with torch.serialization.safe_globals(stubs):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [ln for ln in str(exc).splitlines() if "GLOBAL" in ln] or str(exc).splitlines()[:1]
        raise ArtifactError(f"checkpoint {path}: cannot be loaded with weights_only=True "
                            f"({type(exc).__name__}: {lines[0].strip()})") from None


def _is_state_dict(obj) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def extract_state_dict(obj, path, key=None) -> CheckpointContents:
    """The model's tensors from a checkpoint object: ``key`` if given, else ``state_dict`` (OpenMMLab),
    ``model`` (official YOLOX), or the object itself when it is a plain state dict."""
    if key is None and isinstance(obj, dict):
        key = next((k for k in ("state_dict", "model") if isinstance(obj.get(k), dict)), None)
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            found = sorted(map(str, obj))[:10] if isinstance(obj, dict) else type(obj).__name__
            raise ArtifactError(f"checkpoint {path}: no key {key!r} (found: {found})")
        state = obj[key]
    else:
        state = obj
    if not _is_state_dict(state):
        bad = ([k for k, v in state.items() if not hasattr(v, "shape")][:5] if isinstance(state, dict) else None)
        what = f"non-tensor entries {bad}" if bad else type(state).__name__
        raise ArtifactError(f"checkpoint {path}: expected a state_dict (dict of tensors) at "
                            f"{key or 'the top level'}, got {what}")
    out = CheckpointContents({}, key)
    for name, value in state.items():
        bare = name
        while bare.startswith(WRAPPER_PREFIXES):
            bare = bare.split(".", 1)[1]
        if bare.startswith(DROPPED_PREFIXES):
            out.dropped.append((name, "the model's data preprocessor: the loader normalises the input here"))
        elif bare.startswith("ema_"):
            out.dropped.append((name, "an EMA copy (mmdet 2.x hook); the model's own weights are loaded"))
        else:
            out.state[bare] = value
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if isinstance(meta, dict):
        out.meta = {k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool))}
    return out


def load_checkpoint(model, path, key=None) -> CheckpointContents:
    """Load ``path`` into ``model`` strictly: missing, unexpected and mis-shaped keys are listed in one error."""
    contents = extract_state_dict(read_checkpoint(path), path, key)
    state = contents.state
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        lines = [f"checkpoint {path} does not fit the model {type(model).__name__}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", mismatched)):
            if items:
                more = f" ... and {len(items) - 8} more" if len(items) > 8 else ""
                lines.append(f"  {title} ({len(items)}): {', '.join(items[:8])}{more}")
        raise ArtifactError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return contents
