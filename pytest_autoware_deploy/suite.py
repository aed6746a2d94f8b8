"""The tests every deploy spec gets; collected once per ``--deploy-config`` (see collect.DeploySpecModule).

- test_export_onnx: the ONNX graph passes the checker, strict shape inference and has the spec's names
- test_verification[backend-output-sample-shape]: backend vs reference within tolerance
- test_accuracy[backend]: primary metric >= min and drop vs pytorch <= max_drop
- test_latency[backend]: pytest-benchmark timing with p50..p99 in extra_info["latency_ms"]
- test_throughput[backend-bN]: samples/s per batch size (benchmark.batch_sizes, or the declared range)
- test_gate_accuracy / test_gate_latency[backend]: only with --deploy-baseline; fail on a regression vs
  the stored baseline. Each measures what it compares through the session state (run alone, e.g.
  ``-k test_gate_latency``, it evaluates/times the backend itself); run last (plugin reorders them) so
  that in a full run they reuse the accuracy and latency tests' measurements instead of repeating them
"""

from __future__ import annotations

import pytest

from pytest_autoware_deploy.bench.latency import (end_to_end_timings, latency_stats_ms, phase_timings, plan_rounds,
                                                   throughput, timed_call, timings)
from pytest_autoware_deploy.cases import ShapeCase, engine_backends, sample_indices, shape_cases, throughput_batches
from pytest_autoware_deploy.export.precision import effective_policy, max_drop_for, tolerance_for
from pytest_autoware_deploy.collect import spec_of_node
from pytest_autoware_deploy.context import baseline_machine_differences, deploy_session as session_of
from pytest_autoware_deploy.outcomes import user_errors
from pytest_autoware_deploy.report.baseline import accuracy_breach, baseline_backend
from pytest_autoware_deploy.spec.model import BackendId
from pytest_autoware_deploy.spec.stages import stage_names, stage_verified_under
from pytest_autoware_deploy.verify import Tolerance, compare_output
from pytest_autoware_deploy.verify.output_checks import output_checks, run_detection_check, verified_outputs
from pytest_autoware_deploy.verify.streaming import nothing_compared


NATIVE = ShapeCase("native")  # a stage runs at the shapes its recorded inputs have


def _skip(reason):
    return pytest.param(None, marks=pytest.mark.skip(reason=reason), id="skipped")


