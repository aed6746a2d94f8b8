"""Backends as plugins: the registry (entry-point group ``pytest_autoware_deploy.backends``), how a spec
names a backend, which engines a spec builds, and a backend from outside this package (pytester)."""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import EntryPoint

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.backends import registry
from pytest_autoware_deploy.cases import engine_backends
from pytest_autoware_deploy.errors import DeployError, SpecError
from pytest_autoware_deploy.policies import POLICIES
from pytest_autoware_deploy.spec.load import load_spec, parse_backend
from pytest_autoware_deploy.spec.model import BackendId

from ..conftest import write_tiny_spec
from ..test_plugin import run

PROFILE = "backend_config = dict(model_inputs=[dict(name='image', min_shape=[1, 3, 16, 16], " \
          "opt_shape=[2, 3, 16, 16], max_shape=[4, 3, 16, 16])])"


@pytest.fixture
def fresh_registry():
    """The registry re-read from the entry points, before and after (a test may add or fake some)."""
    registry.backends.cache_clear()
    yield registry
    registry.backends.cache_clear()


def test_the_bundled_backends_are_entries_of_the_group():
    """pyproject.toml registers them like a user's package would: nothing in the core names them."""
    from importlib.metadata import entry_points

    declared = {ep.name: ep.value for ep in entry_points(group=registry.BACKEND_GROUP)}
    assert declared["tensorrt_rtx"] == "pytest_autoware_deploy.backends.builtin:TENSORRT_RTX"
    found = registry.backends()
    assert {"pytorch", "onnx", "tensorrt", "tensorrt_rtx"} <= set(found)
    assert registry.lookup("onnxruntime") is found["onnx"] and registry.lookup("tensorrt-rtx") is found["tensorrt_rtx"]
    assert [b.name for b in registry.with_artifacts()][:2] == ["tensorrt", "tensorrt_rtx"]
    assert found["pytorch"].policies == () and found["tensorrt_rtx"].policies == POLICIES
    # TensorRT runs on CUDA whatever the spec says; its 10/11 builder needs the GPU, TensorRT-RTX's does not
    assert found["tensorrt_rtx"].run_device("cpu") == "cuda:0" and found["onnx"].run_device("cpu") == "cpu"
    assert found["tensorrt"].artifact_needs_gpu and not found["tensorrt_rtx"].artifact_needs_gpu


@pytest.mark.parametrize("text, expected", [
    ("tensorrt_rtx", BackendId("tensorrt_rtx")),
    ("tensorrt_rtx:fp16", BackendId("tensorrt_rtx", None, "fp16")),
    ("tensorrt_rtx@cuda:0", BackendId("tensorrt_rtx", "cuda:0")),
    ("tensorrt-rtx:int8@cuda:1", BackendId("tensorrt_rtx", "cuda:1", "int8")),  # an alias: the registered name
    ("onnxruntime:auto", BackendId("onnx")),
    ("pytorch@meta", BackendId("pytorch", "meta")),  # torch says whether a torch device works
])
def test_a_spec_names_any_registered_backend(text, expected):
    assert parse_backend(text, "spec.py") == expected


