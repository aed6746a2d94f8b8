"""BLIP-2 with its deployment stages: HuggingFace's ``Blip2ForConditionalGeneration``, unchanged, plus three views.

The model is transformers' own class (state dict keys as its checkpoints use them: ``vision_model.*``,
``query_tokens``, ``qformer.*``, ``language_projection.*``, ``language_model.*``). The stages a deployment
runs on the accelerator are submodules that share its parameters (not registered as children, so the
state dict stays HF's):

- ``vision_qformer``: ``pixel_values`` -> ``image_embeds`` (ViT tokens), ``query_output`` (Q-Former: the
  learned queries cross-attending to the image tokens), ``language_model_inputs`` (projected to OPT's width);
  ``get_image_features`` of HF, step by step.
- ``lm_prefill``: ``language_model_inputs`` + prompt ``input_ids`` -> ``logits`` and the KV cache
  ``present.{i}.key/value`` (B, heads, T, head_dim). The queries come first, as the BLIP-2 processor's
  ``<image>`` placeholders put them (so this equals HF's forward with image tokens; tested).
- ``lm_decode``: one token ``input_ids (B, 1)`` + ``past_key_values.{i}.key/value`` -> ``logits (B, 1, V)`` and
  ``present.*`` one longer (Optimum's naming for decoder ONNX files).

There is no ``attention_mask`` input: the traced mask code of transformers bakes the padding length into
the graph, so a mask would be a lie; the host never pads inside a sequence (gallery captions are
right-padded, which a causal LM cannot see).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import Blip2Config, Blip2ForConditionalGeneration, DynamicCache

from .tokenizer import BOS_ID, EOS_ID, IMAGE_TOKEN_ID, PAD_ID, VOCAB_SIZE

# The demo's tiny dimensions (deploy_specs/blip2.py); blip2_full.py gives BLIP-2 OPT-2.7b's.
DEMO = dict(
    vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       image_size=32, patch_size=8),
    qformer_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        cross_attention_frequency=1, encoder_hidden_size=64),
    text_config=dict(vocab_size=VOCAB_SIZE, hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=64, word_embed_proj_dim=64),
    num_query_tokens=8,
)


def blip2_config(vision_config=None, qformer_config=None, text_config=None, num_query_tokens=32,
                 image_token_index=IMAGE_TOKEN_ID) -> Blip2Config:
    """A ``Blip2Config`` with an OPT language model (eager attention: what the ONNX exporter traces)."""
    text = dict(model_type="opt", pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                **(text_config or {}))
    cfg = Blip2Config(vision_config=dict(vision_config or {}), qformer_config=dict(qformer_config or {}),
                      text_config=text, num_query_tokens=int(num_query_tokens), image_token_index=image_token_index)
    for sub in (cfg, cfg.vision_config, cfg.qformer_config, cfg.text_config):
        sub._attn_implementation = "eager"
    return cfg


def cache_keyword(language_model) -> str:
    """The keyword the language model's ``forward`` takes its KV cache under: ``cache`` (transformers >= 5.2x) or
    ``past_key_values`` (older 5.x and 4.x). Passing the other one lands in ``**kwargs`` and is ignored, so the
    model runs with an empty cache: the decode stage's KV inputs are unused and the exporter drops them."""
    params = inspect.signature(language_model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise TypeError(f"{type(language_model).__name__}.forward takes neither 'cache' nor 'past_key_values' "
                    f"(parameters: {list(params)}): cannot pass BLIP-2's KV cache explicitly")


def _cache_from(past, config):
    cache = DynamicCache(config=config)
    for i in range(len(past) // 2):
        cache.update(past[2 * i], past[2 * i + 1], i)
    return cache


def _flat_cache(cache) -> list:
    out = []
    for layer in cache.layers:
        out += [layer.keys, layer.values]
    return out


class VisionQFormer(nn.Module):
    """Stage ``vision_qformer``: HF's ``get_image_features`` (ViT, Q-Former, projection) with every output kept."""

    def __init__(self, blip2):
        super().__init__()
        self.vision_model, self.qformer = blip2.vision_model, blip2.qformer
        self.language_projection = blip2.language_projection
        self.query_tokens = blip2.query_tokens

    def forward(self, pixel_values):
        image_embeds = self.vision_model(pixel_values=pixel_values, return_dict=True).last_hidden_state
        mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        query = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        query_output = self.qformer(query_embeds=query, encoder_hidden_states=image_embeds,
                                    encoder_attention_mask=mask, return_dict=True).last_hidden_state
        return image_embeds, query_output, self.language_projection(query_output)


class LMPrefill(nn.Module):
    """Stage ``lm_prefill``: OPT over [projected queries; embedded prompt] -> logits, KV cache."""

    def __init__(self, blip2):
        super().__init__()
        self.language_model = blip2.language_model

    def forward(self, language_model_inputs, input_ids):
        embeds = self.language_model.get_input_embeddings()(input_ids)
        embeds = torch.cat([language_model_inputs.to(embeds.dtype), embeds], dim=1)
        cache = {cache_keyword(self.language_model): DynamicCache(config=self.language_model.config)}
        out = self.language_model(inputs_embeds=embeds, use_cache=True, return_dict=True, **cache)
        return (out.logits, *_flat_cache(out.past_key_values))


class LMDecode(nn.Module):
    """Stage ``lm_decode``: one greedy step with the KV cache explicit (``past_key_values.{i}.key/value``)."""

    def __init__(self, blip2):
        super().__init__()
        self.language_model = blip2.language_model

    def forward(self, input_ids, *past_key_values):
        cache = {cache_keyword(self.language_model): _cache_from(past_key_values, self.language_model.config)}
        out = self.language_model(input_ids=input_ids, use_cache=True, return_dict=True, **cache)
        return (out.logits, *_flat_cache(out.past_key_values))


class Blip2Deploy(Blip2ForConditionalGeneration):
    """``Blip2ForConditionalGeneration`` whose stages are reachable as ``model.<stage>`` (shared weights)."""

    def _stage(self, name, cls):
        stages = self.__dict__.setdefault("_deploy_stages", {})
        if name not in stages:
            stages[name] = cls(self)
        return stages[name].train(self.training)

    @property
    def vision_qformer(self):
        return self._stage("vision_qformer", VisionQFormer)

    @property
    def lm_prefill(self):
        return self._stage("lm_prefill", LMPrefill)

    @property
    def lm_decode(self):
        return self._stage("lm_decode", LMDecode)


def kv_names(num_layers: int, prefix: str) -> list[str]:
    """``past_key_values.{i}.key/value`` (prefix ``past_key_values``) or ``present.{i}.key/value``."""
    return [f"{prefix}.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]


def build_model(vision_config=None, qformer_config=None, text_config=None, num_query_tokens=32,
                image_token_index=IMAGE_TOKEN_ID, seed=0):
    """The model with HF's initialization under a fixed seed (the full-size spec's random weights)."""
    torch.manual_seed(int(seed))
    cfg = blip2_config(vision_config, qformer_config, text_config, num_query_tokens, image_token_index)
    return Blip2Deploy(cfg).eval()
