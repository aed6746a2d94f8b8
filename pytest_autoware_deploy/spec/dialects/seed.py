"""Generation 1: the seed README's form (``autoware_ml/deployment/README.md``), which is the native spec.

``export`` / ``runtime_io`` / ``onnx_config`` / ``backend_config`` / ``evaluation`` keep their names and
meaning; the native spec adds ``model``, ``data``, ``verification``, ``precision``, ... The file is
validated by the native schema as it is, and its relative paths resolve against its own directory.
"""

from __future__ import annotations

from .base import Translation

GENERATION = "seed"
TITLE = "seed README form / native spec (autoware_ml/deployment/README.md)"


def detect(raw: dict) -> bool:
    return True


def translate(raw: dict, file, device=None, have_checkpoint=False) -> Translation:
    return Translation(GENERATION, TITLE, dict(raw), paths_base=None, needs_model_config=False)
