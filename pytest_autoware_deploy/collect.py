"""Collection: a spec file given with ``--deploy-config`` becomes a test module whose tests are the suite's
(suite.py), minus those the spec does not ask for; any node finds its spec through ``spec_of_node``.

Why a module of its own: the suite parametrizes by the spec of its module and must not import the
plugin (which collects the suite); both import this.
"""

from __future__ import annotations

import importlib

import pytest

from .cases import engine_backends
from .context import deploy_session
from .spec.stages import is_pipeline
from .verify.sequence import is_sequential


class DeploySpecModule(pytest.Module):
    """A spec file collected as a test module: the tests are the suite's, the spec is ``self.spec``."""

    spec = None

    def _getobj(self):
        return importlib.import_module("pytest_autoware_deploy.suite")

    def collect(self):
        skip = set() if engine_backends(self.spec) else {"test_export_tensorrt"}
        if deploy_session(self.config).baseline is None:
            skip |= set(GATE_TESTS)
        # a pipeline is exported stage by stage, and its batch is the host code's business
        skip |= {"test_export_onnx", "test_throughput"} if is_pipeline(self.spec) else set(STAGE_TESTS)
        if not is_sequential(self.spec):  # only a pipeline whose host carries state across frames
            skip.add("test_sequence_verification")
        return [c for c in super().collect() if getattr(c, "originalname", c.name) not in skip]


GATE_TESTS = ("test_gate_accuracy", "test_gate_latency")
STAGE_TESTS = ("test_stage_export_onnx", "test_stage_verification", "test_stage_latency")


def spec_of_node(node):
    while node is not None:
        if isinstance(node, DeploySpecModule):
            return node.spec
        node = node.parent
    return None