@pytest.mark.parametrize("text, message", [
    ("tensorrt_rxt", r"unknown backend 'tensorrt_rxt' \(did you mean 'tensorrt_rtx'\?\); expected one of .*"
                     r"tensorrt_rtx.*registered in the entry-point group pytest_autoware_deploy.backends"),
    ("pytorch:fp16", r"'pytorch:fp16': precision policies apply to exported graphs \(.*tensorrt_rtx.*\), not to the "
                     r"pytorch reference"),
    ("onnx@gpu", r"'onnx@gpu': backend onnx cannot run on 'gpu': expected 'cpu', 'cuda' or 'cuda:N'"),
    ("tensorrt_rtx@cuda:x", r"backend tensorrt_rtx cannot run on 'cuda:x': TensorRT engines run on CUDA devices"),
    ("tensorrt_rtx:fp8", r"unknown precision policy 'fp8' in backend 'tensorrt_rtx:fp8'"),
])
def test_a_backend_the_registry_refuses_is_one_error_naming_the_key(text, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_backend(text, "spec.py")
    assert str(info.value).startswith("spec.py: evaluation.models_to_evaluate: ")


@given(name=st.sampled_from(registry.names()), policy=st.sampled_from(("",) + POLICIES),
       device=st.sampled_from(["", "cuda", "cuda:0", "cuda:13", "cpu"]))
def test_written_backends_parse_back_to_themselves(name, policy, device):
    """Any registered name or alias with a policy it takes and a device it runs on: str() of the parsed id
    is the canonical spelling, and parsing that gives the same id."""
    backend = registry.lookup(name)
    if policy and not backend.policies:
        policy = ""
    if device and backend.device_problem(backend.run_device(device)):
        device = ""
    text = name + (f":{policy}" if policy else "") + (f"@{device}" if device else "")
    parsed = parse_backend(text, "spec.py")
    assert parsed.base == backend.name and parse_backend(str(parsed), "spec.py") == parsed
    assert parsed.policy_name == (policy or "auto") and parsed.device == (device or None)


def test_a_spec_lists_tensorrt_rtx_like_any_backend(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path), cfg_options={
        "evaluation.models_to_evaluate": ["pytorch", "tensorrt_rtx", "tensorrt_rtx:int8@cuda:0"],
        "precision.policies": ["auto", "fp16"]})
    assert [str(b) for b in spec.backends] == ["pytorch", "tensorrt_rtx", "tensorrt_rtx:fp16",
                                               "tensorrt_rtx:int8@cuda:0"]
    assert engine_backends(spec) == spec.backends[1:]  # an engine per backend with an artifact, as listed


@pytest.mark.parametrize("mode, backends, expected", [
    ("trt", ["pytorch", "onnx"], ["tensorrt", "tensorrt-fp16", "tensorrt_rtx", "tensorrt_rtx-fp16"]),
    ("both", ["pytorch", "tensorrt_rtx:fp16"], ["tensorrt_rtx-fp16"]),
    ("onnx", ["pytorch", "onnx"], []),
    ("onnx", ["pytorch", "tensorrt"], ["tensorrt", "tensorrt-fp16"]),
])
def test_engines_come_from_the_backends_with_artifacts(tmp_path, mode, backends, expected):
    """export.mode trt/both: every registered backend with an artifact unless the spec lists some."""
    spec = load_spec(write_tiny_spec(tmp_path), cfg_options={
        "export.mode": mode, "evaluation.models_to_evaluate": backends, "precision.policies": ["auto", "fp16"]})
    assert [b.test_id for b in engine_backends(spec)] == expected


def test_export_mode_none_refuses_backends_that_run_the_model(tmp_path):
    onnx_file = tmp_path / "given.onnx"
    onnx_file.write_bytes(b"")
    with pytest.raises(SpecError, match=r"export.mode='none' has no PyTorch model \(pytorch runs it\): evaluate "
                                        r".*'tensorrt_rtx'"):
        load_spec(write_tiny_spec(tmp_path / "p"), cfg_options={
            "export.mode": "none", "runtime_io.onnx_file": str(onnx_file)})


@pytest.mark.parametrize("value, message", [
    ("builtins:len", r"backend entry point 'odd' = 'builtins:len' .* is a builtin_function_or_method, expected a "
                     r"pytest_autoware_deploy.backends.registry.Backend"),
    ("pytest_autoware_deploy.backends.builtin:PYTORCH", r"entry point 'odd' .* is named 'pytorch'; the entry "
                                                        r"point's name must be the backend's name"),
    ("no_such_module_here:X", r"backend entry point 'odd' .* cannot be loaded: ModuleNotFoundError"),
])
def test_a_broken_backend_entry_is_one_clear_error(fresh_registry, monkeypatch, value, message):
    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint("odd", value, group)])
    with pytest.raises(DeployError, match=message):
        registry.backends()


