"""Train the bundled demo checkpoint deterministically on the synthetic dataset (CPU, minutes).

    python -m pytest_autoware_deploy.models.calibration_status_classification.train \
        --data data/synthetic/calibration_status_classification --out checkpoints/resnet18_w16_120x192.pth

Every epoch draws fresh miscalibrations (the sample seed is the epoch), as AWML's training
transform does with ``miscalibration_probability=0.5``. The checkpoint shipped in
``checkpoints/`` was produced by this script with its defaults; its held-out accuracy is
reported at the end of the run (and checked by the bundled spec's accuracy tests).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .dataset import CalibrationSamples
from .model import build_model
from .synthetic import SEEDS, SPLITS, write_split


def _batches(ds, order, size):
    for start in range(0, len(order), size):
        idx = order[start:start + size]
        items = [ds[i] for i in idx]
        yield (np.concatenate([it["inputs"]["input"] for it in items]), np.array([it["target"] for it in items]))


def evaluate(model, ds, batch=64):
    import torch

    model.eval()
    correct = 0
    with torch.inference_mode():
        for x, y in _batches(ds, np.arange(len(ds)), batch):
            correct += int((model(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
    return correct / len(ds)


def train(data, out, epochs=12, batch=32, lr=2e-3, base_channels=16, height=120, width=192, threads=2):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    data = Path(data)
    for split in ("train", "val"):
        if not (data / f"info_{split}.pkl").is_file():
            print(f"[train] generating the {split} split in {data}", flush=True)
            write_split(data, split, SPLITS[split], SEEDS[split], height, width)
    val = CalibrationSamples(data / "info_val.pkl", seed=0)
    model = build_model(base_channels=base_channels)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    n_train = len(CalibrationSamples(data / "info_train.pkl"))
    steps = epochs * ((n_train + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        start = time.time()
        ds = CalibrationSamples(data / "info_train.pkl", seed=1000 + epoch)
        model.train()
        total = 0.0
        for x, y in _batches(ds, rng.permutation(len(ds)), batch):
            opt.zero_grad()
            loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(y)
        acc = evaluate(model, val)
        print(f"[train] epoch {epoch + 1}/{epochs} loss {total / len(ds):.4f} val acc {acc:.4f} "
              f"({time.time() - start:.0f}s)", flush=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(),
                "meta": {"base_channels": base_channels, "input_hw": [height, width], "val_accuracy": acc,
                         "epochs": epochs}}, out)
    print(f"[train] saved {out} (val accuracy {acc:.4f})")
    return acc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--base-channels", type=int, default=16)
    a = p.parse_args(argv)
    train(a.data, a.out, epochs=a.epochs, base_channels=a.base_channels)


if __name__ == "__main__":
    main()
