"""Swin-T camera backbone (mmdet ``SwinTransformer`` + AWML's ``GeneralizedLSSFPN``): AWML BEVFusion's image
backbone ONNX (``imgs`` uint8 -> ``image_feats``) as a component spec of its own.

Registered as the ``swin`` family. The graph's accuracy is a linear probe on its features (``evaluator.py``).
``model.build_model`` is a plain nn.Module builder with keyword arguments, for BEVFusion camera+lidar and
other families to reuse. Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.swin"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": f"{_PKG}.evaluator:LinearProbeEvaluator",
    "mm_types": f"{_PKG}.mm_types:MM_TYPES",  # OpenMMLab type= names it implements (models/mm_registry.py)
    "synthetic": f"{_PKG}.synthetic:small_split",  # (out_dir, frames) -> (spec key, path): a small split for tests/CI
}
