"""BLIP-2 stages: HuggingFace's own model and checkpoint names, each stage equal to HF's computation, the KV cache
decode equal to recomputing the whole sequence, the full-size spec built lazily with BLIP-2 OPT-2.7b's size."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Blip2ForConditionalGeneration

from pytest_autoware_deploy.models.blip2.model import DEMO, blip2_config, build_model, kv_names
from pytest_autoware_deploy.models.blip2.tokenizer import BOS_ID, IMAGE_TOKEN_ID

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model():
    return build_model(**DEMO, seed=3)


def test_state_dict_is_huggingface_blip2(model):
    keys = set(model.state_dict())
    plain = set(Blip2ForConditionalGeneration(blip2_config(**DEMO)).state_dict())
    assert keys == plain  # the stage views add no keys: HF checkpoints load as they are
    for k in ("query_tokens", "vision_model.embeddings.patch_embedding.weight",
              "qformer.encoder.layer.0.crossattention.attention.query.weight", "language_projection.weight",
              "language_model.model.decoder.layers.1.self_attn.k_proj.weight", "language_model.lm_head.weight"):
        assert k in keys, k


def test_vision_qformer_is_get_image_features(model):
    px = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        image_embeds, query_output, lm_inputs = model.vision_qformer(px)
        ref = model.get_image_features(px, return_dict=True)
    assert torch.equal(image_embeds, ref.last_hidden_state)
    assert torch.equal(query_output, ref.qformer_outputs.last_hidden_state)
    assert torch.equal(lm_inputs, ref.pooler_output)
    assert query_output.shape == (2, DEMO["num_query_tokens"], 64)


def test_prefill_equals_hf_forward_with_image_tokens(model):
    """The processor's layout: <image> x num_query_tokens, BOS, prompt; HF scatters the queries into them."""
    px = torch.randn(1, 3, 32, 32)
    prompt = torch.tensor([[BOS_ID, 4, 5]])
    ids = torch.cat([torch.full((1, DEMO["num_query_tokens"]), IMAGE_TOKEN_ID), prompt], 1)
    with torch.no_grad():
        ref = model(pixel_values=px, input_ids=ids).logits
        out = model.lm_prefill(model.vision_qformer(px)[2], prompt)
    torch.testing.assert_close(out[0], ref, rtol=1e-5, atol=1e-5)
    assert len(out) == 1 + 2 * model.config.text_config.num_hidden_layers


def test_decode_with_kv_cache_equals_recomputing_the_sequence(model):
    torch.manual_seed(0)
    lm_inputs = torch.randn(2, DEMO["num_query_tokens"], 64)
    ids = torch.tensor([[BOS_ID, 4, 7, 9], [BOS_ID, 5, 6, 10]])
    with torch.no_grad():
        full = model.lm_prefill(lm_inputs, ids)
        out = model.lm_prefill(lm_inputs, ids[:, :2])
        for t in range(2, ids.shape[1]):
            out = model.lm_decode(ids[:, t:t + 1], *out[1:])
            torch.testing.assert_close(out[0][:, 0], full[0][:, DEMO["num_query_tokens"] + t], rtol=1e-5, atol=1e-5)
    for got, want in zip(out[1:], full[1:]):  # the cache after the steps is the full pass's cache
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_kv_names_are_optimum_style():
    assert kv_names(2, "past_key_values") == ["past_key_values.0.key", "past_key_values.0.value",
                                              "past_key_values.1.key", "past_key_values.1.value"]
    assert kv_names(1, "present") == ["present.0.key", "present.0.value"]


def test_full_spec_has_blip2_opt_2_7b_size_without_allocating():
    """Built on the meta device: no memory, the parameter count of Salesforce/blip2-opt-2.7b (3.74-3.9 B)."""
    from pytest_autoware_deploy.spec.load import load_spec

    kwargs = load_spec(REPO / "deploy_specs/blip2_full.py").cfg["model"]["kwargs"]
    with torch.device("meta"):
        full = Blip2ForConditionalGeneration(blip2_config(**kwargs))
    n = sum(p.numel() for p in full.parameters())
    assert 3.7e9 < n < 3.9e9, n
    vision = sum(p.numel() for p in full.vision_model.parameters())
    assert 0.95e9 < vision < 1.05e9  # ViT-g: ~1 B
    assert full.config.text_config.hidden_size == 2560 and full.config.text_config.num_hidden_layers == 32
    assert full.query_tokens.shape == (1, 32, 768)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS (VmHWM) from Linux's /proc")
