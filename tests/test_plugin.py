"""The plugin from the outside (pytester): a spec for a model the harness has never seen."""

from __future__ import annotations

import json

import torch

from .conftest import write_tiny_spec

QUIET = ["-p", "no:cacheprovider", "--benchmark-disable-gc"]


def run(pytester, *args):
    return pytester.runpytest_inprocess(*QUIET, *args)


def test_external_spec_runs_end_to_end(pytester, tiny_spec):
    result = run(pytester, f"--deploy-config={tiny_spec}", "-v")
    result.assert_outcomes(passed=15)
    result.stdout.fnmatch_lines([
        "*test_export_onnx[[]tiny[]] PASSED*",
        "*test_verification[[]tiny-onnx-logits-sample1-b2[]] PASSED*",
        "*test_accuracy[[]tiny-onnx[]] PASSED*",
        "*test_latency[[]tiny-pytorch[]] PASSED*",
    ])
    report = json.loads((tiny_spec.parent / "out" / "deploy_report.json").read_text())
    backends = report["specs"]["tiny"]["backends"]
    assert backends["onnx"]["verification"]["passed"] is True
    assert set(backends["onnx"]["verification"]["outputs"]["logits"]) >= {"max_abs", "mean_abs", "max_rel",
                                                                        "cosine", "nan", "inf"}
    assert backends["onnx"]["evaluation"]["accuracy"] == 1.0
    assert backends["pytorch"]["evaluation"]["confusion_matrix"]
    for b in ("pytorch", "onnx"):
        assert set(backends[b]["latency_ms"]) >= {"min", "max", "mean", "median", "p95", "p99"}
    assert (tiny_spec.parent / "out" / "deploy_report.md").read_text().startswith("# Deploy report")
    assert list((tiny_spec.parent / "out" / "tiny" / "figures").glob("*.png"))


