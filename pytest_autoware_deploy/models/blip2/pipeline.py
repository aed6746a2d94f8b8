"""BLIP-2's host code: tokenization, gallery scoring and the greedy decode loop around the three ONNX stages.

``run``: ``vision_qformer`` on the image -> (gallery scoring: ``lm_prefill`` on the projected queries repeated
for every gallery caption, each caption's mean token log-likelihood = generative image-text matching) ->
``lm_prefill`` on the prompt (BOS + prompt words) -> greedy argmax -> ``max_new_tokens - 1`` calls of
``lm_decode`` feeding each step's ``present.*`` back as ``past_key_values.*``. The loop always runs
``max_new_tokens`` steps (EOS is the evaluator's business), so every backend's outputs have one shape:

- ``output_ids (1, K)`` int64: the greedy tokens (compared token by token: first divergent step)
- ``itm_scores (1, C)`` float32: mean log p(caption | image) per gallery caption (retrieval recall@k)
- ``kv_cache (2L, 1, heads, T, head_dim)`` float32: the KV cache after the last step, stacked key/value per
  layer (its element-wise difference between backends is the KV-cache drift over the whole decode)

The same code drives PyTorch, ONNX Runtime or TensorRT through ``call_stage``.
"""

from __future__ import annotations

import re

import numpy as np

from .tokenizer import BOS_ID, PAD_ID, encode

_PRESENT = re.compile(r"^present\.(\d+)\.(key|value)$")


def greedy(logits) -> np.ndarray:
    """Argmax over the vocabulary at the last position -> ``(B, 1)`` int64; ties go to the lowest id."""
    last = np.asarray(logits)[:, -1, :]
    return np.argmax(last, axis=-1).astype(np.int64)[:, None]


def present_to_past(outputs: dict) -> dict:
    """A stage's ``present.{i}.key/value`` outputs as the next step's ``past_key_values.{i}.key/value``."""
    past = {}
    for name, value in outputs.items():
        m = _PRESENT.match(name)
        if m:
            past[f"past_key_values.{m.group(1)}.{m.group(2)}"] = np.asarray(value)
    if not past:
        raise ValueError(f"no present.{{i}}.key/value outputs among {sorted(outputs)}")
    return past


def stacked_cache(past: dict) -> np.ndarray:
    """``past_key_values.*`` -> one ``(2L, B, heads, T, head_dim)`` float32 array, layer by layer, key then value."""
    layers = sorted({int(k.split(".")[1]) for k in past})
    return np.stack([past[f"past_key_values.{i}.{kv}"] for i in layers for kv in ("key", "value")]).astype(np.float32)


def caption_log_likelihood(logits, tokens, num_queries: int, lengths) -> np.ndarray:
    """Mean log p(token) of each caption. ``logits (C, Q + 1 + L, V)`` of ``[queries, BOS, caption]``:
    position ``Q + j`` predicts caption token ``j``; padding (beyond ``lengths``) is left out."""
    logits = np.asarray(logits, np.float64)[:, num_queries:num_queries + tokens.shape[1], :]
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, tokens[..., None], -1)[..., 0]
    valid = np.arange(tokens.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return (np.where(valid, picked, 0.0).sum(1) / np.maximum(valid.sum(1), 1)).astype(np.float32)


class Blip2CaptionPipeline:
    """``run(inputs, call_stage)``: ``inputs['pixel_values'] (1, 3, H, W)`` -> output_ids, itm_scores, kv_cache.

    ``prompt``: words after BOS (captioning: ''; VQA: 'Question: ... Answer:' with a tokenizer that knows them);
    ``candidates``: the retrieval gallery, ``'synthetic'`` (the synthetic grammar's 48 captions), a list of
    captions, or ``None`` (no gallery scoring: ``itm_scores`` is ``(1, 0)``); ``max_candidates`` keeps the first N.
    """

    def __init__(self, max_new_tokens=8, prompt="", candidates="synthetic", max_candidates=None,
                 input_name="pixel_values", eos_in_candidates=True):
        if int(max_new_tokens) < 1:
            raise ValueError(f"Blip2CaptionPipeline: max_new_tokens must be >= 1, got {max_new_tokens}")
        self.max_new_tokens = int(max_new_tokens)
        self.prompt_ids = np.asarray([[BOS_ID] + encode(prompt)], np.int64) if prompt else np.asarray([[BOS_ID]])
        if candidates == "synthetic":
            from .synthetic import all_captions

            candidates = all_captions()
        candidates = list(candidates or [])[:max_candidates]
        self.candidates = candidates
        ends = [2] if eos_in_candidates else []
        rows = [encode(c) + ends for c in candidates]
        self.cand_lengths = np.asarray([len(r) for r in rows], np.int64)
        width = int(self.cand_lengths.max()) if rows else 0
        self.cand_tokens = np.full((len(rows), width), PAD_ID, np.int64)
        for i, r in enumerate(rows):
            self.cand_tokens[i, :len(r)] = r  # right-padded: a causal LM never attends to what follows
        self.input_name = input_name

    def score_candidates(self, lm_inputs, call_stage) -> np.ndarray:
        """``(1, C)`` mean caption log-likelihoods given the image (one batched prefill over the gallery)."""
        if not len(self.candidates):
            return np.zeros((1, 0), np.float32)
        c = len(self.candidates)
        bos = np.full((c, 1), BOS_ID, np.int64)
        feed = {"language_model_inputs": np.ascontiguousarray(np.repeat(lm_inputs, c, axis=0)),
                "input_ids": np.concatenate([bos, self.cand_tokens], 1)}
        logits = call_stage("lm_prefill", feed)["logits"]
        return caption_log_likelihood(logits, self.cand_tokens, lm_inputs.shape[1], self.cand_lengths)[None, :]

    def run(self, inputs, call_stage):
        pixels = np.asarray(inputs[self.input_name], np.float32)
        if pixels.ndim != 4 or pixels.shape[0] != 1:
            raise ValueError(f"Blip2CaptionPipeline: {self.input_name} must be (1, 3, H, W), got {pixels.shape}")
        vis = call_stage("vision_qformer", {"pixel_values": pixels})
        lm_inputs = np.asarray(vis["language_model_inputs"], np.float32)
        scores = self.score_candidates(lm_inputs, call_stage)  # before the prompt pass: the one stage tests record
        out = call_stage("lm_prefill", {"language_model_inputs": lm_inputs, "input_ids": self.prompt_ids})
        token = greedy(out["logits"])
        tokens = [token]
        past = present_to_past(out)
        for _ in range(self.max_new_tokens - 1):
            out = call_stage("lm_decode", {"input_ids": token, **past})
            token = greedy(out["logits"])
            tokens.append(token)
            past = present_to_past(out)
        return {"output_ids": np.concatenate(tokens, 1), "itm_scores": scores, "kv_cache": stacked_cache(past)}
