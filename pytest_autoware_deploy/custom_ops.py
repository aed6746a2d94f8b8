"""Reference kernels for the custom ops of deployed graphs, so ONNX Runtime runs the graph Autoware loads.

Autoware's graphs carry ops that only its TensorRT plugins implement (``autoware::ImplicitGemm``,
``autoware::QuickCumsumCuda``, ...). Verification, accuracy and latency must still run on *that* graph,
not on a second, standard-op export. A model family therefore registers an *op set* under the entry-point
group ``pytest_autoware_deploy.ort_custom_ops``: an object with

- ``domain``: the ONNX domain its ops live in (``"autoware"``);
- ``ops``: the op types it implements;
- ``prepare(model, opts) -> model``: registers the kernels with the session options (e.g. onnxruntime-
  extensions' Python ops and its library) and returns the model ONNX Runtime should load -- an in-memory
  copy that may differ only in what the kernel mechanism needs (a domain alias, attribute encoding); the
  file on disk is never changed.

Every ONNX Runtime session the plugin creates goes through :func:`session_source`. A graph whose custom
ops no op set implements is one error naming the file, the domain and the ops.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from .errors import ArtifactError

GROUP = "pytest_autoware_deploy.ort_custom_ops"  # entry points: op sets
# domains ONNX Runtime implements itself
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc",
                              "ai.onnx.preview.training", "com.ms.internal.nhwc"})


@lru_cache(maxsize=None)
def op_sets() -> dict[str, list]:
    """Registered op sets by domain (entry points, loaded once)."""
    found: dict[str, list] = {}
    for ep in entry_points(group=GROUP):
        op_set = ep.load()
        found.setdefault(op_set.domain, []).append(op_set)
    return found


def _graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g.node:
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def custom_ops(model) -> dict[str, set[str]]:
    """``{domain: {op_type}}`` of the nodes no ONNX Runtime build implements (model-local functions excluded)."""
    local = {(f.domain, f.name) for f in model.functions}
    out: dict[str, set[str]] = {}
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS and (node.domain, node.op_type) not in local:
                out.setdefault(node.domain, set()).add(node.op_type)
    return out


def session_source(source, opts, name: str | None = None):
    """What to hand ``onnxruntime.InferenceSession`` for ``source`` (a path or a ``ModelProto``) with ``opts``:
    the source unchanged (path, or serialized model) when the graph uses only standard ops; otherwise the
    serialized model the registered op sets prepared, their kernels registered in ``opts``."""
    import onnx

    if isinstance(source, (str, Path)):
        name = name or str(source)
        model = onnx.load(str(source), load_external_data=False)
        if not custom_ops(model):
            return str(source)
        model = onnx.load(str(source))
    else:
        name = name or "the in-memory graph"
        if not custom_ops(source):
            return source.SerializeToString()
        model = onnx.ModelProto()
        model.CopyFrom(source)  # op sets may edit their copy; the caller's model stays as it was
    needed = custom_ops(model)
    registered = op_sets()
    for domain, ops in sorted(needed.items()):
        sets = registered.get(domain, [])
        covered = set().union(*(s.ops for s in sets)) if sets else set()
        missing = sorted(ops - covered)
        if missing:
            raise ArtifactError(
                f"{name}: custom ops {', '.join(f'{domain}::{op}' for op in missing)} have no ONNX Runtime "
                f"reference kernel (entry-point group '{GROUP}' registers "
                f"{sorted(covered) or 'none'} for domain '{domain}'); ONNX Runtime cannot run this graph")
        for op_set in sets:
            if ops & set(op_set.ops):
                model = op_set.prepare(model, opts)
    return model.SerializeToString()
