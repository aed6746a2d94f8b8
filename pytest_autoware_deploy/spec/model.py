"""``DeploySpec``: a validated spec plus the derived facts every stage needs (names, shapes, dirs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

@dataclass(frozen=True)
class BackendId:
    """A backend under test: its registered name (backends/registry.py), optional precision policy and device.

    Written ``onnx``, ``onnx:fp16``, ``onnx@cuda:0`` or ``onnx:int8@cuda:0``; policy None means 'auto'
    (the graph as exported), which keeps the seed's plain backend names in ids and reports.
    """

    base: str
    device: str | None = None
    policy: str | None = None

    def __str__(self):
        text = self.base if self.policy is None else f"{self.base}:{self.policy}"
        return text if self.device is None else f"{text}@{self.device}"

    @property
    def policy_name(self) -> str:
        return self.policy or "auto"

    @property
    def test_id(self):
        text = self.base if self.policy is None else f"{self.base}-{self.policy}"
        return text if self.device is None else f"{text}-{self.device.replace(':', '')}"


@dataclass(frozen=True)
class InputSpec:
    """One model input: name, dtype and the shapes to export/verify at (min/opt/max or a single shape)."""

    name: str
    dtype: str
    opt_shape: tuple | None
    min_shape: tuple | None = None
    max_shape: tuple | None = None

    def declared_shapes(self):
        shapes = [s for s in (self.min_shape, self.opt_shape, self.max_shape) if s is not None]
        return list(dict.fromkeys(tuple(s) for s in shapes))


@dataclass
class DeploySpec:
    name: str
    file: Path
    cfg: dict[str, Any]
    work_dir: Path
    backends: list[BackendId]
    device: str
    inputs: list[InputSpec] = field(default_factory=list)
    # where the file came from when it is not a native spec: its AWML generation, the keys accepted but not
    # used here (with why), mappings whose meaning shifts; see spec/dialects
    dialect: dict | None = None
    # (reference, backend) pairs from an AWML file's verification scenarios; empty: every backend vs reference
    verify_pairs: tuple = ()

    @property
    def dir(self) -> Path:
        return self.file.parent

    def section(self, name) -> dict:
        return self.cfg[name]

    @property
    def export_mode(self) -> str:
        return self.cfg["export"]["mode"]

    @property
    def input_names(self) -> list[str]:
        return list(self.cfg["onnx_config"]["input_names"])

    @property
    def output_names(self) -> list[str]:
        return list(self.cfg["onnx_config"]["output_names"])

    @property
    def reference(self) -> str:
        return self.cfg["verification"]["reference"]

    def artifact_dir(self) -> Path:
        return self.work_dir / self.name

    def verify_targets(self) -> list[BackendId]:
        """The backends ``test_verification`` checks, each against ``reference_for`` it."""
        if self.verify_pairs:
            return list(dict.fromkeys(t for _, t in self.verify_pairs))
        return [b for b in self.backends if str(b) != self.reference]

    def reference_for(self, backend: BackendId) -> BackendId:
        for ref, target in self.verify_pairs:
            if target == backend:
                return ref
        return BackendId(self.reference)

    def report_info(self) -> dict:
        """Spec-level facts for deploy_report.json (the AWML generation the file was read as)."""
        return {"config_source": self.dialect} if self.dialect else {}