def pytest_generate_tests(metafunc):
    spec = spec_of_node(metafunc.definition)
    if spec is None:
        return
    name = metafunc.function.__name__
    backends = list(spec.backends)
    if name in ("test_verification", "test_stage_verification"):
        argname = "verify_case" if name == "test_verification" else "stage_case"
        reason = _no_verification_reason(spec)
        if reason:
            metafunc.parametrize(argname, [_skip(reason)])
            return
        targets = spec.verify_targets()  # an AWML file's scenarios pair each with its own reference
        if name == "test_verification":
            params = [pytest.param((b, out, idx, case), id=f"{b.test_id}-{out}-sample{idx}-{case.id}")
                      for b in targets for case in shape_cases(spec)
                      for idx in sample_indices(spec) for out in verified_outputs(spec)]
        else:
            params = []
            for i, st in enumerate(spec.cfg["pipeline"]["stages"]):
                for b in targets:
                    if not stage_verified_under(st, effective_policy(b.policy_name, b.device or spec.device)):
                        params.append(pytest.param(None, id=f"{st['name']}-{b.test_id}-skipped", marks=pytest.mark.skip(
                            reason=f"pipeline.stages[{i}].verify={st['verify']!r} in the spec: {st['name']} under "
                                   f"{b} ({effective_policy(b.policy_name, b.device or spec.device)}) is checked end "
                                   "to end only")))
                        continue
                    params += [pytest.param((st["name"], b, out, idx, case), id=f"{st['name']}-{b.test_id}-{out}-"
                                            f"sample{idx}" + ("" if case is NATIVE else f"-{case.id}"))
                               for case in stage_shape_cases(spec, st["name"])
                               for idx in sample_indices(spec) for out in st["output_names"]]
        metafunc.parametrize(argname, params)
    elif name == "test_export_tensorrt":
        engines = [(b, stage) for b in engine_backends(spec) for stage in (stage_names(spec) or [None])]
        metafunc.parametrize("engine", engines, ids=[b.test_id if s is None else f"{s}-{b.test_id}"
                                                     for b, s in engines])
    elif name == "test_stage_export_onnx":
        metafunc.parametrize("stage", stage_names(spec))
    elif name in ("test_agreement", "test_batch_invariance"):
        _parametrize_agreement(metafunc, spec, name)
    elif name == "test_sequence_verification":  # stateful pipelines only (collect.py), verify/sequence.py
        reason = _no_verification_reason(spec)
        targets = [] if reason else spec.verify_targets()
        metafunc.parametrize("backend", targets or [_skip(reason)], ids=[b.test_id for b in targets] or None)
    elif name in ("test_accuracy", "test_gate_accuracy"):
        if not spec.cfg["evaluation"]["enabled"]:
            metafunc.parametrize("backend", [_skip("evaluation.enabled=False in the spec")])
            return
        metafunc.parametrize("backend", backends, ids=[b.test_id for b in backends])
    elif name in ("test_latency", "test_gate_latency", "test_throughput", "test_stage_latency"):
        if not spec.cfg["benchmark"]["enabled"]:
            metafunc.parametrize("backend", [_skip("benchmark.enabled=False in the spec")])
            if name in ("test_throughput", "test_stage_latency"):
                metafunc.parametrize("batch" if name == "test_throughput" else "stage", [0], ids=["-"])
            return
        metafunc.parametrize("backend", backends, ids=[b.test_id for b in backends])
        if name == "test_stage_latency":
            metafunc.parametrize("stage", stage_names(spec))
        if name == "test_throughput":
            batches = throughput_batches(spec)
            metafunc.parametrize("batch", batches, ids=[f"b{b}" for b in batches])


def stage_shape_cases(spec, stage):
    """A stage is verified on its recorded inputs (native) and at its declared profile shapes (min/opt/max and one
    step off opt, ``cases.shape_cases``; rows of consecutive recorded samples), as a single model is (issue 13)."""
    from pytest_autoware_deploy.spec.stages import stage_spec

    return [NATIVE] + [c for c in shape_cases(stage_spec(spec, stage)) if c.shapes]


def _no_verification_reason(spec):
    if spec.export_mode == "none":
        return ("export.mode='none': the given ONNX has no PyTorch reference to verify against "
                "(evaluated and timed only)")
    if not spec.cfg["export"]["verify"]:
        return "export.verify=False in the spec"
    if not [b for b in spec.backends if str(b) != spec.reference]:
        return f"no backend besides the reference '{spec.reference}' under test"
    return None


def test_export_onnx(deploy_spec, deploy_state, onnx_model):
    """The graph is valid and carries the spec's names and ``onnx_config.metadata``; what the exporter warned
    is surfaced (see ``_export_warnings``). With ``onnx_config.simplify`` the graph checked here (and verified,
    timed, deployed) is onnxslim's; the node counts before/after go to the report."""
    _check_export(deploy_state, onnx_model)
    _check_finished_graph(deploy_state, onnx_model)


def _check_finished_graph(state, artifact):
    """The graph carries ``onnx_config.metadata`` (also an export.mode='none' file: what is deployed must say
    what the spec declares); the simplification the export recorded is reported."""
    from pytest_autoware_deploy.export.cache import read_meta
    from pytest_autoware_deploy.export.onnx_finish import check_graph_metadata

    spec = state.spec
    with user_errors():
        problems = check_graph_metadata(artifact.path, spec.cfg["onnx_config"], spec.file)
    if problems:
        pytest.fail(f"{spec.name}: ONNX {artifact.path} lacks the declared onnx_config.metadata:\n  "
                    + "\n  ".join(problems), pytrace=False)
    if artifact.key != "external" and spec.cfg["onnx_config"]["simplify"]:
        state.store.set_spec_info(spec.name, spec.work_dir, onnx_simplify=read_meta(artifact.path).get("simplify"))


