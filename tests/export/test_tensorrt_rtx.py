"""Real TensorRT-RTX engines from every bundled (demo-size) spec, built on this machine without a GPU.

TensorRT-RTX compiles ahead of time on the CPU ("CPU-only AOT"), so unlike TensorRT 10/11 its builder runs
in CI: for every bundled spec, every pipeline stage and every precision policy the spec lists (and at
least ``auto`` and ``fp16``) the graph the plugin exports -- through its public code, ``SpecState.onnx``,
``.stage(name)``, ``.policy_onnx(policy)`` -- is parsed and built. A parser error fails the test naming the
ONNX node, its op and the parser's message; a build error names the inputs and profiles
(``backend_config.model_inputs``, per stage for pipelines). The engine facts land in the junit
properties (``tensorrt_rtx_engine``): bytes, build seconds, compute capabilities, the network's layers.

Running the engines needs a GPU TensorRT-RTX supports; where there is none (this CI, an H100: compute
capability 9.0) the runtime's own reason is the skip reason. Data: small synthetic splits generated once
per session (shared by xdist workers under a lock); exports and engines are cached by content.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from filelock import FileLock
from onnx import TensorProto, helper

trt = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed here (no 'tensorrt_rtx' module; "
                                                 "pip install tensorrt-rtx): no real engine can be built")

from pytest_autoware_deploy.backends.tensorrt import TensorRTRunner  # noqa: E402
from pytest_autoware_deploy.backends.trt_module import default_compute_capabilities, engine_support  # noqa: E402
from pytest_autoware_deploy.errors import ArtifactError, BackendUnavailable  # noqa: E402
from pytest_autoware_deploy.export.tensorrt import build_engine  # noqa: E402
from pytest_autoware_deploy.report.store import ReportStore  # noqa: E402
from pytest_autoware_deploy.session import SpecState  # noqa: E402
from pytest_autoware_deploy.registry import small_split_ref  # noqa: E402
from pytest_autoware_deploy.spec.load import load_spec  # noqa: E402
from pytest_autoware_deploy.spec.stages import stage_names  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MUST_BUILD = ("auto", "fp16")
FRAMES = 6  # per split: the export example, the fp16 overflow check (4) and the int8 calibration


def _bundled_specs():
    """Every bundled demo spec (the ``*_full`` ones are AWML-size, for GPUs) with its family's small split."""
    out = {}
    for path in sorted((REPO / "deploy_specs").glob("*.py")):
        if path.stem.endswith("_full"):
            continue
        ref = small_split_ref(load_spec(path).cfg.get("family") or "")
        assert ref, f"{path}: its family registers no 'synthetic' small-split writer (FAMILY['synthetic'])"
        out[path.stem] = ref
    return out


DATASETS = _bundled_specs()  # spec name -> "module:function" of its small split (shared by specs of one writer)
SPECS = tuple(DATASETS)


def dataset_dir(name: str) -> str:
    return DATASETS[name].replace(":", ".")


def _write_data(name, out: Path):
    """(spec key, path) of a small synthetic split in ``out`` for spec ``name``."""
    module, _, func = DATASETS[name].partition(":")
    return getattr(importlib.import_module(module), func)(out, FRAMES)


# Bundled graphs no TensorRT-RTX engine can come from, and why: the build must fail saying so.
# BEVFusion-L's sparse convolution is Autoware's plugin ops (a refusal naming the plugin library, by design);
# FRNet's scatter_reduce(amax) is ONNX ScatterElements with reduction='max', which TensorRT-RTX 1.7's parser
# refuses ("importScatterElements: Unsupported reduction type"; Autoware builds FRNet with TensorRT 10):
# a strict xfail, so the day the parser takes it this list must change. Its sorted_scan form (VARIANTS) builds.
# Keys: a spec (every stage refused) or "spec.stage" (BEVFusion-CL: its image backbone is standard ops and builds).
PLUGIN_REFUSED = {"bevfusion_lidar": r"custom ops autoware::GetIndicePairsImplicitGemm, autoware::ImplicitGemm: "
                                     r"a TensorRT engine needs the plugins of Autoware's autoware_tensorrt_plugins",
                  "bevfusion_camera_lidar.main_body": r"custom ops autoware::GetIndicePairsImplicitGemm, "
                                                      r"autoware::ImplicitGemm, autoware::QuickCumsumCuda: a TensorRT "
                                                      r"engine needs the plugins of Autoware's autoware_tensorrt_plugins"}


def plugin_refused(name, stage=None):
    """The refusal expected for a spec's stage (None: it builds)."""
    return PLUGIN_REFUSED.get(f"{name}.{stage}") or PLUGIN_REFUSED.get(name)


PARSER_REFUSED = {"frnet": "TensorRT-RTX 1.7's ONNX parser refuses ScatterElements with reduction='max' "
                           "(FRNet's scatter_reduce(amax)): importScatterElements: Unsupported reduction type"}


