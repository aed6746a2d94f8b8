"""Localize a divergence: the first node of an ONNX graph whose output breaks the tolerance.

Design. When a backend's outputs diverge from the reference, the useful answer is *where* in the
graph the error appears. Two references are supported:

- a PyTorch module (``localize_against_torch``): the graph runs with intermediate tensors exposed as
  extra outputs, the module runs with forward hooks, and tensors are matched by module scope. The
  TorchScript exporter names nodes ``/backbone/layer1/conv/Conv`` (Sequential children appear as
  ``/stem/stem.0/Conv``, a module's second call as ``/shared_1/Conv``); the dynamo exporter stores
  ``pkg.torch.onnx.name_scopes`` in the node's metadata. A module call's ONNX tensor is the *exit* of
  its scope (produced inside, read outside, or a graph output). Modules that own no node (a
  BatchNorm folded into the Conv before it, a Dropout) are *absorbed*: the tensor of the module
  called before them may equal their output instead, so a tensor agrees if it matches either.
  Graphs without scope names (renamed nodes, other exporters) fall back to shape and order: hook
  outputs in call order are paired with the next graph tensor of the same static shape.
- another ONNX graph (``localize_against_onnx``), e.g. the fp32 graph against its fp16 (emulated,
  see ``fp16_emulation``) or int8 derivative: tensors are matched by name (precision transforms keep
  node output names); the Cast / QuantizeLinear / DequantizeLinear nodes a transform inserts have no
  counterpart and are skipped, and a diverging tensor that such a node produces is reported at the
  compute node behind it.

Memory stays bounded on large graphs: tensors are compared in topological order, ``chunk_size`` at a
time (one ONNX Runtime session run exposing that many extra outputs, and for PyTorch one forward pass
that keeps only that chunk's hook outputs), and the search stops at the first chunk holding a
divergence. The graph runs with ONNX Runtime's optimizations off, so every node computes as written
and a divergence belongs to a node of the graph, not to a runtime rewrite.

The result names the node, its op type, its module path, the diverging tensor, the error statistics
(``compare_output``'s), the last agreeing tensor and the unmatched nodes between the two (the
suspects): ``to_dict()`` for ``deploy_report.json``, ``message()`` for the failure.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..custom_ops import session_source
from .compare import Tolerance, compare_output
from .stats import json_safe

INSERTED_OPS = ("Cast", "QuantizeLinear", "DequantizeLinear")  # what precision transforms add
_FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
_SUFFIX = re.compile(r"^(.*)_(\d+)$")
MAX_SUSPECTS = 8


@dataclass
class Localization:
    """Where a graph first diverges from its reference (``found`` False: no compared tensor breaks it)."""

    found: bool
    reference: str                       # 'pytorch' or the reference ONNX file
    tolerance: str
    node: str | None = None              # the ONNX node producing the diverging tensor
    op_type: str | None = None
    module: str | None = None            # module path from the node's scope ('' = the model itself)
    tensor: str | None = None            # the diverging tensor
    counterpart: str | None = None       # what it was compared with: 'module layer1.conv' / a tensor name
    stats: dict = field(default_factory=dict)
    detail: str = ""                     # compare_output's message for the tensor
    last_agreeing: str | None = None     # the last tensor before it that agreed
    suspects: list = field(default_factory=list)   # unmatched nodes between the two, topological order
    compared: int = 0                    # tensors compared
    unmatched: int = 0                   # graph tensors with no counterpart (not comparable)
    runs: int = 0                        # session runs (chunks)
    after_graph: list = field(default_factory=list)  # modules that change a graph output in Python (traced away)

    def to_dict(self) -> dict:
        return json_safe(asdict(self))

    def message(self) -> str:
        if not self.found:
            return (f"localization against {self.reference}: no intermediate tensor breaks {self.tolerance} "
                    f"({self.compared} compared in {self.runs} run(s), {self.unmatched} without a counterpart); "
                    "the divergence is not in a node of the graph as written (a runtime rewrite, or a tensor "
                    "without a counterpart)")
        where = f"module '{self.module}'" if self.module else "the model's top level"
        text = (f"first diverging node: '{self.node}' ({self.op_type}, {where}), tensor '{self.tensor}' vs "
                f"{self.counterpart}: {self.detail}")
        if self.last_agreeing:
            text += f"; last agreeing tensor before it: '{self.last_agreeing}'"
        if self.suspects:
            text += f"; nodes in between without a counterpart: {self.suspects}"
        return text + f" [{self.compared} tensors compared against {self.reference} in {self.runs} run(s)]"


# -- graph helpers -------------------------------------------------------------------------------------
def _load(model):
    import onnx

    if isinstance(model, (str, Path)):
        from ..errors import ArtifactError

        if not Path(model).is_file():
            raise ArtifactError(f"ONNX file {model}: not found")
        return onnx.load(str(model))
    return model


def topological_nodes(graph) -> list:
    """The graph's nodes in a topological order (Kahn's, ties in file order): exporters write nodes in
    order, but nothing in ONNX requires it."""
    produced_by = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    deps = [{produced_by[x] for x in n.input if x in produced_by} - {i} for i, n in enumerate(graph.node)]
    users: dict[int, list] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    missing = [len(d) for d in deps]
    import heapq

    ready = [i for i, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in users.get(i, ()):
            missing[j] -= 1
            if missing[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(graph.node):
        from ..errors import ArtifactError

        raise ArtifactError("the ONNX graph has a cycle: no topological order")
    return [graph.node[i] for i in order]


def scope_chain(node, modules=None) -> list:
    """The module scopes of a node, outermost first, as ``[(module path, call index), ...]``.

    From the dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata, else from a TorchScript-style name,
    one segment per module on the call stack, each its path's last non-numeric atom onwards: ``/a/b/Op`` is
    module ``a.b``, ``/backbone/stage1/stage1.0/conv/Op`` is ``backbone.stage1.0.conv``. ``modules`` (the
    model's module paths) resolves a module called from above its owner (``self.neck.blocks(x)`` gives
    ``/blocks/...`` for ``neck.blocks``) and a ``name_N`` segment to call N of ``name``."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [s for s in ast.literal_eval(prop.value)[:-1] if s]
            except (ValueError, SyntaxError):
                break
            return [(s, 0) for s in scopes]
    if not node.name.startswith("/"):
        return []
    chain, path, call, prev = [], "", 0, ""
    for seg in node.name.split("/")[1:-1]:
        if not seg:
            continue
        options = [(seg, 0)]
        m = _SUFFIX.match(seg)
        if m:
            options.append((m.group(1), int(m.group(2))))
        resolved = []
        for name, n in options:
            # a Sequential/ModuleList child is named '<container segment>.<index>'
            tail = name[len(prev):] if prev and name.startswith(prev + ".") else f".{name}"
            resolved.append(((path + tail).lstrip("."), n, name))
        if modules is not None and not any(r[0] in modules for r in resolved):
            # a module called from an ancestor that is not its owner (``self.neck.blocks(x)`` from the root):
            # the segment is the tail of its path, somewhere below the current scope
            resolved = [(full, n, name) for name, n in options for full in sorted(
                (m for m in modules if (m == name or m.endswith("." + name)) and (not path or
                                                                                 m.startswith(path + "."))),
                key=len)] or resolved
        full, n, name = next((r for r in resolved if modules is None or r[0] in modules), resolved[0])
        path, call, prev = full, (n or call), name
        chain.append((path, call))
    return chain


