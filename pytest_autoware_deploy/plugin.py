"""pytest hooks and command-line options; everything else lives in the modules they call.

``--deploy-config SPEC`` makes the spec file itself a collected test module whose tests come
from ``pytest_autoware_deploy.suite``; their ids carry the spec's name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .collect import GATE_TESTS, STAGE_TESTS, DeploySpecModule, spec_of_node  # noqa: F401 (also public here)
from .context import (BASELINE_KEY, MACHINE_DIFF_KEY, SESSION_KEY, baseline_machine_differences,  # noqa: F401
                      deploy_session)
from .distributed import (XdistHooks, cpu_threads_per_worker, device_for_worker, is_worker, send_to_controller,
                          unmapped_workers)
from .errors import DeployError
from .evaluate.shards import Shard
from .outcomes import is_cannot_run_here
from .progress import set_writer
from .session import DeploySession
from .spec.load import load_spec, parse_cfg_options

pytest_plugins = ["pytest_autoware_deploy.fixtures"]


def pytest_addoption(parser):
    group = parser.getgroup("autoware-deploy", "deployment of perception models (pytest-autoware-deploy)")
    group.addoption("--deploy-config", action="append", default=[], metavar="SPEC",
                    help="deploy spec (AWML-style Python config); repeat for several specs")
    group.addoption("--deploy-work-dir", default=None, metavar="DIR",
                    help="artifacts and reports go here instead of the spec's export.work_dir")
    group.addoption("--deploy-cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                    help="override spec keys, dotted like mmengine --cfg-options (verification.atol=1e-4)")
    group.addoption("--deploy-backends", default=None, metavar="LIST",
                    help="comma-separated backends under test (any registered: pytorch, onnx, tensorrt, tensorrt_rtx, "
                         "a plugin's), e.g. pytorch,onnx,onnx@cuda:0,tensorrt_rtx:fp16 "
                         "(overrides evaluation.models_to_evaluate)")
    group.addoption("--deploy-device", default=None, metavar="DEVICE",
                    help="device for export and inference: cpu, cuda, cuda:N (overrides export.device)")
    group.addoption("--deploy-model-config", default=None, metavar="FILE",
                    help="config whose 'model' section replaces the spec's (the seed CLI's model_cfg)")
    group.addoption("--deploy-checkpoint", default=None, metavar="FILE",
                    help="checkpoint replacing model.checkpoint")
    group.addoption("--deploy-rebuild", action="store_true", default=False,
                    help="ignore cached exports and build them again")
    group.addoption("--deploy-baseline", default=None, metavar="PATH",
                    help="gate this run against a stored baseline (a deploy_report.json or a saved baseline): "
                         "adds test_gate_accuracy / test_gate_latency per spec and backend")
    group.addoption("--deploy-save-baseline", default=None, metavar="PATH",
                    help="write this run's results as a baseline file")
    group.addoption("--deploy-latency-tolerance", default=None, type=float, metavar="PCT",
                    help="allowed latency growth vs the baseline in percent (overrides gate.latency_min_effect_pct "
                         "and, for a baseline without raw timings, gate.latency_tolerance_pct)")
    group.addoption("--deploy-baseline-same-machine", action="store_true", default=False,
                    help="fail test_gate_latency when the baseline was measured on another machine (CPU, GPU, "
                         "driver or library versions differ) or records none; default: a warning in the summary")
    group.addoption("--deploy-strict", action="store_true", default=False,
                    help="a backend or artifact asked for that cannot run here (no TensorRT, no CUDA device) is a "
                         "failure with the skip's reason instead of a skip (the spec key 'strict' does it per spec)")
    group.addoption("--deploy-baseline-retime", default=None, metavar="DIR",
                    help="latency gate: re-time the baseline's own artifacts (under DIR, the baseline run's work "
                         "dir) interleaved with this run's in the same job, instead of comparing with the timings "
                         "stored in --deploy-baseline (a shared machine's drift then falls on both sides)")
    group.addoption("--deploy-shard", default=None, metavar="I/N",
                    help="evaluate shard I of N of every spec's samples (i %% N == I-1) and store the per-sample "
                         "results for `autoware-deploy merge DIR...`, which computes the metrics and checks the "
                         "accuracy thresholds over all shards (sets evaluation.shard)")
    group.addoption("--deploy-devices", default=None, metavar="LIST",
                    help="with pytest-xdist: comma-separated devices, worker gwN uses the N-th (mod length), "
                         "e.g. cuda:0,cuda:1; workers named with --tx ...//id=NAME take NAME=DEVICE entries, e.g. "
                         "hostA-0=cuda:0,hostB-0=cuda:1 (overrides --deploy-device)")


def _load_specs(config):
    opt = config.getoption
    try:
        cfg_options = parse_cfg_options(opt("deploy_cfg_options"))
        if opt("deploy_shard"):
            Shard.parse(opt("deploy_shard"), "command line", "--deploy-shard")
            cfg_options["evaluation.shard"] = opt("deploy_shard")
        backends = [b.strip() for b in opt("deploy_backends").split(",") if b.strip()] \
            if opt("deploy_backends") else None
        devices = [d.strip() for d in (opt("deploy_devices") or "").split(",") if d.strip()]
        unmapped = unmapped_workers(getattr(config.option, "tx", None), devices) \
            if devices and not is_worker(config) else []
        if unmapped:
            raise DeployError(f"--deploy-devices: xdist workers {unmapped} (--tx ...//id=) have no device (entries: "
                              f"{', '.join(devices)}); name each as ID=DEVICE")
        device = device_for_worker(devices) or opt("deploy_device")
        specs = [load_spec(path, cfg_options=cfg_options, work_dir=opt("deploy_work_dir"),
                           device=device, backends=backends,
                           model_config=opt("deploy_model_config"), checkpoint=opt("deploy_checkpoint"))
                 for path in opt("deploy_config")]
        for spec in specs:
            if spec.cfg["evaluation"]["shard"]:
                Shard.parse(spec.cfg["evaluation"]["shard"], spec.file)
    except DeployError as exc:
        raise pytest.UsageError(str(exc)) from None
    names = [s.name for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise pytest.UsageError(f"several --deploy-config specs are named {sorted(dupes)}; set name=... in them")
    return specs


def _load_baseline(config):
    path = config.getoption("deploy_baseline")
    if not path:
        return None
    from .report.baseline import read_baseline

    try:
        return read_baseline(path)
    except DeployError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config):
    from .backends import registry

    registry.backends.cache_clear()  # backends installed since the last run in this process count
    config.addinivalue_line("markers", "deploy: a test generated from a deploy spec")
    config.addinivalue_line("markers", "gpu: a deploy test that runs on a CUDA device (select with -m gpu)")
    specs = _load_specs(config)
    baseline = config.stash[BASELINE_KEY] = _load_baseline(config)
    config.stash[SESSION_KEY] = DeploySession(specs, rebuild=config.getoption("deploy_rebuild"),
                                              baseline=baseline.specs if baseline is not None else None)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(deploy_session), "autoware-deploy-xdist")
    threads = cpu_threads_per_worker()
    if threads and specs:
        import torch

        torch.set_num_threads(threads)
    if specs:
        spec_paths = [str(s.file) for s in specs]
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args.extend(p for p in spec_paths if p not in config.args)
        else:  # no explicit paths: run the specs, not the project's testpaths
            config.args[:] = spec_paths
    set_writer(lambda line: _write_uncaptured(config, line))


def _write_uncaptured(config, line):
    """Progress goes to the terminal even while pytest captures the test's output."""
    capman = config.pluginmanager.getplugin("capturemanager")
    terminal = config.pluginmanager.getplugin("terminalreporter")
    if capman is None or terminal is None:
        print(line, file=sys.stderr, flush=True)
        return
    with capman.global_and_fixture_disabled():
        terminal.ensure_newline()
        terminal.write_line(line)


