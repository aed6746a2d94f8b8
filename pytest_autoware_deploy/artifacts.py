"""One spec's artifacts, each computed on first use and kept for the session: its samples and example
inputs, the PyTorch model, the ONNX export, the graph of each precision policy and the artifact (engine)
each backend builds from it, with what the report records about each.

A mixin of session.SpecState (which also runs them: runners.RunnerPool); the backends' builders reach the
graphs and engines through it.
"""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path

from .backends.registry import get as get_backend
from .data import batch_inputs, load_samples
from .errors import DeployError
from .export.onnx import OnnxArtifact, export_onnx, load_onnx
from .export.pytorch_model import build_model, export_device
from .spec.model import BackendId


class SpecArtifacts:
    def __init__(self, spec, store, rebuild=False):
        self.spec = spec
        self.store = store
        self.rebuild = rebuild
        self._policies: dict[str, object] = {}
        self._artifacts: dict[str, dict] = {}
        self._backend_artifacts: dict[str, object] = {}
        self._engines: dict[str, dict] = {}

    # -- inputs ---------------------------------------------------------------------------------
    @cached_property
    def samples(self):
        return load_samples(self.spec)

    def example_inputs(self):
        idx = self.spec.cfg["runtime_io"]["sample_idx"]
        if not 0 <= idx < len(self.samples):
            from .errors import SpecError
            raise SpecError(self.spec.file, "runtime_io.sample_idx", f"{idx} is out of range: the data has "
                            f"{len(self.samples)} samples")
        opt = {i.name: i.opt_shape for i in self.spec.inputs if i.opt_shape}
        return batch_inputs(self.spec, self.samples, idx, opt or None)

    def batch_inputs_at(self, batch: int):
        """The example inputs with the batch dimension set to ``batch`` (consecutive samples stacked)."""
        example = self.example_inputs()
        shapes = {name: (batch,) + tuple(arr.shape[1:]) for name, arr in example.items()}
        return batch_inputs(self.spec, self.samples, self.spec.cfg["runtime_io"]["sample_idx"], shapes)

    # -- artifacts ------------------------------------------------------------------------------
    @cached_property
    def model(self):
        """The PyTorch reference, on the CPU, never moved: runners and the export on other devices copy it."""
        if self.spec.export_mode == "none":
            raise DeployError(f"{self.spec.name}: export.mode='none' has no PyTorch model")
        return build_model(self.spec)

    @cached_property
    def onnx(self) -> OnnxArtifact:
        if self.spec.export_mode == "none":
            start = time.perf_counter()
            path = Path(self.spec.cfg["runtime_io"]["onnx_file"])
            load_onnx(path)  # a corrupted file fails here with one clear message
            art = OnnxArtifact(path, path, key="external", built=False)
        else:
            model, example = self.model, self.example_inputs()
            start = time.perf_counter()  # the export step: key, cache look-up, export if needed, publish
            art = export_onnx(self.spec, model, example, rebuild=self.rebuild)
        self._record_artifact("onnx", art.built, start)
        device = export_device(self.spec) if self.spec.export_mode != "none" else None
        self.store.set_spec_info(self.spec.name, self.spec.work_dir, onnx_file=str(art.published),
                                 export_key=art.key, onnx_rebuilt=art.built, export_device=device)
        return art

    def policy_onnx(self, policy: str):
        """The ONNX graph a precision policy runs (cached per policy)."""
        if policy not in self._policies:
            from .export.precision import derive

            base, samples = self.onnx.path, self.samples
            start = time.perf_counter()
            art = derive(self.spec, base, policy, samples, rebuild=self.rebuild)
            if art.key != "base":  # a graph of its own (fp16, int8), cached like the export
                self._record_artifact(f"onnx:{policy}", art.built, start)
            self._policies[policy] = art
            if art.info:
                self.store.set_spec_info(self.spec.name, self.spec.work_dir,
                                         **{f"precision_{policy}": {"onnx": str(art.path), **art.info}})
        return self._policies[policy]

    def _record_artifact(self, name: str, built: bool, start: float):
        """``artifacts`` in the report's spec info: per artifact, whether this run built it and the
        seconds its step took (a cache hit costs the key's hashing and the look-up)."""
        self._artifacts[name] = {"built": built, "export_s": round(time.perf_counter() - start, 4)}
        self.store.set_spec_info(self.spec.name, self.spec.work_dir, artifacts=dict(self._artifacts))

    # -- artifacts of backends (engines) ------------------------------------------------------------
    def artifact(self, backend: BackendId):
        """The artifact ``backend`` runs (a TensorRT engine), built or reused by content key once per
        (backend, policy, device) and recorded in the report: ``engines`` in the spec info, with what
        the artifact's ``summary()`` says (bytes, build seconds, compute capabilities, layers)."""
        entry = get_backend(backend.base)
        if not entry.has_artifact:
            raise DeployError(f"{self.spec.name}: backend {backend.base} builds no artifact (it runs "
                              f"{'the model' if entry.needs_model else 'the ONNX graph'} itself)")
        device = self.device_of(backend)
        key = f"{backend.base}:{backend.policy_name}@{device}"
        if key not in self._backend_artifacts:
            start = time.perf_counter()
            art = entry.artifact(self, backend, device)
            name = f"{entry.artifact_kind or 'artifact'}:{backend.base}:{backend.policy_name}"
            self._record_artifact(name, art.built, start)
            summary = getattr(art, "summary", None)
            if callable(summary):
                self._engines[f"{backend.base}:{backend.policy_name}"] = summary()
                self.store.set_spec_info(self.spec.name, self.spec.work_dir, engines=dict(self._engines))
            self._backend_artifacts[key] = art
        return self._backend_artifacts[key]
