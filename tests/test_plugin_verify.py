"""Issue 13's proof, through the plugin (pytester): defects planted in a small user project's exported graph
are caught by test_agreement with a message naming the output, the sample and the ONNX node; a clean
project raises no alarm and every dynamic-batch backend gets a batch-invariance test.

Each defect lives in the export only (the eager model stays right), as export bugs do: a middle layer's
different computation, a data-dependent branch that fires on one sample in fifty, and an fp16 cancellation
that ONNX Runtime's CPU EP would hide by computing fp16 in fp32; or in what tracing made of the model: a
Python branch frozen on the example's path. An int8-hostile activation outlier is right in fp32 and wrong in
int8. Failing fp16/int8 backends end with the fp32 islands that fix them (the snippet is applied and passes);
a graph that breaks only at odd batches is caught one shape off opt; a stage is verified at its profile shapes.
"""

from __future__ import annotations

import json

import pytest

from .conftest import _write_project
from .verify.planted import torch_one_thread  # noqa: F401  (fixture)

QUIET = ["-p", "no:cacheprovider", "--benchmark-disable"]
pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tiny convs: two threads on a shared runner only fight

PLANT_MODULE = '''
import numpy as np
import torch
from torch import nn


class Quirk(nn.Module):
    """Identity in eager mode; the exported graph scales by 1.3 (an export-only divergence)."""

    def __init__(self, on):
        super().__init__()
        self.on = on

    def forward(self, x):
        return x * 1.3 if self.on and torch.onnx.is_in_onnx_export() else x


class Block(nn.Module):
    def __init__(self, c, quirk=False):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.quirk = Quirk(quirk)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.quirk(self.conv(x)))


class Cancel(nn.Module):
    """(x + 2048) - 2048: exact in fp32, off by up to 1 in fp16 arithmetic (fp16 spacing is 2 at 2048)."""

    def forward(self, x):
        return (x + 2048.0) - 2048.0


class Gate(nn.Module):
    """Eager: the logits. Exported: logits + 3 where max(image) > 4 (a data-dependent branch the export got
    wrong), which only a rare sample reaches. The bump is uniform, so the argmax (accuracy) never sees it."""

    def __init__(self, on):
        super().__init__()
        self.on = on

    def forward(self, image, logits):
        if self.on and torch.onnx.is_in_onnx_export():
            return logits + 3.0 * (image.amax() > 4.0).to(logits.dtype)
        return logits


class Branch(nn.Module):
    """A data-dependent Python branch: eager adds 3 where max(image) > 4; tracing (the TorchScript exporter)
    freezes the path the example input took (max < 4), so the graph never adds it. Uniform: argmax unchanged."""

    def __init__(self, on):
        super().__init__()
        self.on = on

    def forward(self, image, logits):
        if self.on and bool(image.amax() > 4.0):
            return logits + 3.0
        return logits


class Outlier(nn.Module):
    """Channel 0 of the features times 10^4, divided back after pooling: exact in fp32, but int8's one scale
    for the whole activation tensor leaves the other channels a level or two (the activation outlier of
    transformers and of unfused BatchNorm statistics)."""

    def __init__(self, on, channels=8):
        super().__init__()
        self.on = on
        self.register_buffer("scale", torch.tensor([1e4] + [1.0] * (channels - 1)))

    def forward(self, x):
        return x * self.scale.view(1, -1, 1, 1) if self.on else x

    def back(self, pooled):
        return pooled / self.scale if self.on else pooled


class Pairs(nn.Module):
    """Identity in eager mode; the export views the batch as pairs (a two-camera layout baked in): right at
    every even batch, an error at an odd one."""

    def __init__(self, on):
        super().__init__()
        self.on = on

    def forward(self, x):
        if self.on and torch.onnx.is_in_onnx_export():
            return x.reshape(-1, 2, *x.shape[1:]).reshape(x.shape)
        return x


class Net(nn.Module):
    def __init__(self, plant="none"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.layer1 = Block(8)
        self.layer2 = Block(8, quirk=plant == "middle")
        self.cancel = Cancel() if plant == "cancel" else nn.Identity()
        self.head = nn.Linear(8, 3)
        self.gate = Gate(plant == "one_in_50")
        self.branch = Branch(plant == "frozen_branch")
        self.outlier = Outlier(plant == "outlier")
        self.pairs = Pairs(plant == "pairs")

    def forward(self, image):
        x = self.outlier(self.layer2(self.layer1(self.stem(self.pairs(image)))))
        logits = self.head(self.cancel(self.outlier.back(x.mean((2, 3)))))
        return self.branch(image, self.gate(image, logits))


def build(plant="none"):
    torch.manual_seed(0)
    return Net(plant).eval()


def make_samples(n=50, hot=37, size=8):
    """Images in [-2, 2], except one element of sample ``hot`` set to 6 (what the planted branch tests)."""
    rng = np.random.default_rng(0)
    model = build()
    out = []
    for i in range(n):
        x = np.clip(0.5 * rng.standard_normal((1, 3, size, size)), -2, 2).astype(np.float32)
        if i == hot:
            x[0, 0, 0, 0] = 6.0
        with torch.no_grad():
            target = int(model(torch.from_numpy(x)).argmax(-1))
        out.append(dict(inputs={"image": x}, target=target))
    return out
'''

