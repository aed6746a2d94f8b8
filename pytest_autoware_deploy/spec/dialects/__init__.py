"""Every generation of deploy config AWML has published, read into the native spec dict.

One module per generation, each with ``detect(raw) -> bool`` and ``translate(raw, file, device,
have_checkpoint) -> Translation`` (base.py). Detection looks at the file as written (before
``--cfg-options``), newest generation first; the seed README form (the native spec) is the fallback.

| generation | source |
|---|---|
| ``components`` | tier4/AWML PR #115 ``deployment/`` package |
| ``unified_v2`` | vividf/AWML ``feat/onnx_runtime_tensorrt_evaluation_develop-centerpoint`` |
| ``framework_v1`` | vividf/AWML ``feat/awml_deployment_framework`` = tier4/AWML PR #114 |
| ``mmdeploy`` | tier4/AWML main ``projects/*/configs/deploy/*.py`` |
| ``frnet_script`` | tier4/AWML ``projects/FRNet/configs/deploy/**`` (FRNet's own ``deploy/main.py``) |
| ``seed`` | the seed README (native) |
"""

from __future__ import annotations

from . import components, framework_v1, frnet_script, mmdeploy, seed, unified_v2
from .base import Translation, Unused

GENERATIONS = (components, unified_v2, framework_v1, mmdeploy, frnet_script, seed)


def detect(raw: dict):
    """The dialect module of a deploy config dict (as written in the file)."""
    for module in GENERATIONS:
        if module.detect(raw):
            return module
    return seed


def translate(raw: dict, file, dialect=None, device=None, have_checkpoint=False) -> Translation:
    dialect = dialect or detect(raw)
    return dialect.translate(raw, file, device=device, have_checkpoint=have_checkpoint)


__all__ = ["GENERATIONS", "Translation", "Unused", "detect", "translate"]