def module_path(node, modules=None) -> str:
    chain = scope_chain(node, modules)
    return chain[-1][0] if chain else ""


def node_label(node) -> str:
    """A node's name, or for an unnamed node its op and first output."""
    return node.name or f"{node.op_type} -> {node.output[0] if node.output else '?'}"


def compute_producer(tensor: str, producers: dict):
    """The node that computes ``tensor``, looking through the Casts / Q / DQ a transform inserted."""
    node = producers.get(tensor)
    while node is not None and node.op_type in INSERTED_OPS and node.input and node.input[0] in producers:
        node = producers[node.input[0]]
    return node if node is not None else producers.get(tensor)


def _value_types(model) -> dict:
    """Tensor name -> ONNX element type where shape inference knows it."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is a help here, not a requirement
        inferred = model
    g = inferred.graph
    out = {vi.name: vi.type.tensor_type.elem_type for vi in list(g.value_info) + list(g.output) + list(g.input)}
    return {k: v for k, v in out.items() if v}


def _inferred_shapes(model) -> dict:
    """Tensor name -> shape from ONNX shape inference, None for a symbolic (dynamic) dimension."""
    import onnx

    try:
        g = onnx.shape_inference.infer_shapes(model).graph
    except Exception:
        return {}
    return {vi.name: tuple(d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim)
            for vi in list(g.value_info) + list(g.output) if vi.type.tensor_type.HasField("shape")}


def _shape_fits(inferred: tuple, actual: tuple) -> bool:
    return len(inferred) == len(actual) and all(d is None or d == a for d, a in zip(inferred, actual))


class _Exposer:
    """Runs a graph with a chosen set of its tensors as the outputs: one session per chunk, optimizations
    off, the ModelProto's outputs swapped in place (no copy of the weights per chunk)."""

    def __init__(self, model, providers=None):
        self.model = model
        self.providers = list(providers or ["CPUExecutionProvider"])
        self.runs = 0
        inits = {i.name for i in model.graph.initializer}
        self.inputs = [i.name for i in model.graph.input if i.name not in inits]

    def run(self, names: list, feed: dict) -> dict:
        import onnx
        import onnxruntime as ort

        missing = [n for n in self.inputs if n not in feed]
        if missing:
            raise ValueError(f"localization feed lacks graph inputs {missing} (got {sorted(feed)})")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3
        graph = self.model.graph
        original = [onnx.ValueInfoProto.FromString(o.SerializeToString()) for o in graph.output]
        del graph.output[:]
        graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
        try:
            blob = session_source(self.model, opts)
        finally:
            del graph.output[:]
            graph.output.extend(original)
        session = ort.InferenceSession(blob, opts, providers=self.providers)
        self.runs += 1
        values = session.run(names, {n: np.asarray(feed[n]) for n in self.inputs})
        return dict(zip(names, values))


