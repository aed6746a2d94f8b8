"""Train the demo BLIP-2 (``model.DEMO`` dimensions) on synthetic captions, deterministically, on the CPU.

Captioning loss as BLIP-2's stage 2: cross-entropy of the caption tokens (and EOS) given the projected
Q-Former queries and BOS, through the same ``vision_qformer`` + ``lm_prefill`` modules the deployment exports.
Everything is trained from scratch (there is no pretrained ViT/OPT at this size), so, in the spirit of BLIP-2's
stage 1 (representation learning on the Q-Former's output before any language model), an auxiliary head
classifies colour, shape and side from the mean query output: without it a from-scratch ViT behind the
language model sat at the no-image loss (ln 48 / 7 per token) for hundreds of steps. The head is thrown
away; the checkpoint is exactly HF's ``Blip2ForConditionalGeneration`` state dict. One thread, fixed seeds::

    nice -n 10 python -m pytest_autoware_deploy.models.blip2.train --steps 1500
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from .dataset import preprocess
from .model import DEMO, build_model
from .synthetic import SEEDS, make_split
from .tokenizer import BOS_ID, COLOURS, EOS_ID, POSITIONS, SHAPES, encode

CHECKPOINT = Path(__file__).parent / "checkpoints" / "blip2_opt_demo.pth"


def caption_batch(captions) -> torch.Tensor:
    """``[BOS, words..., EOS]`` per caption (the grammar's captions all have the same length)."""
    return torch.tensor([[BOS_ID] + encode(c) + [EOS_ID] for c in captions], dtype=torch.long)


ATTRIBUTES = (COLOURS, SHAPES, POSITIONS)


def attribute_labels(captions) -> torch.Tensor:
    """``(N, 3)`` colour, shape, side indices of "a <colour> <shape> at the <side>" captions."""
    rows = []
    for c in captions:
        words = c.split()
        rows.append([COLOURS.index(words[1]), SHAPES.index(words[2]), POSITIONS.index(words[5])])
    return torch.tensor(rows, dtype=torch.long)


def losses(model, head, pixels, ids, attrs):
    """(caption cross-entropy, auxiliary attribute cross-entropy, attribute accuracy)."""
    _, query_output, lm_inputs = model.vision_qformer(pixels)
    logits = model.lm_prefill(lm_inputs, ids[:, :-1])[0]
    q = lm_inputs.shape[1]
    caption = torch.nn.functional.cross_entropy(logits[:, q:].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    pooled = head(query_output.mean(1))
    aux, acc, start = 0.0, 0.0, 0
    for k, values in enumerate(ATTRIBUTES):
        part = pooled[:, start:start + len(values)]
        start += len(values)
        aux = aux + torch.nn.functional.cross_entropy(part, attrs[:, k])
        acc += (part.argmax(1) == attrs[:, k]).float().mean().item() / len(ATTRIBUTES)
    return caption, aux, acc


def train(steps=1500, batch=64, lr=2e-3, count=4800, seed=0, out=CHECKPOINT, log_every=100):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    images, captions = make_split(count, SEEDS["train"])
    pixels = torch.from_numpy(preprocess(images))
    ids = caption_batch(captions)
    attrs = attribute_labels(captions)
    model = build_model(**DEMO, seed=seed).train()
    head = torch.nn.Linear(model.config.qformer_config.hidden_size, sum(len(a) for a in ATTRIBUTES))
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    start = time.time()
    for step in range(steps):
        idx = torch.from_numpy(rng.choice(count, batch, replace=False))
        caption, aux, acc = losses(model, head, pixels[idx], ids[idx], attrs[idx])
        loss = caption + aux
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            print(f"step {step} caption loss {caption.item():.4f} attribute loss {aux.item():.4f} "
                  f"accuracy {acc:.3f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(out)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--out", default=str(CHECKPOINT))
    a = p.parse_args(argv)
    print(train(a.steps, a.batch, a.lr, out=a.out))


if __name__ == "__main__":
    main()
