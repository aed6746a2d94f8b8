"""The engine builder against a fake module: TensorRT 10.x, 11.x and TensorRT-RTX 1.x, one code path.

TensorRT never ran on this project's machines: these tests check which API calls the builder makes
per module, version and policy, where it builds (device / compute capabilities), its cache, timing
cache, the engine facts it records and its error messages. Real TensorRT-RTX builds of every bundled
graph are in test_tensorrt_rtx.py.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import sys

import onnx
import pytest

from pytest_autoware_deploy.data import load_samples
from pytest_autoware_deploy.errors import ArtifactError, BackendUnavailable, SpecError
from pytest_autoware_deploy.export.precision import derive
from pytest_autoware_deploy.export.tensorrt import build_engine, graph_precision, timing_cache_path
from pytest_autoware_deploy.spec.load import load_spec

from ..fakes.fake_tensorrt import fake_trt, flavor_of, make_tensorrt, trt_spec, trt_tiny  # noqa: F401 (fixtures)

STRONG_10 = 1 << 1  # 1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED) on 10.x; 11.x and RTX need no flag
PROFILE = {"image": ((1, 3, 16, 16), (2, 3, 16, 16), (4, 3, 16, 16))}
POLICIES = ["auto", "fp16", "int8", "fp32_tf32", "strongly_typed"]
STRONG_ONLY = {"auto": (0, [], []), "fp16": (0, [], []), "int8": (0, [], []), "fp32_tf32": (0, ["TF32"], []),
               "strongly_typed": (0, [], ["TF32"])}

# policy -> (network creation flags, builder flags set, builder flags cleared)
EXPECTED = {
    "trt10": {"auto": (0, [], []), "fp16": (0, ["FP16"], []), "int8": (0, ["INT8"], []),
              "fp32_tf32": (0, ["TF32"], []), "strongly_typed": (STRONG_10, [], ["TF32"])},
    "trt11": STRONG_ONLY,
    "rtx": STRONG_ONLY,
}
RTX_DEFAULT_CCS = ["8.0", "8.6", "8.9", "12.0", "12.1"]


@pytest.fixture(scope="module")
def policy_graphs(trt_tiny):
    """The fp16 / int8 graphs export/precision.py derives (what session.py hands the exporter)."""
    spec = load_spec(trt_tiny[0])
    samples = load_samples(spec)
    return {p: derive(spec, trt_tiny[1], p, samples).path for p in ("fp16", "int8")}


def build(trt, spec, graph, **kw):
    return build_engine(spec, graph, module=trt.__name__, **kw)


@pytest.mark.parametrize("policy", POLICIES)
def test_policy_maps_to_network_and_builder_flags_per_module(fake_trt, trt_spec, trt_tiny, policy_graphs, policy):
    graph = policy_graphs.get(policy, trt_tiny[1])
    art = build(fake_trt, trt_spec, graph, policy=policy)
    net_flags, set_flags, cleared = EXPECTED[flavor_of(fake_trt)][policy]
    assert fake_trt.record["create_network"] == [net_flags]
    assert fake_trt.record["set_flag"] == set_flags and fake_trt.record["clear_flag"] == cleared
    assert fake_trt.record["parse"] == [str(graph)] and art.onnx == graph and art.built
    assert art.path.is_file() and art.path.name == "model.engine" and art.tensorrt == fake_trt.__version__
    assert art.module == fake_trt.__name__ and art.path.parent.parent.name.startswith(
        "rtx-" if fake_trt.__name__ == "tensorrt_rtx" else "trt-")


@pytest.mark.parametrize("flavor", ["trt11", "rtx"])
def test_strongly_typed_modules_never_touch_weak_typing_apis(trt_spec, trt_tiny, policy_graphs, monkeypatch, flavor):
    trt = make_tensorrt(flavor)
    monkeypatch.setitem(sys.modules, trt.__name__, trt)
    assert not hasattr(trt.BuilderFlag, "FP16") and not hasattr(trt.Builder(None).create_builder_config(),
                                                                "int8_calibrator")
    assert int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0  # renumbered: 1 on TensorRT 10
    for policy in POLICIES:
        build(trt, trt_spec, policy_graphs.get(policy, trt_tiny[1]), policy=policy)
    assert set(trt.record["set_flag"] + trt.record["clear_flag"]) <= {"TF32"}
    assert all(b["strongly_typed"] for b in trt.record["build"]) and len(trt.record["build"]) == 5
    assert trt.record["create_network"] == [0] * 5  # the deprecated STRONGLY_TYPED flag is not passed


def test_policy_that_needs_a_missing_flag_is_a_clear_error(trt_spec, trt_tiny, monkeypatch):
    trt = make_tensorrt("trt11")
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", {"DEBUG": 2, "REFIT": 4})  # a TensorRT without TF32
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    with pytest.raises(ArtifactError, match=r"'strongly_typed' needs BuilderFlag.TF32, which TensorRT 11.1.0.106 "
                                            r"does not have: the policy cannot be expressed"):
        build_engine(trt_spec, trt_tiny[1], policy="strongly_typed")


def test_base_graph_is_derived_for_fp16(fake_trt, trt_spec, trt_tiny):
    """suite.py's test_export_tensorrt passes the base export: the fp16 graph is derived, not skipped."""
    art = build(fake_trt, trt_spec, trt_tiny[1], policy="fp16")
    assert art.onnx != trt_tiny[1] and "fp16" in graph_precision(art.onnx)
    assert fake_trt.record["parse"] == [str(art.onnx)]


