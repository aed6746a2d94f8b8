"""The tests every deploy spec gets; collected once per ``--deploy-config`` (see plugin.DeploySpecModule).

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
from pytest_autoware_deploy.cases import ShapeCase, sample_indices, shape_cases, throughput_batches
from pytest_autoware_deploy.export.precision import effective_policy, max_drop_for, tolerance_for
from pytest_autoware_deploy.fixtures import user_errors
from pytest_autoware_deploy.plugin import spec_of_node
from pytest_autoware_deploy.report.baseline import accuracy_breach, baseline_backend, latency_breaches
from pytest_autoware_deploy.spec.model import BackendId
from pytest_autoware_deploy.spec.stages import stage_names, stage_verified_under
from pytest_autoware_deploy.verify import Tolerance, compare_output
from pytest_autoware_deploy.verify.output_checks import output_checks, run_detection_check, verified_outputs


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
                    params += [pytest.param((st["name"], b, out, idx), id=f"{st['name']}-{b.test_id}-{out}-sample{idx}")
                               for idx in sample_indices(spec) for out in st["output_names"]]
        metafunc.parametrize(argname, params)
    elif name == "test_export_tensorrt":
        policies = list(dict.fromkeys(b.policy_name for b in backends if b.base == "tensorrt")) or \
            [spec.cfg["backend_config"]["common_config"]["precision_policy"]]
        engines = [(stage, p) for stage in (stage_names(spec) or [None]) for p in policies]
        metafunc.parametrize("engine", engines, ids=[p if s is None else f"{s}-{p}" for s, p in engines])
    elif name == "test_stage_export_onnx":
        metafunc.parametrize("stage", stage_names(spec))
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
    """The graph is valid and carries the spec's names; what the exporter warned is surfaced (see
    ``_export_warnings``)."""
    _check_export(deploy_state, onnx_model)


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
    """Collected only for export.mode 'trt'/'both': one engine per precision policy (per stage of a
    pipeline), from that policy's ONNX graph; never silently dropped (no TensorRT: a skip saying so)."""
    from pytest_autoware_deploy.export.tensorrt import build_engine

    stage, policy = engine
    state = deploy_state if stage is None else deploy_state.stage(stage)
    with user_errors():
        graph = state.policy_onnx(policy).path
        build_engine(state.spec, graph, policy=policy, rebuild=state.rebuild)


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
        result = (run_detection_check(spec, check, reference, actual, backend.policy_name, where) if check
                  else compare_output(reference[output], actual[output], tol, where))
    state.store.add_verification(spec.name, str(backend), output, f"sample{sample_idx}-{case.id}", result.stats,
                                 result.passed, result.message)
    if not result.passed:
        pytest.fail(result.message, pytrace=False)


def test_accuracy(deploy_spec, deploy_state, backend):
    ecfg = deploy_spec.cfg["evaluation"]
    thresholds = ecfg["thresholds"]
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
        pytest.fail(f"{deploy_spec.name}, backend {backend}, {result['num_samples']} samples: "
                    + "; ".join(failures), pytrace=False)


def _timed(benchmark, request, call, rounds) -> dict:
    """Latency stats (ms) of ``call``: pytest-benchmark times it, or, when pytest-benchmark switched
    itself off under xdist, the same loop here. The call was warmed up by ``plan_rounds``."""
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
    latency = _timed(benchmark, request, call, rounds)
    e2e = None
    if state.device_of(backend).startswith("cuda"):
        with user_errors():
            e2e = latency_stats_ms(end_to_end_timings(runner, feed, bcfg["warmup"], rounds))
            phases = runner.phases(feed)
            if phases:
                split = {k: latency_stats_ms(v)
                         for k, v in phase_timings(phases, runner.synchronize, bcfg["warmup"], rounds).items()}
                benchmark.extra_info["latency_phases_ms"] = split
                state.store.set_phases(spec.name, str(backend), split)
        benchmark.extra_info["latency_e2e_ms"] = e2e
    state.store.set_latency(spec.name, str(backend), latency, e2e)


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


def test_stage_verification(deploy_spec, deploy_state, stage_case):
    """Pipelines: a stage on the backend vs the same stage on the reference, on recorded inputs."""
    stage, backend, output, sample_idx = stage_case
    _verify(deploy_state.stage(stage), backend, output, sample_idx, NATIVE)


def test_stage_latency(deploy_spec, deploy_state, stage, backend, benchmark, request):
    """Pipelines: one stage alone, on the inputs the reference pipeline fed it."""
    _latency(deploy_state.stage(stage), backend, benchmark, request)


def _baseline_entry(deploy_spec, backend, request):
    from pytest_autoware_deploy.plugin import deploy_session

    entry = baseline_backend(deploy_session(request.config).baseline, deploy_spec.name, str(backend))
    if entry is None:
        pytest.skip(f"{deploy_spec.name}/{backend} is not in the baseline "
                    f"{request.config.getoption('deploy_baseline')} (new spec or backend: nothing to compare)")
    return entry


def test_gate_accuracy(deploy_spec, deploy_state, backend, request):
    """This run's primary metric vs the baseline's, for the same (spec, backend, policy); the session
    state evaluates the backend here unless test_accuracy already did."""
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


def _session_latency(state, backend) -> dict:
    """This session's latency of ``backend``: test_latency's when it ran, else measured here the same way
    (same runner, prepared inputs, warm-up and rounds; perf_counter around each call) and recorded in the
    session's results, so a gate test run alone compares a number it measured itself."""
    measured = state.store.specs.get(state.spec.name, {}).get("backends", {}).get(str(backend), {})
    if measured.get("latency_ms"):
        return measured["latency_ms"]
    _, _, call, rounds = _warmed_call(state, backend)
    latency = latency_stats_ms(timings(call, rounds))
    state.store.set_latency(state.spec.name, str(backend), latency)
    return latency


def test_gate_latency(deploy_spec, deploy_state, backend, request):
    """This run's latency percentiles vs the baseline's (measured here when test_latency did not run)."""
    from pytest_autoware_deploy.plugin import baseline_machine_differences

    base = _baseline_entry(deploy_spec, backend, request).get("latency_ms")
    if not base:
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
    current = _session_latency(deploy_state, backend)
    tolerance = request.config.getoption("deploy_latency_tolerance")
    tolerance = gate["latency_tolerance_pct"] if tolerance is None else tolerance
    with user_errors():
        breaches = latency_breaches(base, current, tolerance, gate["latency_min_delta_ms"],
                                    gate["latency_percentiles"])
    if breaches:
        pytest.fail(f"{deploy_spec.name}, backend {backend}: latency regressed vs baseline: "
                    + "; ".join(map(str, breaches)), pytrace=False)
