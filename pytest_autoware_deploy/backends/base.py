"""The runner interface every backend implements (Polygraphy's activate / infer / deactivate).

``infer`` takes and returns host numpy arrays keyed by tensor name: what verification and
evaluation compare. ``prepare`` moves inputs to where the backend wants them *before* timing
and returns a zero-argument callable that runs one inference: what latency benchmarks time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Runner(ABC):
    name: str = "runner"

    def __init__(self):
        self.active = False

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc):
        self.deactivate()

    def activate(self):
        if not self.active:
            self._activate()
            self.active = True

    def deactivate(self):
        if self.active:
            self._deactivate()
            self.active = False

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.active:
            raise RuntimeError(f"{self.name}: infer() before activate()")
        return self._infer(feed)

    def prepare(self, feed: dict[str, np.ndarray]):
        """Default: time the host-to-host ``infer``; device backends override to keep data resident."""
        return lambda: self._infer(feed)

    def phases(self, feed):
        """trtexec's split of one inference: ``{"h2d": f, "compute": f, "d2h": f}`` with device buffers
        bound once, each callable one phase. ``None`` for host backends (nothing to split)."""
        return None

    def synchronize(self):
        """Wait for queued device work; host backends have none."""

    @abstractmethod
    def _activate(self): ...

    @abstractmethod
    def _infer(self, feed): ...

    def _deactivate(self):
        pass