def test_default_policy_is_the_specs(fake_trt, trt_tiny, tmp_path):
    spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd",
                     cfg_options={"backend_config.common_config.precision_policy": "fp32_tf32"})
    assert build(fake_trt, spec, trt_tiny[1]).policy == "fp32_tf32"
    assert fake_trt.record["set_flag"] == ["TF32"]


def test_profile_and_workspace_from_the_spec(fake_trt, trt_spec, trt_tiny):
    art = build(fake_trt, trt_spec, trt_tiny[1])
    assert fake_trt.record["profile"] == [PROFILE]
    assert fake_trt.record["memory_pool_limit"] == [("WORKSPACE", 1 << 28)]
    assert art.info["profile"] == {"image": [[1, 3, 16, 16], [2, 3, 16, 16], [4, 3, 16, 16]]}


def test_single_shape_entry_gives_a_fixed_profile(fake_trt, trt_tiny, tmp_path):
    spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd",
                     cfg_options={"backend_config.model_inputs": [dict(name="image", shape=[2, 3, 16, 16])]})
    build(fake_trt, spec, trt_tiny[1])
    assert fake_trt.record["profile"] == [{"image": ((2, 3, 16, 16),) * 3}]


@pytest.mark.parametrize("inputs, message", [
    ([], r"input 'image' of .*model.onnx has dynamic dims \(-1, 3, 16, 16\) .*add dict\(name='image', min_shape"),
    ([dict(name="image", shape=[2, 4, 16, 16])], r"input 'image': opt_shape \(2, 4, 16, 16\) does not fit the "
                                                 r"network's shape \(-1, 3, 16, 16\)"),
    ([dict(name="image", min_shape=[1, 3, 16, 16], opt_shape=[8, 3, 16, 16], max_shape=[4, 3, 16, 16])],
     r"needs min_shape <= opt_shape <= max_shape"),
], ids=["no-entry", "wrong-fixed-dim", "opt-above-max"])
def test_profile_problems_name_the_input(fake_trt, trt_tiny, tmp_path, inputs, message):
    spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd", cfg_options={"backend_config.model_inputs": inputs})
    with pytest.raises(SpecError, match=message) as info:
        build(fake_trt, spec, trt_tiny[1])
    assert "backend_config.model_inputs" in str(info.value) and not fake_trt.record["build"]


@pytest.mark.parametrize("flavor", ["trt10", "trt11"])
def test_timing_cache_is_written_and_reused(trt_spec, trt_tiny, monkeypatch, flavor):
    fake = make_tensorrt(flavor)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    first = build_engine(trt_spec, trt_tiny[1], policy="auto")
    cache_file = timing_cache_path(trt_spec, fake)
    assert cache_file.is_file() and cache_file.name == f"timing-{fake.__version__}.cache"
    assert not first.info["timing_cache_reused"] and fake.record["timing_cache_loaded"] == [0]
    second = build_engine(trt_spec, trt_tiny[1], policy="fp32_tf32")  # another engine, same layers
    assert second.built and second.info["timing_cache_reused"]
    assert fake.record["timing_cache_loaded"][-1] == cache_file.stat().st_size > 0
    assert fake.record["timing_cache_hits"] == [0, len(onnx.load(str(trt_tiny[1])).graph.node)]
    assert not list(cache_file.parent.glob(".*.tmp"))  # written atomically


