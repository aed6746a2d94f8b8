"""What happens once per pytest session: per-spec lazy state shared by every fixture and test.

Each spec's model, samples, exports, runners, reference outputs and evaluation results are
computed on first use and kept, so a verification test per (backend, output, sample, shape)
costs one inference per (backend, sample, shape), not one per test.
"""

from __future__ import annotations

import os
import time
from functools import cached_property
from pathlib import Path

import numpy as np

from .backends.inputs import spec_input_metadata
from .backends.onnxruntime import OnnxRuntimeRunner
from .backends.pytorch import PyTorchRunner
from .data import batch_inputs, check_sample, load_samples, prefetched
from .distributed import cpu_threads_per_worker
from .errors import BackendUnavailable, DeployError, InferenceError
from .evaluate.base import make_evaluator
from .export.onnx import OnnxArtifact, export_onnx, load_onnx
from .export.pytorch_model import build_model, export_device
from .progress import progress
from .pipeline import PipelineRunner, RecordedSamples, make_host, run_host
from .report.store import ReportStore
from .spec.model import BackendId
from .spec.stages import is_pipeline, stage_names, stage_spec


class SpecState:
    def __init__(self, spec, store: ReportStore, rebuild=False):
        self.spec = spec
        self.store = store
        self.rebuild = rebuild
        self._runners: dict[str, object] = {}
        self._outputs: dict[tuple, dict] = {}
        self._evaluations: dict[str, dict] = {}
        self._policies: dict[str, object] = {}
        self._artifacts: dict[str, dict] = {}
        self._stages: dict[str, StageState] = {}
        self._recorded: dict[int, dict] = {}
        store.set_spec_info(spec.name, spec.work_dir, spec_file=str(spec.file), **spec.report_info())

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

    # -- runners --------------------------------------------------------------------------------
    def device_of(self, backend: BackendId) -> str:
        return backend.device or self.spec.device

    def runner(self, backend: BackendId):
        key = str(backend)
        if key not in self._runners:
            device = self.device_of(backend)
            if is_pipeline(self.spec):
                runner = PipelineRunner(self.host, self.spec, self._stage_caller(backend), key)
            elif backend.base == "pytorch":
                runner = PyTorchRunner(self.model, self.spec.input_names, self.spec.output_names, device,
                                       input_metadata=spec_input_metadata(self.spec))
            elif backend.base == "onnx":
                graph = self.policy_onnx(backend.policy_name).path
                runner = OnnxRuntimeRunner(graph, device, tf32=_tf32_for(backend.policy_name),
                                          intra_op_threads=cpu_threads_per_worker() or 0)
            else:
                from .export.tensorrt import build_engine

                graph = self.policy_onnx(backend.policy_name).path
                engine = build_engine(self.spec, graph, policy=backend.policy_name, rebuild=self.rebuild)
                from .backends.tensorrt import TensorRTRunner

                runner = TensorRTRunner(engine.path, device if device.startswith("cuda") else "cuda:0")
            runner.activate()
            self._runners[key] = runner
        return self._runners[key]

    def close(self):
        for runner in self._runners.values():
            runner.deactivate()
        self._runners.clear()
        for stage in self._stages.values():
            stage.close()

    # -- pipelines (several stages with host code between them) -----------------------------------
    @cached_property
    def host(self):
        return make_host(self.spec)

    def stage(self, name: str) -> "StageState":
        if name not in self._stages:  # checked once per stage, not on every call of the host's hot loop
            if name not in stage_names(self.spec):
                raise InferenceError(f"{self.spec.name}: {self.spec.cfg['pipeline']['host']} called stage {name!r}; "
                                     f"declared stages: {stage_names(self.spec)}")
            self._stages[name] = StageState(self, name)
        return self._stages[name]

    def _stage_caller(self, backend: BackendId):
        def call_stage(name, feed):
            return self.stage(name).infer(backend, feed, f"stage {name}")
        return call_stage

    def recorded(self, sample_idx: int) -> dict:
        """Each stage's inputs when the reference (PyTorch) pipeline runs sample ``sample_idx``."""
        if sample_idx not in self._recorded:
            feeds = {}
            reference = self._stage_caller(BackendId("pytorch"))

            def record(name, feed):
                feeds[name] = {k: np.array(v, copy=True) for k, v in feed.items()}
                return reference(name, feed)

            run_host(self.host, self.spec, self.samples[sample_idx]["inputs"], record)
            missing = [n for n in stage_names(self.spec) if n not in feeds]
            if missing:
                raise InferenceError(f"{self.spec.name}: the host never called stage(s) {missing} on sample "
                                     f"{sample_idx}")
            self._recorded[sample_idx] = feeds
        return self._recorded[sample_idx]

    def infer(self, backend: BackendId, feed, where: str) -> dict:
        """Run one inference; a backend's own exception becomes one InferenceError naming the case."""
        runner = self.runner(backend)
        try:
            return runner.infer(feed)
        except DeployError:
            raise
        except Exception as exc:
            shapes = {k: tuple(v.shape) for k, v in feed.items()}
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise InferenceError(f"{self.spec.name}: backend {backend} failed on {where} with inputs {shapes}: "
                                 f"{type(exc).__name__}: {first}") from None

    # -- verification ---------------------------------------------------------------------------
    def case_inputs(self, sample_idx, shape_case):
        first = self.samples[sample_idx % len(self.samples)]["inputs"]
        return batch_inputs(self.spec, self.samples, sample_idx, shape_case.resolve(self.spec, first))

    def case_outputs(self, backend: BackendId, sample_idx, shape_case) -> dict:
        key = (str(backend), sample_idx, shape_case.id)
        if key not in self._outputs:
            feed = self.case_inputs(sample_idx, shape_case)
            self._outputs[key] = self.infer(backend, feed, f"sample {sample_idx}, shape {shape_case.id}")
        return self._outputs[key]

    # -- evaluation -----------------------------------------------------------------------------
    def evaluation(self, backend: BackendId) -> dict:
        key = str(backend)
        if key not in self._evaluations:
            self._evaluations[key] = self._evaluate(backend)
        return self._evaluations[key]

    def _evaluate(self, backend: BackendId) -> dict:
        ecfg = self.spec.cfg["evaluation"]
        self.runner(backend)  # an unavailable backend is reported before any progress starts
        evaluator = make_evaluator(self.spec)
        n = len(self.samples) if ecfg["num_samples"] < 0 else min(ecfg["num_samples"], len(self.samples))
        loaded = prefetched(self.samples, range(n), ecfg["prefetch"])
        for i, sample in progress(loaded, n, f"evaluating {self.spec.name} on {backend}"):
            check_sample(self.spec, sample, i)
            if "target" not in sample:
                raise DeployError(f"{self.spec.name}: sample {i} has no 'target'; evaluation needs one")
            outputs = self.infer(backend, sample["inputs"], f"evaluation sample {i}")
            evaluator.update(outputs, sample["target"])
            if ecfg["verbose"]:
                from .progress import emit
                emit(f"[deploy] {backend} sample {i}: target={sample['target']}")
        result = dict(evaluator.compute())
        result["primary_metric"] = evaluator.primary_metric
        plot = getattr(evaluator, "plot", None)
        if callable(plot):
            fig_dir = self.spec.work_dir / self.spec.name / "figures"
            paths = plot(result, fig_dir, f"{self.spec.name}/{backend}")
            result["figures"] = [os.path.relpath(p, self.spec.work_dir) for p in paths]
        self.store.set_evaluation(self.spec.name, str(backend), result)
        return result


