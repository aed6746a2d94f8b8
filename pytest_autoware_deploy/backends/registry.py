"""Backends as plugins: each one a ``Backend`` found through the entry-point group
``pytest_autoware_deploy.backends``, the way model families are (registry.py).

A backend declares its name (and aliases), the precision policies it accepts, how it builds its artifact
(an engine, cached by content like the ONNX export; None when it runs the exported graph or the model
itself), how it makes a runner and where it runs. The core asks this registry and never names a backend:
spec validation (spec/load.py), the runner pool and the artifacts (session.py), the engine tests
(suite.py) and the ``gpu`` marker (plugin.py). ``pytorch``, ``onnx`` (``onnxruntime``), ``tensorrt``
(10/11) and ``tensorrt_rtx`` are entries of this package (backends/builtin.py); a user's package adds one
with the same entry point (README: "Adding a backend").

This module imports only the bottom layers (errors, policies): the spec layer reads it while loading a
spec, before anything heavy is imported. What a backend needs (torch, onnxruntime, tensorrt) its own
functions import when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Callable

from ..errors import DeployError
from ..policies import POLICIES

BACKEND_GROUP = "pytest_autoware_deploy.backends"


def same_device(device: str) -> str:
    return device


def any_device(device: str) -> str | None:
    """Runs on the CPU and on CUDA devices (``cpu``, ``cuda``, ``cuda:N``)."""
    text = str(device)
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return None
    return f"expected 'cpu', 'cuda' or 'cuda:N', got {device!r}"


@dataclass(frozen=True)
class Backend:
    """One backend under test.

    ``runner(state, backend_id, device)`` returns a Runner (not yet activated) for the spec state ``state``
    (session.SpecState: ``state.spec``, ``state.model``, ``state.policy_onnx(policy)``, ``state.artifact(b)``).
    ``artifact(state, backend_id, device)``, when given, builds (or reuses, by content key) the file the runner
    loads and returns an object with ``path`` and ``summary()`` (what the report records), e.g. an engine.
    ``run_device(requested)`` is the device the runner uses for a requested one (TensorRT: a CUDA device even
    when the spec says cpu); ``device_problem(device)`` is None where the backend can run, else why not.
    ``int8_target(device)``: where its int8 graph runs, for the quantizer's settings (export/precision.py).
    """

    name: str
    runner: Callable
    aliases: tuple = ()
    policies: tuple = POLICIES       # () = none: it runs the model itself (pytorch)
    artifact: Callable | None = None
    run_device: Callable[[str], str] = same_device
    device_problem: Callable[[str], str | None] = any_device
    int8_target: Callable[[str], str] | None = None
    needs_model: bool = False        # runs the PyTorch model (export.mode='none' has none)
    artifact_kind: str = ""          # what its artifact is, for messages and reports ('engine')
    artifact_needs_gpu: bool = False  # the build runs on the CUDA device (TensorRT 10/11), not on the CPU
    doc: str = ""

    @property
    def has_artifact(self) -> bool:
        return self.artifact is not None

    def runs_on_cuda(self, requested: str) -> bool:
        return str(self.run_device(requested)).startswith("cuda")


@lru_cache(maxsize=None)
def backends() -> dict[str, Backend]:
    """Every registered backend by name (cached per process); one clear error for a broken entry."""
    found: dict[str, Backend] = {}
    for ep in entry_points(group=BACKEND_GROUP):
        where = f"entry point {ep.name!r} = {ep.value!r} (group {BACKEND_GROUP})"
        try:
            obj = ep.load()
        except Exception as exc:
            raise DeployError(f"backend {where} cannot be loaded: {type(exc).__name__}: {exc}") from None
        if not isinstance(obj, Backend):
            raise DeployError(f"backend {where} is a {type(obj).__name__}, expected a "
                              "pytest_autoware_deploy.backends.registry.Backend")
        if obj.name != ep.name:
            raise DeployError(f"backend {where} is named {obj.name!r}; the entry point's name must be the "
                              "backend's name")
        unknown = [p for p in obj.policies if p not in POLICIES]
        if unknown:
            raise DeployError(f"backend {where} accepts unknown precision policies {unknown}; known: "
                              f"{', '.join(POLICIES)}")
        if ep.name in found:
            continue  # the same distribution seen twice on sys.path (an editable install and its build)
        found[ep.name] = obj
    taken = dict.fromkeys(found, "its name")
    for b in found.values():
        for alias in b.aliases:
            if alias in taken:
                raise DeployError(f"backend {b.name!r}: alias {alias!r} is already {taken[alias]}")
            taken[alias] = f"an alias of {b.name!r}"
    return found


def names() -> list[str]:
    """Registered names and aliases, for validation messages and suggestions."""
    out = []
    for b in backends().values():
        out += [b.name, *b.aliases]
    return out


def lookup(name: str) -> Backend | None:
    """The backend registered as ``name`` or with ``name`` as an alias; None when there is none."""
    table = backends()
    if name in table:
        return table[name]
    return next((b for b in table.values() if name in b.aliases), None)


def get(name: str) -> Backend:
    backend = lookup(name)
    if backend is None:
        raise DeployError(f"no backend {name!r} is registered (registered: {', '.join(names())})")
    return backend


def with_artifacts() -> list[Backend]:
    """Backends that build an artifact of their own (engines), in registration order."""
    return [b for b in backends().values() if b.has_artifact]
