"""Which graph measures a backend's fp16 arithmetic: the session-side use of ``fp16_emulation``.

Why. ONNX Runtime's CPU EP computes most fp16 nodes in fp32, so verifying or evaluating the fp16 graph
there reports fp32 numbers as fp16 (a cancellation such as ``(x + 2048) - 2048`` comes back exact). For
an ``onnx`` backend under the fp16 policy on the CPU, ``fp16_plan`` decides: *native* (the EP computes
fp16) keeps the fp16 graph; *emulated* runs ``emulate_fp16``'s graph (fp32 compute, fp16 rounding after
every fp16 node) for verification and accuracy, while latency still times the native graph (the
report's ``precision_fp16.measurement`` says so); ``Fp16NotMeasured`` is a failure naming the reason.

The emulated graph and the plan are cached like the other derived graphs (``ArtifactCache``), keyed by
the fp16 graph's content, this module's and the emulation module's sources and the onnx/onnxruntime
versions, so an edit to the emulation never serves a stale graph.
"""

from __future__ import annotations

from pathlib import Path

from ..export.cache import ArtifactCache, content_key, file_digest, read_meta

_SOURCES = None


def _sources() -> dict:
    global _SOURCES
    if _SOURCES is None:
        from . import fp16_emulation

        _SOURCES = {"emulation": file_digest(fp16_emulation.__file__), "state": file_digest(__file__)}
    return _SOURCES


def _versions() -> dict:
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def fp16_measurement(spec, fp16_graph: Path, providers=("CPUExecutionProvider",), rebuild=False) -> dict:
    """The plan for ``fp16_graph`` on ``providers`` (cached): ``{"mode", "reason", "upcast", "graph"}`` where
    ``graph`` is what verification/accuracy run (the emulation when mode is 'emulated'). Fp16NotMeasured
    propagates (nothing is cached for it: the next run says it again)."""
    import onnx

    from .fp16_emulation import emulate_fp16, fp16_plan

    key = content_key({"fp16_graph": file_digest(fp16_graph), "providers": list(providers),
                       "sources": _sources(), "versions": _versions()})
    cache = ArtifactCache(spec.artifact_dir() / "cache")
    meta: dict = {"policy": "fp16", "providers": list(providers)}

    def build(tmp: Path):
        plan = fp16_plan(onnx.load(str(fp16_graph)), providers)
        meta["plan"] = plan.to_dict()
        if plan.mode == "emulated":
            model, info = emulate_fp16(onnx.load(str(fp16_graph)))
            onnx.checker.check_model(model)
            onnx.save(model, str(tmp))
            meta["emulation"] = info.to_dict()

    path, _ = cache.get_or_build("onnx-fp16-emulated", key, "model.onnx", build, meta=meta, rebuild=rebuild)
    stored = read_meta(path)
    plan = stored["plan"]
    graph = path if plan["mode"] == "emulated" else Path(fp16_graph)
    upcast = plan["upcast"]
    return {"mode": plan["mode"], "reason": plan["reason"], "upcast": len(upcast), "graph": str(graph),
            "emulation": stored.get("emulation"), "optimization_level": plan.get("optimization_level", "all")}


def measured_graph(state, backend) -> tuple | None:
    """``(graph, ONNX Runtime optimization level)`` that ``state.infer`` should run for ``backend`` when it differs
    from the latency runner's (an fp16 graph the CPU EP would upcast), else None. Records the plan in the report's
    spec info."""
    if backend.base != "onnx" or backend.policy_name != "fp16" or state.device_of(backend).startswith("cuda"):
        return None
    if state.spec.cfg["pipeline"]["stages"] and not state.spec.cfg.get("stage"):
        return None  # a pipeline's stages run through their own states (each measured there)
    fp16_graph = state.policy_onnx("fp16").path
    plan = fp16_measurement(state.spec, fp16_graph, rebuild=state.rebuild)
    note = (f"verification and accuracy: {plan['mode']} fp16 ({plan['reason']}); latency times the native fp16 "
            "graph" + (", which this EP computes partly in fp32" if plan["mode"] == "emulated" else ""))
    state.store.set_spec_info(state.spec.name, state.spec.work_dir,
                              fp16_measurement={str(backend): {**plan, "measurement": note}})
    if plan["mode"] != "emulated":
        return None
    return Path(plan["graph"]), plan["optimization_level"]


def measuring_runner(state, backend):
    """The runner whose outputs are verified and evaluated: ``state.runner(backend)``, or for fp16 on an EP
    that upcasts it, a runner of the emulated graph (kept in the state's runner pool, closed with it)."""
    chosen = state.__dict__.setdefault("_deploy_measured_graphs", {})  # backend -> emulated graph or None
    key = str(backend)
    if key not in chosen:
        chosen[key] = measured_graph(state, backend)
    if chosen[key] is None:
        return state.runner(backend)
    pool_key = f"{key}#fp16-emulated"  # in the state's runner pool, so close_runners() releases it
    if pool_key not in state._runners:
        from ..backends.onnxruntime import OnnxRuntimeRunner
        from ..distributed import cpu_threads_per_worker

        graph, level = chosen[key]
        runner = OnnxRuntimeRunner(graph, state.device_of(backend), intra_op_threads=cpu_threads_per_worker() or 0,
                                   optimization_level=level)
        runner.activate()
        state._runners[pool_key] = runner
    return state._runners[pool_key]

