"""The TensorRT exporter against a fake ``tensorrt`` module, once as 10.x and once as 11.x.

TensorRT never ran on this project's machines: these tests check which API calls the exporter
makes per version and policy, and its cache, timing cache and error messages.
"""

from __future__ import annotations

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

from ..fakes.fake_tensorrt import VERSIONS, fake_trt, make_tensorrt, trt_spec, trt_tiny  # noqa: F401 (fixtures)

STRONG = 1 << 1  # 1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)
PROFILE = {"image": ((1, 3, 16, 16), (2, 3, 16, 16), (4, 3, 16, 16))}

# policy -> (network creation flags, builder flags set, builder flags cleared)
EXPECTED = {
    "trt10": {"auto": (0, [], []), "fp16": (0, ["FP16"], []), "int8": (0, ["INT8"], []),
              "fp32_tf32": (0, ["TF32"], []), "strongly_typed": (STRONG, [], ["TF32"])},
    "trt11": {"auto": (STRONG, [], []), "fp16": (STRONG, [], []), "int8": (STRONG, [], []),
              "fp32_tf32": (STRONG, ["TF32"], []), "strongly_typed": (STRONG, [], ["TF32"])},
}


@pytest.fixture(scope="module")
def policy_graphs(trt_tiny):
    """The fp16 / int8 graphs export/precision.py derives (what session.py hands the exporter)."""
    spec = load_spec(trt_tiny[0])
    samples = load_samples(spec)
    return {p: derive(spec, trt_tiny[1], p, samples).path for p in ("fp16", "int8")}


def _version(trt):
    return next(k for k, v in VERSIONS.items() if v == trt.__version__)


@pytest.mark.parametrize("policy", ["auto", "fp16", "int8", "fp32_tf32", "strongly_typed"])
def test_policy_maps_to_network_and_builder_flags_per_version(fake_trt, trt_spec, trt_tiny, policy_graphs, policy):
    graph = policy_graphs.get(policy, trt_tiny[1])
    art = build_engine(trt_spec, graph, policy=policy)
    net_flags, set_flags, cleared = EXPECTED[_version(fake_trt)][policy]
    assert fake_trt.record["create_network"] == [net_flags]
    assert fake_trt.record["set_flag"] == set_flags and fake_trt.record["clear_flag"] == cleared
    assert fake_trt.record["parse"] == [str(graph)] and art.onnx == graph and art.built
    assert art.path.is_file() and art.path.name == "model.engine" and art.tensorrt == fake_trt.__version__


def test_tensorrt_11_never_touches_removed_weak_typing_apis(trt_spec, trt_tiny, policy_graphs, monkeypatch):
    trt = make_tensorrt(VERSIONS["trt11"])
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    assert not hasattr(trt.BuilderFlag, "FP16") and not hasattr(trt.Builder(None).create_builder_config(),
                                                                "int8_calibrator")
    for policy in ("auto", "fp16", "int8", "fp32_tf32", "strongly_typed"):
        build_engine(trt_spec, policy_graphs.get(policy, trt_tiny[1]), policy=policy)
    assert set(trt.record["set_flag"] + trt.record["clear_flag"]) <= {"TF32"}
    assert all(b["strongly_typed"] for b in trt.record["build"]) and len(trt.record["build"]) == 5


def test_policy_that_needs_a_missing_flag_is_a_clear_error(trt_spec, trt_tiny, monkeypatch):
    trt = make_tensorrt(VERSIONS["trt11"])
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", {"DEBUG": 2, "REFIT": 4})  # a TensorRT without TF32
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    with pytest.raises(ArtifactError, match=r"'strongly_typed' needs BuilderFlag.TF32, which TensorRT 11.4.0.106 "
                                            r"does not have: the policy cannot be expressed"):
        build_engine(trt_spec, trt_tiny[1], policy="strongly_typed")


def test_base_graph_is_derived_for_fp16(fake_trt, trt_spec, trt_tiny):
    """suite.py's test_export_tensorrt passes the base export: the fp16 graph is derived, not skipped."""
    art = build_engine(trt_spec, trt_tiny[1], policy="fp16")
    assert art.onnx != trt_tiny[1] and "fp16" in graph_precision(art.onnx)
    assert fake_trt.record["parse"] == [str(art.onnx)]


def test_default_policy_is_the_specs(fake_trt, trt_tiny, tmp_path):
    spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd",
                     cfg_options={"backend_config.common_config.precision_policy": "fp32_tf32"})
    assert build_engine(spec, trt_tiny[1]).policy == "fp32_tf32"
    assert fake_trt.record["set_flag"] == ["TF32"]


def test_profile_and_workspace_from_the_spec(fake_trt, trt_spec, trt_tiny):
    art = build_engine(trt_spec, trt_tiny[1])
    assert fake_trt.record["profile"] == [PROFILE]
    assert fake_trt.record["memory_pool_limit"] == [("WORKSPACE", 1 << 28)]
    assert art.info["profile"] == {"image": [[1, 3, 16, 16], [2, 3, 16, 16], [4, 3, 16, 16]]}


def test_single_shape_entry_gives_a_fixed_profile(fake_trt, trt_tiny, tmp_path):
    spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd",
                     cfg_options={"backend_config.model_inputs": [dict(name="image", shape=[2, 3, 16, 16])]})
    build_engine(spec, trt_tiny[1])
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
        build_engine(spec, trt_tiny[1])
    assert "backend_config.model_inputs" in str(info.value) and not fake_trt.record["build"]


