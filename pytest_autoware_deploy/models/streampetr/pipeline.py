"""StreamPETR's host code, as Autoware's autoware_camera_streampetr runs it around its three graphs.

Per keyframe: ``extract_img_feat`` (images) and ``position_embedding`` (``img2lidar`` = the inverse of
``lidar2img``, computed here in float64) -> ``pts_head_memory`` with the ego pose and the memory queue
-> NMS-free decoding (top-k over queries x classes, score threshold, range filter) and an optional
circle NMS. The host owns the memory: ``post_memory_*[:, :memory_len]`` of a frame is the next frame's
``pre_memory_*``; the timestamp is shifted here in float64 (AWML keeps it out of TensorRT): the graph
sees each entry's age in seconds. Poses and times are taken relative to the sequence's first frame
(float32-safe). At a sequence start the memory is reset to zeros, as Autoware does.

Why the state is keyed by ``call_stage``: the harness binds one ``call_stage`` per backend, so each
backend carries its own memory. A frame asked out of order (a verification case for frame 3 before
frames 0-2 ran on that backend) rebuilds the memory by replaying its sequence from the start (the
loader's ``frames_of``), so a frame's outputs never depend on what ran before it: the same frame gives
the same result on every backend, in any order.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..lidar_common.boxes import circle_nms, empty_detections, yaw_from_heading
from .dataset import frames_of

MEMORY = ("embedding", "reference_point", "timestamp", "egopose", "velo")


def decode_streampetr(cls_scores, bbox_preds, pc_range, max_num=100, score_threshold=0.1, nms_radius=None,
                      post_max_size=None):
    """NMSFreeCoder on the last decoder layer: ``(L, 1, Q, C)`` scores, ``(L, 1, Q, 10)`` boxes -> detections."""
    cls = np.asarray(cls_scores, np.float64)[-1, 0]
    bbox = np.asarray(bbox_preds, np.float64)[-1, 0]
    scores = 1.0 / (1.0 + np.exp(-cls))
    flat = scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:max_num]
    s, labels, q = flat[order], order % cls.shape[1], order // cls.shape[1]
    b = bbox[q]
    dims = np.exp(b[:, 3:6])
    yaw, heading = yaw_from_heading(b[:, 6], b[:, 7])
    boxes = np.concatenate([b[:, 0:2], b[:, 2:3] - dims[:, 2:3] / 2, dims, yaw[:, None], b[:, 8:10]], 1)
    lo, hi = np.asarray(pc_range[:3]), np.asarray(pc_range[3:])
    keep = (s >= score_threshold) & np.all((b[:, :3] >= lo) & (b[:, :3] <= hi), 1)
    boxes, s, labels, heading = boxes[keep], s[keep], labels[keep], heading[keep]
    if not len(s):
        return empty_detections()
    idx = np.arange(len(s))
    if nms_radius:
        idx = circle_nms(boxes[:, :2], s, nms_radius, post_max_size)
    elif post_max_size:
        idx = idx[:post_max_size]
    return {"boxes_3d": boxes[idx].astype(np.float32), "scores": s[idx].astype(np.float32),
            "labels": labels[idx].astype(np.int64), "heading_norm": heading[idx].astype(np.float32)}


class _Memory:
    def __init__(self, split_key, start, origin_inv, t0, tensors):
        self.split_key, self.start, self.frame = split_key, start, start - 1
        self.origin_inv, self.t0, self.tensors = origin_inv, t0, tensors


class StreamPETRPipeline:
    """``run(inputs, call_stage)`` -> ``boxes_3d (M, 9)``, ``scores``, ``labels`` for one keyframe."""

    # what the sequence verification (verify/sequence.py) compares frame by frame: the stateful stage's outputs
    sequence_check = dict(stage="pts_head_memory", frames=6, sequences=2,
                          outputs=["all_cls_scores", "all_bbox_preds", "post_memory_embedding",
                                   "post_memory_reference_point", "post_memory_velo"])

    def __init__(self, memory_len=1024, embed_dims=256, pc_range=(-61.2, -61.2, -10.0, 61.2, 61.2, 10.0), max_num=100,
                 score_threshold=0.1, nms_radius=None, post_max_size=None, sequence_check=None):
        self.memory_len, self.embed_dims = int(memory_len), int(embed_dims)
        self.decode_kwargs = dict(pc_range=[float(v) for v in pc_range], max_num=int(max_num),
                                  score_threshold=float(score_threshold), nms_radius=nms_radius,
                                  post_max_size=post_max_size)
        if sequence_check:
            self.sequence_check = {**type(self).sequence_check, **sequence_check}
        self._state = weakref.WeakKeyDictionary()  # call_stage -> _Memory

    def selection_margin(self, head_outputs) -> tuple[float, float]:
        """The memory update's top-k (``update_memory``: queries ranked by their best class score of the last
        layer, ``topk = len(post_memory) - memory_len`` kept, in order): the smallest gap between neighbours
        among the first topk + 1 ranked logits, and the logit there. For the sequence verification's ties."""
        logits = np.asarray(head_outputs["all_cls_scores"], np.float64)[-1, 0].max(-1)
        k = np.asarray(head_outputs["post_memory_embedding"]).shape[1] - self.memory_len
        ranked = np.sort(logits)[::-1][:k + 1]
        if len(ranked) < 2:
            return float("inf"), 0.0
        gaps = ranked[:-1] - ranked[1:]
        i = int(np.argmin(gaps))
        return float(gaps[i]), float(ranked[i])

    def sequences(self, samples):
        """The sequences of ``samples`` (index lists in time order), for the sequence verification."""
        if hasattr(samples, "sequences"):
            return samples.sequences()
        out: dict[int, list[int]] = {}
        for i in range(len(samples)):
            out.setdefault(int(samples[i]["inputs"]["sequence_start"][0]), []).append(i)
        return list(out.values())

    def reset(self, inputs, start):
        m, c = self.memory_len, self.embed_dims
        zeros = {"embedding": np.zeros((1, m, c), np.float32), "reference_point": np.zeros((1, m, 3), np.float32),
                 "timestamp": np.zeros((1, m, 1), np.float64), "egopose": np.zeros((1, m, 4, 4), np.float32),
                 "velo": np.zeros((1, m, 2), np.float32)}
        origin = np.asarray(inputs["ego2global"], np.float64).reshape(4, 4)
        return _Memory(int(inputs["split_key"][0]), start, np.linalg.inv(origin), float(inputs["timestamp"][0]), zeros)

    def step(self, inputs, call_stage, mem: _Memory) -> dict:
        """One keyframe through the three graphs; updates ``mem`` in place; returns the head's outputs."""
        pose = mem.origin_inv @ np.asarray(inputs["ego2global"], np.float64).reshape(4, 4)
        t = float(inputs["timestamp"][0]) - mem.t0
        lidar2img = np.asarray(inputs["lidar2img"], np.float64)
        img = np.asarray(inputs["img"], np.float32)
        feats = call_stage("extract_img_feat", {"img": img})["img_feats"]
        pe = call_stage("position_embedding", {
            "img_metas_pad": np.array([img.shape[-2], img.shape[-1], 3], np.float32),
            "intrinsics": np.asarray(inputs["intrinsics"], np.float32),
            "img2lidar": np.linalg.inv(lidar2img).astype(np.float32)})
        tensors = mem.tensors
        head = call_stage("pts_head_memory", {
            "x": feats, "pos_embed": pe["pos_embed"], "cone": pe["cone"],
            "data_ego_pose": pose[None].astype(np.float32), "data_ego_pose_inv": np.linalg.inv(pose)[None].astype(np.float32),
            "pre_memory_embedding": tensors["embedding"], "pre_memory_reference_point": tensors["reference_point"],
            "pre_memory_timestamp": (tensors["timestamp"] + t).astype(np.float32),
            "pre_memory_egopose": tensors["egopose"], "pre_memory_velo": tensors["velo"]})
        m = self.memory_len
        new = {k: np.ascontiguousarray(np.asarray(head[f"post_memory_{k}"])[:, :m]) for k in MEMORY}
        new["timestamp"] = new["timestamp"].astype(np.float64) - t
        mem.tensors, mem.frame = new, int(inputs["frame_index"][0])
        return head

    def memory_for(self, inputs, call_stage) -> _Memory:
        """The memory this backend carries into this frame: reset at a sequence start, continued after the
        previous frame, else rebuilt by replaying the sequence up to this frame."""
        frame, start = int(inputs["frame_index"][0]), int(inputs["sequence_start"][0])
        key = int(inputs["split_key"][0])
        if frame == start:
            return self.reset(inputs, start)
        mem = self._state.get(call_stage)
        if mem is not None and mem.split_key == key and mem.start == start and mem.frame == frame - 1:
            return mem
        samples = frames_of(key)
        mem = self.reset(samples.inputs(start), start)
        for j in range(start, frame):
            self.step(samples.inputs(j), call_stage, mem)
        return mem

    def run(self, inputs, call_stage):
        mem = self.memory_for(inputs, call_stage)
        head = self.step(inputs, call_stage, mem)
        try:
            self._state[call_stage] = mem
        except TypeError:  # a call_stage that cannot be weakly referenced keeps no state: replays each time
            pass
        return decode_streampetr(head["all_cls_scores"], head["all_bbox_preds"], **self.decode_kwargs)