def test_benchmark_json_carries_percentiles(pytester, tiny_spec, tmp_path):
    out = tmp_path / "bench.json"
    run(pytester, f"--deploy-config={tiny_spec}", "-k", "latency", f"--benchmark-json={out}") \
        .assert_outcomes(passed=2, deselected=13)
    benches = json.loads(out.read_text())["benchmarks"]
    assert {b["extra_info"]["backend"] for b in benches} == {"pytorch", "onnx"}
    for b in benches:
        lat = b["extra_info"]["latency_ms"]
        assert lat["min"] <= lat["median"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["rounds"] == 5


def test_two_specs_each_get_their_tests(pytester, tmp_path):
    a = write_tiny_spec(tmp_path / "a", name="alpha")
    b = write_tiny_spec(tmp_path / "b", name="beta")
    result = run(pytester, f"--deploy-config={a}", f"--deploy-config={b}", "--collect-only", "-q")
    text = result.stdout.str()
    assert "test_export_onnx[alpha]" in text and "test_export_onnx[beta]" in text


def test_same_result_from_any_working_directory(pytester, tiny_spec, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pytester.chdir()
    rel = tiny_spec.relative_to(tmp_path)
    import os
    os.chdir(tmp_path)
    run(pytester, f"--deploy-config={rel}", "-k", "export").assert_outcomes(passed=1, deselected=14)
    os.chdir(elsewhere)
    run(pytester, f"--deploy-config={tiny_spec}", "-k", "export").assert_outcomes(passed=1, deselected=14)
    assert (tiny_spec.parent / "out" / "model.onnx").is_file()  # work_dir resolved against the spec


def test_misspelled_key_is_one_usage_error(pytester, tmp_path):
    spec = write_tiny_spec(tmp_path / "p", extra="verfication = dict(atol=1)")
    result = run(pytester, f"--deploy-config={spec}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*tiny.py: verfication: unknown key (did you mean 'verification'?)*"])
    assert "Traceback" not in result.stderr.str()


def test_unknown_backend_option(pytester, tiny_spec):
    result = run(pytester, f"--deploy-config={tiny_spec}", "--deploy-backends=pytorch,tensorrtt")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown backend 'tensorrtt' (did you mean 'tensorrt'?)*"])


def test_cfg_options_override_dotted_keys(pytester, tiny_spec):
    result = run(pytester, f"--deploy-config={tiny_spec}", "--deploy-cfg-options", "verification.num_samples=1",
                 "verification.batch_sizes=[3]", "--collect-only", "-q")
    text = result.stdout.str()
    assert "sample0-b3" in text and "sample1" not in text


def test_nan_output_fails_verification_with_count(pytester, tmp_path):
    spec = write_tiny_spec(tmp_path / "p")
    # the eager model emits one NaN that the exported graph does not: verify pytorch against onnx
    spec.write_text(spec.read_text().replace("kwargs=dict(width=8)", "kwargs=dict(width=8, nan=True)"))
    result = run(pytester, f"--deploy-config={spec}", "--deploy-cfg-options", "verification.reference=onnx",
                 "--deploy-backends=onnx,pytorch", "-k", "verification and sample0-b1")
    result.assert_outcomes(failed=1, deselected=14)
    result.stdout.fnmatch_lines(["*backend pytorch vs onnx*1 NaN and 0 Inf values in the output where the "
                                 "reference is finite (of 3 elements)*"])


def test_baked_batch_axis_is_caught(pytester, tmp_path):
    spec = write_tiny_spec(tmp_path / "p")
    spec.write_text(spec.read_text().replace("kwargs=dict(width=8)", "kwargs=dict(width=8, bake_batch=True)"))
    result = run(pytester, f"--deploy-config={spec}", "-k", "verification")
    result.assert_outcomes(passed=2, failed=2)  # batch 1 (the traced one) passes, batch 2 does not
    result.stdout.fnmatch_lines(["*spec tiny, backend onnx vs pytorch, output 'logits', sample 0, shape b2: "
                                 "shape (1, 6) differs from reference shape (2, 3)*"])


def test_checkpoint_mismatch_is_clear(pytester, tmp_path):
    ckpt = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"body.0.weight": torch.zeros(4, 3, 3, 3), "extra.bias": torch.zeros(1)}}, ckpt)
    spec = write_tiny_spec(tmp_path / "p", checkpoint=str(ckpt))
    result = run(pytester, f"--deploy-config={spec}", "-k", "export")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*does not fit the model Tiny*", "*missing keys*", "*unexpected keys (1): extra.bias*",
        "*shape mismatches (1): body.0.weight: checkpoint (4, 3, 3, 3) vs model (8, 3, 3, 3)*"])
    assert "Traceback" not in result.stdout.str()


def test_changed_checkpoint_at_same_path_reexports(pytester, tmp_path):
    ckpt = tmp_path / "model.pth"
    spec = write_tiny_spec(tmp_path / "p", checkpoint=str(ckpt))
    import importlib.util
    mod_spec = importlib.util.spec_from_file_location("tinymodel_t", spec.parent / "tinymodel.py")
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    model = mod.build()
    torch.save(model.state_dict(), ckpt)
    run(pytester, f"--deploy-config={spec}", "-k", "export").assert_outcomes(passed=1, deselected=14)
    onnx_file = spec.parent / "out" / "model.onnx"
    first = onnx_file.read_bytes()
    run(pytester, f"--deploy-config={spec}", "-k", "export").assert_outcomes(passed=1, deselected=14)
    assert onnx_file.read_bytes() == first
    with torch.no_grad():
        model.head.bias.add_(1.0)
    torch.save(model.state_dict(), ckpt)
    run(pytester, f"--deploy-config={spec}", "-k", "export").assert_outcomes(passed=1, deselected=14)
    assert onnx_file.read_bytes() != first
    assert len(list((spec.parent / "out" / "tiny" / "cache" / "onnx").iterdir())) == 2


