"""Train the demo traffic-light classifier deterministically on the synthetic crops (CPU, minutes).

    python -m pytest_autoware_deploy.models.mobilenetv2_traffic_light.train \
        --data data/synthetic/mobilenetv2_traffic_light --out checkpoints/mobilenetv2_w05_64.pth

Cross-entropy on the logits, AdamW with a one-cycle schedule, brightness/contrast jitter only (no
horizontal flip: it turns ``red,left`` into ``red,right``, which is why AWML dropped it). The
checkpoint is saved in float16 (loading casts back) and its accuracy is measured after that rounding.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..coco import ensure_splits, ship_float16
from .dataset import TrafficLightCrops
from .model import build_model
from .synthetic import SEEDS, SPLITS, write_split


def _arrays(ds):
    x = np.concatenate([ds[i]["inputs"][ds.input_name] for i in range(len(ds))])
    return x, np.array([ds[i]["target"] for i in range(len(ds))])


def accuracy(model, x, y, batch=128) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        pred = np.concatenate([model(torch.from_numpy(x[k:k + batch])).argmax(1).numpy()
                               for k in range(0, len(x), batch)])
    return float((pred == y).mean())


def train(data, out, epochs=16, batch=32, lr=3e-3, widen=0.5, size=64, threads=1):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    data = Path(data)
    ensure_splits(data, lambda split: write_split(data, split, SPLITS[split], SEEDS[split]))
    xt, yt = _arrays(TrafficLightCrops(data / "annotations_train.json", input_size=size))
    xv, yv = _arrays(TrafficLightCrops(data / "annotations_val.json", input_size=size))
    model = build_model(11, widen)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(xt) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        start, total = time.time(), 0.0
        model.train()
        order = rng.permutation(len(xt))
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            x = xt[idx] * rng.uniform(0.8, 1.2, (len(idx), 1, 1, 1)) + rng.uniform(-0.3, 0.3, (len(idx), 1, 1, 1))
            loss = F.cross_entropy(model.logits(torch.from_numpy(x.astype(np.float32))), torch.from_numpy(yt[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"[train] epoch {epoch + 1}/{epochs} loss {total / len(xt):.4f} val acc {accuracy(model, xv, yv):.4f} "
              f"({time.time() - start:.0f}s)", flush=True)
    state = ship_float16(model)
    acc = accuracy(model, xv, yv)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "meta": {"widen_factor": widen, "input_size": size, "epochs": epochs,
                                             "val_accuracy": acc}}, out)
    print(f"[train] saved {out} (val accuracy {acc:.4f}, float16 weights)", flush=True)
    return acc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--widen", type=float, default=0.5)
    a = p.parse_args(argv)
    train(a.data, a.out, epochs=a.epochs, size=a.size, widen=a.widen)


if __name__ == "__main__":
    main()