def _check_export(state, artifact):
    from pytest_autoware_deploy.export.onnx import check_onnx

    spec = state.spec
    with user_errors():
        problems = check_onnx(artifact.path, spec)
    if problems:
        pytest.fail(f"{spec.name}: ONNX {artifact.path} is not valid:\n  " + "\n  ".join(problems), pytrace=False)
    _export_warnings(state, artifact)


def _export_warnings(state, artifact):
    """The exporter's warnings (recorded with the export, so a reused export still has them) go to the
    report's ``export_warnings`` and each becomes an OnnxExportWarning, or, with ``export.fail_on_warnings``,
    one failure listing them all."""
    import warnings

    from pytest_autoware_deploy.export.onnx import OnnxExportWarning, describe_warning

    spec = state.spec
    found = getattr(artifact, "warnings", None) or []
    if artifact.key != "external":  # export.mode='none': no exporter ran
        state.store.set_spec_info(spec.name, spec.work_dir, export_warnings=found)
    if not found:
        return
    lines = [describe_warning(w) for w in found]
    if spec.cfg["export"]["fail_on_warnings"]:
        pytest.fail(f"{spec.name}: the ONNX exporter warned {len(found)} time(s) about the model "
                    f"(export.fail_on_warnings=True):\n  " + "\n  ".join(lines), pytrace=False)
    for line in lines:
        warnings.warn(OnnxExportWarning(f"{spec.name}: ONNX exporter: {line} (export.fail_on_warnings=True makes "
                                        "this a failure)"), stacklevel=2)


def test_export_tensorrt(deploy_spec, deploy_state, engine):
    """Collected where engines are asked for (export.mode 'trt'/'both', or a backend with an artifact under
    test; see cases.engine_backends): one engine per (backend, precision policy, pipeline stage), built from
    that policy's ONNX graph by the backend's registered builder and cached by content; the report's
    ``engines`` records its bytes, build seconds, targeted compute capabilities and layers. Never silently
    dropped (no TensorRT here: a skip saying so)."""
    backend, stage = engine
    state = deploy_state if stage is None else deploy_state.stage(stage)
    with user_errors():
        state.artifact(backend)


def test_verification(deploy_spec, deploy_state, verify_case):
    backend, output, sample_idx, case = verify_case
    _verify(deploy_state, backend, output, sample_idx, case)


def _verify(state, backend, output, sample_idx, case):
    """One (backend, output, sample, shape) comparison against the reference: a model, a pipeline
    end to end, or one stage of a pipeline (``state.spec`` is the stage's spec then)."""
    spec = state.spec
    tol = Tolerance(**tolerance_for(spec, backend.policy_name, state.device_of(backend)))
    with user_errors():
        reference = state.case_outputs(spec.reference_for(backend), sample_idx, case)
        actual = state.case_outputs(backend, sample_idx, case)
    check = output_checks(spec).get(output)  # a detection comparator from verification.outputs, or None
    if output not in actual and check is None:
        pytest.fail(f"{spec.name}: backend {backend} produced no output '{output}' "
                    f"(got {sorted(actual)})", pytrace=False)
    where = (f"spec {spec.name}, backend {backend} vs {spec.reference_for(backend)}, output '{output}', "
             f"sample {sample_idx}, shape {case.id}")
    with user_errors():
        result = (run_detection_check(spec, check, reference, actual, backend.policy_name, where,
                                      state.device_of(backend)) if check
                  else compare_output(reference[output], actual[output], tol, where))
    state.store.add_verification(spec.name, str(backend), output, f"sample{sample_idx}-{case.id}", result.stats,
                                 result.passed, result.message)
    empty = nothing_compared(result.stats or {}, where, 1) if check and result.passed else ""
    if empty:
        pytest.skip(empty)
    if not result.passed:
        from pytest_autoware_deploy.verify.agreement_state import verification_localization

        from pytest_autoware_deploy.verify.islands_state import islands_message

        with user_errors():
            where_node = verification_localization(state, backend, sample_idx, case)  # issue 13
            where_node += islands_message(state, backend, [sample_idx])  # fp16/int8: what to keep in fp32
        pytest.fail(result.message + where_node, pytrace=False)