def test_collecting_the_full_spec_allocates_no_model(tmp_path):
    """``--collect-only`` of blip2_full.py: the 15 GB model is built when a test runs, never at collection. The
    child reports the peak of its own address space (``VmHWM``): Linux's ``ru_maxrss`` carries the RSS of the
    process image it was forked from across ``exec`` (here a pytest-xdist worker of 2 GB late in the suite), and
    RUSAGE_CHILDREN also counts other children reaped meanwhile."""
    code = ("import re, sys, pytest; rc = pytest.main(sys.argv[1:]); "
            "print('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--deploy-config", str(REPO / "deploy_specs/blip2_full.py"),
                           "--deploy-work-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test_stage_verification" in proc.stdout or "test_verification" in proc.stdout
    peak_kb = int(re.search(r"^PEAK_KB (\d+)$", proc.stdout, re.M).group(1))
    assert peak_kb < 2_000_000, f"collection peaked at {peak_kb / 1e6:.2f} GB"


def test_onnx_stages_hold_at_every_cache_length_and_batch(model, tmp_path):
    """The exporter warns that transformers' cache code is traced (``keys.numel() == 0`` becomes a constant):
    the exported decode step must still be right at every past length >= 1 and batch, the prefill at every
    prompt length and batch (the TensorRT profiles' ranges)."""
    import onnxruntime as ort

    layers = model.config.text_config.num_hidden_layers
    past_names, present_names = kv_names(layers, "past_key_values"), kv_names(layers, "present")
    q, width = DEMO["num_query_tokens"], 64
    with torch.no_grad():
        ex = model.lm_prefill(torch.randn(1, q, width), torch.tensor([[BOS_ID]]))
    torch.onnx.export(model.lm_decode, (torch.tensor([[4]]), *ex[1:]), tmp_path / "dec.onnx",
                      input_names=["input_ids"] + past_names, output_names=["logits"] + present_names,
                      dynamic_axes={"input_ids": {0: "b"}, "logits": {0: "b"},
                                    **{n: {0: "b", 2: "p"} for n in past_names},
                                    **{n: {0: "b", 2: "t"} for n in present_names}}, opset_version=17, dynamo=False)
    torch.onnx.export(model.lm_prefill, (torch.randn(1, q, width), torch.tensor([[BOS_ID]])), tmp_path / "pre.onnx",
                      input_names=["language_model_inputs", "input_ids"], output_names=["logits"] + present_names,
                      dynamic_axes={"language_model_inputs": {0: "b"}, "input_ids": {0: "b", 1: "s"},
                                    "logits": {0: "b", 1: "t"}, **{n: {0: "b", 2: "t"} for n in present_names}},
                      opset_version=17, dynamo=False)
    dec, pre = ort.InferenceSession(str(tmp_path / "dec.onnx")), ort.InferenceSession(str(tmp_path / "pre.onnx"))
    rng = np.random.default_rng(0)
    for batch, past_len in ((1, 1), (1, 9), (3, 20)):
        ids = rng.integers(0, 19, (batch, 1))
        past = [rng.normal(size=(batch, 4, past_len, 16)).astype(np.float32) for _ in past_names]
        got = dec.run(None, {"input_ids": ids, **dict(zip(past_names, past))})
        with torch.no_grad():
            want = model.lm_decode(torch.from_numpy(ids), *map(torch.from_numpy, past))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)
    for batch, seq in ((1, 1), (5, 8)):
        lm = rng.normal(size=(batch, q, width)).astype(np.float32)
        ids = rng.integers(0, 19, (batch, seq))
        got = pre.run(None, {"language_model_inputs": lm, "input_ids": ids})
        with torch.no_grad():
            want = model.lm_prefill(torch.from_numpy(lm), torch.from_numpy(ids))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)


class _OldOPT(torch.nn.Module):
    """An OPT-like forward of transformers <= 5.1x: the cache under ``past_key_values``."""

    def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs):
        return past_key_values


class _NoCache(torch.nn.Module):
    def forward(self, input_ids=None, **kwargs):
        return None


def test_the_cache_goes_under_the_keyword_the_language_model_takes(model):
    from pytest_autoware_deploy.models.blip2.model import cache_keyword

    assert cache_keyword(model.language_model) in ("cache", "past_key_values")
    assert cache_keyword(_OldOPT()) == "past_key_values"  # 'cache=' there lands in **kwargs: an empty cache
    with pytest.raises(TypeError, match=r"_NoCache.forward takes neither 'cache' nor 'past_key_values'"):
        cache_keyword(_NoCache())


def test_decode_uses_its_past_inputs(model):
    """A decode step whose logits ignore the past (the torch 2.11 + transformers 5.17 defect) fails here."""
    cfg = model.config.text_config
    torch.manual_seed(0)
    past = [torch.randn(1, cfg.num_attention_heads, 5, cfg.hidden_size // cfg.num_attention_heads)
            for _ in range(2 * cfg.num_hidden_layers)]
    ids = torch.tensor([[3]])
    with torch.no_grad():
        a = model.lm_decode(ids, *past)
        b = model.lm_decode(ids, *[p * 0.5 for p in past])
    assert a[1].shape[2] == 6
    assert not torch.allclose(a[0], b[0])
