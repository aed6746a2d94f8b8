"""Linear-probe accuracy of a backend's ``image_feats``: what the swin spec's accuracy means.

The graph ends at image features (AWML's image-backbone ONNX), which have no accuracy of their own. The
probe gives them one: global pooling over H/8 x W/8 (``pool`` in the probe file: ``mean``, or ``max``),
then a fixed linear layer (``probe_file``: ``weight`` [K, C], ``bias`` [K], ``class_names``, ``pool``)
trained with the demo backbone on the synthetic shapes (``train.py``). Every backend is scored with the same probe, so the accuracy and its drop against pytorch
measure how much class information the deployed features kept; the probe itself is not part of any graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...evaluate.classification import ClassificationEvaluator


class LinearProbeEvaluator:
    primary_metric = "accuracy"

    def __init__(self, probe_file, output_name="image_feats", class_names=None):
        self.probe_file = Path(probe_file)
        if not self.probe_file.is_file():
            raise FileNotFoundError(f"linear probe not found: {self.probe_file} (evaluation.kwargs.probe_file)")
        with np.load(self.probe_file) as z:
            self.weight, self.bias = z["weight"].astype(np.float64), z["bias"].astype(np.float64)
            names = [str(n) for n in z["class_names"]] if "class_names" in z else None
            self.pool = str(z["pool"]) if "pool" in z else "mean"
        if self.pool not in ("mean", "max"):
            raise ValueError(f"{self.probe_file}: pool {self.pool!r}, expected 'mean' or 'max'")
        names = list(class_names) if class_names else names
        if names is not None and len(names) != self.weight.shape[0]:
            raise ValueError(f"{self.probe_file}: {self.weight.shape[0]} classes but {len(names)} class names")
        self.output_name = output_name
        self._cls = ClassificationEvaluator(class_names=names, num_classes=self.weight.shape[0])

    def logits(self, feats) -> np.ndarray:
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 4 or feats.shape[1] != self.weight.shape[1]:
            raise ValueError(f"output '{self.output_name}': expected [N, {self.weight.shape[1]}, H, W] features "
                             f"for the probe {self.probe_file.name}, got shape {feats.shape}")
        pooled = feats.max(axis=(2, 3)) if self.pool == "max" else feats.mean(axis=(2, 3))
        return pooled @ self.weight.T + self.bias

    def update(self, outputs: dict, target):
        if self.output_name not in outputs:
            raise KeyError(f"output '{self.output_name}' not among the backend's outputs {sorted(outputs)}")
        self._cls.update({"logits": self.logits(outputs[self.output_name])}, target)

    def compute(self) -> dict:
        return self._cls.compute()

    def plot(self, result, directory, title):
        return self._cls.plot(result, directory, title)
