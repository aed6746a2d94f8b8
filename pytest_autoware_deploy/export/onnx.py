"""PyTorch -> ONNX export (cached by content hash) and the checks an exported graph must pass.

The exporter's warnings are kept, not swallowed: a ``TracerWarning`` is the cheapest sign of a batch
size baked into the graph or a Python branch traced one way. They are recorded with the export in
the cache, so a warm run that reuses the export still reports what that export said.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import ArtifactError
from ..progress import status
from .cache import ArtifactCache, atomic_path, content_key, file_digest, read_meta
from .onnx_finish import check_metadata_spec, finish_graph, onnxslim_version
from .pytorch_model import export_device, model_on_device
from .signature import check_forward_inputs
from .sources import export_sources

# warnings about the exporter's own API (legacy TorchScript exporter deprecated, ...), not about the model
_API_NOTICES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


@dataclass
class OnnxArtifact:
    path: Path          # the cached file the backends load
    published: Path     # ``<work_dir>/<onnx_config.save_file>``: where users expect it
    key: str
    built: bool
    warnings: list = field(default_factory=list)  # what the exporter warned: dict(category, message, where)


class OnnxExportWarning(UserWarning):
    """The ONNX exporter warned about the model (``test_export_onnx`` re-raises each; ``export.fail_on_warnings``
    turns them into a failure)."""


def describe_warning(w: dict) -> str:
    return f"{w['category']} at {w['where']}: {w['message']}" if w.get("where") else f"{w['category']}: {w['message']}"


def export_key(spec, model, example_inputs) -> str:
    import onnx
    import torch

    mcfg = spec.cfg["model"]
    return content_key({
        "model": {k: mcfg[k] for k in ("builder", "kwargs", "checkpoint_key")},
        "checkpoint": file_digest(mcfg["checkpoint"]) if mcfg["checkpoint"] else None,
        "sources": export_sources(spec, model),  # the model's and builder's files and the project code they import
        "meta_format": 2,  # meta.json records the exporter's warnings (older entries do not)
        "onnx_config": spec.cfg["onnx_config"],
        "example_shapes": {k: list(v.shape) for k, v in example_inputs.items()},
        "export_device": export_device(spec).partition(":")[0],  # cuda:1 exports what cuda:0 does
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "plugin": __version__,
                     # the simplified graph is onnxslim's: its version is part of the export (only when used)
                     **({"onnxslim": onnxslim_version()} if spec.cfg["onnx_config"].get("simplify") else {})},
    })


def export_onnx(spec, model, example_inputs, rebuild=False) -> OnnxArtifact:
    """Export ``model`` at ``example_inputs`` unless an identical export is cached."""
    check_forward_inputs(model, spec)
    check_metadata_spec(spec.cfg["onnx_config"], spec.file)
    key = export_key(spec, model, example_inputs)
    cache = ArtifactCache(spec.artifact_dir() / "cache")
    ocfg = spec.cfg["onnx_config"]
    meta = {"spec": str(spec.file), "device": export_device(spec), "warnings": []}

    def build(tmp: Path):
        with status(f"exporting {spec.name} to ONNX (opset {ocfg['opset_version']})"):
            meta["warnings"] = _torch_export(model, example_inputs, tmp, ocfg, export_device(spec))
        check_exported_inputs(tmp, ocfg["input_names"], spec.name)
        meta.update(finish_graph(tmp, ocfg, f"{spec.name}"))  # onnx_config.simplify / .metadata (onnx_finish.py)

    path, built = cache.get_or_build("onnx", key, "model.onnx", build, meta=meta, rebuild=rebuild)
    found = meta["warnings"] if built else read_meta(path).get("warnings", [])
    published = spec.work_dir / ocfg["save_file"]
    if built or not published.is_file() or file_digest(published) != file_digest(path):
        with atomic_path(published) as tmp:
            shutil.copyfile(path, tmp)
    return OnnxArtifact(path, published, key, built, found)


def _torch_export(model, example_inputs, path, ocfg, device="cpu") -> list[dict]:
    """Run torch.onnx.export; returns the warnings it raised about the model (see ``exporter_warnings``)."""
    import torch

    model = model_on_device(model, device, "ONNX export (export.device)")  # a copy off the CPU: never moved
    args = tuple(torch.from_numpy(example_inputs[n]).to(device) for n in ocfg["input_names"])
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(
            model, args, str(path),
            input_names=ocfg["input_names"], output_names=ocfg["output_names"],
            opset_version=ocfg["opset_version"], do_constant_folding=ocfg["do_constant_folding"],
            export_params=ocfg["export_params"], dynamic_axes=ocfg["dynamic_axes"],
            keep_initializers_as_inputs=ocfg["keep_initializers_as_inputs"], dynamo=ocfg["dynamo"],
        )
    return exporter_warnings(caught)


def check_exported_inputs(path, input_names, what) -> None:
    """Fail the export when the graph's inputs are not ``onnx_config.input_names``, in order. The exporter drops
    an input the traced forward never used (e.g. a KV cache passed under a keyword the model ignores), and a
    graph without it would only fail later, at the first feed, with a backend's "invalid input name"."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    got = [i.name for i in graph.input if i.name not in inits]
    if got != list(input_names):
        missing = [n for n in input_names if n not in got]
        raise ArtifactError(
            f"ONNX export of {what}: graph inputs {got} != onnx_config.input_names {list(input_names)}"
            + (f"; dropped by the exporter (unused by the traced forward): {missing}" if missing else ""))


def exporter_warnings(caught) -> list[dict]:
    """The recorded warnings that concern the model, once each: category, message and the line that caused
    it (for a TracerWarning, the model's own source line); notices about the exporter's API are dropped."""
    out, seen = [], set()
    for w in caught:
        if issubclass(w.category, _API_NOTICES):
            continue
        entry = {"category": w.category.__name__, "message": str(w.message).strip(),
                 "where": f"{w.filename}:{w.lineno}" if w.filename else ""}
        if tuple(entry.values()) not in seen:
            seen.add(tuple(entry.values()))
            out.append(entry)
    return out


def load_onnx(path):
    """Load and return an ONNX ModelProto, turning a corrupted/missing file into one clear error."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"ONNX file {path}: not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise ArtifactError(f"ONNX file {path} is corrupted or not an ONNX model "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def check_onnx(path, spec) -> list[str]:
    """Checker + strict shape inference + names as the spec declares them; returns problems found."""
    import onnx

    model = load_onnx(path)
    problems = []
    try:
        onnx.checker.check_model(model, full_check=False)
    except Exception as exc:
        problems.append(f"onnx.checker: {exc}")
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:
        problems.append(f"shape inference: {exc}")
    inits = {i.name for i in model.graph.initializer}
    got_in = [i.name for i in model.graph.input if i.name not in inits]
    got_out = [o.name for o in model.graph.output]
    if got_in != spec.input_names:
        problems.append(f"graph inputs {got_in} != onnx_config.input_names {spec.input_names}")
    if got_out != spec.output_names:
        problems.append(f"graph outputs {got_out} != onnx_config.output_names {spec.output_names}")
    return problems


def graph_dims(path) -> dict[str, list]:
    """Input name -> dims (int, or str for a symbolic/dynamic axis)."""
    model = load_onnx(path)
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        out[i.name] = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
                       for d in i.type.tensor_type.shape.dim]
    return out
