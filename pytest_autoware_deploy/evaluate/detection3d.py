"""nuScenes-style 3D detection metrics on BEV centre distance (what AWML's T4Metric reports).

Per class and per centre-distance threshold (0.5, 1, 2, 4 m), predictions of all frames sorted by
score are greedily matched to the nearest free ground truth of the same class and frame; precision
is interpolated on 101 recall points and AP is the mean precision above ``min_precision`` for recalls
above ``min_recall`` (nuScenes' ``calc_ap``). True-positive errors at the 2 m threshold: ATE (BEV
centre distance), ASE (1 - aligned 3D IoU), AOE (yaw difference), AVE (velocity L2), each the
cumulative mean interpolated along confidence and averaged over the recall range the class
reaches (``calc_tp``). ``NDS = (5 mAP + sum(1 - min(1, mTP))) / 9``: nuScenes' weights over the four TP
errors (no attributes here, so no mAAE).

The maths is nuscenes-devkit 1.2.0's ``nuscenes.eval.detection.algo.accumulate / calc_ap / calc_tp``
line for line, on arrays instead of ``EvalBox`` objects: the devkit's package import pulls OpenCV and
its pinned numpy<2, which this project cannot install, so ``tests/evaluate/test_detection3d.py``
checks this code against the devkit itself (installed with ``--no-deps``) on the same boxes.

Outputs per sample (batch of one): ``{"boxes_3d" (M, 9) [x, y, z_bottom, l, w, h, yaw, vx, vy],
"scores" (M,), "labels" (M,)}``; target: ``{"boxes_3d" (n, 9), "labels" (n,), optional
"num_points" (n,) (ground truth without lidar points is not evaluated, as in nuScenes), "token"}``.
"""

from __future__ import annotations

import numpy as np

from .base import pyplot, save_figure

TP_METRICS = ("trans_err", "scale_err", "orient_err", "vel_err")
TP_NAMES = {"trans_err": "mATE", "scale_err": "mASE", "orient_err": "mAOE", "vel_err": "mAVE"}
NELEM = 101


def cummean(x):
    """nuScenes' cumulative mean ignoring NaN."""
    if len(x) == 0:
        return np.ones(0)
    sums = np.nancumsum(x.astype(float))
    counts = np.cumsum(~np.isnan(x))
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts != 0)


def yaw_diff(gt_yaw, pred_yaw, period=2 * np.pi):
    diff = (gt_yaw - pred_yaw + period / 2) % period - period / 2
    diff = np.where(diff > np.pi, diff - 2 * np.pi, diff)
    return np.abs(diff)


def scale_iou(gt_lwh, pred_lwh):
    """IoU of two boxes of these sizes with the same centre and orientation."""
    inter = np.prod(np.minimum(gt_lwh, pred_lwh))
    return inter / (np.prod(gt_lwh) + np.prod(pred_lwh) - inter)


def no_predictions():
    return {"precision": np.zeros(NELEM), "recall": np.linspace(0, 1, NELEM), "confidence": np.zeros(NELEM),
            **{k: np.ones(NELEM) for k in TP_METRICS}}


def accumulate(gts, preds, dist_th):
    """One class at one threshold. ``gts``: list per frame of (n, 9) boxes; ``preds``: list per frame of
    ((m, 9) boxes, (m,) scores). Returns nuScenes' DetectionMetricData fields as arrays."""
    npos = sum(len(g) for g in gts)
    if npos == 0:
        return no_predictions()
    frame = np.concatenate([np.full(len(p[1]), f) for f, p in enumerate(preds)]) if preds else np.zeros(0, int)
    boxes = np.concatenate([p[0] for p in preds]).reshape(-1, 9) if preds else np.zeros((0, 9))
    confs = np.concatenate([p[1] for p in preds]).astype(np.float64) if preds else np.zeros(0)
    order = np.lexsort((np.arange(len(confs)), confs))[::-1]  # sorted((score, index)) reversed, as the devkit
    taken = [np.zeros(len(g), bool) for g in gts]
    tp, fp, conf = [], [], []
    match = {k: [] for k in TP_METRICS + ("conf",)}
    for i in order:
        f, box = frame[i], boxes[i]
        gt = gts[f]
        dist = np.linalg.norm(gt[:, :2] - box[:2], axis=1) if len(gt) else np.zeros(0)
        dist = np.where(taken[f], np.inf, dist)
        j = int(np.argmin(dist)) if len(dist) else -1
        if j >= 0 and dist[j] < dist_th:
            taken[f][j] = True
            tp.append(1)
            fp.append(0)
            g = gt[j]
            match["trans_err"].append(dist[j])
            match["vel_err"].append(np.linalg.norm(g[7:9] - box[7:9]))
            match["scale_err"].append(1 - scale_iou(g[3:6], box[3:6]))
            match["orient_err"].append(float(yaw_diff(g[6], box[6])))
            match["conf"].append(confs[i])
        else:
            tp.append(0)
            fp.append(1)
        conf.append(confs[i])
    if not match["trans_err"]:
        return no_predictions()
    tp, fp, conf = np.cumsum(tp).astype(float), np.cumsum(fp).astype(float), np.asarray(conf)
    prec, rec = tp / (fp + tp), tp / float(npos)
    rec_interp = np.linspace(0, 1, NELEM)
    out = {"precision": np.interp(rec_interp, rec, prec, right=0), "confidence": np.interp(rec_interp, rec, conf, right=0),
           "recall": rec_interp}
    match_conf = np.asarray(match["conf"])
    for k in TP_METRICS:
        tmp = cummean(np.asarray(match[k], dtype=float))
        out[k] = np.interp(out["confidence"][::-1], match_conf[::-1], tmp[::-1])[::-1]
    return out


