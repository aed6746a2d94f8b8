"""Building blocks several families share, named as mmpretrain names them so AWML checkpoints load."""

from __future__ import annotations

from torch import nn


class LinearClsHead(nn.Module):
    """mmpretrain's LinearClsHead: one ``fc`` layer on pooled features (``head.fc.*`` in checkpoints)."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        return self.fc(x)