PLANT_SPEC = '''
export = dict(mode='onnx', work_dir='out')
onnx_config = dict(input_names=['image'], output_names=['logits'],
                   dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}})
model = dict(builder='plantmodel:build', kwargs=dict(plant='{plant}'))
data = dict(loader='plantmodel:make_samples', kwargs=dict(n=50, hot=37))
evaluation = dict(evaluator='classification', kwargs=dict(num_classes=3))
verification = dict(num_samples=2, atol=1e-4, rtol=1e-3)
benchmark = dict(enabled=False)
{extra}
'''


def plant_spec(directory, plant, extra=""):
    return _write_project(directory, "plantmodel", PLANT_MODULE, "plant", PLANT_SPEC.replace("{plant}", plant), extra)


def run(pytester, spec, *args):
    return pytester.runpytest_inprocess(*QUIET, f"--deploy-config={spec}", *args)


def agreement_report(spec, backend="onnx") -> dict:
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())
    return report["specs"]["plant"]["backends"][backend]["agreement"]


def test_export_only_divergence_in_a_middle_layer_is_localized(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "middle")
    result = run(pytester, spec, "-k", "agreement or (verification and sample0-b2)")
    result.assert_outcomes(failed=2)
    node = ("first diverging node: '/layer2/quirk/Mul' (Mul, module 'layer2.quirk'), tensor "
            "'/layer2/quirk/Mul_output_0' vs pytorch module 'layer2.quirk' output")
    result.stdout.fnmatch_lines([  # test_verification's failure (a batch of 2) is localized too
        "*spec plant, backend onnx vs pytorch, output 'logits', sample 0, shape b2: *",
        f"*localization on sample 0 against pytorch: {node}*",
        "*spec plant: backend onnx vs pytorch, output 'logits': 50 of 50 samples (100.00%) break atol=0.0001, "
        "rtol=0.001 (statistic max); allowed 0 (0.00%)*",
        "*worst samples: *", f"*localization on sample * against pytorch: {node}*"])
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())["specs"]["plant"]["backends"]
    assert report["onnx"]["verification"]["localization"]["sample0-b2"]["pytorch"]["node"] == "/layer2/quirk/Mul"
    entry = report["onnx"]["agreement"]["outputs"]["logits"]
    assert not entry["passed"] and entry["failed"] == 50
    worst = entry["worst"][0]["sample"]
    assert entry["localization"]["sample"] == worst
    assert entry["localization"]["pytorch"]["node"] == "/layer2/quirk/Mul"
    assert entry["localization"]["pytorch"]["last_agreeing"] == "/layer2/conv/Conv_output_0"


def test_one_in_fifty_divergence_passes_verification_but_not_agreement(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "one_in_50")
    result = run(pytester, spec, "-k", "agreement or verification or accuracy", "-v")
    # samples 0 and 1 (verification.num_samples) agree, and a uniform bump leaves the argmax alone
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines([
        "*test_accuracy[[]plant-onnx[]] PASSED*",
        "*backend onnx vs pytorch, output 'logits': 1 of 50 samples (2.00%) break *",
        "*worst samples: 37*", "*#37 max_abs=3 *",
        "*localization on sample 37 against pytorch: first diverging node: '/gate/Add' (Add, module 'gate')*"])
    entry = agreement_report(spec)["outputs"]["logits"]
    assert entry["first_failed"] == 37 and entry["failed"] == 1 and entry["samples"] == 50
    assert "/gate/Greater" in entry["localization"]["pytorch"]["suspects"]


def test_fp16_cancellation_is_measured_as_fp16_on_the_cpu(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "cancel", extra="precision = dict(policies=['fp16'])")
    result = run(pytester, spec, "-k", "agreement")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*backend onnx:fp16 vs pytorch, output 'logits': * of 50 samples*",
        "*against the fp32 graph: first diverging node: '/cancel/Sub' (Sub, module 'cancel')*"])
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())["specs"]["plant"]
    plan = report["fp16_measurement"]["onnx:fp16"]
    assert plan["mode"] == "emulated" and plan["upcast"] > 0
    assert "latency times the native fp16 graph" in plan["measurement"]