def test_eval_only_mode_needs_no_checkpoint(pytester, tmp_path):
    spec = write_tiny_spec(tmp_path / "p")
    run(pytester, f"--deploy-config={spec}", "-k", "export")
    onnx_file = spec.parent / "out" / "model.onnx"
    eval_spec = spec.parent / "eval_only.py"
    eval_spec.write_text(f'''
export = dict(mode='none', work_dir='out_eval')
runtime_io = dict(onnx_file={str(onnx_file)!r})
onnx_config = dict(input_names=['image'], output_names=['logits'])
data = dict(loader='tinymodel:make_samples', kwargs=dict(n=12))
evaluation = dict(evaluator='classification', kwargs=dict(num_classes=3), models_to_evaluate=['onnx'],
                  thresholds=dict(min_accuracy=0.99))
benchmark = dict(warmup=1, rounds=3)
''')
    result = run(pytester, f"--deploy-config={eval_spec}", "-v", "-rs")
    result.assert_outcomes(passed=4, skipped=3)
    result.stdout.fnmatch_lines(["*export.mode='none': the given ONNX has no PyTorch reference*"])


def test_corrupted_onnx_is_one_clear_error(pytester, tmp_path):
    spec = write_tiny_spec(tmp_path / "p")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not an onnx model at all")
    spec.write_text(spec.read_text().replace("export = dict(mode='onnx', work_dir='out')",
                                             f"export = dict(mode='none', work_dir='out')\n"
                                             f"runtime_io = dict(onnx_file={str(bad)!r})"))
    result = run(pytester, f"--deploy-config={spec}", "--deploy-backends=onnx", "-k", "export or accuracy")
    out = result.stdout.str()
    assert result.ret == 1
    assert "bad.onnx is corrupted or not an ONNX model" in out
    assert "Traceback" not in out


def test_user_tests_use_public_fixtures(pytester, tiny_spec):
    pytester.makepyfile(test_mine='''
        import numpy as np

        def test_onnx_matches_my_expectation(deploy_spec, onnx_model, deploy_runner, deploy_samples, pytorch_model):
            assert onnx_model.path.is_file()
            out = deploy_runner("onnx").infer(deploy_samples[0]["inputs"])
            assert out["logits"].shape == (1, 3)
            assert pytorch_model.training is False
    ''')
    result = run(pytester, f"--deploy-config={tiny_spec}", "test_mine.py", "-v")
    result.stdout.fnmatch_lines(["*test_mine.py::test_onnx_matches_my_expectation[[]tiny[]] PASSED*"])
    result.assert_outcomes(passed=16)