def test_tensorrt_rtx_builds_without_a_timing_cache(trt_spec, trt_tiny, monkeypatch):
    """Its timing cache is a deprecated no-op that makes the CPU-only build query for a GPU: never set."""
    fake = make_tensorrt("rtx")
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", fake)
    art = build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx")
    assert art.built and art.info["timing_cache"] is None and art.info["timing_cache_reused"] is None
    assert not fake.record["timing_cache_loaded"] and fake.record["build"][0]["timing_cache"] is False
    assert not timing_cache_path(trt_spec, fake).exists()


def test_unusable_timing_cache_is_replaced(trt_spec, trt_tiny, caplog, monkeypatch):
    fake = make_tensorrt("trt10")
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    cache_file = timing_cache_path(trt_spec, fake)
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"torn")
    with caplog.at_level(logging.WARNING, logger="pytest_autoware_deploy.tensorrt"):
        art = build_engine(trt_spec, trt_tiny[1])
    assert art.built and not art.info["timing_cache_reused"] and "unusable" in caplog.text
    assert cache_file.read_bytes().startswith(b"FAKETRT")


def test_engine_is_cached_and_rebuilt_when_the_onnx_changes(fake_trt, trt_spec, trt_tiny, tmp_path):
    first = build(fake_trt, trt_spec, trt_tiny[1])
    again = build(fake_trt, trt_spec, trt_tiny[1])
    assert first.built and not again.built and again.path == first.path
    assert again.info["profile"] == first.info["profile"] and again.info["policy"] == "auto"  # from meta.json
    assert again.info["bytes"] == first.info["bytes"] == first.path.stat().st_size
    assert len(fake_trt.record["build"]) == 1 and len(fake_trt.record["parse"]) == 1
    model = onnx.load(str(trt_tiny[1]))
    model.graph.initializer[0].raw_data = bytes(len(model.graph.initializer[0].raw_data))  # new weights
    changed = tmp_path / "changed.onnx"
    onnx.save(model, str(changed))
    other = build(fake_trt, trt_spec, changed)
    assert other.built and other.key != first.key and len(fake_trt.record["build"]) == 2
    assert build(fake_trt, trt_spec, trt_tiny[1], rebuild=True).built and len(fake_trt.record["build"]) == 3


def test_workspace_change_rebuilds(fake_trt, trt_tiny, tmp_path):
    keys = set()
    for size in (1 << 28, 1 << 29):
        spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd",
                         cfg_options={"backend_config.common_config.max_workspace_size": size})
        keys.add(build(fake_trt, spec, trt_tiny[1]).key)
    assert len(keys) == 2 and len(fake_trt.record["build"]) == 2


def test_modules_do_not_share_engines(trt_spec, trt_tiny, monkeypatch):
    """The same graph and policy under tensorrt and tensorrt_rtx: two engines, two cache entries."""
    for flavor in ("trt10", "rtx"):
        fake = make_tensorrt(flavor)
        monkeypatch.setitem(sys.modules, fake.__name__, fake)
    a = build_engine(trt_spec, trt_tiny[1], module="tensorrt")
    b = build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx")
    assert a.built and b.built and a.key != b.key and a.path.parent.parent != b.path.parent.parent


def test_engine_facts_are_recorded(fake_trt, trt_spec, trt_tiny, policy_graphs):
    """Bytes, build seconds, the network's layers and types (known without a GPU) and the engine inspector's
    layers where the runtime can load the engine (the fake's can: an 8.6 card for RTX)."""
    nodes = onnx.load(str(policy_graphs["fp16"])).graph.node
    art = build(fake_trt, trt_spec, policy_graphs["fp16"], policy="fp16")
    info = art.info
    assert info["bytes"] == art.path.stat().st_size and isinstance(info["build_s"], float) and info["build_s"] >= 0
    assert info["network"]["layers"] == len(nodes) and info["network"]["output_types"]["HALF"] > 0
    assert info["engine_layers"]["available"] and info["engine_layers"]["layers"] == len(nodes)
    assert info["engine_layers"]["output_precisions"]["FP16"] == info["network"]["output_types"]["HALF"]
    summary = art.summary()
    assert summary["bytes"] == info["bytes"] and summary["module"] == fake_trt.__name__
    assert summary["network"] == info["network"] and summary["compute_capabilities"] == info["compute_capabilities"]