def pytest_unconfigure(config):
    set_writer(None)


def _strict(item) -> bool:
    """--deploy-strict, or the spec key ``strict`` of the item's spec (a suite test's module, or the
    ``deploy_spec`` a user's test is parametrized with)."""
    if item.config.getoption("deploy_strict"):
        return True
    spec = spec_of_node(item)
    if spec is None:
        name = getattr(getattr(item, "callspec", None), "params", {}).get("deploy_spec")
        spec = deploy_session(item.config).specs.get(name) if isinstance(name, str) else None
    return spec is not None and bool(spec.cfg.get("strict"))


def _fail_if_strict(item, exc):
    if not is_cannot_run_here(exc) or not _strict(item):
        return
    why = "--deploy-strict" if item.config.getoption("deploy_strict") else "strict=True in the spec"
    raise pytest.fail.Exception(f"{exc.msg}\n({why}: something asked for that cannot run here is a failure, "
                                "not a skip)", pytrace=False) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Strict mode: a 'cannot run here' skip raised while setting up fixtures becomes a failure."""
    try:
        return (yield)
    except pytest.skip.Exception as exc:
        _fail_if_strict(item, exc)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Strict mode: a 'cannot run here' skip raised by the test becomes a failure with its reason."""
    try:
        return (yield)
    except pytest.skip.Exception as exc:
        _fail_if_strict(item, exc)
        raise