def test_tensorrt_requests_are_visible_skips(pytester, tiny_spec):
    result = run(pytester, f"--deploy-config={tiny_spec}", "--deploy-cfg-options", "export.mode=both",
                 "--deploy-backends=pytorch,tensorrt", "-rs", "--benchmark-disable")
    result.stdout.fnmatch_lines(["*SKIPPED*TensorRT is not installed here (no 'tensorrt' module*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["skipped"] >= 3  # export, verification, accuracy


def test_verify_false_is_a_visible_skip(pytester, tiny_spec):
    result = run(pytester, f"--deploy-config={tiny_spec}", "--deploy-cfg-options", "export.verify=False",
                 "-rs", "-k", "verification")
    result.assert_outcomes(skipped=1, deselected=11)
    result.stdout.fnmatch_lines(["*export.verify=False in the spec*"])


def test_cuda_backends_carry_the_gpu_marker(pytester, tiny_spec):
    result = run(pytester, f"--deploy-config={tiny_spec}", "--deploy-backends=pytorch,onnx@cuda:0",
                 "-m", "gpu", "--collect-only", "-q")
    text = result.stdout.str()
    assert "test_accuracy[tiny-onnx-cuda0]" in text
    assert "test_accuracy[tiny-pytorch]" not in text


def _no_tensorrt(monkeypatch):
    """TensorRT unimportable whatever this machine has: its backend is asked for but cannot run here."""
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)


NO_TRT = "TensorRT is not installed here (no 'tensorrt' module"


def test_strict_mode_fails_what_cannot_run_here_with_the_same_reason(pytester, tiny_spec, monkeypatch):
    """A CI gate cannot tell a skip from a pass: under --deploy-strict a backend asked for that cannot run here
    fails with the skip's own reason; a deliberate skip (--benchmark-disable) stays a skip."""
    _no_tensorrt(monkeypatch)
    args = [f"--deploy-config={tiny_spec}", "--deploy-backends=pytorch,tensorrt", "--deploy-cfg-options",
            "export.mode=both", "-k", "not throughput", "--benchmark-disable", "-rfs"]
    lenient = run(pytester, *args)
    lenient.assert_outcomes(passed=2, skipped=10, deselected=4)
    strict = run(pytester, *args, "--deploy-strict")
    # export_tensorrt, 4 verification cases, accuracy, latency, agreement, batch invariance of tensorrt: 9 skips
    # -> failures
    strict.assert_outcomes(passed=2, failed=9, skipped=1, deselected=4)
    strict.stdout.fnmatch_lines(["*_ test_accuracy[[]tiny-tensorrt[]] _*", f"{NO_TRT}*: no engine was built from *",
                                 "(--deploy-strict: something asked for that cannot run here is a failure, "
                                 "not a skip)"])
    strict.stdout.fnmatch_lines(["FAILED tiny.py::test_export_tensorrt[[]tiny-tensorrt[]] - Failed: TensorRT*",
                                 "FAILED tiny.py::test_latency[[]tiny-tensorrt[]] - Failed: TensorRT*",
                                 "SKIPPED*pytest-benchmark is disabled (--benchmark-disable)*"])


def test_strict_spec_key_covers_the_users_own_tests(pytester, tmp_path, monkeypatch):
    _no_tensorrt(monkeypatch)
    spec = write_tiny_spec(tmp_path / "p", extra="strict = True")
    other = write_tiny_spec(tmp_path / "q", name="lenient")
    pytester.makepyfile(test_mine='''
        def test_tensorrt_runs(deploy_runner, deploy_samples):
            deploy_runner("tensorrt").infer(deploy_samples[0]["inputs"])
    ''')
    result = run(pytester, f"--deploy-config={spec}", f"--deploy-config={other}", "test_mine.py", "-k",
                 "test_mine", "-rfs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*_ test_tensorrt_runs[[]tiny[]] _*", f"{NO_TRT}*",
                                 "(strict=True in the spec: something asked for that cannot run here is a failure, "
                                 "not a skip)"])
    result.stdout.fnmatch_lines(["FAILED test_mine.py::test_tensorrt_runs[[]tiny[]] - Failed: TensorRT*",
                                 f"SKIPPED*{NO_TRT}*"])


def _onnx_classes(path):
    import onnx

    return onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim[1].dim_value


def test_two_spec_folders_with_the_same_module_name_export_their_own_models(pytester, tmp_path):
    """Each folder ships its own tinymodel.py; the second used to get the first's model, silently."""
    from .conftest import TINY_MODULE

    a = write_tiny_spec(tmp_path / "a", name="alpha")
    b = write_tiny_spec(tmp_path / "b", name="beta")
    (tmp_path / "b" / "tinymodel.py").write_text(
        TINY_MODULE.replace("return Tiny(**kwargs).eval()", "return Tiny(classes=5, **kwargs).eval()"))
    run(pytester, f"--deploy-config={a}", f"--deploy-config={b}", "-k", "export_onnx") \
        .assert_outcomes(passed=2, deselected=28)
    assert _onnx_classes(tmp_path / "a" / "out" / "model.onnx") == 3
    assert _onnx_classes(tmp_path / "b" / "out" / "model.onnx") == 5


def _report(spec):
    return json.loads((spec.parent / "out" / "deploy_report.json").read_text())["specs"]["tiny"]


def test_editing_a_helper_module_exports_again(pytester, tmp_path):
    """The model's math lives in a helper two imports away from the model class's file: an edit there
    is a new export, not a stale ONNX that then fails verification as if the export were wrong."""
    from .projects import set_scale, write_helper_spec

    spec = write_helper_spec(tmp_path / "p", scale="2.0")
    args = [f"--deploy-config={spec}", "-k", "export_onnx or verification"]
    run(pytester, *args).assert_outcomes(passed=5, deselected=10)
    assert _report(spec)["onnx_rebuilt"] is True
    run(pytester, *args).assert_outcomes(passed=5, deselected=10)
    assert _report(spec)["onnx_rebuilt"] is False  # nothing changed: the cached export serves
    set_scale(tmp_path / "p", "3.25")
    run(pytester, *args).assert_outcomes(passed=5, deselected=10)
    assert _report(spec)["onnx_rebuilt"] is True