# Bundled specs built again with cfg options: FRNet's TensorRT-RTX-parsable form of the same network (points sorted
# by frustum on the host, segmented scans instead of ScatterElements reductions: models/frnet/model.SegmentOps).
VARIANTS = {"frnet_sorted_scan": ("frnet", {"model.kwargs.segment_max": "sorted_scan",
                                            "pipeline.kwargs.sort_points": True,
                                            "pipeline.kwargs.max_points_per_frustum": 256})}
DATASETS.update({v: DATASETS[base] for v, (base, _) in VARIANTS.items()})


def _spec_file(name):
    return REPO / "deploy_specs" / f"{VARIANTS.get(name, (name,))[0]}.py"


def _marks(name):
    if name in PARSER_REFUSED:
        return [pytest.mark.xfail(strict=True, raises=ArtifactError, reason=PARSER_REFUSED[name])]
    return []


def _cases():
    """(spec, stage, policy) for every bundled spec, stage and listed policy, plus auto and fp16."""
    out = []
    for name in (*SPECS, *VARIANTS):
        spec = load_spec(_spec_file(name), cfg_options=VARIANTS.get(name, (None, {}))[1])
        listed = spec.cfg["precision"]["policies"] or [spec.cfg["backend_config"]["common_config"]["precision_policy"]]
        for stage in stage_names(spec) or [None]:
            for policy in dict.fromkeys([*listed, *MUST_BUILD]):
                out.append(pytest.param(name, stage, policy, id=f"{name}{'.' + stage if stage else ''}-{policy}",
                                        marks=_marks(name)))
    return out


CASES = _cases()


@pytest.fixture(scope="session")
def bundled(tmp_path_factory, request):
    """``bundled(name, stage)`` -> the SpecState of a bundled spec (or of one of its stages) on small synthetic
    data, in a work dir shared by this session's xdist workers (exports and engines built once, under locks)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if hasattr(request.config, "workerinput") else base) / "tensorrt-rtx-bundled"
    root.mkdir(parents=True, exist_ok=True)
    states = {}

    def get(name, stage=None):
        if name not in states:
            dataset = dataset_dir(name)
            data = root / "data" / dataset
            with FileLock(str(root / f".{dataset}.lock")):
                done = data / ".done"
                if done.is_file():
                    key, path = done.read_text().split("\n")
                else:
                    key, path = _write_data(name, data)
                    done.write_text(f"{key}\n{path}")
            spec = load_spec(_spec_file(name), work_dir=root / "work",
                             cfg_options={key: str(path), "precision.int8.calibration_samples": FRAMES,
                                          **VARIANTS.get(name, (None, {}))[1]})
            states[name] = SpecState(spec, ReportStore())
        state = states[name]
        return state if stage is None else state.stage(stage)

    yield get
    for state in states.values():
        state.close()


@pytest.mark.parametrize("name, stage, policy", CASES)
def test_bundled_graph_builds_a_tensorrt_rtx_engine(bundled, name, stage, policy, record_property):
    state = bundled(name, stage)
    graph = state.policy_onnx(policy).path
    if plugin_refused(name, stage):
        with pytest.raises(BackendUnavailable, match=plugin_refused(name, stage)):
            build_engine(state.spec, graph, policy=policy, module="tensorrt_rtx")
        return
    art = build_engine(state.spec, graph, policy=policy, module="tensorrt_rtx")
    info = art.info
    record_property("tensorrt_rtx_engine", art.summary())
    assert art.path.stat().st_size == info["bytes"] > 0 and info["build_s"] >= 0
    assert info["compute_capabilities"] == default_compute_capabilities(trt) and info["device"] is None
    types = info["network"]["output_types"]
    assert info["network"]["layers"] > 0
    assert (types.get("HALF", 0) > 0) == (policy == "fp16"), types  # the policy's graph reached the network
    assert (types.get("INT8", 0) > 0) == (policy == "int8"), types
    assert info["engine_layers"]["available"] or "get_engine_validity() says INVALID" in info["engine_layers"]["reason"]
    declared = {i.name: i for i in state.spec.inputs}
    for input_name, (mn, opt, mx) in info["profile"].items():  # every dynamic input got its declared profile
        d = declared[input_name]
        assert (tuple(mn), tuple(opt), tuple(mx)) == (d.min_shape, d.opt_shape, d.max_shape)


RUN_CASES = [pytest.param(*c.values[:2], id=c.id.rpartition("-")[0], marks=c.marks) for c in CASES
             if c.values[2] == "auto" and not plugin_refused(*c.values[:2])]


@pytest.mark.parametrize("name, stage", RUN_CASES)
def test_bundled_engine_matches_onnxruntime_where_the_runtime_can_run_it(bundled, name, stage):
    """Elsewhere (no GPU, or one the engine is not compiled for) skipped with the runtime's own reason."""
    import onnxruntime as ort

    from pytest_autoware_deploy.export.precision import tolerance_for

    state = bundled(name, stage)
    engine = build_engine(state.spec, state.policy_onnx("auto").path, policy="auto", module="tensorrt_rtx")
    verdict = engine_support(engine.path, module="tensorrt_rtx", device="cuda:0")
    if not verdict.ok:
        pytest.skip(verdict.reason)
    # true fp32 (TF32 off): what the spec's element-wise tolerances are for
    engine = build_engine(state.spec, state.policy_onnx("strongly_typed").path, policy="strongly_typed",
                          module="tensorrt_rtx")
    tol = tolerance_for(state.spec, "strongly_typed", "cuda:0")
    feed = state.example_inputs()
    session = ort.InferenceSession(str(state.onnx.path), providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    with TensorRTRunner(engine.path, "cuda:0", module="tensorrt_rtx") as runner:
        actual = runner.infer(feed)
    for out_name, ref in expected.items():
        np.testing.assert_allclose(actual[out_name], ref, atol=tol["atol"], rtol=tol["rtol"], err_msg=out_name)


# -- what the real builder says when a graph or a profile is wrong ----------------------------------------------
def _graph(tmp_path, nodes, inputs, outputs, inits=()):
    path = tmp_path / "g.onnx"
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.fixture
def small_spec(tmp_path):
    from ..conftest import write_tiny_spec

    def make(inputs, outputs, profiles):
        spec_file = write_tiny_spec(tmp_path / "user")
        return load_spec(spec_file, work_dir=tmp_path / "wd", cfg_options={
            "onnx_config.input_names": inputs, "onnx_config.output_names": outputs,
            "backend_config.model_inputs": [dict(name=n, **p) for n, p in profiles.items()]})

    return make


def test_parse_error_names_the_node_its_op_and_the_parsers_message(tmp_path, small_spec):
    """NonZero needs a plugin TensorRT-RTX 1.7 does not ship: a real finding about data-dependent shapes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [1, None])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("NonZero", ["r"], ["idx"], name="nz")]
    graph = _graph(tmp_path, nodes, [x], [idx])
    spec = small_spec(["x"], ["idx"], {"x": dict(min_shape=[1], opt_shape=[4], max_shape=[8])})
    with pytest.raises(ArtifactError, match=r"TensorRT-RTX \S+ cannot parse .*g.onnx:\n  node 1 'nz' \(NonZero\): "
                                            r".*NonZero plugin creator version 1 was not found in plugin registry"):
        build_engine(spec, graph, module="tensorrt_rtx")


def test_build_error_names_the_input_and_its_profile(tmp_path, small_spec):
    """TopK's K as a network input is a shape tensor: its profile needs values, which model_inputs cannot give."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])
    k = helper.make_tensor_value_info("k", TensorProto.INT64, [1])
    values = helper.make_tensor_value_info("values", TensorProto.FLOAT, [1, None])
    graph = _graph(tmp_path, [helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=1)], [x, k], [values])
    spec = small_spec(["x", "k"], ["values"], {"x": dict(min_shape=[1, 1], opt_shape=[1, 10], max_shape=[1, 100])})
    with pytest.raises(ArtifactError, match=r"could not build an engine from .*g.onnx \(policy auto, workspace "
                                            r"\d+ bytes\); the errors name input 'k' \(1,\): fixed shape, no "
                                            r"profile entry; inputs: 'x' \(1, -1\): profile min \(1, 1\) opt "
                                            r"\(1, 10\) max \(1, 100\); TensorRT-RTX said: .*missing values for "
                                            r"shape input tensor k"):
        build_engine(spec, graph, module="tensorrt_rtx")