def calc_ap(md, min_recall=0.1, min_precision=0.1):
    prec = np.copy(md["precision"])[round(100 * min_recall) + 1:]
    prec -= min_precision
    prec[prec < 0] = 0
    return float(np.mean(prec)) / (1.0 - min_precision)


def calc_tp(md, metric, min_recall=0.1):
    first = round(100 * min_recall) + 1
    nonzero = np.nonzero(md["confidence"])[0]
    last = nonzero[-1] if len(nonzero) else 0
    return 1.0 if last < first else float(np.mean(md[metric][first:last + 1]))


class Detection3DEvaluator:
    """nuScenes detection metrics with BEV centre-distance matching; ``primary_metric`` 'mAP', 'NDS' or
    'AP_<class>' (e.g. 'AP_car'). ``eval_range``: metres from the sensor (BEV), per class (dict) or one
    number, beyond which ground truth and predictions are ignored (nuScenes' class_range)."""

    def __init__(self, class_names, primary_metric="mAP", dist_thresholds=(0.5, 1.0, 2.0, 4.0), dist_th_tp=2.0,
                 min_recall=0.1, min_precision=0.1, eval_range=None, max_boxes_per_sample=500, num_examples=3,
                 example_score_thr=0.3):
        self.class_names = list(class_names)
        allowed = ("mAP", "NDS") + tuple(f"AP_{c}" for c in self.class_names)
        if primary_metric not in allowed:
            raise TypeError(f"primary_metric {primary_metric!r} is not one of {', '.join(allowed)}")
        self.primary_metric = primary_metric
        self.dist_thresholds = [float(t) for t in dist_thresholds]
        self.dist_th_tp, self.min_recall, self.min_precision = float(dist_th_tp), min_recall, min_precision
        rng = eval_range if isinstance(eval_range, dict) else {c: eval_range for c in self.class_names}
        self.eval_range = {c: (float(rng[c]) if rng.get(c) is not None else np.inf) for c in self.class_names}
        self.max_boxes = max_boxes_per_sample
        self.num_examples, self.example_score_thr = num_examples, example_score_thr
        self.frames = []  # (gt boxes, gt labels, pred boxes, pred scores, pred labels)

    def update(self, outputs: dict, target):
        targets = target if isinstance(target, (list, tuple)) else [target]
        if len(targets) != 1:
            raise ValueError(f"detection3d evaluates one sweep per sample, got {len(targets)} targets")
        t = targets[0]
        try:
            boxes = np.asarray(outputs["boxes_3d"], np.float64).reshape(-1, 9)
            scores = np.asarray(outputs["scores"], np.float64).reshape(-1)
            labels = np.asarray(outputs["labels"]).astype(np.int64).reshape(-1)
        except KeyError as exc:
            raise ValueError(f"detection3d needs outputs boxes_3d (M, 9), scores, labels; missing {exc} "
                             f"(got {sorted(outputs)})") from None
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"detection3d: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels")
        keep = np.argsort(-scores, kind="stable")[:self.max_boxes]
        gt_boxes = np.asarray(t["boxes_3d"], np.float64).reshape(-1, 9)
        gt_labels = np.asarray(t["labels"]).astype(np.int64).reshape(-1)
        if "num_points" in t:
            has_pts = np.asarray(t["num_points"]).reshape(-1) > 0
            gt_boxes, gt_labels = gt_boxes[has_pts], gt_labels[has_pts]
        self.frames.append((gt_boxes, gt_labels, boxes[keep], scores[keep], labels[keep]))

    def _in_range(self, boxes, name):
        return np.hypot(boxes[:, 0], boxes[:, 1]) <= self.eval_range[name]

    def compute(self) -> dict:
        result = {"num_samples": len(self.frames), "class_names": self.class_names,
                  "num_gt": int(sum(len(f[0]) for f in self.frames)),
                  "num_detections": int(sum(len(f[2]) for f in self.frames)), "per_class": {}, "per_class_detail": {}}
        aps, tps = [], {k: [] for k in TP_METRICS}
        for c, name in enumerate(self.class_names):
            gts, preds = [], []
            for gb, gl, pb, ps, pl in self.frames:
                g = gb[gl == c]
                gts.append(g[self._in_range(g, name)])
                sel = pl == c
                inside = self._in_range(pb[sel], name)
                preds.append((pb[sel][inside], ps[sel][inside]))
            entry = {}
            if not sum(len(g) for g in gts):
                result["per_class"][name] = result["per_class_detail"][name] = None  # no ground truth: not in the means
                continue
            for th in self.dist_thresholds:
                md = accumulate(gts, preds, th)
                entry[f"AP@{th:g}m"] = calc_ap(md, self.min_recall, self.min_precision)
                if th == self.dist_th_tp:
                    for k in TP_METRICS:
                        entry[TP_NAMES[k][1:]] = calc_tp(md, k, self.min_recall)
            entry["AP"] = float(np.mean([entry[f"AP@{th:g}m"] for th in self.dist_thresholds]))
            entry["num_gt"] = int(sum(len(g) for g in gts))
            result["per_class_detail"][name] = entry  # AP per threshold, ATE/ASE/AOE/AVE, num_gt
            result["per_class"][name] = result[f"AP_{name}"] = entry["AP"]  # the report's per-class column
            aps.append(entry["AP"])
            for k in TP_METRICS:
                if TP_NAMES[k][1:] in entry:
                    tps[k].append(entry[TP_NAMES[k][1:]])
        result["mAP"] = float(np.mean(aps)) if aps else 0.0
        for k in TP_METRICS:
            result[TP_NAMES[k]] = float(np.mean(tps[k])) if tps[k] else 1.0
        result["NDS"] = (5 * result["mAP"] + sum(1 - min(1.0, result[TP_NAMES[k]]) for k in TP_METRICS)) / 9.0
        for name in self.class_names:
            result.setdefault(f"AP_{name}", 0.0)
        return result

    def plot(self, result: dict, directory, title: str) -> list:
        """Bird's-eye views of the first frames: ground truth dashed, detections above example_score_thr."""
        frames = self.frames[:self.num_examples]
        if not frames:
            return []
        plt = pyplot()

        fig, axes = plt.subplots(1, len(frames), figsize=(4 * len(frames), 4.2), squeeze=False)
        colors = plt.get_cmap("tab10")
        for ax, (gb, gl, pb, ps, pl) in zip(axes[0], frames):
            for boxes, labels, style in ((gb, gl, "--"), (pb[ps >= self.example_score_thr], pl[ps >= self.example_score_thr], "-")):
                for box, label in zip(boxes, labels):
                    corners = bev_corners(box)
                    ax.plot(*np.vstack([corners, corners[:1]]).T, style, lw=1, color=colors(int(label) % 10))
            ax.plot(0, 0, "k^", ms=4)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=6)
        handles = [plt.Line2D([], [], color=colors(c % 10), label=n) for c, n in enumerate(self.class_names)]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7)
        fig.suptitle(f"{title}: {self.primary_metric} {result[self.primary_metric]:.4f} (BEV, metres; dashed: "
                     "ground truth)", fontsize=9)
        return [save_figure(fig, directory, "bev", title)]


def bev_corners(box):
    """The four BEV corners of ``[x, y, z, l, w, h, yaw, ...]``."""
    x, y, l, w, yaw = box[0], box[1], box[3], box[4], box[6]
    c, s = np.cos(yaw), np.sin(yaw)
    local = np.array([[l, w], [l, -w], [-l, -w], [-l, w]]) / 2
    return local @ np.array([[c, s], [-s, c]]) + [x, y]