def _skip_when_sharded(spec, what: str):
    shard = spec.cfg["evaluation"]["shard"]
    if shard:
        pytest.skip(f"evaluation shard {shard}: {what} is checked over all shards by `autoware-deploy merge` "
                    f"(this shard's metrics are partial; its per-sample results are stored for the merge)")


def test_accuracy(deploy_spec, deploy_state, backend):
    ecfg = deploy_spec.cfg["evaluation"]
    thresholds = ecfg["thresholds"]
    with user_errors():
        deploy_state.evaluation(backend)  # a shard evaluates (and stores its records) before skipping
    _skip_when_sharded(deploy_spec, "the accuracy threshold")
    with user_errors():
        result = deploy_state.evaluation(backend)
        metric = result["primary_metric"]
        value = result[metric]
        failures = []
        if thresholds["min_accuracy"] is not None and value < thresholds["min_accuracy"]:
            failures.append(f"{metric} {value:.4f} < min_accuracy {thresholds['min_accuracy']:.4f}")
        max_drop = max_drop_for(deploy_spec, backend.policy_name)
        if max_drop is not None and backend.base != "pytorch" and deploy_spec.export_mode != "none":
            ref = deploy_state.evaluation(BackendId("pytorch", backend.device))[metric]
            if ref - value > max_drop:
                failures.append(f"{metric} dropped {ref - value:.4f} vs pytorch ({ref:.4f} -> {value:.4f}), "
                                f"max_drop {max_drop:.4f} for policy {backend.policy_name}")
    if failures:
        from pytest_autoware_deploy.verify.islands_state import islands_message

        with user_errors():  # fp16/int8: the nodes to keep in fp32 that bring the drop back (issue 13)
            islands = islands_message(deploy_state, backend, accuracy=True)
        pytest.fail(f"{deploy_spec.name}, backend {backend}, {result['num_samples']} samples: "
                    + "; ".join(failures) + islands, pytrace=False)


def _timed(benchmark, request, call, rounds, raw=None) -> dict:
    """Latency stats (ms) of ``call``: pytest-benchmark times it, or, when pytest-benchmark switched
    itself off under xdist, the same loop here. The call was warmed up by ``plan_rounds``. A ``raw``
    list gets the per-round seconds (what the latency gate's statistics need)."""
    benchmark.pedantic(call, rounds=rounds, warmup_rounds=0, iterations=1)
    if benchmark.stats is not None:
        data = benchmark.stats.stats.data
    elif request.config.getoption("benchmark_disable"):
        pytest.skip("pytest-benchmark is disabled (--benchmark-disable): no latency measured")
    else:
        data = timings(call, rounds)
        benchmark.extra_info["timer"] = "pytest-autoware-deploy (pytest-benchmark is off under xdist)"
    latency = latency_stats_ms(data)
    benchmark.extra_info["latency_ms"] = latency
    if raw is not None:
        raw.extend(data)
    return latency


def _describe(benchmark, deploy_spec, deploy_state, backend, feed, name):
    benchmark.group = f"{deploy_spec.name}"
    benchmark.name = name
    benchmark.extra_info.update({"spec": deploy_spec.name, "backend": str(backend), "policy": backend.policy_name,
                                 "device": deploy_state.device_of(backend),
                                 "input_shapes": {k: list(v.shape) for k, v in feed.items()}})


