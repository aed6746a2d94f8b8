"""Every bundled spec's own engine test (``test_export_tensorrt``, collected by the plugin) builds a real
TensorRT-RTX engine for each pipeline stage and each precision policy the spec lists, through the backend
registry, when the spec asks for ``tensorrt_rtx``. Same small synthetic data and work dir as
test_tensorrt_rtx.py, so the engines that module built (or this one) are served from the content-keyed cache."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed here (no 'tensorrt_rtx' module; "
                                           "pip install tensorrt-rtx): no real engine can be built")

from pytest_autoware_deploy.cases import spec_policies  # noqa: E402
from pytest_autoware_deploy.spec.stages import stage_names  # noqa: E402

from ..test_plugin import run  # noqa: E402
from .test_tensorrt_rtx import FRAMES, PARSER_REFUSED, SPECS, bundled, dataset_dir, plugin_refused  # noqa: E402,F401 (bundled: the shared fixture)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=PARSER_REFUSED[n]))
                                  if n in PARSER_REFUSED else n for n in SPECS])
def test_the_specs_own_engine_test_builds_every_stage_and_policy(pytester, bundled, name):  # noqa: F811
    spec = bundled(name).spec  # writes (once) the synthetic split the shared work dir's exports were made from
    root = spec.work_dir.parent
    key, path = (root / "data" / dataset_dir(name) / ".done").read_text().split("\n")
    result = run(pytester, f"--deploy-config={REPO / 'deploy_specs' / f'{name}.py'}", "--deploy-work-dir",
                 str(spec.work_dir), "--deploy-cfg-options", f"{key}={path}",
                 f"precision.int8.calibration_samples={FRAMES}", "--deploy-backends=tensorrt_rtx",
                 "-k", "test_export_tensorrt", "-v", "-rs")
    expected = [f"{stage + '-' if stage else ''}tensorrt_rtx{'' if p == 'auto' else '-' + p}"
                for stage in (stage_names(spec) or [None]) for p in spec_policies(spec)]
    refused = [c for c in expected if plugin_refused(name, c.partition("tensorrt_rtx")[0].rstrip("-") or None)]
    if refused:  # no engine without Autoware's plugins: a skip that says so, for every such case
        result.stdout.fnmatch_lines(["*SKIPPED*autoware_tensorrt_plugins*"])
        assert result.parseoutcomes().get("skipped") == len(refused)
    for case in expected:  # in pytest's order of the parameters, not this list's
        if case not in refused:
            result.stdout.fnmatch_lines([f"*test_export_tensorrt[[]{spec.name}-{case}[]] PASSED*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == len(expected) - len(refused) and outcomes.get("failed", 0) == 0
