"""Multi-stage pipelines: host code that drives several exported stages (CenterPoint's two ONNX files).

The spec's ``pipeline.host`` names a class; ``Class(**pipeline.kwargs).run(inputs, call_stage)``
turns one sample's inputs into the final outputs, calling ``call_stage(stage_name, feed)`` for
every stage (voxelization, scatter and decoding stay on the host, where Autoware runs them).
The harness passes a ``call_stage`` bound to one backend, so the same host code runs the PyTorch
reference, ONNX Runtime or TensorRT, and records each stage's real inputs for stage-level tests.
"""

from __future__ import annotations

import numpy as np

from .backends.base import Runner
from .errors import InferenceError, SpecError
from .spec.resolve import call_from_spec


def make_host(spec):
    """Instantiate ``pipeline.host`` with ``pipeline.kwargs``; one clear error if it cannot be used."""
    pcfg = spec.cfg["pipeline"]
    host = call_from_spec(pcfg["host"], pcfg["kwargs"], spec, "pipeline.host", "pipeline.kwargs")
    if not callable(getattr(host, "run", None)):
        raise SpecError(spec.file, "pipeline.host", f"{pcfg['host']} has no run(inputs, call_stage) method")
    return host


def run_host(host, spec, inputs, call_stage) -> dict:
    """``host.run`` with its result checked: a dict holding the spec's output names, as numpy arrays."""
    out = host.run(inputs, call_stage)
    if not isinstance(out, dict):
        raise InferenceError(f"{spec.name}: {spec.cfg['pipeline']['host']}.run returned {type(out).__name__}, "
                             "expected a dict of output name -> array")
    missing = [n for n in spec.output_names if n not in out]
    if missing:
        raise InferenceError(f"{spec.name}: {spec.cfg['pipeline']['host']}.run returned no {missing} "
                             f"(onnx_config.output_names); it returned {sorted(out)}")
    return {k: np.asarray(v) for k, v in out.items()}


class PipelineRunner(Runner):
    """A whole pipeline on one backend: host code plus that backend's stage runners.

    ``infer`` is the deployed pipeline end to end (host arrays in, host arrays out), so the
    evaluation, end-to-end verification and end-to-end latency (voxelization included: the part
    users forget) use it like any runner.
    """

    def __init__(self, host, spec, call_stage, backend: str):
        super().__init__()
        self.host, self.spec, self.call_stage = host, spec, call_stage
        self.name = f"pipeline {spec.name} on {backend}"

    def _activate(self):
        pass

    def _input_metadata(self):  # the host code takes what the spec declares (undeclared: any dtype/shape)
        from .backends.inputs import spec_input_metadata

        return spec_input_metadata(self.spec)

    def _infer(self, feed):
        return run_host(self.host, self.spec, feed, self.call_stage)


class RecordedSamples:
    """Stage ``name``'s inputs, as the reference pipeline fed them, for sample ``i`` of the spec's data.

    Indexable like any data loader's result, so stage export, verification, fp16 range checks and
    int8 calibration use real intermediate tensors (e.g. the voxels of real scenes).
    """

    def __init__(self, recorder, count: int, stage: str):
        self.recorder, self.count, self.stage = recorder, count, stage

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        if not -self.count <= i < self.count:
            raise IndexError(i)
        return {"inputs": self.recorder(i % self.count)[self.stage]}