def test_latency(deploy_spec, deploy_state, backend, benchmark, request):
    """Device-resident compute latency (a pipeline: end to end, host code included); on CUDA also
    end to end with host copies and the trtexec-style host->device / compute / device->host split."""
    _latency(deploy_state, backend, benchmark, request)


def _warmed_call(state, backend):
    """What test_latency times: one inference on the example inputs prepared beforehand (device-resident),
    warmed up; with the number of timed rounds the spec's benchmark section asks for."""
    bcfg = state.spec.cfg["benchmark"]
    with user_errors():
        runner = state.runner(backend)
        feed = state.example_inputs()
        call = timed_call(runner.prepare(feed), runner.synchronize)
        rounds = plan_rounds(call, bcfg["warmup"], bcfg["rounds"], bcfg["min_time_s"])
    return runner, feed, call, rounds


def _latency(state, backend, benchmark, request):
    spec = state.spec
    bcfg = spec.cfg["benchmark"]
    runner, feed, call, rounds = _warmed_call(state, backend)
    _describe(benchmark, spec, state, backend, feed, f"{spec.name}[{backend}]")
    raw = []
    latency = _timed(benchmark, request, call, rounds, raw)
    if getattr(runner, "path", None):  # what a later run's re-timed latency gate times as this run's baseline
        with user_errors():
            state.store.note_backend(spec.name, str(backend), artifact=_artifact_in_work_dir(state, runner.path))
    e2e = None
    if state.device_of(backend).startswith("cuda"):
        with user_errors():
            e2e = latency_stats_ms(end_to_end_timings(runner, feed, bcfg["warmup"], rounds))
            phases = runner.phases(feed)
            if phases:
                split = {k: latency_stats_ms(v)
                         for k, v in phase_timings(phases, runner.synchronize, bcfg["warmup"], rounds).items()}
                memory = getattr(runner, "host_memory", None)  # pinned or pageable host buffers (ORT)
                benchmark.extra_info["latency_phases_ms"] = split
                benchmark.extra_info["host_memory"] = memory
                state.store.set_phases(spec.name, str(backend), split, memory)
        benchmark.extra_info["latency_e2e_ms"] = e2e
        if bcfg["cuda_graph"]:
            _time_cuda_graph(state, backend, runner, feed, rounds, benchmark)
    state.store.set_latency(spec.name, str(backend), latency, e2e)
    _record_samples(state, backend, raw)


def _time_cuda_graph(state, backend, runner, feed, rounds, benchmark):
    """benchmark.cuda_graph: the same inference replayed from a captured CUDA graph, timed like the plain call
    (recorded beside it; a runner that cannot capture says why in the report instead)."""
    with user_errors():
        call = runner.graph_call(feed)
        if isinstance(call, str):
            state.store.note_backend(state.spec.name, str(backend), cuda_graph_unavailable=call)
            benchmark.extra_info["cuda_graph_unavailable"] = call
            return
        graph_call = timed_call(call, runner.synchronize)
        for _ in range(3):  # warm-up replays
            graph_call()
        graph = latency_stats_ms(timings(graph_call, rounds))
    benchmark.extra_info["latency_cuda_graph_ms"] = graph
    state.store.note_backend(state.spec.name, str(backend), latency_cuda_graph_ms=graph)


def test_throughput(deploy_spec, deploy_state, backend, batch, benchmark, request):
    """MLPerf offline-style sweep: samples/s at each batch size the graph accepts."""
    bcfg = deploy_spec.cfg["benchmark"]
    with user_errors():
        runner = deploy_state.runner(backend)
        feed = deploy_state.batch_inputs_at(batch)
        call = timed_call(runner.prepare(feed), runner.synchronize)
        rounds = plan_rounds(call, bcfg["warmup"], bcfg["rounds"], bcfg["min_time_s"])
    _describe(benchmark, deploy_spec, deploy_state, backend, feed, f"{deploy_spec.name}[{backend}-b{batch}]")
    latency = _timed(benchmark, request, call, rounds)
    rate = throughput(batch, latency)
    benchmark.extra_info.update({"batch": batch, "samples_per_s": rate})
    deploy_state.store.set_throughput(deploy_spec.name, str(backend), batch, rate, latency)


