"""Samples of the synthetic captioning split: ``pixel_values`` as BLIP-2's image processor makes them.

BLIP-2's processor (``BlipImageProcessor``) rescales to [0, 1] and normalizes with the OpenAI CLIP mean and
std; the target keeps the caption, its token ids (EOS-terminated) and its index in the retrieval gallery.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DeployError
from .synthetic import all_captions
from .tokenizer import EOS_ID, encode

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def preprocess(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float32 normalized."""
    x = images.astype(np.float32) / 255.0
    return np.ascontiguousarray(((x - CLIP_MEAN) / CLIP_STD).transpose(0, 3, 1, 2))


def read_split(data_file):
    path = Path(data_file)
    if not path.is_file():
        raise DeployError(f"BLIP-2 data file {path} does not exist (make data-blip2, or "
                          "python -m pytest_autoware_deploy.models.blip2.synthetic --out DIR)")
    with np.load(path, allow_pickle=False) as z:
        if "images" not in z or "captions" not in z:
            raise DeployError(f"{path}: expected arrays 'images' and 'captions', got {sorted(z.files)}")
        return z["images"], [str(c) for c in z["captions"]]


def load_samples(data_file=None, info_pkl=None, input_name="pixel_values", limit=None):
    """``[{"inputs": {input_name: (1, 3, H, W)}, "target": {caption, caption_ids, candidate_index}}]``."""
    images, captions = read_split(data_file or info_pkl)
    gallery = {c: i for i, c in enumerate(all_captions())}
    n = len(captions) if limit is None else min(int(limit), len(captions))
    pixels = preprocess(images[:n])
    return [{"inputs": {input_name: pixels[i:i + 1]},
             "target": {"caption": captions[i], "caption_ids": np.asarray(encode(captions[i]) + [EOS_ID], np.int64),
                        "candidate_index": gallery.get(captions[i], -1)}} for i in range(n)]