def _with_two_inputs(directory, input_names):
    """The tiny project whose samples carry 'image' and 'mask' while Tiny.forward takes one tensor."""
    from .conftest import TINY_MODULE

    spec = write_tiny_spec(directory, extra=f"onnx_config = dict(input_names={input_names!r}, "
                                            "output_names=['logits'])")
    module = TINY_MODULE.replace('inputs={"image": x}', 'inputs={"image": x, "mask": x}')
    (directory / "tinymodel.py").write_text(module)
    return spec


def test_input_names_that_do_not_fit_forward_are_one_clear_error(pytester, tmp_path):
    spec = _with_two_inputs(tmp_path / "p", ["image", "mask"])
    result = run(pytester, f"--deploy-config={spec}", "-rN")
    result.assert_outcomes(failed=9, skipped=1, errors=1)  # every test needs the model (export_onnx: in its fixture)
    text = result.stdout.str()
    message = (f"{spec}: onnx_config.input_names: ['image', 'mask'] do not fit Tiny.forward(x): 2 input(s) for "
               "1 positional parameter(s): ['mask'] too many")
    assert text.count(message) == 10  # once per test, not chained twice, no torch traceback
    assert "Traceback" not in text and "TypeError" not in text and "torch/" not in text


def test_a_pipeline_stage_whose_names_do_not_fit_is_one_clear_error(pytester, tmp_path):
    from .conftest import write_pipeline_spec

    spec = write_pipeline_spec(tmp_path / "p", extra="""
        pipeline = dict(host='tinypipe:Host', kwargs=dict(grid=4), stages=[
            dict(name='encoder', module='encoder', input_names=['items', 'counts'], output_names=['features']),
            dict(name='head', module='head', input_names=['grid'], output_names=['logits'])])
    """)
    result = run(pytester, f"--deploy-config={spec}", "-k", "stage_export", "-rN")
    result.assert_outcomes(failed=2, deselected=16)
    text = result.stdout.str()
    assert text.count("pipeline.stages[0].input_names: ['items', 'counts'] do not fit Encoder.forward(items): "
                      "2 input(s) for 1 positional parameter(s): ['counts'] too many") == 2
    assert "Traceback" not in text


BAKED_BATCH = "model = dict(builder='tinymodel:build', kwargs=dict(width=8, bake_batch=True))"


def test_exporter_warnings_are_surfaced_and_kept_with_the_cached_export(pytester, tmp_path):
    """A baked batch size shows as a TracerWarning: a warning in test_export_onnx and the report, on a warm
    run too (the export is reused, its warnings were recorded with it); export.fail_on_warnings fails."""
    spec = write_tiny_spec(tmp_path / "p", extra=BAKED_BATCH)
    args = [f"--deploy-config={spec}", "-k", "export_onnx or test_accuracy"]  # a report needs a backend's result
    for rebuilt in (True, False):
        result = run(pytester, *args)
        result.assert_outcomes(passed=3, deselected=12, warnings=1)
        result.stdout.fnmatch_lines(["*OnnxExportWarning: tiny: ONNX exporter: TracerWarning at "
                                     f"{tmp_path / 'p' / 'tinymodel.py'}:*: Converting a tensor to a Python integer*"])
        report = _report(spec)
        assert report["onnx_rebuilt"] is rebuilt
        assert [w["category"] for w in report["export_warnings"]] == ["TracerWarning"]
    strict = run(pytester, *args, "--deploy-cfg-options", "export.fail_on_warnings=True")
    strict.assert_outcomes(passed=2, failed=1, deselected=12)
    strict.stdout.fnmatch_lines(["tiny: the ONNX exporter warned 1 time(s) about the model "
                                 "(export.fail_on_warnings=True):", "  TracerWarning at *tinymodel.py:*"])


def test_a_clean_export_warns_nothing(pytester, tiny_spec):
    run(pytester, f"--deploy-config={tiny_spec}", "-k", "export_onnx or test_accuracy", "-W", "error::UserWarning") \
        .assert_outcomes(passed=3, deselected=12)
    assert _report(tiny_spec)["export_warnings"] == []