def test_stage_export_onnx(deploy_spec, deploy_state, stage):
    """Pipelines: each stage exported on its own (from the inputs the reference pipeline fed it)."""
    state = deploy_state.stage(stage)
    with user_errors():
        artifact = state.onnx
    _check_export(state, artifact)
    _check_finished_graph(state, artifact)  # metadata Autoware reads, simplification: per stage file too


def test_stage_verification(deploy_spec, deploy_state, stage_case):
    """Pipelines: a stage on the backend vs the same stage on the reference, on recorded inputs."""
    stage, backend, output, sample_idx, case = stage_case
    _verify(deploy_state.stage(stage), backend, output, sample_idx, case)


def test_stage_latency(deploy_spec, deploy_state, stage, backend, benchmark, request):
    """Pipelines: one stage alone, on the inputs the reference pipeline fed it."""
    _latency(deploy_state.stage(stage), backend, benchmark, request)


def _baseline_entry(deploy_spec, backend, request):
    entry = baseline_backend(session_of(request.config).baseline, deploy_spec.name, str(backend))
    if entry is None:
        pytest.skip(f"{deploy_spec.name}/{backend} is not in the baseline "
                    f"{request.config.getoption('deploy_baseline')} (new spec or backend: nothing to compare)")
    return entry


def test_gate_accuracy(deploy_spec, deploy_state, backend, request):
    """This run's primary metric vs the baseline's, for the same (spec, backend, policy); the session
    state evaluates the backend here unless test_accuracy already did."""
    _skip_when_sharded(deploy_spec, "the accuracy gate")
    base = _baseline_entry(deploy_spec, backend, request).get("evaluation")
    if not base:
        pytest.skip(f"the baseline has no evaluation for {deploy_spec.name}/{backend}")
    gate = deploy_spec.cfg["gate"]
    max_drop = gate["max_accuracy_drop"]
    if max_drop is None:
        max_drop = max_drop_for(deploy_spec, backend.policy_name) or 0.0
    with user_errors():
        breach = accuracy_breach(base, deploy_state.evaluation(backend), max_drop)
    if breach:
        pytest.fail(f"{deploy_spec.name}, backend {backend}: accuracy regressed vs baseline: {breach}",
                    pytrace=False)


def _record_samples(state, backend, timings_s):
    """Keep the raw per-round timings (ms, thinned: gate_stats.thin) beside ``latency_ms``: what a saved
    baseline carries so that the next run's gate can test instead of compare point estimates."""
    from pytest_autoware_deploy.bench.gate_stats import thin
    from pytest_autoware_deploy.report.baseline import SAMPLES_KEY

    if timings_s:
        state.store.backend(state.spec.name, str(backend))[SAMPLES_KEY] = thin(t * 1e3 for t in timings_s)


def _session_latency(state, backend) -> tuple[dict, list | None]:
    """This session's latency of ``backend`` and its raw timings (ms): test_latency's when it ran, else
    measured here the same way (same runner, prepared inputs, warm-up and rounds; perf_counter around each
    call) and recorded in the session's results, so a gate test run alone compares what it measured itself."""
    from pytest_autoware_deploy.report.baseline import SAMPLES_KEY

    measured = state.store.specs.get(state.spec.name, {}).get("backends", {}).get(str(backend), {})
    if measured.get("latency_ms") and measured.get(SAMPLES_KEY):
        return measured["latency_ms"], measured[SAMPLES_KEY]
    _, _, call, rounds = _warmed_call(state, backend)
    data = timings(call, rounds)
    latency = latency_stats_ms(data)
    state.store.set_latency(state.spec.name, str(backend), latency)
    _record_samples(state, backend, data)
    return latency, state.store.backend(state.spec.name, str(backend))[SAMPLES_KEY]


