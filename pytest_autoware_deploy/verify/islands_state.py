"""The fp32-islands search on a failing fp16/int8 backend: the session side of ``verify.islands``.

Why. A failed precision test should end with what to do: the nodes to keep in fp32, as a spec snippet
(``precision.fp16.node_block_list=[...]`` / ``precision.int8.nodes_to_exclude=[...]``) and what it costs. On a
failure of ``test_agreement``, ``test_verification`` or ``test_accuracy`` for an fp16/int8 backend, this
module builds trial graphs with ``export.precision.with_fp32_nodes`` (the very spec the snippet makes, so
the trial graph and the one a rerun derives share a cache entry), runs them on ONNX Runtime's CPU EP
(fp16 emulated where the EP upcasts, ``fp16_state``), and judges each against the backend's reference with
the backend's own criteria and limit on ``precision.islands.samples`` samples (the worst failing first).

Candidates are the nodes the policy changed: in the fp16 graph, nodes reading or writing fp16 tensors; in
the int8 graph, nodes reading a DequantizeLinear; in the exported graph's topological order. The found set
is then confirmed on every evaluated sample, and the pure and the mixed graphs get their agreement,
accuracy (the spec's evaluator) and latency (the native graph on this CPU, median of a few runs) side by
side: the report's ``precision_islands`` entry and the markdown's trade-off table. The search ran on the
graph's arithmetic on the CPU: for a TensorRT backend it is a proposal the rerun confirms or not.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import SpecError
from .islands import IslandSearch, search_islands

_ATTR = "_deploy_islands"   # backend -> (message, entry), once per session state
LATENCY_RUNS = 20


def islands_settings(spec) -> dict:
    cfg = dict(spec.cfg["precision"].get("islands") or {})
    cfg.setdefault("enabled", True)
    cfg.setdefault("samples", 8)
    cfg.setdefault("max_trials", 48)
    for key in ("samples", "max_trials"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(spec.file, f"precision.islands.{key}", f"expected a positive integer, got {v!r}")
    return cfg


def _why_not(state, backend) -> str:
    spec = state.spec
    if backend.policy_name not in ("fp16", "int8"):
        return f"policy {backend.policy_name}: no fp32 islands to search"
    if spec.cfg.get("pipeline", {}).get("stages") and not spec.cfg.get("stage"):
        return "a pipeline is searched per stage (test_stage_verification)"
    if not islands_settings(spec)["enabled"]:
        return "precision.islands.enabled=False in the spec"
    return ""


# -- candidates -----------------------------------------------------------------------------------------
def candidate_nodes(base_onnx, policy_onnx, policy: str) -> list[str]:
    """Nodes of the exported graph (topological order) that the policy transform changed."""
    import onnx

    from .localize import _value_types, topological_nodes

    base = onnx.load(str(base_onnx))
    derived = onnx.load(str(policy_onnx))
    changed = set()
    if policy == "fp16":
        types = _value_types(derived)
        types.update({i.name: i.data_type for i in derived.graph.initializer})
        for node in derived.graph.node:
            if node.op_type != "Cast" and any(types.get(t) == onnx.TensorProto.FLOAT16
                                              for t in list(node.input) + list(node.output) if t):
                changed.add(node.name)
    else:
        dq = {o for n in derived.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        changed = {n.name for n in derived.graph.node
                   if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and dq.intersection(n.input)}
    return [n.name for n in topological_nodes(base.graph) if n.name and n.name in changed]


# -- trials ---------------------------------------------------------------------------------------------
class IslandTrials:
    """Builds and judges the policy graph with a given node set kept in fp32 (see the module docstring)."""

    def __init__(self, state, backend, sample_ids: list, accuracy: bool = False):
        from ..export.precision import FP32_NODE_KEYS

        self.state, self.backend, self.policy = state, backend, backend.policy_name
        self.spec = state.spec
        self.key = FP32_NODE_KEYS[self.policy]
        self.existing = list(self.spec.cfg["precision"][self.policy].get(self.key) or [])
        self.sample_ids = list(sample_ids)
        self._refs: dict[int, dict] = {}
        self.accuracy = accuracy  # also judge the accuracy drop (a test_accuracy failure) on every evaluated sample

    def graphs(self, nodes) -> tuple[Path, Path]:
        """(native graph, graph whose arithmetic is measured here) with ``nodes`` kept in fp32."""
        from ..export.precision import derive, with_fp32_nodes

        spec = with_fp32_nodes(self.spec, self.policy, self.existing + [n for n in nodes if n not in self.existing])
        native = derive(spec, self.state.onnx.path, self.policy, self.state.samples).path
        if self.policy != "fp16":
            return native, native
        from .fp16_state import fp16_measurement

        return native, Path(fp16_measurement(self.spec, native)["graph"])

    def reference(self, i: int) -> dict:
        if i not in self._refs:
            ref = self.spec.reference_for(self.backend)
            self._refs[i] = self.state.infer(ref, self.state.samples[i]["inputs"], f"islands search sample {i}")
        return self._refs[i]

    def agreement(self, graph, sample_ids, evaluator=None) -> dict:
        """output -> Verdict of ``graph`` vs the reference over ``sample_ids`` (the backend's criteria, limit)."""
        from .agreement_state import agreement_of, agreement_settings
        from .output_checks import run_detection_check

        session = _session(graph)
        agreement = agreement_of(self.state)
        saved = (agreement.backends.pop(str(self.backend), None), agreement.detections.pop(str(self.backend), None))
        try:  # fresh accumulators with the backend's criteria, without touching its own
            elementwise, detections = agreement._accumulators(self.backend)
            for i in sample_ids:
                sample = self.state.samples[i]
                outputs = _run(session, sample["inputs"])
                reference = self.reference(i)
                elementwise.update(i, {n: reference[n] for n in agreement.elementwise if n in reference}, outputs)
                for name, check in agreement.checks.items():
                    detections[name].add(i, run_detection_check(self.spec, check, reference, outputs,
                                                                 self.policy, f"islands search sample {i}"))
                if evaluator is not None:
                    evaluator.update(outputs, sample["target"])
            limit = agreement_settings(self.spec).limit(self.policy)
            verdicts = dict(elementwise.verdicts(limit))
            verdicts.update({n: acc.verdict(limit) for n, acc in detections.items()})
            return verdicts
        finally:
            agreement.backends.pop(str(self.backend), None)
            agreement.detections.pop(str(self.backend), None)
            if saved[0] is not None:
                agreement.backends[str(self.backend)], agreement.detections[str(self.backend)] = saved

    def passes(self, nodes) -> bool:
        _, measured = self.graphs(nodes)
        if not all(v.passed for v in self.agreement(measured, self.sample_ids).values()):
            return False
        return not self.accuracy or self.drop_ok(self.measure(nodes, timed=False))

    def drop_ok(self, measured: dict) -> bool:
        """The primary metric's drop vs the reference's evaluation within the policy's max_drop."""
        from ..export.precision import max_drop_for

        max_drop = max_drop_for(self.spec, self.policy)
        if max_drop is None or "accuracy" not in measured:
            return True
        ref = self.state.evaluation(self.spec.reference_for(self.backend))[measured["accuracy"]["metric"]]
        return ref - measured["accuracy"]["value"] <= max_drop

    def measure(self, nodes, timed=True) -> dict:
        """Agreement over every evaluated sample (the search's samples without evaluation), accuracy and
        CPU latency of the graph with ``nodes`` in fp32."""
        from ..evaluate.base import make_evaluator

        native, measured = self.graphs(nodes)
        ecfg = self.spec.cfg["evaluation"]
        evaluator = None
        ids = self.sample_ids
        if ecfg["enabled"] and not self.spec.cfg.get("stage"):  # a stage's recorded inputs have no targets
            total = len(self.state.samples)
            n = total if ecfg["num_samples"] < 0 else min(ecfg["num_samples"], total)
            ids, evaluator = list(range(n)), make_evaluator(self.spec)
        verdicts = self.agreement(measured, ids, evaluator)
        out = {"fp32_nodes": len(nodes), "samples": len(ids), "passed": all(v.passed for v in verdicts.values()),
               "outputs": {n: {k: v.summary.get(k) for k in ("failed", "max_abs", "mean_abs", "min_cosine",
                                                               "match_rate") if k in v.summary}
                           for n, v in verdicts.items()}}
        if evaluator is not None:
            result = evaluator.compute()
            metric = evaluator.primary_metric
            out["accuracy"] = {"metric": metric, "value": float(result[metric])}
        if timed:
            out["latency_ms"] = _median_latency_ms(native, self.state.example_inputs())
        out["graph"] = str(native)
        return out


def _session(graph):
    import onnxruntime as ort

    from ..distributed import cpu_threads_per_worker

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = cpu_threads_per_worker() or 0
    return ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])