def test_timing_cache_is_written_and_reused(fake_trt, trt_spec, trt_tiny):
    first = build_engine(trt_spec, trt_tiny[1], policy="auto")
    cache_file = timing_cache_path(trt_spec, fake_trt)
    assert cache_file.is_file() and cache_file.name == f"timing-{fake_trt.__version__}.cache"
    assert not first.info["timing_cache_reused"] and fake_trt.record["timing_cache_loaded"] == [0]
    second = build_engine(trt_spec, trt_tiny[1], policy="fp32_tf32")  # another engine, same layers
    assert second.built and second.info["timing_cache_reused"]
    assert fake_trt.record["timing_cache_loaded"][-1] == cache_file.stat().st_size > 0
    assert fake_trt.record["timing_cache_hits"] == [0, len(onnx.load(str(trt_tiny[1])).graph.node)]
    assert not list(cache_file.parent.glob(".*.tmp"))  # written atomically


def test_unusable_timing_cache_is_replaced(fake_trt, trt_spec, trt_tiny, caplog):
    cache_file = timing_cache_path(trt_spec, fake_trt)
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"torn")
    with caplog.at_level(logging.WARNING, logger="pytest_autoware_deploy.tensorrt"):
        art = build_engine(trt_spec, trt_tiny[1])
    assert art.built and not art.info["timing_cache_reused"] and "unusable" in caplog.text
    assert cache_file.read_bytes().startswith(b"FAKETRT")


def test_engine_is_cached_and_rebuilt_when_the_onnx_changes(fake_trt, trt_spec, trt_tiny, tmp_path):
    first = build_engine(trt_spec, trt_tiny[1])
    again = build_engine(trt_spec, trt_tiny[1])
    assert first.built and not again.built and again.path == first.path
    assert again.info["profile"] == first.info["profile"] and again.info["policy"] == "auto"  # from meta.json
    assert len(fake_trt.record["build"]) == 1 and len(fake_trt.record["parse"]) == 1
    model = onnx.load(str(trt_tiny[1]))
    model.graph.initializer[0].raw_data = bytes(len(model.graph.initializer[0].raw_data))  # new weights
    changed = tmp_path / "changed.onnx"
    onnx.save(model, str(changed))
    other = build_engine(trt_spec, changed)
    assert other.built and other.key != first.key and len(fake_trt.record["build"]) == 2
    assert build_engine(trt_spec, trt_tiny[1], rebuild=True).built and len(fake_trt.record["build"]) == 3


def test_workspace_change_rebuilds(fake_trt, trt_tiny, tmp_path):
    keys = set()
    for size in (1 << 28, 1 << 29):
        spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd",
                         cfg_options={"backend_config.common_config.max_workspace_size": size})
        keys.add(build_engine(spec, trt_tiny[1]).key)
    assert len(keys) == 2 and len(fake_trt.record["build"]) == 2


def test_parse_error_names_the_node_and_the_file(fake_trt, trt_spec, trt_tiny):
    fake_trt.fail_on_op = "Conv"
    conv = next(n for n in onnx.load(str(trt_tiny[1])).graph.node if n.op_type == "Conv")
    with pytest.raises(ArtifactError) as info:
        build_engine(trt_spec, trt_tiny[1])
    text = str(info.value)
    assert f"cannot parse {trt_tiny[1]}" in text
    assert f"node 0 '{conv.name}' (Conv): No importer registered for op: Conv" in text
    assert not fake_trt.record["build"]


def test_build_returning_none_is_a_clear_error(fake_trt, trt_spec, trt_tiny):
    fake_trt.build_returns_none = True
    with pytest.raises(ArtifactError, match=r"tiny: TensorRT .* could not build an engine from .*model.onnx "
                                            r"\(policy auto, workspace 268435456 bytes\); TensorRT said: "
                                            r"fake: out of device memory"):
        build_engine(trt_spec, trt_tiny[1])
    assert not list((trt_spec.artifact_dir() / "cache").glob("trt-auto/*/model.engine"))


def test_missing_tensorrt_is_backend_unavailable(trt_spec, trt_tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match=r"TensorRT is not installed here \(no 'tensorrt' module\)"):
        build_engine(trt_spec, trt_tiny[1])


def test_tensorrt_9_is_refused(trt_spec, trt_tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("9.3.0"))
    with pytest.raises(BackendUnavailable, match="TensorRT 9.3.0 is too old"):
        build_engine(trt_spec, trt_tiny[1])


def test_spec_run_builds_the_engine_then_skips_without_cuda(fake_trt, pytester, trt_tiny, tmp_path):
    """The plugin's wiring: test_export_tensorrt builds through the fake; the runner skips on this CPU torch."""
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", f"--deploy-config={trt_tiny[0]}", "--deploy-work-dir", str(tmp_path / "wd"),
        "--deploy-cfg-options", "export.mode=both", "--deploy-backends=pytorch,tensorrt", "--benchmark-disable",
        "-v", "-rs")
    result.stdout.fnmatch_lines(["*test_export_tensorrt[[]tiny-auto[]] PASSED*",
                                 "*SKIPPED*tensorrt on cuda:0: torch has no CUDA device here*"])
    assert result.parseoutcomes().get("failed", 0) == 0
    assert len(fake_trt.record["build"]) == 1  # export test and runner share the cached engine