def _artifact_in_work_dir(state, path) -> str:
    from pathlib import Path

    path, root = Path(path).resolve(), state.spec.work_dir.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _retimed_gate(state, backend, entry, retime_dir, gate, tolerance):
    """--deploy-baseline-retime: the baseline run's own artifact for this (spec, backend), found under its work
    dir by the path its report recorded, timed interleaved with this run's on the same inputs."""
    from pathlib import Path

    from pytest_autoware_deploy.bench.latency import interleaved_timings, plan_rounds
    from pytest_autoware_deploy.errors import DeployError
    from pytest_autoware_deploy.report.baseline import latency_gate_retimed

    where = f"{state.spec.name}/{backend}"
    rel = entry.get("artifact")
    if not rel:
        raise DeployError(f"--deploy-baseline-retime: the baseline has no artifact path for {where} (written before "
                          "artifacts were recorded, or a backend without a file artifact, e.g. pytorch): re-save it")
    base_file = Path(retime_dir) / rel
    if not base_file.is_file():
        raise DeployError(f"--deploy-baseline-retime: the baseline's artifact for {where} is not at {base_file} "
                          f"(the baseline's report records '{rel}' under its work dir)")
    runner, feed, call, rounds = _warmed_call(state, backend)
    base_runner = runner.with_artifact(base_file)
    if base_runner is None:
        raise DeployError(f"--deploy-baseline-retime: backend {backend} cannot run another artifact")
    base_runner.activate()
    try:
        base_call = timed_call(base_runner.prepare(feed), base_runner.synchronize)
        bcfg = state.spec.cfg["benchmark"]
        plan_rounds(base_call, bcfg["warmup"], bcfg["rounds"], bcfg["min_time_s"])  # its warm-up

        def measure_pair(n):
            b, c = interleaved_timings(base_call, call, n)
            return [t * 1e3 for t in b], [t * 1e3 for t in c]

        return latency_gate_retimed(measure_pair, rounds, gate, tolerance), base_file
    finally:
        base_runner.deactivate()


def _more_rounds(state, backend):
    """``measure(n)`` for the gate's extensions: ``n`` more timed rounds (ms) of the same warmed call."""
    call = []

    def measure(n):
        if not call:
            call.append(_warmed_call(state, backend)[2])
        return [t * 1e3 for t in timings(call[0], n)]

    return measure