def _chunks(items: list, size: int):
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk_size must be a positive number of tensors per run, got {size!r}")
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _suspects(nodes: list, failing_node, agreeing: set, producers: dict) -> list:
    """Ancestors of the failing node that no agreeing tensor covers: where the divergence may originate."""
    covered, stack = set(), [producers[t] for t in agreeing if t in producers]
    while stack:
        n = stack.pop()
        if id(n) in covered:
            continue
        covered.add(id(n))
        stack += [producers[i] for i in n.input if i in producers]
    ancestors, stack = set(), [producers[i] for i in failing_node.input if i in producers]
    while stack:
        n = stack.pop()
        if id(n) in ancestors or id(n) in covered:
            continue
        ancestors.add(id(n))
        stack += [producers[i] for i in n.input if i in producers]
    return [node_label(n) for n in nodes
            if id(n) in ancestors and n.op_type not in ("Constant",)][-MAX_SUSPECTS:]


def _result_from(bad, tensor, node, counterpart, reference, tol, agreeing_order, nodes, producers, module,
                 compared, unmatched, runs) -> Localization:
    return Localization(
        True, reference, str(tol), node=node_label(node), op_type=node.op_type, module=module,
        tensor=tensor, counterpart=counterpart, stats=bad.stats, detail=bad.message,
        last_agreeing=agreeing_order[-1] if agreeing_order else None,
        suspects=_suspects(nodes, node, set(agreeing_order), producers), compared=compared, unmatched=unmatched,
        runs=runs)


