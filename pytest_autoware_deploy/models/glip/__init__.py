"""GLIP (mmdet ``GLIP`` + ``ATSSVLFusionHead``, GLIP-T: Swin-T + FPN + DyHead fusion head) as a deployable
phrase-grounding detector.

AWML runs GLIP through mmdet for open-vocabulary scene selection and ships no deploy config. Deployed here
as it would run: the image branch and the language-aware fusion head (bidirectional image-text attention,
BERT layers on the fused text, DyHead blocks with modulated deformable convs in standard ops) as one ONNX
graph; tokenization and BERT on the host (``dataset.py``), their token features graph inputs; score
threshold + NMS on the host (``postprocess.py``). Metric: phrase-to-box AP with the phrases as categories.
Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.glip"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "detection2d",
    "synthetic": f"{_PKG}.synthetic:small_split",  # (out_dir, frames) -> (spec key, path)
}