def test_gate_latency(deploy_spec, deploy_state, backend, request):
    """This run's latency vs the baseline's, decided statistically on raw per-round timings (bootstrap CI of
    each gated percentile's ratio against gate.latency_min_effect_pct; inconclusive: more rounds, at most
    gate.latency_max_extensions times; see bench/gate_stats.py); a point comparison for a baseline without
    raw timings. Measured here when test_latency did not run."""
    import warnings

    from pytest_autoware_deploy.report.baseline import LatencyGateWarning, check_gate, latency_gate

    entry = _baseline_entry(deploy_spec, backend, request)
    if not entry.get("latency_ms"):
        pytest.skip(f"the baseline has no latency for {deploy_spec.name}/{backend}")
    gate = deploy_spec.cfg["gate"]
    if not gate["latency_percentiles"]:
        pytest.skip("gate.latency_percentiles=[] in the spec: latency is not gated")
    if request.config.getoption("deploy_baseline_same_machine"):
        diffs = baseline_machine_differences(request.config)
        if diffs:
            pytest.fail(f"{deploy_spec.name}, backend {backend}: the baseline "
                        f"{request.config.getoption('deploy_baseline')} was not measured on this machine "
                        "(--deploy-baseline-same-machine): " + "; ".join(diffs), pytrace=False)
    with user_errors():
        check_gate(gate, deploy_spec.file)
    retime_dir = request.config.getoption("deploy_baseline_retime")
    with user_errors():
        if retime_dir and getattr(deploy_state.runner(backend), "path", None):  # pytorch: stored timings
            result, base_file = _retimed_gate(deploy_state, backend, entry, retime_dir, gate,
                                              request.config.getoption("deploy_latency_tolerance"))
        else:
            current, samples = _session_latency(deploy_state, backend)
            result, base_file = latency_gate(entry, current, samples, _more_rounds(deploy_state, backend), gate,
                                             request.config.getoption("deploy_latency_tolerance")), None
    deploy_state.store.backend(deploy_spec.name, str(backend))["latency_gate"] = {
        "verdict": result.verdict, "first": result.first, "extensions": result.extensions,
        "confirmed": result.confirmed, "verdicts": [v.to_dict() for v in result.verdicts],
        "baseline": f"re-timed interleaved: {base_file}" if base_file else "stored timings"}
    where = f"{deploy_spec.name}, backend {backend}"
    more = result.describe()
    bad = [v for v in result.verdicts if v.verdict == "regressed"]
    if result.verdict == "inconclusive":
        bad = [v for v in result.verdicts if v.verdict == "inconclusive"]
        if gate["latency_inconclusive"] == "pass":
            warnings.warn(LatencyGateWarning(f"{where}: latency gate inconclusive{more}, passed "
                                             "(gate.latency_inconclusive='fail' fails instead): "
                                             + "; ".join(map(str, bad))), stacklevel=2)
            return
    if bad:
        pytest.fail(f"{where}: latency {result.verdict} vs baseline{more}: " + "; ".join(map(str, bad)),
                    pytrace=False)


# -- issue 13: every evaluated sample verified, the divergence localized (verify/agreement_state.py) ------------
def _parametrize_agreement(metafunc, spec, name):
    """test_agreement: one per backend verified against a reference, over every evaluated sample;
    test_batch_invariance: one per such backend whose graph has a dynamic batch axis."""
    from pytest_autoware_deploy.verify.agreement_state import agreement_params

    params, reason = agreement_params(spec, name)
    if reason:
        metafunc.parametrize("backend", [_skip(reason)])
        return
    metafunc.parametrize("backend", params, ids=[b.test_id for b in params])


def test_agreement(deploy_spec, deploy_state, backend):
    """The backend agrees with its reference on every evaluated sample (the policy's limit on how many may
    disagree); a failure names the output, the worst samples and the first diverging ONNX node."""
    from pytest_autoware_deploy.verify.agreement_state import agreement_outcome, worst_failing_samples
    from pytest_autoware_deploy.verify.islands_state import islands_message

    with user_errors():
        deploy_state.evaluation(backend)  # its hook fed the agreement (reused when test_accuracy ran it)
        failure, empty = agreement_outcome(deploy_state, backend)
        if failure:  # fp16/int8: what to keep in fp32
            failure += islands_message(deploy_state, backend, worst_failing_samples(deploy_state, backend))
    if failure:
        pytest.fail(failure, pytrace=False)
    if empty:
        pytest.skip(empty)


def test_batch_invariance(deploy_spec, deploy_state, backend):
    """A batch gives each sample the outputs it gets alone (a baked batch axis or a cross-sample op fails)."""
    from pytest_autoware_deploy.verify.agreement_state import batch_invariance_failure

    with user_errors():
        failure = batch_invariance_failure(deploy_state, backend)
    if failure:
        pytest.fail(failure, pytrace=False)


def test_sequence_verification(deploy_spec, deploy_state, backend):
    """A stateful pipeline (its host declares sequences) run over whole sequences from a reset on the backend
    and on its reference, compared frame by frame: fails where the error crosses the tolerance (drift)."""
    from pytest_autoware_deploy.verify.sequence import sequence_failure

    with user_errors():
        failure = sequence_failure(deploy_state, backend)
    if failure:
        pytest.fail(failure, pytrace=False)
