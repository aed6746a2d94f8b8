"""BLIP-2 (HuggingFace ``Blip2ForConditionalGeneration``, OPT language model) as a deployable captioner.

AWML runs BLIP-2 through mmpretrain for captioning/VQA and ships no deploy config; here it is deployed the
way a generative model runs on an accelerator: three ONNX stages (``vision_qformer``: ViT + Q-Former +
language projection; ``lm_prefill``: the OPT prompt pass returning the KV cache; ``lm_decode``: one token
with the KV cache as explicit ``past_key_values.*`` inputs / ``present.*`` outputs) and the tokenizer and
greedy decode loop on the host (``pipeline.Blip2CaptionPipeline``). Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.blip2"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "pytest_autoware_deploy.evaluate.captioning:CaptioningEvaluator",
    "host": f"{_PKG}.pipeline:Blip2CaptionPipeline",
    "synthetic": f"{_PKG}.synthetic:small_split",  # (out_dir, frames) -> (spec key, path)
}