def _run(session, feed) -> dict:
    names = [o.name for o in session.get_outputs()]
    inputs = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(names, {k: np.asarray(v) for k, v in feed.items() if k in inputs})))


def _median_latency_ms(graph, feed) -> float:
    """A trade-off figure for the report, not a gate: the median of a few CPU runs of the native graph."""
    session = _session(graph)
    _run(session, feed)
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        _run(session, feed)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1e3, 4)


# -- the failure: search, snippet, report ---------------------------------------------------------------
def search_samples(state, backend, hint=()) -> list:
    """The samples each trial runs: the failing ones named (``hint``: worst first), then the agreement's
    worst failing samples, then the first ones; ``precision.islands.samples`` in all."""
    from .agreement_state import agreement_of

    n = islands_settings(state.spec)["samples"]
    ids = [int(i) for i in hint]
    acc = agreement_of(state).backends.get(str(backend))
    if acc is not None:
        for out in acc.outputs.values():
            ids += [c.sample for c in out.worst.items() if not c.passed]
    ids += list(range(len(state.samples)))
    return [i for i in dict.fromkeys(ids) if 0 <= i < len(state.samples)][:n]


def snippet(policy: str, nodes) -> tuple[str, str]:
    """(the --deploy-cfg-options item, the spec lines) that keep ``nodes`` in fp32 under ``policy``."""
    from ..export.precision import FP32_NODE_KEYS

    key = FP32_NODE_KEYS[policy]
    listed = "[" + ", ".join(repr(n) for n in nodes) + "]"
    return f'"precision.{policy}.{key}={listed}"', f"precision = dict({policy}=dict({key}={listed}))"