def test_clean_project_raises_no_alarm(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "none", extra="precision = dict(policies=['auto', 'fp16'])")
    result = run(pytester, spec, "-k", "agreement or invariance", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_agreement[[]plant-onnx-fp16[]] PASSED*",
                                 "*test_batch_invariance[[]plant-onnx[]] PASSED*"])
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())["specs"]["plant"]
    assert report["backends"]["onnx"]["agreement"]["outputs"]["logits"]["samples"] == 50
    assert report["backends"]["onnx"]["batch_invariance"]["batch"] == 4


def test_bad_agreement_key_is_one_error_naming_it(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "none", extra="verification = dict(limits=dict(fp16=dict(max_failed_rat=0.1)))")
    result = run(pytester, spec, "--collect-only")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*verification.limits.fp16.max_failed_rat*unknown key (did you mean "
                                 "'max_failed_rate'?)*"])


# -- §3 minimal fp32 islands, §6 the remaining planted defects ---------------------------------------------------
INT8_TIGHT = "precision = dict(policies=['int8'], tolerances=dict(int8=dict(atol=0.01, rtol=0.01)))"


def lit(text: str) -> str:
    """``text`` as an fnmatch pattern matching itself ('[' opens a character class there)."""
    return text.replace("[", "[[]")


def islands_report(spec, backend) -> dict:
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())
    return report["specs"]["plant"]["backends"][backend]["precision_islands"]


def test_fp16_islands_search_keeps_the_cancellation_in_fp32_and_its_snippet_passes(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "cancel", extra="precision = dict(policies=['fp16'])")
    result = run(pytester, spec, "-k", "agreement")
    result.assert_outcomes(failed=1)
    option = "precision.fp16.node_block_list=['/cancel/Add', '/cancel/Sub']"
    result.stdout.fnmatch_lines([
        "*fp32 islands for onnx:fp16: keeping 2 of * node(s) in fp32 makes the fp16 graph pass on samples *: "
        + lit("['/cancel/Add', '/cancel/Sub']"),
        lit(f"*apply: --deploy-cfg-options \"{option}\"*"),
        "*trade-off on ONNX Runtime CPU, fp16 emulated: pure fp16: 50 failing of 50 samples, accuracy *; "
        "with the islands: 0 failing of 50 samples, accuracy *"])
    entry = islands_report(spec, "onnx:fp16")
    assert entry["nodes"] == ["/cancel/Add", "/cancel/Sub"] and entry["minimal"]
    assert entry["pure"]["outputs"]["logits"]["failed"] == 50 and entry["mixed"]["passed"]
    assert entry["mixed"]["latency_ms"] > 0 and "accuracy" in entry["mixed"]
    markdown = (spec.parent / "out" / "deploy_report.md").read_text()
    assert "fp32 islands" in markdown and "/cancel/Sub" in markdown
    fixed = run(pytester, spec, "-k", "agreement or verification or accuracy", "--deploy-cfg-options", option)
    fixed.assert_outcomes(passed=7)


def test_int8_activation_outlier_is_caught_localized_and_excluded(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "outlier", extra=INT8_TIGHT)
    result = run(pytester, spec, "-k", "agreement")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*backend onnx:int8 vs pytorch, output 'logits': 50 of 50 samples (100.00%) break atol=0.01, rtol=0.01*",
        "*worst samples: *",
        "*localization on sample * against the fp32 graph: first diverging node: '/outlier/Mul' (Mul, module "
        "'outlier')*",
        "*fp32 islands for onnx:int8: keeping 1 of * node(s) in fp32 *: " + lit("['/outlier/Mul']"),
        lit("*apply: --deploy-cfg-options \"precision.int8.nodes_to_exclude=['/outlier/Mul']\"*")])
    assert islands_report(spec, "onnx:int8")["nodes"] == ["/outlier/Mul"]
    fixed = run(pytester, spec, "-k", "agreement", "--deploy-cfg-options",
                "precision.int8.nodes_to_exclude=['/outlier/Mul']")
    fixed.assert_outcomes(passed=1)


def test_clean_project_passes_int8_under_the_same_tight_tolerance(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "none", extra=INT8_TIGHT)
    run(pytester, spec, "-k", "agreement").assert_outcomes(passed=1)
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())["specs"]["plant"]["backends"]
    assert "precision_islands" not in report["onnx:int8"]  # nothing failed, nothing searched