def test_two_backends_cannot_share_an_alias(fresh_registry, monkeypatch):
    from dataclasses import replace

    from pytest_autoware_deploy.backends import builtin

    clash = replace(builtin.ONNXRUNTIME, name="onnx2")
    monkeypatch.setattr(builtin, "CLASH", clash, raising=False)
    eps = [EntryPoint("onnx", "pytest_autoware_deploy.backends.builtin:ONNXRUNTIME", registry.BACKEND_GROUP),
           EntryPoint("onnx2", "pytest_autoware_deploy.backends.builtin:CLASH", registry.BACKEND_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    with pytest.raises(DeployError, match="backend 'onnx2': alias 'onnxruntime' is already an alias of 'onnx'"):
        registry.backends()


def test_a_backend_without_an_artifact_says_so(tmp_path):
    from pytest_autoware_deploy.report.store import ReportStore
    from pytest_autoware_deploy.session import SpecState

    state = SpecState(load_spec(write_tiny_spec(tmp_path)), ReportStore())
    with pytest.raises(DeployError, match="backend onnx builds no artifact"):
        state.artifact(BackendId("onnx"))


def test_the_gpu_marker_follows_where_the_registry_says_a_backend_runs(pytester, tmp_path):
    """tensorrt_rtx runs on CUDA (gpu marker) but builds its engine on the CPU (no marker on the export)."""
    spec = write_tiny_spec(tmp_path / "p", extra=PROFILE)
    result = run(pytester, f"--deploy-config={spec}", "--deploy-backends=pytorch,onnx,tensorrt_rtx,tensorrt",
                 "-m", "gpu", "--collect-only", "-q")
    text = result.stdout.str()
    assert "test_accuracy[tiny-tensorrt_rtx]" in text and "test_export_tensorrt[tiny-tensorrt]" in text
    assert "test_export_tensorrt[tiny-tensorrt_rtx]" not in text and "test_accuracy[tiny-onnx]" not in text


# -- TensorRT-RTX through the spec's own tests -------------------------------------------------------------------
def test_a_spec_asking_for_tensorrt_rtx_builds_real_engines_and_skips_with_the_runtimes_reason(pytester, tmp_path):
    """test_export_tensorrt builds a real engine per policy (this machine needs no GPU for it), the report
    records it; verification/accuracy/latency run where the runtime accepts the engine, and elsewhere skip
    with what the runtime itself said."""
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed here (pip install tensorrt-rtx)")
    from pytest_autoware_deploy.backends.trt_module import engine_support

    spec = write_tiny_spec(tmp_path / "p", extra=PROFILE)
    result = run(pytester, f"--deploy-config={spec}", "--deploy-backends=pytorch,tensorrt_rtx,tensorrt_rtx:fp16",
                 "--benchmark-disable", "-k", "(tensorrt_rtx or accuracy) and not agreement", "-v", "-rs")
    result.stdout.fnmatch_lines(["*test_export_tensorrt[[]tiny-tensorrt_rtx[]] PASSED*",
                                 "*test_export_tensorrt[[]tiny-tensorrt_rtx-fp16[]] PASSED*"])
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())
    engines = report["specs"]["tiny"]["engines"]
    assert set(engines) == {"tensorrt_rtx:auto", "tensorrt_rtx:fp16"}
    auto = engines["tensorrt_rtx:auto"]
    assert auto["bytes"] > 0 and auto["build_s"] >= 0 and auto["compute_capabilities"]
    assert auto["network"]["layers"] > 0 and auto["module"] == "tensorrt_rtx"
    verdict = engine_support(auto["path"], module="tensorrt_rtx", device="cuda:0")
    outcomes = result.parseoutcomes()
    if verdict.ok:  # an RTX GPU the engine was compiled for
        assert outcomes.get("failed", 0) == 0 and outcomes.get("skipped", 0) == 0
    else:
        assert outcomes.get("failed", 0) == 0 and outcomes["skipped"] >= 6  # verification, accuracy, latency
        result.stdout.fnmatch_lines([f"SKIPPED*{verdict.reason.splitlines()[0][:60]}*"])


# -- a backend from a user's package -----------------------------------------------------------------------------
REFERENCE_BACKEND = '''
"""A user's backend: the policy's ONNX graph run by onnx's own reference evaluator, from a copy the backend
keeps in the plugin's content-keyed cache (its artifact)."""
import onnx
import onnx.reference

from pytest_autoware_deploy.backends.base import Runner
from pytest_autoware_deploy.backends.inputs import TensorMeta
from pytest_autoware_deploy.backends.registry import Backend
from pytest_autoware_deploy.export.cache import ArtifactCache, content_key, file_digest


class Packed:
    def __init__(self, path, built):
        self.path, self.built = path, built

    def summary(self):
        return {"bytes": self.path.stat().st_size, "built": self.built}


def artifact(state, backend_id, device):
    graph = state.policy_onnx(backend_id.policy_name).path
    key = content_key({"onnx": file_digest(graph)})

    def build(tmp):
        onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(graph))), str(tmp))

    cache = ArtifactCache(state.spec.artifact_dir() / "cache")
    path, built = cache.get_or_build("onnx-reference", key, "model.onnx", build, meta={})
    return Packed(path, built)


class ReferenceRunner(Runner):
    def __init__(self, path):
        super().__init__()
        self.path, self.name = path, "onnx_reference"

    def _activate(self):
        self.model = onnx.load(str(self.path))
        self.session = onnx.reference.ReferenceEvaluator(self.model)

    def _input_metadata(self):
        return [TensorMeta.of(i.name, "float32") for i in self.model.graph.input]

    def _infer(self, feed):
        names = [o.name for o in self.model.graph.output]
        return dict(zip(names, self.session.run(None, feed)))


def runner(state, backend_id, device):
    return ReferenceRunner(state.artifact(backend_id).path)


BACKEND = Backend("onnx_reference", runner, aliases=("onnxref",), policies=("auto", "fp16"), artifact=artifact,
                  artifact_kind="graph")
'''


def test_a_users_package_adds_a_backend_through_the_entry_point(pytester, tmp_path, fresh_registry):
    """Installed as a distribution with an entry point in the group (here: its dist-info on sys.path): the
    spec names it, its artifact is built once and reported, and it is verified and evaluated like onnx."""
    site = tmp_path / "site"
    (site / "ref_backend").mkdir(parents=True)
    (site / "ref_backend" / "__init__.py").write_text(textwrap.dedent(REFERENCE_BACKEND))
    info = site / "ref_backend-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ref-backend\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry.BACKEND_GROUP}]\nonnx_reference = ref_backend:BACKEND\n")
    pytester.syspathinsert(site)
    spec = write_tiny_spec(tmp_path / "p")
    result = run(pytester, f"--deploy-config={spec}", "--deploy-backends=pytorch,onnxref",
                 "-k", "not latency and not throughput", "-v")
    result.stdout.fnmatch_lines(["*test_export_tensorrt[[]tiny-onnx_reference[]] PASSED*",
                                 "*test_verification[[]tiny-onnx_reference-logits-sample0-b1[]] PASSED*",
                                 "*test_accuracy[[]tiny-onnx_reference[]] PASSED*"])
    assert result.parseoutcomes().get("failed", 0) == 0
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())
    tiny = report["specs"]["tiny"]
    assert tiny["engines"]["onnx_reference:auto"] == {"bytes": tiny["engines"]["onnx_reference:auto"]["bytes"],
                                                      "built": True}
    assert "onnx_reference" in tiny["backends"] and tiny["artifacts"]["graph:onnx_reference:auto"]["built"]
    again = run(pytester, f"--deploy-config={spec}", "--deploy-backends=pytorch,onnx_reference", "-k",
                "export or accuracy")
    assert again.parseoutcomes()["passed"] == 4 and again.parseoutcomes().get("failed", 0) == 0
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())
    assert report["specs"]["tiny"]["artifacts"]["graph:onnx_reference:auto"]["built"] is False
