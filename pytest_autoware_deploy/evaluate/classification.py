"""Classification accuracy, per-class accuracy and confusion matrix, accumulated sample by sample."""

from __future__ import annotations

import numpy as np

from .base import pyplot, save_figure


class ClassificationEvaluator:
    primary_metric = "accuracy"

    def __init__(self, class_names=None, num_classes=None, output_name=None):
        if class_names is None and num_classes is None:
            raise TypeError("give class_names or num_classes")
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.output_name = output_name
        n = len(self.class_names)
        self.confusion = np.zeros((n, n), dtype=np.int64)

    def update(self, outputs: dict, target):
        logits = outputs[self.output_name] if self.output_name else next(iter(outputs.values()))
        logits = np.asarray(logits)
        pred = logits.reshape(-1, logits.shape[-1]).argmax(-1)
        target = np.asarray(target).reshape(-1)
        if target.shape != pred.shape:
            raise ValueError(f"target shape {target.shape} does not match {pred.shape[0]} predictions")
        np.add.at(self.confusion, (target.astype(np.int64), pred), 1)

    def compute(self) -> dict:
        cm = self.confusion
        total = int(cm.sum())
        per_class = {}
        for i, name in enumerate(self.class_names):
            support = int(cm[i].sum())
            per_class[name] = float(cm[i, i] / support) if support else None
        return {
            "accuracy": float(np.trace(cm) / total) if total else 0.0,
            "num_samples": total,
            "per_class": per_class,
            "confusion_matrix": cm.tolist(),
            "class_names": self.class_names,
        }

    def plot(self, result: dict, directory, title: str) -> list:
        plt = pyplot()

        cm = np.asarray(result["confusion_matrix"])
        names = result["class_names"]
        fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 1.2 * len(names) + 2.5))
        im = ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title}\naccuracy {result['accuracy']:.4f}")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        return [save_figure(fig, directory, "confusion_matrix", title)]
