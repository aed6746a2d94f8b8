"""One spec's runner pool: one activated runner per backend under test (per ``str(BackendId)``), made by
the backend's registered ``runner`` (a pipeline: the host code calling each stage's runners), closed at
the end of the session.

A mixin of session.SpecState, which gives it ``spec``, ``host`` and ``_stage_caller``.
"""

from __future__ import annotations

from .backends.registry import get as get_backend
from .pipeline import PipelineRunner
from .spec.model import BackendId
from .spec.stages import is_pipeline


class RunnerPool:
    def __init__(self):
        self._runners: dict[str, object] = {}

    def device_of(self, backend: BackendId) -> str:
        """The device ``backend`` runs on: its ``@device``, else the spec's, as the backend maps it
        (TensorRT runs a cpu spec's engines on cuda:0)."""
        return get_backend(backend.base).run_device(backend.device or self.spec.device)

    def runner(self, backend: BackendId):
        key = str(backend)
        if key not in self._runners:
            if is_pipeline(self.spec):
                runner = PipelineRunner(self.host, self.spec, self._stage_caller(backend), key)
            else:
                runner = get_backend(backend.base).runner(self, backend, self.device_of(backend))
            runner.activate()
            self._runners[key] = runner
        return self._runners[key]

    def close_runners(self):
        for runner in self._runners.values():
            runner.deactivate()
        self._runners.clear()
