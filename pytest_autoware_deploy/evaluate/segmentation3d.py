"""Point-cloud semantic segmentation metrics (mmdet3d's ``seg_eval``, AWML's ``T4SegMetric`` core), accumulated
frame by frame: a confusion matrix over every labelled point, then per-class IoU ``TP / (TP + FP + FN)``,
mIoU (mean over the classes that occur in the ground truth or the predictions), overall point accuracy and
mean class accuracy. Points labelled ``ignore_index`` count nowhere.

``update(outputs, target)``: ``outputs[output_name]`` holds the per-point labels (a pipeline's ``labels``);
without it the argmax of the per-point scores (``pred_probs`` / ``seg_logit``, ``(N, C)``) is taken. ``target``
is ``{"labels": (N,)}`` or the array. ``plot()`` draws the row-normalised confusion matrix with the IoUs.
"""

from __future__ import annotations

import numpy as np

from .base import pyplot, save_figure


class Segmentation3DEvaluator:
    def __init__(self, class_names, ignore_index=None, output_name="labels", primary_metric="mIoU"):
        self.class_names = list(class_names)
        if not self.class_names:
            raise ValueError("class_names: expected the segmentation classes, got none")
        allowed = ["mIoU", "accuracy", "mAcc"] + [f"IoU_{c}" for c in self.class_names]
        if primary_metric not in allowed:
            raise ValueError(f"primary_metric {primary_metric!r}: one of {', '.join(allowed)}")
        self.primary_metric = primary_metric
        self.ignore_index = ignore_index
        self.output_name = output_name
        n = len(self.class_names)
        self.confusion = np.zeros((n, n), dtype=np.int64)
        self.frames = 0

    def _predictions(self, outputs):
        if self.output_name in outputs:
            return np.asarray(outputs[self.output_name]).reshape(-1).astype(np.int64)
        scores = [np.asarray(v) for v in outputs.values() if np.asarray(v).ndim == 2]
        if not scores:
            raise ValueError(f"outputs {sorted(outputs)} hold no '{self.output_name}' and no (N, C) score array")
        return scores[0].argmax(-1).astype(np.int64)

    def update(self, outputs: dict, target):
        pred = self._predictions(outputs)
        gt = np.asarray(target["labels"] if isinstance(target, dict) else target).reshape(-1).astype(np.int64)
        if gt.shape != pred.shape:
            raise ValueError(f"{len(gt)} labelled points but {len(pred)} predictions (one label per point expected)")
        n = len(self.class_names)
        keep = gt != self.ignore_index if self.ignore_index is not None else np.ones(len(gt), bool)
        bad = keep & ((gt < 0) | (gt >= n))
        if bad.any():
            raise ValueError(f"ground-truth label {int(gt[bad][0])} outside the {n} classes {self.class_names} "
                             f"(and not ignore_index={self.ignore_index})")
        pred = np.clip(pred, 0, n - 1)
        self.confusion += np.bincount(gt[keep] * n + pred[keep], minlength=n * n).reshape(n, n)
        self.frames += 1

    def compute(self) -> dict:
        cm = self.confusion.astype(np.float64)
        tp = np.diag(cm)
        union = cm.sum(0) + cm.sum(1) - tp
        support = cm.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
            acc_cls = np.where(support > 0, tp / support, np.nan)
        total = cm.sum()
        per_class = {c: (None if np.isnan(v) else float(v)) for c, v in zip(self.class_names, iou)}
        out = {
            "mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
            "accuracy": float(tp.sum() / total) if total else 0.0,
            "mAcc": float(np.nanmean(acc_cls)) if np.isfinite(acc_cls).any() else 0.0,
            **{f"IoU_{c}": (v if v is not None else 0.0) for c, v in per_class.items()},
            "per_class_iou": per_class,
            "num_samples": self.frames,
            "num_frames": self.frames,
            "num_points": int(total),
            "confusion_matrix": self.confusion.tolist(),
            "class_names": self.class_names,
        }
        return out

    def plot(self, result: dict, directory, title: str) -> list:
        plt = pyplot()
        cm = np.asarray(result["confusion_matrix"], np.float64)
        names = result["class_names"]
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3.5, 1.2 * len(names) + 2.5))
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        labels = [f"{n}\nIoU {result['per_class_iou'][n]:.3f}" if result["per_class_iou"][n] is not None else n
                  for n in names]
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(names)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true (row-normalised)")
        ax.set_title(f"{title}\nmIoU {result['mIoU']:.4f}, point accuracy {result['accuracy']:.4f}")
        for (i, j), v in np.ndenumerate(norm):
            ax.text(j, i, f"{v:.3f}\n{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.5 else "black")
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        return [save_figure(fig, directory, "confusion", title)]
