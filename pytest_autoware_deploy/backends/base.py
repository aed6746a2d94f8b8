"""The runner interface every backend implements (Polygraphy's activate / infer / deactivate).

``infer`` takes and returns host numpy arrays keyed by tensor name: what verification and
evaluation compare. ``prepare`` moves inputs to where the backend wants them *before* timing
and returns a zero-argument callable that runs one inference: what latency benchmarks time.

Every runner declares its inputs (``get_input_metadata``: name, dtype, shape with dynamic dims);
``infer``, ``prepare`` and ``phases`` check the feed against it here, once, before the backend's
own ``_infer`` / ``_prepare`` / ``_phases`` sees it (see ``inputs.check_feed``: safe casts, one
error naming the input, expected and given dtype/shape otherwise).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .inputs import TensorMeta, as_numpy, check_feed, check_tensor_feed, is_tensor


class Runner(ABC):
    name: str = "runner"

    def __init__(self):
        self.active = False
        self._metadata: dict[str, TensorMeta] | None = None

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc):
        self.deactivate()

    def activate(self):
        if not self.active:
            self._metadata = None
            self._activate()
            self.active = True

    def deactivate(self):
        if self.active:
            self._deactivate()
            self.active = False
            self._metadata = None

    def get_input_metadata(self) -> dict[str, TensorMeta]:
        """Input name -> TensorMeta, in the runner's input order (read once per activation)."""
        self._require_active("get_input_metadata()")
        if self._metadata is None:
            self._metadata = {m.name: m for m in self._input_metadata()}
        return self._metadata

    def check_inputs(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feed as the backend takes it (safely cast), or one InferenceError."""
        return check_feed(self.get_input_metadata(), feed, self.describe())

    def describe(self) -> str:
        """How errors name this runner."""
        return self.name

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host arrays in, host arrays out. A feed of torch tensors (a pipeline's host code running on the
        device) gets torch tensors back, on the feed's device: device backends keep them there (no host
        round trip between stages), the others copy through the host."""
        self._require_active("infer()")
        if any(is_tensor(v) for v in feed.values()):
            return self._infer_tensors(check_tensor_feed(self.get_input_metadata(), feed, self.describe()))
        return self._infer(self.check_inputs(feed))

    def prepare(self, feed: dict[str, np.ndarray]):
        """A zero-argument callable running one inference on ``feed``, inputs checked and placed beforehand."""
        self._require_active("prepare()")
        return self._prepare(self.check_inputs(feed))

    def phases(self, feed):
        """trtexec's split of one inference: ``{"h2d": f, "compute": f, "d2h": f}`` with device buffers
        bound once, each callable one phase. ``None`` for host backends (nothing to split)."""
        self._require_active("phases()")
        return self._phases(self.check_inputs(feed))

    def graph_call(self, feed):
        """A zero-argument callable replaying ``feed``'s inference as a captured CUDA graph (launch overhead
        gone), or a string saying why this runner cannot: what ``benchmark.cuda_graph`` times beside the
        plain call."""
        self._require_active("graph_call()")
        return self._graph_call(self.check_inputs(feed))

    def with_artifact(self, path) -> "Runner | None":
        """A runner of the same backend and settings on another artifact (the baseline's ONNX or engine, for
        the re-timed latency gate); None where the backend has no file artifact to swap."""
        return None

    def synchronize(self):
        """Wait for queued device work; host backends have none."""

    def _require_active(self, what):
        if not self.active:
            raise RuntimeError(f"{self.name}: {what} before activate()")

    @abstractmethod
    def _activate(self): ...

    @abstractmethod
    def _input_metadata(self) -> list[TensorMeta]:
        """The inputs this runner takes (called once the runner is active)."""

    @abstractmethod
    def _infer(self, feed): ...

    def _prepare(self, feed):
        """Default: time the host-to-host ``_infer``; device backends override to keep data resident."""
        return lambda: self._infer(feed)

    def _phases(self, feed):
        return None

    def _graph_call(self, feed):
        return f"{self.name}: no CUDA graph capture for this backend"

    def _infer_tensors(self, feed):
        """Default for a tensor feed: through the host (one copy each way), outputs on the feed's device."""
        import torch

        device = next(v.device for v in feed.values() if is_tensor(v))
        out = self._infer(self.check_inputs({k: as_numpy(v) for k, v in feed.items()}))
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in out.items()}

    def _deactivate(self):
        pass
