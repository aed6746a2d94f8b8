"""What happens to an exported graph before it is cached: ``onnx_config.simplify`` and ``onnx_config.metadata``.

Both run inside the export's cache build (``export/onnx.py``), so the cached, published and verified file is
the finished one, and the keys that drive them are part of the export key (the whole ``onnx_config`` is;
onnxslim's version too when ``simplify`` is on).

``simplify`` (the AWML unified v2 key): onnxslim (constant folding, dead/duplicate node removal, fusion of
shape chains) rewrites the graph; the nodes before and after are recorded with the export. Everything the
plugin verifies is the simplified graph.

``metadata``: what AWML's ``tools/deploy_to_autoware/update_onnx_metadata.py`` writes into a deployed
ONNX after export, done as part of the export instead. ``producer_name``, ``producer_version``, ``domain``,
``model_version`` and ``doc_string`` are ModelProto fields: TensorRT's ONNX parser logs them when an
Autoware node (``autoware_lidar_centerpoint``, ``autoware_lidar_transfusion``, ``tensorrt_yolox`` ...)
builds its engine, so ``/rosout`` says which model runs. ``props`` go into ``metadata_props`` (ONNX
Runtime's ``custom_metadata_map``): strings as given, anything else as JSON (``class_names`` lists).
Autoware's nodes take class names from their ``*_ml_package.param.yaml``, not from the graph; ``props``
carries them for tools and audits. The derived precision graphs (fp16, int8) are made from this file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ArtifactError, SpecError
from ..progress import status

MODEL_FIELDS = ("producer_name", "producer_version", "domain", "model_version", "doc_string")


def metadata_wanted(ocfg: dict) -> dict:
    """The declared metadata, only the fields set: ``{field: value, ..., "props": {key: str}}``."""
    md = ocfg.get("metadata") or {}
    out = {k: md[k] for k in MODEL_FIELDS if md.get(k) is not None}
    props = md.get("props") or {}
    if props:
        out["props"] = {str(k): prop_text(v) for k, v in props.items()}
    return out


def prop_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def check_metadata_spec(ocfg: dict, spec_file, prefix: str = "onnx_config.metadata"):
    """What the schema's types cannot say: a non-negative model_version, props that are str -> JSON-able."""
    md = ocfg.get("metadata") or {}
    version = md.get("model_version")
    if version is not None and version < 0:
        raise SpecError(spec_file, f"{prefix}.model_version", f"expected a non-negative int (ONNX ModelProto "
                        f"model_version), got {version!r}")
    for k, v in (md.get("props") or {}).items():
        if not isinstance(k, str) or not k:
            raise SpecError(spec_file, f"{prefix}.props", f"metadata_props keys are non-empty strings, got {k!r}")
        try:
            prop_text(v)
        except (TypeError, ValueError):
            raise SpecError(spec_file, f"{prefix}.props.{k}", f"expected a string or a JSON-serializable value "
                            f"(list, dict, number), got {type(v).__name__} {v!r}") from None


def write_metadata(model, wanted: dict):
    """Set the ModelProto fields and ``metadata_props`` on ``model`` (in place); existing props with other
    keys stay, a declared key replaces its old value."""
    for k in MODEL_FIELDS:
        if k in wanted:
            setattr(model, k, wanted[k])
    props = dict((p.key, p.value) for p in model.metadata_props)
    props.update(wanted.get("props", {}))
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)


def metadata_problems(model, wanted: dict) -> list[str]:
    """How ``model`` differs from the declared metadata (empty: it carries all of it)."""
    problems = []
    for k in MODEL_FIELDS:
        if k in wanted and getattr(model, k) != wanted[k]:
            problems.append(f"{k} is {getattr(model, k)!r}, onnx_config.metadata.{k} says {wanted[k]!r}")
    have = {p.key: p.value for p in model.metadata_props}
    for k, v in wanted.get("props", {}).items():
        if have.get(k) != v:
            got = "missing" if k not in have else repr(have[k])
            problems.append(f"metadata_props[{k!r}] is {got}, onnx_config.metadata.props.{k} says {v!r}")
    return problems


def count_nodes(model) -> int:
    return len(model.graph.node)


def slim(model, where: str):
    """onnxslim's simplification of ``model`` (a new ModelProto); a failure is one ArtifactError."""
    import onnxslim

    try:
        return onnxslim.slim(model)
    except Exception as exc:
        raise ArtifactError(f"{where}: onnxslim failed to simplify the exported graph (onnx_config.simplify=True): "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def onnxslim_version() -> str:
    import onnxslim

    return onnxslim.__version__


def finish_graph(path: Path, ocfg: dict, where: str) -> dict:
    """Simplify (if asked) and stamp the metadata (if any) on the exported file at ``path``, rewritten in
    place (``path`` is the cache's temporary file). Returns what was done, for the export's meta.json."""
    import onnx

    wanted = metadata_wanted(ocfg)
    if not ocfg.get("simplify") and not wanted:
        return {}
    model = onnx.load(str(path))
    done = {}
    if ocfg.get("simplify"):
        before = count_nodes(model)
        with status(f"{where}: simplifying the exported graph with onnxslim ({before} nodes)"):
            model = slim(model, where)
        done["simplify"] = {"onnxslim": onnxslim_version(), "nodes_before": before, "nodes_after": count_nodes(model)}
    if wanted:
        write_metadata(model, wanted)
        done["metadata"] = wanted
    onnx.save(model, str(path))
    return done


def check_graph_metadata(path, ocfg: dict, spec_file=None) -> list[str]:
    """``test_export_onnx``: the graph at ``path`` carries ``onnx_config.metadata`` (also a graph no export
    made, export.mode='none': its declaration is checked here, since no export checked it)."""
    import onnx

    check_metadata_spec(ocfg, spec_file)
    wanted = metadata_wanted(ocfg)
    if not wanted:
        return []
    return metadata_problems(onnx.load(str(path), load_external_data=False), wanted)


def restamp(path: Path, ocfg: dict):
    """A derived precision graph keeps the declared metadata: ONNX Runtime's quantizer renames the producer
    (``onnx.quantize``), so the fields are written again on the derived file at ``path``."""
    import onnx

    wanted = metadata_wanted(ocfg)
    if not wanted:
        return
    model = onnx.load(str(path))
    if metadata_problems(model, wanted):
        write_metadata(model, wanted)
        onnx.save(model, str(path))
