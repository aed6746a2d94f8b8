"""The session side of streaming verification: the spec keys (one SpecError naming the key), the evaluation
hook reusing the reference's outputs, and the cached fp16 measurement plan."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.verify import agreement_state
from pytest_autoware_deploy.verify.agreement_state import agreement_of, agreement_settings
from pytest_autoware_deploy.verify.fp16_state import fp16_measurement
from pytest_autoware_deploy.verify.streaming import Limit, limit_for

from . import planted
from .planted import torch_one_thread  # noqa: F401  (fixture)


def fake_spec(**verification):
    return SimpleNamespace(file="spec.py", output_names=["logits", "boxes"], cfg={"verification": verification})


@pytest.mark.parametrize("verification, key", [
    ({"statistic": "p101"}, "verification.statistic"),
    ({"statistic": "median"}, "verification.statistic"),
    ({"statistics": {"scores": "max"}}, "verification.statistics.scores"),
    ({"statistics": {"boxes": 0}}, "verification.statistics.boxes"),
    ({"limits": {"fp8": {}}}, "verification.limits.fp8"),
    ({"limits": {"fp16": 0.1}}, "verification.limits.fp16"),
    ({"limits": {"fp16": {"max_failed": 0.1}}}, "verification.limits.fp16.max_failed"),
    ({"limits": {"int8": {"min_top1": True}}}, "verification.limits.int8.min_top1"),
    ({"localization": {"chunk_size": 0}}, "verification.localization.chunk_size"),
])
def test_bad_keys_are_one_spec_error_naming_the_key(verification, key):
    with pytest.raises(SpecError) as err:
        agreement_settings(fake_spec(**verification))
    assert f"spec.py: {key}:" in str(err.value)


@given(rate=st.floats(0, 1), top1=st.one_of(st.none(), st.floats(0, 1)))
def test_a_limit_overrides_only_what_it_names(rate, top1):
    limits = {"fp16": {"max_failed_rate": rate, **({"min_top1": top1} if top1 is not None else {})}}
    settings = agreement_settings(fake_spec(limits=limits, statistics={"boxes": "p99.5"}))
    expected_top1 = limit_for("fp16").min_top1 if top1 is None else top1
    assert settings.limit("fp16") == Limit(rate, expected_top1, limit_for("fp16").min_match_rate)
    assert settings.limit("int8") == limit_for("int8") and settings.limit("auto") == Limit()
    assert settings.statistics == {"boxes": "p99.5"} and settings.statistic == "max"


@given(rate=st.one_of(st.floats(allow_nan=True).filter(lambda v: not 0 <= v <= 1), st.text(max_size=3)))
def test_a_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(SpecError, match="verification.limits.int8.max_failed_rate: expected a fraction in"):
        agreement_settings(fake_spec(limits={"int8": {"max_failed_rate": rate}}))


# -- the hook, on the tiny user project (a real SpecState) --------------------------------------------------
@pytest.fixture
def tiny_state(tmp_path, torch_one_thread):  # noqa: F811
    from pytest_autoware_deploy.report.store import ReportStore
    from pytest_autoware_deploy.session import SpecState
    from pytest_autoware_deploy.spec.load import load_spec

    from ..conftest import write_tiny_spec

    state = SpecState(load_spec(write_tiny_spec(tmp_path / "p")), ReportStore())
    yield state
    state.close()


def counting(state, backend):
    """Count the inferences ``backend``'s runner does from now on."""
    runner = state.runner(backend)
    calls = []
    original = runner.infer
    runner.infer = lambda feed: calls.append(1) or original(feed)
    return calls


@pytest.mark.parametrize("kept_bytes, reference_runs", [(64 << 20, 0), (0, 12)])
def test_evaluation_feeds_the_agreement_reusing_the_references_outputs(tiny_state, monkeypatch, kept_bytes,
                                                                       reference_runs):
    from pytest_autoware_deploy.spec.model import BackendId

    monkeypatch.setattr(agreement_state, "KEPT_BYTES", kept_bytes)
    pytorch, onnx_backend = BackendId("pytorch"), BackendId("onnx")
    tiny_state.evaluation(pytorch)
    calls = counting(tiny_state, pytorch)
    tiny_state.evaluation(onnx_backend)
    assert len(calls) == reference_runs  # kept: no second reference inference; over the budget: one per sample
    verdict = agreement_of(tiny_state).verdicts(onnx_backend)["logits"]
    assert verdict.passed and verdict.summary["samples"] == 12 and verdict.summary["top1"]["rate"] == 1.0
    assert agreement_state.agreement_failure(tiny_state, onnx_backend) == ""
    stored = tiny_state.store.specs["tiny"]["backends"]["onnx"]["agreement"]
    assert stored["passed"] and stored["outputs"]["logits"]["samples"] == 12


# -- fp16 measurement plan ----------------------------------------------------------------------------------
def test_fp16_plan_is_cached_and_keyed_by_the_graph(tmp_path, torch_one_thread):  # noqa: F811
    net = planted.build_net()
    base = onnx.load(str(planted.export(net, planted.images(1)[0], tmp_path / "net.onnx")))
    spec = SimpleNamespace(artifact_dir=lambda: tmp_path / "art")
    fp16 = tmp_path / "net16.onnx"
    onnx.save(planted.to_fp16(base), str(fp16))
    first = fp16_measurement(spec, fp16)
    assert first["mode"] == "emulated" and first["upcast"] > 0 and first["graph"] != str(fp16)
    again = fp16_measurement(spec, fp16)
    assert again == first  # served from the cache entry (its meta.json), same emulated graph
    x = planted.images(1, seed=3)[0]
    emulated = planted.ort_session(onnx.load(first["graph"])).run(None, {"x": x})[0]
    assert np.abs(emulated - planted.torch_outputs(net, x)).max() < 0.05
    edited = planted.to_fp16(planted.edit_initializer(onnx.load(str(tmp_path / "net.onnx")), "/layer2/conv/Conv", 1,
                                                      lambda w: w * 1.1))
    onnx.save(edited, str(fp16))
    assert fp16_measurement(spec, fp16)["graph"] != first["graph"]  # a changed graph never gets the stale one


def test_an_fp16_graph_that_cannot_be_measured_is_an_error_every_time(tmp_path):
    from pytest_autoware_deploy.verify.fp16_emulation import Fp16NotMeasured

    from .test_fp16_emulation import _if_graph

    path = tmp_path / "if16.onnx"
    onnx.save(_if_graph(), str(path))
    spec = SimpleNamespace(artifact_dir=lambda: tmp_path / "art")
    for _ in range(2):  # nothing cached: the second run says it again, never serves the fp16 graph as measured
        with pytest.raises(Fp16NotMeasured, match=r"computes 2 fp16 node\(s\) in fp32 \(t_Add, e_Sub\)"):
            fp16_measurement(spec, path)
    assert not list((tmp_path / "art").rglob("meta.json"))