def test_rtx_without_a_gpu_records_the_runtimes_reason_for_no_engine_layers(trt_spec, trt_tiny, monkeypatch):
    fake = make_tensorrt("rtx")  # gpu None: CPU-only CI
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", fake)
    art = build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx")
    layers = art.info["engine_layers"]
    assert art.built and not layers["available"]
    assert layers["reason"].startswith("TensorRT-RTX 1.7.1.116 cannot run the engine here: get_engine_validity() "
                                       "says INVALID; it logged: Error reading CUDA GPU properties")
    assert art.info["network"]["layers"] == len(onnx.load(str(trt_tiny[1])).graph.node)


def test_rtx_targets_its_default_compute_capabilities_without_a_device(trt_spec, trt_tiny, monkeypatch):
    fake = make_tensorrt("rtx")
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", fake)
    art = build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx", device="cuda:1")  # the device does not matter
    assert art.info["compute_capabilities"] == RTX_DEFAULT_CCS and art.info["device"] is None
    assert not fake.record["set_compute_capability"] and fake.record["build"][0]["compute_capabilities"] == []
    assert not build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx").built  # one engine for every machine


def test_rtx_explicit_compute_capabilities_are_set_and_keyed(trt_spec, trt_tiny, monkeypatch):
    fake = make_tensorrt("rtx")
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", fake)
    default = build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx")
    turing = build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx", compute_capabilities=["7.5", (8, 6)])
    assert turing.built and turing.key != default.key and turing.info["compute_capabilities"] == ["7.5", "8.6"]
    assert fake.record["set_compute_capability"] == [("SM75", 0), ("SM86", 1)]
    with pytest.raises(ArtifactError, match=r"TensorRT-RTX 1.7.1.116 cannot target compute capability 9.0: it "
                                            r"compiles for 7.5, 8.0, 8.6, 8.9, 12.0, 12.1"):
        build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx", compute_capabilities=["9.0"])


def test_tensorrt_builds_for_a_device_not_compute_capabilities(trt_spec, trt_tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("trt11"))
    with pytest.raises(ArtifactError, match=r"TensorRT 11.1.0.106 builds for the GPU it runs on: pass "
                                            r"device='cuda:N', not compute capabilities \['8.6'\]"):
        build_engine(trt_spec, trt_tiny[1], compute_capabilities=["8.6"])


@pytest.fixture
def two_gpus(monkeypatch):
    """torch sees two GPUs (cuda:0 an sm90, cuda:1 an sm86); ``current`` follows torch.cuda.device blocks."""
    import torch

    state = {"current": 0, "entered": []}
    gpus = {0: ("NVIDIA H100 80GB HBM3", (9, 0)), 1: ("NVIDIA RTX A6000", (8, 6))}

    @contextlib.contextmanager
    def device(dev):
        index = torch.device(dev).index
        previous, state["current"] = state["current"], index
        state["entered"].append(index)
        try:
            yield
        finally:
            state["current"] = previous

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: state["current"])
    def gpu(i=None):
        return gpus[state["current"] if i is None else i]

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: gpu(i)[1])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: gpu(i)[0])
    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: None)
    return state


@pytest.mark.parametrize("flavor", ["trt10", "trt11"])
def test_tensorrt_builds_on_the_target_device_and_keys_by_its_capability(trt_spec, trt_tiny, monkeypatch, two_gpus,
                                                                         flavor):
    fake = make_tensorrt(flavor)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    builder_init = fake.Builder.__init__

    def on_which_device(self, logger):  # the builder compiles for the device current when it is created
        fake.record["builder_device"].append(two_gpus["current"])
        builder_init(self, logger)

    monkeypatch.setattr(fake.Builder, "__init__", on_which_device)
    second = build_engine(trt_spec, trt_tiny[1], device="cuda:1")
    assert fake.record["builder_device"] == [1] and two_gpus["current"] == 0  # built on cuda:1, current restored
    assert second.info["compute_capabilities"] == ["8.6"] and second.info["device_name"] == "NVIDIA RTX A6000"
    first = build_engine(trt_spec, trt_tiny[1], device="cuda:0")
    assert first.built and first.key != second.key and first.info["compute_capabilities"] == ["9.0"]
    assert fake.record["builder_device"] == [1, 0]