def test_data_dependent_output_builds_and_is_declared_dynamic(tmp_path, small_spec):
    """A Range to a computed limit (the runner binds it through its output allocator)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    count = helper.make_tensor_value_info("count", TensorProto.INT64, ["k"])
    inits = [helper.make_tensor("zero", TensorProto.INT64, [], [0]),
             helper.make_tensor("one", TensorProto.INT64, [], [1])]
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Cast", ["m"], ["limit"], to=TensorProto.INT64),
             helper.make_node("Range", ["zero", "limit", "one"], ["count"])]
    graph = _graph(tmp_path, nodes, [x], [count], inits)
    spec = small_spec(["x"], ["count"], {"x": dict(min_shape=[1], opt_shape=[10], max_shape=[100])})
    art = build_engine(spec, graph, module="tensorrt_rtx")
    assert art.built and art.info["bytes"] > 0 and art.info["network"]["output_types"]["INT64"] >= 1


def test_torn_engine_is_an_artifact_error_not_a_skip(tmp_path):
    """The runtime's verdict tells the file's fault (MALFORMED_ENGINE: an error) from the machine's (a skip)."""
    bad = tmp_path / "model.engine"
    bad.write_bytes(b"not an engine" * 64)
    verdict = engine_support(bad, module="tensorrt_rtx")
    assert not verdict.ok and not verdict.unavailable and "INVALID (MALFORMED_ENGINE)" in verdict.reason
    with pytest.raises(ArtifactError, match=r"TensorRT-RTX \S+ cannot run .*model.engine here: get_engine_validity\(\) "
                                            r"says INVALID \(MALFORMED_ENGINE\)"):
        TensorRTRunner(bad, "cuda:0", module="tensorrt_rtx").activate()