class StageState(SpecState):
    """One stage of a pipeline: its submodule, the inputs the reference pipeline fed it, its own
    exports and runners. Everything else (export cache, policies, verification) is SpecState's."""

    def __init__(self, parent: SpecState, name: str):
        self.parent = parent
        super().__init__(stage_spec(parent.spec, name), parent.store, parent.rebuild)

    @cached_property
    def samples(self):
        return RecordedSamples(self.parent.recorded, len(self.parent.samples), self.spec.cfg["stage"]["name"])

    @cached_property
    def model(self):
        import operator

        path = self.spec.cfg["stage"]["module"]
        try:
            module = operator.attrgetter(path)(self.parent.model)
        except AttributeError:
            from .errors import SpecError
            raise SpecError(self.spec.file, "pipeline.stages", f"stage {self.spec.cfg['stage']['name']!r}: the model "
                            f"has no submodule {path!r}") from None
        return module.eval()


def _tf32_for(policy: str):
    """TF32 on CUDA: allowed by 'fp32_tf32', forbidden by 'strongly_typed', ORT's default otherwise."""
    return {"fp32_tf32": True, "strongly_typed": False}.get(policy)


class DeploySession:
    """All specs of this pytest run, by name."""

    def __init__(self, specs, rebuild=False, baseline=None):
        self.store = ReportStore()
        self.baseline = baseline  # the stored report's "specs" when --deploy-baseline is given
        self.specs = {s.name: s for s in specs}
        self.rebuild = rebuild
        self._states: dict[str, SpecState] = {}

    def state(self, spec_name: str) -> SpecState:
        if spec_name not in self._states:
            self._states[spec_name] = SpecState(self.specs[spec_name], self.store, self.rebuild)
        return self._states[spec_name]

    def close(self):
        for state in self._states.values():
            state.close()