def test_parse_error_names_the_node_and_the_file(fake_trt, trt_spec, trt_tiny):
    fake_trt.fail_on_op = "Conv"
    conv = next(n for n in onnx.load(str(trt_tiny[1])).graph.node if n.op_type == "Conv")
    with pytest.raises(ArtifactError) as info:
        build(fake_trt, trt_spec, trt_tiny[1])
    text = str(info.value)
    name = "TensorRT-RTX" if fake_trt.__name__ == "tensorrt_rtx" else "TensorRT"
    assert f"{name} {fake_trt.__version__} cannot parse {trt_tiny[1]}" in text
    assert f"node 0 '{conv.name}' (Conv): No importer registered for op: Conv" in text
    assert not fake_trt.record["build"]


def test_build_returning_none_is_a_clear_error(fake_trt, trt_spec, trt_tiny):
    fake_trt.build_returns_none = True
    with pytest.raises(ArtifactError, match=r"tiny: TensorRT\S* .* could not build an engine from .*model.onnx "
                                            r"\(policy auto, workspace 268435456 bytes\); inputs: 'image' \(-1, 3, 16, "
                                            r"16\): profile min \(1, 3, 16, 16\) opt \(2, 3, 16, 16\) max \(4, 3, 16, "
                                            r"16\); TensorRT\S* said: fake: out of device memory"):
        build(fake_trt, trt_spec, trt_tiny[1])
    assert not list((trt_spec.artifact_dir() / "cache").glob("*-auto/*/model.engine"))


def test_build_error_names_the_input_the_errors_name_first(fake_trt, trt_spec, trt_tiny):
    fake_trt.build_returns_none = ("IBuilder::buildSerializedNetwork: Error Code 4: API Usage Error (image: "
                                   "kMAX dimensions in profile 0 are [4,3,16,16] but input has static dimensions ...)")
    with pytest.raises(ArtifactError, match=r"could not build .*; the errors name input 'image' \(-1, 3, 16, 16\): "
                                            r"profile min \(1, 3, 16, 16\) opt \(2, 3, 16, 16\) max \(4, 3, 16, 16\); "
                                            r"TensorRT\S* said: IBuilder::buildSerializedNetwork"):
        build(fake_trt, trt_spec, trt_tiny[1])


def test_missing_tensorrt_is_backend_unavailable(trt_spec, trt_tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match=r"TensorRT is not installed here \(no 'tensorrt' module"):
        build_engine(trt_spec, trt_tiny[1])


def test_missing_tensorrt_rtx_is_backend_unavailable(trt_spec, trt_tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    with pytest.raises(BackendUnavailable, match=r"TensorRT-RTX is not installed here \(no 'tensorrt_rtx' module; "
                                                 r"pip install tensorrt-rtx\): no engine was built"):
        build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx")


def test_unknown_module_is_a_clear_error(trt_spec, trt_tiny):
    with pytest.raises(ArtifactError, match=r"unknown TensorRT module 'tensorrt_llm'; expected one of tensorrt, "
                                            r"tensorrt_rtx"):
        build_engine(trt_spec, trt_tiny[1], module="tensorrt_llm")


def test_tensorrt_9_is_refused(trt_spec, trt_tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("trt10", version="9.3.0"))
    with pytest.raises(BackendUnavailable, match="TensorRT 9.3.0 is too old"):
        build_engine(trt_spec, trt_tiny[1])


def test_spec_run_builds_the_engine_then_skips_without_cuda(pytester, trt_tiny, tmp_path, monkeypatch):
    """The plugin's wiring: test_export_tensorrt builds through the fake; the runner skips on this CPU torch."""
    fake = make_tensorrt("trt10")
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", f"--deploy-config={trt_tiny[0]}", "--deploy-work-dir", str(tmp_path / "wd"),
        "--deploy-cfg-options", "export.mode=both", "--deploy-backends=pytorch,tensorrt", "--benchmark-disable",
        "-v", "-rs")
    result.stdout.fnmatch_lines(["*test_export_tensorrt[[]tiny-tensorrt[]] PASSED*",
                                 "*SKIPPED*tensorrt on cuda:0: torch has no CUDA device here*"])
    assert result.parseoutcomes().get("failed", 0) == 0
    assert len(fake.record["build"]) == 1  # export test and runner share the cached engine