# -- ONNX vs ONNX ---------------------------------------------------------------------------------------
def localize_against_onnx(onnx_path, feed: dict, reference_onnx, tolerance: Tolerance, chunk_size: int = 32,
                          providers=None) -> Localization:
    """First tensor of ``onnx_path`` (in the reference graph's topological order) that breaks ``tolerance``
    against the same-named tensor of ``reference_onnx``; ``feed`` goes to both graphs."""
    model, ref_model = _load(onnx_path), _load(reference_onnx)
    cand_producers = {o: n for n in model.graph.node for o in n.output if o}
    ref_nodes = topological_nodes(ref_model.graph)
    types = _value_types(ref_model)
    tensors, unmatched = [], 0
    for node in ref_nodes:
        if node.op_type == "Constant":  # data, not computation
            continue
        for out in node.output:
            if not out or types.get(out, 1) not in _FLOAT_TYPES:
                continue
            if out in cand_producers:
                tensors.append(out)
            else:
                unmatched += 1
    cand, ref = _Exposer(model, providers), _Exposer(ref_model, providers)
    cand_nodes = topological_nodes(model.graph)
    agreeing, compared = [], 0
    label = str(reference_onnx) if isinstance(reference_onnx, (str, Path)) else "the reference graph"
    for chunk in _chunks(tensors, chunk_size):
        got, want = cand.run(chunk, feed), ref.run(chunk, feed)
        for t in chunk:
            a, r = got[t], want[t]
            if not (np.issubdtype(np.asarray(a).dtype, np.floating) and np.issubdtype(np.asarray(r).dtype,
                                                                                      np.floating)):
                continue
            compared += 1
            result = compare_output(r, a, tolerance, f"tensor '{t}'")
            if result.passed:
                agreeing.append(t)
                continue
            node = compute_producer(t, cand_producers)
            return _result_from(result, t, node, f"the reference's tensor '{t}'", label, tolerance, agreeing,
                                cand_nodes, cand_producers, module_path(node), compared, unmatched,
                                cand.runs + ref.runs)
    return Localization(False, label, str(tolerance), compared=compared, unmatched=unmatched,
                        runs=cand.runs + ref.runs, last_agreeing=agreeing[-1] if agreeing else None)