def fp32_islands(state, backend, hint=(), accuracy=False) -> tuple[str, dict]:
    """Search once per (state, backend, criterion); returns (message lines to append, report entry). The
    report keeps the verification search's entry (``precision_islands``) and the accuracy one's
    (``precision_islands_accuracy``)."""
    done = state.__dict__.setdefault(_ATTR, {})
    key = (str(backend), accuracy)
    if key not in done:
        done[key] = _safe_search(state, backend, hint, accuracy)
        if done[key][1]:
            with state.store._lock:
                state.store.backend(state.spec.name, str(backend))[
                    "precision_islands_accuracy" if accuracy else "precision_islands"] = done[key][1]
    return done[key]


def islands_message(state, backend, hint=(), accuracy=False) -> str:
    """What a failing fp16/int8 test appends: '' for other policies or when searching is off. ``accuracy``:
    the failure is test_accuracy's, so a trial graph must also keep the primary metric's drop in bounds."""
    if _why_not(state, backend):
        return ""
    message, _ = fp32_islands(state, backend, hint, accuracy)
    return "\n" + message if message else ""


def _safe_search(state, backend, hint, accuracy) -> tuple[str, dict]:
    """The search explains a failure; its own failure must not hide the one it explains."""
    try:
        return _search(state, backend, hint, accuracy)
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001  (reported, never raised)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        why = f"fp32 islands search failed: {type(exc).__name__}: {first}"
        return f"  {why}", {"error": why}


def _search(state, backend, hint, accuracy) -> tuple[str, dict]:
    spec, policy = state.spec, backend.policy_name
    cfg = islands_settings(spec)
    accuracy = accuracy and spec.cfg["evaluation"]["enabled"]
    trials = IslandTrials(state, backend, search_samples(state, backend, hint), accuracy)
    native, _ = trials.graphs([])
    candidates = [n for n in candidate_nodes(state.onnx.path, native, policy) if n not in trials.existing]
    result: IslandSearch = search_islands(candidates, trials.passes, cfg["max_trials"])
    entry = {"policy": policy, "key": f"precision.{policy}.{trials.key}", "samples_searched": trials.sample_ids,
             "searched_on": "ONNX Runtime CPU" + (", fp16 emulated" if policy == "fp16" else ""),
             "criterion": "verification" + (" and accuracy drop" if accuracy else ""),
             **result.to_dict()}
    label = f"fp32 islands for {backend}" + (" (verification and accuracy drop)" if accuracy else "")
    if not result.found or not result.nodes:
        entry["nodes"] = []
        return f"  {label}: none found: {result.reason} ({result.trials} trial graphs)", entry
    nodes = trials.existing + result.nodes
    option, lines = snippet(policy, nodes)
    entry["snippet"] = lines
    entry["cfg_option"] = option
    entry["pure"], entry["mixed"] = trials.measure([]), trials.measure(result.nodes)
    text = [f"  {label}: keeping {len(result.nodes)} of {len(candidates)} node(s) in fp32 makes the {policy} graph "
            f"pass on samples {trials.sample_ids} ({result.trials} trial graphs, {result.seconds:.1f} s"
            + ("" if result.minimal else f"; {result.reason}") + f"): {result.nodes}",
            f"    apply: --deploy-cfg-options {option}   (in the spec: {lines})",
            f"    trade-off on {entry['searched_on']}: pure {policy}: {_describe(entry['pure'])}; "
            f"with the islands: {_describe(entry['mixed'])}"]
    return "\n".join(text), entry


def _describe(m: dict) -> str:
    failed = sum(int(o.get("failed") or 0) for o in m["outputs"].values())
    text = f"{failed} failing of {m['samples']} samples" if m["outputs"] else f"{m['samples']} samples"
    if "accuracy" in m:
        text += f", {m['accuracy']['metric']} {m['accuracy']['value']:.4f}"
    return text + f", latency {m['latency_ms']:.3f} ms (median)"
