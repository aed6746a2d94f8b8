"""fp16 arithmetic on execution providers that compute fp16 graphs in fp32.

Design. ONNX Runtime's CPU EP has no fp16 kernel for most ops (Add, Sub, Mul, Conv...). Its
InsertCastTransformer computes such a node in fp32 between Casts, then removes the Cast pairs
between neighbouring upcast nodes, explicit Casts of the graph included (onnxruntime 1.32, any
optimization level). An fp16 graph therefore runs as an fp32 graph on the CPU: ``(x + 2048) - 2048``,
whose fp16 result is off by up to 1 for x in [0, 30) (fp16 spacing is 2 at 2048), comes back exact.
Verifying "fp16" that way reports an fp32 result as fp16.

What ORT does keep are fp32 -> fp16 -> fp32 Cast pairs in an *fp32* graph (nothing is upcast there).
So ``emulate_fp16`` rewrites an fp16 graph into an fp32 graph in which every tensor that was fp16 is
computed in fp32 and rounded through such a Cast pair: fp16 initializers and constants become the same
values in fp32 (exact), an fp16 output of a node is rounded to fp16 before any consumer reads it, a
``Cast(to=float16)`` becomes the rounding itself, and fp16 graph inputs/outputs keep their names and
types (Casts at the boundary), so the emulated graph is a drop-in for the fp16 one. Tensor names are
kept (the rounded value under the original name), so ``localize`` compares it with the fp32 graph
tensor by tensor. This is fp16 storage with fp32 arithmetic inside each op: what numpy's float16 does
for element-wise ops (bit for bit) and what cuDNN/TensorRT do for fp16 convolutions and GEMMs by
default (fp32 accumulation). Ops that only move or select values (Reshape, MaxPool, Relu...) get no
rounding: their fp16 inputs are already representable.

``upcast_nodes`` tells which fp16 nodes an EP computes in fp32 (from ONNX Runtime's optimized graph,
where the inserted Casts are named ``InsertedPrecisionFreeCast_*``), ``rounding_kept`` checks that ORT
kept every rounding of an emulated graph, and ``fp16_plan`` decides per EP: native fp16 when nothing
is upcast, emulation otherwise, and ``Fp16NotMeasured`` (never an fp32 result labelled fp16) when the
graph cannot be emulated (control-flow subgraphs, tensors of unknown type).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..custom_ops import session_source
from ..errors import DeployError
from .localize import topological_nodes

ROUND_TAG = "__fp16round"
INSERTED_CAST_PREFIX = "InsertedPrecisionFreeCast_"
# ops whose fp16 result is one of their (already fp16) inputs' values, or a value they carry: no rounding
EXACT_OPS = frozenset({
    "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Concat", "Split", "Slice", "Gather",
    "GatherElements", "GatherND", "Expand", "Tile", "Pad", "MaxPool", "GlobalMaxPool", "Relu", "Max", "Min", "Neg",
    "Abs", "Where", "ScatterND", "ScatterElements", "DepthToSpace", "SpaceToDepth", "Clip", "Sign", "Floor", "Ceil",
    "Round", "ReduceMax", "ReduceMin", "TopK", "Constant", "ConstantOfShape"})


class Fp16NotMeasured(DeployError):
    """fp16 arithmetic cannot be measured for this graph on this EP: no fp16 result may be claimed."""


@dataclass
class EmulationInfo:
    rounded: list = field(default_factory=list)      # tensors rounded to fp16 after the node producing them
    exact: int = 0                                   # fp16 outputs of value-preserving ops (no rounding needed)
    initializers: int = 0                            # fp16 initializers now stored as fp32
    boundary_casts: int = 0                          # Casts at fp16 graph inputs/outputs

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rounded"] = len(self.rounded)
        return out


def _elem_types(model) -> dict:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise Fp16NotMeasured(f"fp16 emulation needs every tensor's type; ONNX shape inference failed: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    g = inferred.graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(g.value_info) + list(g.input) + list(g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    return {k: v for k, v in types.items() if v}


def _fp32_tensor(tensor):
    from onnx import numpy_helper

    return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)


def emulate_fp16(model):
    """The fp32 emulation of an fp16 graph (see the module docstring): returns ``(ModelProto, EmulationInfo)``."""
    import onnx
    from onnx import TensorProto, helper

    FP16, FP32 = TensorProto.FLOAT16, TensorProto.FLOAT
    src = model.graph
    for node in src.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise Fp16NotMeasured(f"fp16 emulation does not rewrite control-flow subgraphs: node '{node.name}' "
                                  f"({node.op_type})")
    if len(src.sparse_initializer):
        raise Fp16NotMeasured("fp16 emulation does not rewrite sparse initializers")
    types = _elem_types(model)
    info = EmulationInfo()
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    del g.node[:]
    del g.value_info[:]
    for i, init in enumerate(g.initializer):
        if init.data_type == FP16:
            g.initializer[i].CopyFrom(_fp32_tensor(init))
            info.initializers += 1
    inits = {i.name for i in g.initializer}
    rename, nodes = {}, []
    for inp in g.input:  # fp16 graph inputs stay fp16 for the caller; the graph reads them as fp32
        if inp.name not in inits and inp.type.tensor_type.elem_type == FP16:
            rename[inp.name] = f"{inp.name}{ROUND_TAG}_in"
            nodes.append(helper.make_node("Cast", [inp.name], [rename[inp.name]], to=FP32,
                                          name=f"{inp.name}{ROUND_TAG}_in"))
            info.boundary_casts += 1
    fp16_outputs = {o.name for o in g.output if o.type.tensor_type.elem_type == FP16}
    for name in fp16_outputs:  # the fp32 value lives under another name; a final Cast restores the fp16 output
        rename[name] = f"{name}{ROUND_TAG}_out"

    def round_trip(raw, final, tag):
        return [helper.make_node("Cast", [raw], [f"{final}{ROUND_TAG}_h"], to=FP16, name=f"{tag}{ROUND_TAG}_to16"),
                helper.make_node("Cast", [f"{final}{ROUND_TAG}_h"], [final], to=FP32, name=f"{tag}{ROUND_TAG}_to32")]

    for node in topological_nodes(src):  # converters append their Casts; the emulation is written in order
        new = onnx.NodeProto()
        new.CopyFrom(node)
        for k, x in enumerate(new.input):
            new.input[k] = rename.get(x, x)
        finals = [rename.get(o, o) for o in node.output]
        for k, o in enumerate(finals):
            new.output[k] = o
        for attr in new.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == FP16:
                attr.t.CopyFrom(_fp32_tensor(attr.t))
            elif attr.type == onnx.AttributeProto.INT and attr.name in ("to", "dtype") and attr.i == FP16:
                attr.i = FP32
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "Cast" and to == FP16 and types.get(node.input[0]) == TensorProto.BOOL:
            nodes.append(new)  # 0 and 1 are exact in fp16: no rounding (ORT would fold one away anyway)
            info.exact += 1
            continue
        if node.op_type == "Cast" and to == FP16:  # the conversion to fp16 is the rounding itself
            raw = f"{finals[0]}{ROUND_TAG}_raw"
            new.output[0] = raw
            nodes += [new] + round_trip(raw, finals[0], node.name or finals[0])
            info.rounded.append(node.output[0])
            continue
        tail = []
        for k, (orig, final) in enumerate(zip(node.output, finals)):
            if not orig:
                continue
            kind = types.get(orig)
            if kind is None and any(types.get(x) in (FP16, None) for x in node.input if x):
                raise Fp16NotMeasured(f"fp16 emulation: the type of tensor '{orig}' (output of node '{node.name}', "
                                      f"{node.op_type}) is unknown, so whether it is fp16 is too")
            if kind != FP16:
                continue
            if node.op_type in EXACT_OPS:
                info.exact += 1
                continue
            raw = f"{final}{ROUND_TAG}_raw"
            new.output[k] = raw
            tail += round_trip(raw, final, f"{node.name or orig}:{k}")
            info.rounded.append(orig)
        nodes += [new] + tail
    for name in fp16_outputs:
        nodes.append(helper.make_node("Cast", [rename[name]], [name], to=FP16, name=f"{name}{ROUND_TAG}_out"))
        info.boundary_casts += 1
    g.node.extend(nodes)
    return out, info


def save_emulated(src_path, dst_path) -> EmulationInfo:
    """Write the emulation of the fp16 graph at ``src_path`` to ``dst_path`` atomically (checked first)."""
    import onnx

    from ..export.cache import atomic_path

    model, info = emulate_fp16(onnx.load(str(src_path)))
    onnx.checker.check_model(model)
    with atomic_path(Path(dst_path)) as tmp:
        onnx.save(model, str(tmp))
    return info


def _optimized(model, providers, level) -> "object":
    """The graph ONNX Runtime actually runs on ``providers`` (saved after its transformers)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = level
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(session_source(model, opts), opts, providers=list(providers))
        return onnx.load(opts.optimized_model_filepath)