# -- ONNX vs PyTorch ------------------------------------------------------------------------------------
def _flatten(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    return []


class _Taps:
    """Forward hooks on every module: records (path, call index) in call order with output shapes, and
    keeps the outputs of the wanted keys only (so one forward pass holds one chunk's tensors)."""

    def __init__(self, model):
        self.model = model
        self.paths = {m: p for p, m in model.named_modules()}
        self.leaves = {p for m, p in self.paths.items() if not any(True for _ in m.children())}

    def run(self, inputs: list, wanted=frozenset()):
        import torch

        calls: dict[str, int] = {}
        order, kept = [], {}

        def hook(module, args, output):
            path = self.paths[module]
            call = calls.get(path, 0)
            calls[path] = call + 1
            tensors = _flatten(output)
            order.append((path, call, [tuple(t.shape) for t in tensors]))
            for i, t in enumerate(tensors):
                if (path, call, i) in wanted:  # a copy: an in-place op later (ReLU(inplace=True)) rewrites it
                    kept[(path, call, i)] = t.detach().float().cpu().numpy().copy()

        handles = [m.register_forward_hook(hook) for m in self.paths]
        training = self.model.training
        self.model.eval()  # what the exporter traced (its default), and what verification compares with
        try:
            with torch.no_grad():
                self.model(*inputs)
        finally:
            for h in handles:
                h.remove()
            self.model.train(training)
        return order, kept


@dataclass
class _Match:
    tensor: str
    keys: list          # (path, call, output index): the module call(s) the tensor should equal, innermost first
    alternates: list    # absorbed modules' outputs it may equal instead (a folded BatchNorm)


def match_tensors(model, calls: list, modules: set, leaves: set = frozenset()) -> list:
    """Pair graph tensors with module outputs (see the module docstring); topological order of the graph.
    The shape-and-order fallback pairs leaf modules only (a container's output repeats its last child's)."""
    graph = model.graph
    nodes = topological_nodes(graph)
    position = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    chains = [scope_chain(n, modules) for n in nodes]
    scoped = sum(1 for n in nodes if n.name.startswith("/") or any(p.key == "pkg.torch.onnx.name_scopes"
                                                                   for p in n.metadata_props))
    members: dict[tuple, list] = {}
    for i, chain in enumerate(chains):
        for key in chain:
            members.setdefault(key, []).append(i)
    graph_outputs = [o.name for o in graph.output]
    consumers: dict[str, set] = {}
    for i, n in enumerate(nodes):
        for x in n.input:
            consumers.setdefault(x, set()).add(i)
    by_tensor: dict[str, _Match] = {}

    def add(tensor, key):
        match = by_tensor.setdefault(tensor, _Match(tensor, [], []))
        match.keys.append(key)

    shapes = {(p, c): s for p, c, s in calls}
    with_nodes = set(members)
    for path, call, outs in calls:
        if path == "":
            for i, t in enumerate(graph_outputs[:len(outs)]):
                add(t, (path, call, i))
            continue
        idx = members.get((path, call))
        if not idx:
            continue
        inside = set(idx)
        exits = [o for i in idx for o in nodes[i].output
                 if o and (o in graph_outputs or consumers.get(o, set()) - inside)]
        exits.sort(key=position.get)
        if len(exits) == len(outs):
            pairs = list(enumerate(exits))
        elif len(outs) == 1 and exits:
            pairs = [(0, exits[-1])]
        else:
            continue
        for i, t in pairs:
            add(t, (path, call, i))
    if scoped < len(nodes) / 2:  # no scope names to speak of: pair by static shape and call order
        inferred = _inferred_shapes(model)
        ordered = [o for n in nodes for o in n.output if o in inferred]
        cursor = 0
        for path, call, outs in calls:
            if path not in leaves or path == "" or len(outs) != 1:
                continue
            for j in range(cursor, len(ordered)):
                if _shape_fits(inferred[ordered[j]], outs[0]) and ordered[j] not in by_tensor:
                    add(ordered[j], (path, call, 0))
                    cursor = j + 1
                    break
    # absorbed modules: no node of their own; their output may be what the previous module's tensor holds
    for match in by_tensor.values() if scoped >= len(nodes) / 2 else ():
        match.keys.sort(key=lambda k: -len(k[0]))
        first = match.keys[0]
        try:
            start = next(i for i, (p, c, _) in enumerate(calls) if (p, c) == first[:2])
        except StopIteration:
            continue
        for path, call, outs in calls[start + 1:]:
            if (path, call) in with_nodes or path == "":
                break
            if len(outs) == 1 and outs[0] == shapes[first[:2]][first[2]]:
                match.alternates.append((path, call, 0))
    return sorted(by_tensor.values(), key=lambda m: position.get(m.tensor, len(nodes)))


def localize_against_torch(onnx_path, feed: dict, model, input_names: list, tolerance: Tolerance,
                           chunk_size: int = 32, providers=None) -> Localization:
    """First tensor of the graph (topological order) that breaks ``tolerance`` against the PyTorch module
    output it matches; ``feed`` (input name -> array) is given to both, the module positionally in
    ``input_names`` order."""
    import torch

    graph_model = _load(onnx_path)
    missing = [n for n in input_names if n not in feed]
    if missing:
        raise ValueError(f"localization feed lacks inputs {missing} (got {sorted(feed)})")
    device = next(iter(model.parameters()), torch.zeros(0)).device
    inputs = [torch.from_numpy(np.ascontiguousarray(feed[n])).to(device) for n in input_names]
    taps = _Taps(model)
    calls, _ = taps.run(inputs)
    modules = set(taps.paths.values())
    matches = match_tensors(graph_model, calls, modules, taps.leaves)
    producers = {o: n for n in graph_model.graph.node for o in n.output if o}
    nodes = topological_nodes(graph_model.graph)
    matched = {m.tensor for m in matches}
    unmatched = sum(1 for n in nodes for o in n.output if o and o not in matched and n.op_type != "Constant")
    exposer = _Exposer(graph_model, providers)
    agreeing, compared = [], 0
    for chunk in _chunks(matches, chunk_size):
        wanted = frozenset(k for m in chunk for k in m.keys + m.alternates)
        got = exposer.run([m.tensor for m in chunk], feed)
        _, kept = taps.run(inputs, wanted)
        for m in chunk:
            actual = got[m.tensor]
            candidates = [k for k in m.keys + m.alternates if k in kept and kept[k].shape == np.shape(actual)]
            if not candidates:
                continue
            compared += 1
            results = [(k, compare_output(kept[k], actual, tolerance, f"tensor '{m.tensor}'")) for k in candidates]
            root = [(k, r) for k, r in results if k[0] == ""]
            if root and not any(r.passed for _, r in root) and any(r.passed for _, r in results):
                # a graph output equals a module's output but not the model's: the model changes it after
                # that module in Python the graph does not hold (a data-dependent branch frozen by tracing)
                return _python_after_graph(m, root[0][1], results, calls, producers, nodes, agreeing, tolerance,
                                           modules, compared, unmatched, exposer.runs)
            if any(r.passed for _, r in results):
                agreeing.append(m.tensor)
                continue
            key, bad = min(results, key=lambda kr: (kr[1].stats.get("nan", 0) + kr[1].stats.get("inf", 0),
                                                    kr[1].stats.get("max_abs", np.inf)))
            label = f"pytorch module '{key[0]}' output" + (f" (call {key[1]})" if key[1] else "") if key[0] else \
                "the pytorch model's output"
            if key in m.alternates:
                label += f" (module '{m.keys[0][0]}' and '{key[0]}' are one node in the graph)"
            node = compute_producer(m.tensor, producers)
            return _result_from(bad, m.tensor, node, label, "pytorch", tolerance, agreeing, nodes, producers,
                                module_path(node, modules) or key[0], compared, unmatched, exposer.runs)
    return Localization(False, "pytorch", str(tolerance), compared=compared, unmatched=unmatched, runs=exposer.runs,
                        last_agreeing=agreeing[-1] if agreeing else None)


def _python_after_graph(m, bad, results, calls, producers, nodes, agreeing, tol, modules, compared, unmatched,
                        runs) -> Localization:
    """The graph output ``m.tensor`` agrees with a module's output but not with the model's: name the modules
    called after that module (where Python changed the value without leaving a node in the graph)."""
    key = next(k for k, r in results if r.passed and k[0])
    start = next((i for i, (p, c, _) in enumerate(calls) if (p, c) == key[:2]), len(calls))
    after = [p for p, _, _ in calls[start + 1:] if p and not key[0].startswith(p + ".")]
    node = compute_producer(m.tensor, producers)
    result = _result_from(bad, m.tensor, node, "the pytorch model's output", "pytorch", tol, agreeing, nodes,
                          producers, module_path(node, modules) or key[0], compared, unmatched, runs)
    result.suspects, result.after_graph = [], list(dict.fromkeys(after))[-MAX_SUSPECTS:]
    result.detail = (f"{bad.message}; the graph output equals pytorch module '{key[0]}' output, so the model "
                     f"changes it afterwards in Python code the graph does not hold (modules called after it: "
                     f"{result.after_graph or 'none'}): a data-dependent branch or value frozen by tracing?")
    return result


def localize(onnx_path, feed: dict, reference, tolerance: Tolerance, input_names=None, chunk_size: int = 32,
             providers=None) -> Localization:
    """``reference``: a ``torch.nn.Module`` (with ``input_names``) or another ONNX graph (path or ModelProto)."""
    if isinstance(reference, (str, Path)) or type(reference).__name__ == "ModelProto":
        return localize_against_onnx(onnx_path, feed, reference, tolerance, chunk_size, providers)
    if input_names is None:
        raise ValueError("localizing against a PyTorch module needs input_names (the module's positional inputs)")
    return localize_against_torch(onnx_path, feed, reference, list(input_names), tolerance, chunk_size, providers)