def _runs_on_cuda(item) -> bool:
    """Whether the item's backend runs (or, for an engine test, builds) on a CUDA device, as the backend
    registry says: its ``@device`` or the spec's, mapped by the backend (TensorRT: always CUDA; an engine
    test: only where the backend's builder needs the GPU, which TensorRT-RTX's does not)."""
    from .backends.registry import get

    spec = spec_of_node(item)
    if spec is None:
        return False
    params = getattr(getattr(item, "callspec", None), "params", {})
    engine = params.get("engine")
    if engine is not None:
        backend = engine[0]
        return get(backend.base).artifact_needs_gpu and get(backend.base).runs_on_cuda(backend.device or spec.device)
    backend = params.get("backend") or (params.get("verify_case") or (None,))[0] or \
        (params.get("stage_case") or (None, None))[1]
    if backend is None or not hasattr(backend, "base"):
        return str(spec.device).startswith("cuda")
    return get(backend.base).runs_on_cuda(backend.device or spec.device)


def pytest_collection_modifyitems(session, config, items):
    """Tests on a CUDA device get the ``gpu`` marker; gate tests run last (they measure what they
    compare themselves when run alone, and reuse what the spec's other tests measured otherwise)."""
    for item in items:
        if _runs_on_cuda(item):
            item.add_marker(pytest.mark.gpu)
    gates = [i for i in items if getattr(i, "originalname", "") in GATE_TESTS]
    if gates:
        rest = [i for i in items if getattr(i, "originalname", "") not in GATE_TESTS]
        items[:] = rest + gates


def pytest_collect_file(file_path: Path, parent):
    session = deploy_session(parent.config)
    for spec in session.specs.values():
        if spec.file == file_path.resolve():
            try:
                rel = file_path.resolve().relative_to(parent.config.rootpath)
                nodeid = rel.as_posix()
            except ValueError:
                nodeid = spec.file.name  # a spec outside the rootdir: its file name
            module = DeploySpecModule.from_parent(parent, path=file_path, nodeid=nodeid)
            module.spec = spec
            module.add_marker(pytest.mark.deploy)
            return module
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    """``deploy_spec`` is parametrized (session scope) by the spec of the module, or by every spec."""
    if "deploy_spec" not in metafunc.fixturenames:
        return
    own = spec_of_node(metafunc.definition)
    names = [own.name] if own is not None else list(deploy_session(metafunc.config).specs)
    if not names:
        metafunc.parametrize("deploy_spec", [pytest.param(None, marks=pytest.mark.skip(
            reason="no --deploy-config given: this test needs a deploy spec"))], indirect=True, scope="session",
            ids=["no-spec"])
        return
    metafunc.parametrize("deploy_spec", names, indirect=True, scope="session", ids=names)


def pytest_sessionfinish(session, exitstatus):
    dsession = session.config.stash.get(SESSION_KEY, None)
    if dsession is None:
        return
    dsession.close()
    if is_worker(session.config):
        send_to_controller(session.config, dsession.store)
        return
    if dsession.store.specs and any(b["backends"] for b in dsession.store.specs.values()):
        from .report.writer import write_reports

        baseline = session.config.stash.get(BASELINE_KEY, None)
        if baseline is not None:  # which baseline the gate compared with, and whether its machine matched
            diffs = baseline_machine_differences(session.config)
            for name in list(dsession.store.specs):
                dsession.store.set_spec_info(name, dsession.store.work_dirs.get(name, "."), baseline={
                    "file": str(baseline.path), "same_machine": not diffs, "machine_differences": diffs})

        written = write_reports(dsession.store)
        if session.config.getoption("deploy_save_baseline"):
            from .report.baseline import save_baseline

            written.append(save_baseline(session.config.getoption("deploy_save_baseline"), dsession.store.specs))
        terminal = session.config.pluginmanager.getplugin("terminalreporter")
        if terminal is not None:
            for path in written:
                terminal.write_line(f"[deploy] report: {path}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A baseline measured on another machine (or on an unknown one) is said out loud, like
    pytest-benchmark's ``Benchmark machine_info is different`` warning: its latency may not be comparable."""
    baseline = config.stash.get(BASELINE_KEY, None)
    if baseline is None or is_worker(config) or not deploy_session(config).specs or config.option.collectonly:
        return
    diffs = baseline_machine_differences(config)
    if not diffs:
        return
    strict = config.getoption("deploy_baseline_same_machine")
    terminalreporter.write_sep("=", "deploy baseline: measured on another machine", red=strict, yellow=not strict)
    terminalreporter.write_line(f"{baseline.path} vs this machine (fields that can move latency):")
    for line in diffs:
        terminalreporter.write_line(f"  {line}")
    terminalreporter.write_line("--deploy-baseline-same-machine: every test_gate_latency fails on this" if strict else
                                "latency gates compared anyway; --deploy-baseline-same-machine makes this a failure")
