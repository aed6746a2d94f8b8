"""Issue 13's proof, through the plugin (pytester): defects planted in a small user project's exported graph
are caught by test_agreement with a message naming the output, the sample and the ONNX node; a clean
project raises no alarm and every dynamic-batch backend gets a batch-invariance test.

Each defect lives in the export only (the eager model stays right), as export bugs do: a middle layer's
different computation, a data-dependent branch that fires on one sample in fifty, and an fp16 cancellation
that ONNX Runtime's CPU EP would hide by computing fp16 in fp32.
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


class Net(nn.Module):
    def __init__(self, plant="none"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.layer1 = Block(8)
        self.layer2 = Block(8, quirk=plant == "middle")
        self.cancel = Cancel() if plant == "cancel" else nn.Identity()
        self.head = nn.Linear(8, 3)
        self.gate = Gate(plant == "one_in_50")

    def forward(self, image):
        x = self.layer2(self.layer1(self.stem(image)))
        return self.gate(image, self.head(self.cancel(x.mean((2, 3)))))


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
