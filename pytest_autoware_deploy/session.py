"""What happens once per pytest session: per-spec lazy state shared by every fixture and test.

Each spec's model, samples, exports, runners, reference outputs and evaluation results are
computed on first use and kept, so a verification test per (backend, output, sample, shape)
costs one inference per (backend, sample, shape), not one per test. The artifacts (samples, model,
ONNX, policy graphs, engines) are artifacts.py's job and the runners runners.py's; this module
holds the pipeline stages, the verification outputs and the evaluations.
"""

from __future__ import annotations

import os
from functools import cached_property

import numpy as np

from .artifacts import SpecArtifacts
from .backends.inputs import as_numpy
from .data import batch_inputs, check_sample, prefetched
from .errors import DeployError, InferenceError
from .evaluate.base import make_evaluator
from .evaluate.shards import Shard, ShardRecorder, shard_file
from .export.cache import file_digest
from .progress import progress
from .pipeline import RecordedSamples, make_host, run_host
from .policies import max_drop_for
from .runners import RunnerPool
from .report.store import ReportStore
from .spec.model import BackendId
from .spec.stages import stage_names, stage_spec
from .verify.agreement_state import on_evaluated_sample
from .verify.fp16_state import measuring_runner


class SpecState(SpecArtifacts, RunnerPool):
    """One spec's session state: its artifacts (SpecArtifacts), its runner pool (RunnerPool), and here the
    pipeline stages, the verification outputs cache and the evaluations."""

    def __init__(self, spec, store: ReportStore, rebuild=False):
        SpecArtifacts.__init__(self, spec, store, rebuild)
        RunnerPool.__init__(self)
        self._outputs: dict[tuple, dict] = {}
        self._evaluations: dict[str, dict] = {}
        self._stages: dict[str, StageState] = {}
        self._recorded: dict[int, dict] = {}
        store.set_spec_info(spec.name, spec.work_dir, spec_file=str(spec.file), **spec.report_info())

    def close(self):
        self.close_runners()
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
                feeds[name] = {k: np.array(as_numpy(v), copy=True) for k, v in feed.items()}
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
        runner = measuring_runner(self, backend)  # fp16 on an EP that upcasts it: the emulated graph (issue 13)
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
        shard = Shard.parse(ecfg["shard"], self.spec.file) if ecfg["shard"] else None
        indices = shard.indices(n) if shard else range(n)
        recorder = self._shard_recorder(backend, shard, n) if shard else None
        loaded = prefetched(self.samples, indices, ecfg["prefetch"])
        what = f"evaluating {self.spec.name} on {backend}" + (f" (shard {shard}: {len(indices)} of {n})" if shard else "")
        try:
            for i, sample in progress(loaded, len(indices), what):
                check_sample(self.spec, sample, i)
                if "target" not in sample:
                    raise DeployError(f"{self.spec.name}: sample {i} has no 'target'; evaluation needs one")
                outputs = self.infer(backend, sample["inputs"], f"evaluation sample {i}")
                on_evaluated_sample(self, backend, i, sample["inputs"], outputs)  # streaming agreement (issue 13)
                evaluator.update(outputs, sample["target"])
                if recorder is not None:
                    recorder.add(i, outputs, sample["target"])
                if ecfg["verbose"]:
                    from .progress import emit
                    emit(f"[deploy] {backend} sample {i}: target={sample['target']}")
        except BaseException:
            if recorder is not None:
                recorder.abort()
            raise
        result = dict(evaluator.compute())
        result["primary_metric"] = evaluator.primary_metric
        if recorder is not None:
            recorder.close(result)
            result["shard"] = {"shard": str(shard), "samples": len(indices), "of": n, "file": str(recorder.path)}
        plot = getattr(evaluator, "plot", None)
        if callable(plot):
            fig_dir = self.spec.work_dir / self.spec.name / "figures"
            paths = plot(result, fig_dir, f"{self.spec.name}/{backend}")
            result["figures"] = [os.path.relpath(p, self.spec.work_dir) for p in paths]
        self.store.set_evaluation(self.spec.name, str(backend), result)
        return result


    def _shard_recorder(self, backend: BackendId, shard: Shard, n: int) -> ShardRecorder:
        """Where this shard's per-sample records go, with what the merge checks: the same N, sample count,
        evaluator and evaluated artifact (the runner's file, else the checkpoint) in every shard."""
        path = getattr(self.runner(backend), "path", None) or self.spec.cfg["model"].get("checkpoint")
        artifact = file_digest(path) if path and os.path.isfile(path) else None
        header = {"spec": self.spec.name, "spec_file": str(self.spec.file), "backend": str(backend),
                  "index": shard.index, "count": shard.count, "num_samples": n, "artifact": artifact,
                  "evaluation": {k: v for k, v in self.spec.cfg["evaluation"].items() if k != "shard"},
                  # test_accuracy's and test_gate_accuracy's limits, checked by the merge on all shards
                  "checks": {"min_accuracy": self.spec.cfg["evaluation"]["thresholds"]["min_accuracy"],
                             "max_drop": max_drop_for(self.spec, backend.policy_name),
                             "drop_reference": (str(BackendId("pytorch", backend.device))
                                                if backend.base != "pytorch" and self.spec.export_mode != "none"
                                                else None),
                             "gate_max_drop": self.spec.cfg["gate"]["max_accuracy_drop"]}}
        return ShardRecorder(shard_file(self.spec.work_dir, self.spec.name, str(backend), shard), header)


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
