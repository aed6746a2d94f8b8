"""GLIP samples: the image as mmdet's preprocessor makes it and the caption as the host's BERT encodes it.

The host-side part of GLIP runs here, once per sample: ``BertTokenizer`` + the positive map (``text.py``) and
HF's ``BertModel`` (``language_model`` of the checkpoint, or of ``build_model(seed=...)`` without one), so
each backend's graph gets the same ``text_feats``. Inputs: ``img (1, 3, H, W)`` float32 normalized RGB,
``text_feats (1, T, L)``, ``text_masks (1, T)`` float32, ``positive_map (1, P, T)``. Target:
``{"image_id", "boxes" (n, 4) x1y1x2y2, "labels" (n,) phrase index, "caption"}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DeployError
from .model import MEAN, STD
from .text import encode_caption, tokenizer

KEYS = ("images", "captions", "boxes", "labels")


def read_split(data_file):
    path = Path(data_file)
    if not path.is_file():
        raise DeployError(f"GLIP data file {path} does not exist (make data-glip, or "
                          "python -m pytest_autoware_deploy.models.glip.synthetic --out DIR)")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in KEYS if k not in z]
        if missing:
            raise DeployError(f"{path}: expected arrays {list(KEYS)}, missing {missing} (has {sorted(z.files)})")
        return z["images"], [str(c) for c in z["captions"]], z["boxes"], z["labels"]


def preprocess(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB -> ``(N, 3, H, W)`` float32, mmdet's mean/std."""
    x = (images.astype(np.float32) - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def text_encoder(bert_config=None, checkpoint=None, seed=0):
    """The host's BERT: ``language_model.*`` of ``checkpoint``, else ``build_model(seed=seed)``'s."""
    import torch

    from .model import build_language_model

    lm = build_language_model(bert_config, seed)
    if checkpoint:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        prefix = "language_model."
        sub = {k[len(prefix):]: v.float() for k, v in state.items() if k.startswith(prefix)}
        if not sub:
            raise DeployError(f"{checkpoint}: no 'language_model.*' weights (the host's BERT)")
        lm.load_state_dict(sub, strict=True)
    return lm.eval()


def encode_texts(lm, captions, max_text_len):
    """Captions -> (text_feats (N, T, L), text_masks (N, T), positive_map (N, P, T)), float32."""
    import torch

    tok = tokenizer()
    enc = [encode_caption(tok, c.split(" . "), max_text_len) for c in captions]
    ids = torch.from_numpy(np.stack([e[0] for e in enc]))
    mask = torch.from_numpy(np.stack([e[1] for e in enc]))
    with torch.no_grad():
        feats = lm(ids, mask)["hidden"].float().numpy()
    return feats, mask.numpy().astype(np.float32), np.stack([e[2] for e in enc])


def resize(images, boxes, image_size):
    """mmdet's ``FixScaleResize`` without keeping the ratio: images to ``(h, w)``, boxes scaled with them."""
    from PIL import Image

    h, w = (int(v) for v in image_size)
    sy, sx = h / images.shape[1], w / images.shape[2]
    out = np.stack([np.asarray(Image.fromarray(im).resize((w, h), Image.BILINEAR)) for im in images])
    scaled = np.where(boxes >= 0, boxes * np.asarray([sx, sy, sx, sy], np.float32), boxes)
    return out, scaled.astype(np.float32)


def load_samples(data_file=None, info_pkl=None, bert_config=None, checkpoint_file=None, seed=0, max_text_len=16,
                 image_size=None, limit=None):
    """``image_size`` (h, w): resize the split's images to the graph's size (the full-size spec's 800x1344)."""
    images, captions, boxes, labels = read_split(data_file or info_pkl)
    n = len(captions) if limit is None else min(int(limit), len(captions))
    if image_size is not None and tuple(image_size) != images.shape[1:3]:
        images, boxes = resize(images[:n], boxes[:n], image_size)
    feats, masks, pmaps = encode_texts(text_encoder(bert_config, checkpoint_file, seed), captions[:n], max_text_len)
    pixels = preprocess(images[:n])
    out = []
    for i in range(n):
        keep = labels[i] >= 0
        out.append({"inputs": {"img": pixels[i:i + 1], "text_feats": feats[i:i + 1], "text_masks": masks[i:i + 1],
                               "positive_map": pmaps[i:i + 1]},
                    "target": {"image_id": i, "boxes": boxes[i][keep], "labels": labels[i][keep],
                               "caption": captions[i]}})
    return out