def test_data_dependent_branch_frozen_by_tracing_is_caught_on_the_sample_that_takes_it(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "frozen_branch")
    result = run(pytester, spec, "-k", "agreement or export_onnx or (verification and b1)")
    result.assert_outcomes(passed=3, failed=1)  # the example input (sample 0) and sample 1 take the traced path
    result.stdout.fnmatch_lines([
        "*backend onnx vs pytorch, output 'logits': 1 of 50 samples (2.00%) break *", "*worst samples: 37*",
        "*localization on sample 37 against pytorch: first diverging node: '/head/Gemm' *the graph output equals "
        "pytorch module 'head' output, so the model changes it afterwards in Python code the graph does not hold "
        + lit("(modules called after it: ['gate', 'branch'])*"),
        "*OnnxExportWarning: plant: ONNX exporter: TracerWarning at *plantmodel.py:*: Converting a tensor to a "
        "Python boolean*"])  # and the export said where (export.fail_on_warnings=True makes it fail there)
    entry = agreement_report(spec)["outputs"]["logits"]
    assert entry["first_failed"] == 37 and entry["failed"] == 1
    assert entry["localization"]["pytorch"]["after_graph"] == ["gate", "branch"]


def test_accuracy_failure_searches_with_the_accuracy_drop_as_criterion(pytester, tmp_path):
    # int8's default tolerance passes the outlier's error, so only the accuracy criterion (a drop allowance no
    # graph can meet) makes every trial fail: the search says the failure is not the policy's arithmetic
    spec = plant_spec(tmp_path / "p", "outlier", extra="precision = dict(policies=['int8'], max_drop=dict(int8=-0.5))")
    result = run(pytester, spec, "-k", "accuracy")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*plant, backend onnx:int8, 50 samples: accuracy dropped *max_drop -0.5000 for policy int8",
        "*fp32 islands for onnx:int8 (verification and accuracy drop): none found: keeping all * candidate node(s) "
        "in fp32 does not pass either*"])
    report = json.loads((spec.parent / "out" / "deploy_report.json").read_text())
    entry = report["specs"]["plant"]["backends"]["onnx:int8"]
    assert entry["precision_islands_accuracy"]["criterion"] == "verification and accuracy drop"
    assert entry["precision_islands_accuracy"]["nodes"] == []


PROFILE = "backend_config = dict(model_inputs=[dict(name='image', min_shape=(2, 3, 8, 8), opt_shape=(4, 3, 8, 8), " \
          "max_shape=(8, 3, 8, 8))])"


def test_one_shape_off_opt_is_verified_and_catches_what_min_opt_max_miss(pytester, tmp_path):
    spec = plant_spec(tmp_path / "p", "pairs", extra=PROFILE)
    result = run(pytester, spec, "-k", "verification", "-v")
    result.assert_outcomes(passed=6, failed=2)  # 2 samples at 2x, 4x, 8x pass; 5x (opt + 1) breaks
    result.stdout.fnmatch_lines(["*test_verification[[]plant-onnx-logits-sample0-4x3x8x8[]] PASSED*",
                                 "*test_verification[[]plant-onnx-logits-sample0-5x3x8x8[]] FAILED*",
                                 "*backend onnx failed on sample 0, shape 5x3x8x8 *"])
    clean = plant_spec(tmp_path / "c", "none", extra=PROFILE)
    run(pytester, clean, "-k", "verification").assert_outcomes(passed=8)


def test_pipeline_stage_is_verified_at_its_profile_shapes_and_off_opt(pytester, tmp_path):
    from .conftest import write_pipeline_spec

    spec = write_pipeline_spec(tmp_path / "p", extra="""
        pipeline = dict(host='tinypipe:Host', kwargs=dict(grid=4), stages=[
            dict(name='encoder', module='encoder', input_names=['items'], output_names=['features'],
                 dynamic_axes={'items': {0: 'num_items'}, 'features': {0: 'num_items'}},
                 model_inputs=[dict(name='items', min_shape=[1, 4], opt_shape=[8, 4], max_shape=[32, 4])]),
            dict(name='head', module='head', input_names=['grid'], output_names=['logits'])])
    """)
    result = run(pytester, spec, "-k", "stage_verification and encoder", "-v")
    result.assert_outcomes(passed=10)  # 2 samples x (recorded, 1, 8, 32 and 9 items)
    result.stdout.fnmatch_lines([
        "*test_stage_verification[[]tinypipe_spec-encoder-onnx-features-sample0[]] PASSED*",
        "*test_stage_verification[[]tinypipe_spec-encoder-onnx-features-sample1-9x4[]] PASSED*"])