def _as_model(model):
    import onnx

    return onnx.load(str(model)) if isinstance(model, (str, Path)) else model


def upcast_nodes(model, providers=("CPUExecutionProvider",)) -> list:
    """Names of the graph's nodes that ONNX Runtime computes in fp32 on ``providers`` although the graph
    types them fp16 (it cast their inputs/outputs: ``InsertedPrecisionFreeCast_*`` in its optimized graph)."""
    import onnxruntime as ort

    model = _as_model(model)
    names = {n.name for n in _all_nodes(model.graph) if n.name}
    optimized = _optimized(model, providers, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return [n.name for n in _all_nodes(optimized.graph)
            if n.name in names and n.op_type != "Cast"
            and any(x.startswith(INSERTED_CAST_PREFIX) for x in list(n.input) + list(n.output))]


def _all_nodes(graph):
    """Every node of a graph, those of control-flow subgraphs (If/Loop/Scan bodies) included."""
    import onnx

    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _all_nodes(sub)


def rounding_kept(emulated, providers=("CPUExecutionProvider",), level=None) -> list:
    """The fp16 roundings of an emulated graph that ONNX Runtime removed on ``providers`` (empty: all kept,
    the result is fp16 arithmetic). ``level`` defaults to ORT's default (all optimizations)."""
    import onnxruntime as ort

    emulated = _as_model(emulated)
    constant = _constant_tensors(emulated.graph)  # a folded rounding of a constant still rounds it (Cast is exact)
    wanted = {n.output[0] for n in emulated.graph.node if n.op_type == "Cast" and n.name.endswith(f"{ROUND_TAG}_to16")
              and n.input[0] not in constant}
    optimized = _optimized(emulated, providers, level if level is not None else
                           ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    present = {o for n in optimized.graph.node if n.op_type == "Cast" for o in n.output}
    return sorted(wanted - present)


def _constant_tensors(graph) -> set:
    """Tensors computed from initializers and Constant nodes only: what constant folding may precompute."""
    constant = {i.name for i in graph.initializer}
    for node in topological_nodes(graph):
        if node.op_type == "Constant" or (node.input and all(not x or x in constant for x in node.input)):
            constant.update(o for o in node.output if o)
    return constant


@dataclass
class Fp16Plan:
    mode: str            # 'native': the EP computes the fp16 graph in fp16; 'emulated': run ``emulate_fp16``'s graph
    upcast: list         # fp16 nodes the EP would compute in fp32
    reason: str
    # ONNX Runtime graph optimizations for the emulated graph: 'all' (its default), or 'disable_all' where its
    # optimizations would remove roundings (its transpose optimizer and constant folding rename or fuse the
    # Cast pairs of shape-derived and transposed tensors) but its unoptimized graph keeps every one
    optimization_level: str = "all"

    def to_dict(self) -> dict:
        return asdict(self)


def fp16_plan(model, providers=("CPUExecutionProvider",)) -> Fp16Plan:
    """How to measure fp16 arithmetic of ``model`` on ``providers``: native when no node is upcast, else the
    emulation, checked to survive ORT's optimizations; Fp16NotMeasured when neither is possible."""
    model = _as_model(model)
    upcast = upcast_nodes(model, providers)
    if not upcast:
        return Fp16Plan("native", [], f"{providers[0]} computes every fp16 node in fp16")
    shown = ", ".join(upcast[:5]) + (f" and {len(upcast) - 5} more" if len(upcast) > 5 else "")
    try:
        emulated, _ = emulate_fp16(model)
    except Fp16NotMeasured as exc:
        raise Fp16NotMeasured(f"{providers[0]} computes {len(upcast)} fp16 node(s) in fp32 ({shown}) and the graph "
                              f"cannot be emulated: {exc}") from None
    import onnxruntime as ort

    reason = (f"{providers[0]} computes {len(upcast)} fp16 node(s) in fp32 ({shown}): run with explicit fp16 "
              "rounding after every fp16 node")
    dropped = rounding_kept(emulated, providers)
    if not dropped:
        return Fp16Plan("emulated", upcast, reason)
    unoptimized = rounding_kept(emulated, providers, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if unoptimized:
        raise Fp16NotMeasured(f"{providers[0]} computes {len(upcast)} fp16 node(s) in fp32 ({shown}) and removed "
                              f"{len(unoptimized)} fp16 rounding(s) of the emulated graph even without graph "
                              f"optimizations (e.g. '{unoptimized[0]}')")
    return Fp16Plan("emulated", upcast, f"{reason}; ONNX Runtime's graph optimizations would remove {len(dropped)} "
                    f"of the roundings (e.g. '{dropped[0]}'), so the emulated graph runs unoptimized",
                    optimization_level="disable_all")
