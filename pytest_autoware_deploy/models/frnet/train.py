"""Train the bundled demo FRNet deterministically on the synthetic labelled scenes (CPU, minutes).

    nice -n 10 python -m pytest_autoware_deploy.models.frnet.train --data data/synthetic/frnet

AWML's recipe reduced: cross-entropy on every point's logits (class weights 1/sqrt(frequency), the
synthetic scenes are ~87 % ground), AdamW with a one-cycle schedule, random flips and rotations of the
sweep about z (the host re-groups the frustums after each). One frame per step: the graph is AWML's deploy
graph (batch 1). AWML's BatchNorm momentum 0.01 leaves the running statistics near their initial values
after a few hundred steps, so they are re-estimated at the end (precise BN: a cumulative average over the
training frames in train mode, no gradient). The shipped checkpoint is stored in float16; the val mIoU is
printed. ``--bn-only`` re-estimates the statistics of an existing checkpoint and stores it again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .pipeline import FRNetPipeline
from .synthetic import CLASSES, SEEDS, SPLITS, write_split

DEMO_MODEL = dict(num_classes=len(CLASSES), in_channels=4, feat_channels=(16, 32, 48, 48), feat_compression=8,
                  output_shape=(32, 128), depth=18, stem_channels=24, out_channels=(24, 24, 24, 24),
                  fuse_channels=(48, 24), middle_channels=(24, 48, 32, 16), channels=16, act="HSwish")
DEMO_HOST = dict(H=32, W=128, fov_up=2.42, fov_down=-24.42)  # 32 rings between -24 and +2 degrees, centred in rows
CHECKPOINT = Path(__file__).parent / "checkpoints" / "frnet_demo.pth"


def _augment(points, rng):
    pts = points.copy()
    if rng.random() < 0.5:
        pts[:, 1] *= -1
    a = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(a), np.sin(a)
    pts[:, :2] = pts[:, :2] @ np.array([[c, -s], [s, c]], np.float32).T
    return pts


def evaluate(model, host, info_pkl) -> dict:
    import torch

    from ...evaluate.segmentation3d import Segmentation3DEvaluator
    from .dataset import LidarSegSamples

    ev = Segmentation3DEvaluator(list(CLASSES))
    ds = LidarSegSamples(info_pkl)
    model.eval()

    def call(_name, feed):
        with torch.no_grad():
            return {model.output: model(*[torch.from_numpy(v) for v in feed.values()]).numpy()}

    for i in range(len(ds)):
        s = ds[i]
        ev.update(host.run(s["inputs"], call), s["target"])
    return ev.compute()


def recalibrate_bn(model, frames, host):
    """Precise BN: every BatchNorm's running mean/var = the plain average over ``frames`` (momentum None)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for f in frames:
            model.logits(*[torch.from_numpy(v) for v in host.preprocess(f["inputs"]["points"]).values()])
    for m, mom in zip(norms, saved):
        m.momentum = mom
    model.eval()


def save_half(model, out):
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, tmp)
    tmp.replace(out)  # atomic: a reader never loads half a checkpoint
    # measured as shipped: the float16 weights loaded back into float32
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in torch.load(out).items()})
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)")


def train(data, out, epochs=5, lr=4e-3, threads=1, seed=0, frames=60):
    import torch

    from .dataset import LidarSegSamples
    from .model import build_model

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    data = Path(data)
    for split in ("train", "val"):
        if not (data / f"info_{split}.pkl").is_file():
            write_split(data, split, SPLITS[split], SEEDS[split])
    ds = LidarSegSamples(data / "info_train.pkl")
    frames = [ds[i] for i in range(min(frames, len(ds)))]
    host = FRNetPipeline(**DEMO_HOST)
    model = build_model(**DEMO_MODEL)
    freq = np.bincount(np.concatenate([f["target"]["labels"] for f in frames]), minlength=len(CLASSES)) + 1
    weight = torch.tensor((freq.sum() / freq) ** 0.5, dtype=torch.float32)
    weight /= weight.mean()
    steps = epochs * len(frames)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    rng = np.random.default_rng(seed)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for i in rng.permutation(len(frames)):
            feed = host.preprocess(_augment(frames[i]["inputs"]["points"], rng))
            logits = model.logits(*[torch.from_numpy(v) for v in feed.values()])
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(frames[i]["target"]["labels"]),
                                                     weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(frames):.4f} ({time.time() - start:.0f} s)", flush=True)
    recalibrate_bn(model, frames, host)
    save_half(model, out)
    print(f"trained in {time.time() - start:.0f} s")
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/frnet")
    ap.add_argument("--out", default=str(CHECKPOINT))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--frames", type=int, default=60, help="training frames used (of the split's 120)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bn-only", action="store_true", help="re-estimate the BN statistics of --out only")
    args = ap.parse_args(argv)
    if args.bn_only:
        import torch

        from .dataset import LidarSegSamples
        from .model import build_model

        torch.set_num_threads(args.threads)
        model = build_model(**DEMO_MODEL)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in torch.load(args.out).items()})
        ds = LidarSegSamples(Path(args.data) / "info_train.pkl")
        recalibrate_bn(model, [ds[i] for i in range(min(args.frames, len(ds)))], FRNetPipeline(**DEMO_HOST))
        save_half(model, args.out)
        res = evaluate(model, FRNetPipeline(**DEMO_HOST), Path(args.data) / "info_val.pkl")
        print({k: v for k, v in res.items() if k not in ("confusion_matrix", "per_class_iou")})
        return
    model = train(args.data, args.out, epochs=args.epochs, threads=args.threads, frames=args.frames)
    res = evaluate(model, FRNetPipeline(**DEMO_HOST), Path(args.data) / "info_val.pkl")
    print({k: v for k, v in res.items() if k not in ("confusion_matrix", "per_class_iou")})


if __name__ == "__main__":
    main()
