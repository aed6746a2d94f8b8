"""The host pipeline: greedy decode with the KV cache equals decoding without it, the gallery scores are the
captions' log-likelihoods, the synthetic data is deterministic, and ONNX Runtime reproduces the tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_autoware_deploy.errors import DeployError
from pytest_autoware_deploy.models.blip2.dataset import load_samples
from pytest_autoware_deploy.models.blip2.model import DEMO, build_model
from pytest_autoware_deploy.models.blip2.pipeline import (Blip2CaptionPipeline, caption_log_likelihood, greedy,
                                                          present_to_past, stacked_cache)
from pytest_autoware_deploy.models.blip2.synthetic import all_captions, make_split, small_split, write_split
from pytest_autoware_deploy.models.blip2.tokenizer import BOS_ID, EOS_ID, VOCAB, decode, encode

REPO = Path(__file__).resolve().parents[3]
CKPT = REPO / "pytest_autoware_deploy/models/blip2/checkpoints/blip2_opt_demo.pth"
STAGE_OUTPUTS = {"vision_qformer": ["image_embeds", "query_output", "language_model_inputs"],
                 "lm_prefill": ["logits"] + [f"present.{i}.{kv}" for i in range(2) for kv in ("key", "value")],
                 "lm_decode": ["logits"] + [f"present.{i}.{kv}" for i in range(2) for kv in ("key", "value")]}


def torch_call_stage(model, calls=None):
    def call(name, feed):
        if calls is not None:
            calls.append((name, {k: v.shape for k, v in feed.items()}))
        with torch.no_grad():
            outs = getattr(model, name)(*[torch.from_numpy(np.asarray(v)) for v in feed.values()])
        return {n: o.numpy() for n, o in zip(STAGE_OUTPUTS[name], outs)}
    return call


@pytest.fixture(scope="module")
def model():
    return build_model(**DEMO, seed=1)


def test_greedy_decode_with_cache_equals_recomputing(model):
    pixels = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    calls = []
    out = Blip2CaptionPipeline(max_new_tokens=6, candidates=None).run({"pixel_values": pixels},
                                                                     torch_call_stage(model, calls))
    assert [c[0] for c in calls] == ["vision_qformer", "lm_prefill"] + ["lm_decode"] * 5
    assert out["output_ids"].shape == (1, 6) and out["output_ids"].dtype == np.int64
    assert out["itm_scores"].shape == (1, 0)
    with torch.no_grad():  # no cache: the whole sequence again at every step
        lm = model.vision_qformer(torch.from_numpy(pixels))[2]
        ids = torch.tensor([[BOS_ID]])
        for _ in range(6):
            nxt = model.lm_prefill(lm, ids)[0][:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], 1)
        full = model.lm_prefill(lm, ids[:, :-1])
    assert out["output_ids"].tolist() == ids[:, 1:].tolist()
    # the final cache holds queries + BOS + 5 fed-back tokens, equal to the no-cache pass over them
    assert out["kv_cache"].shape == (4, 1, 4, DEMO["num_query_tokens"] + 6, 16)
    np.testing.assert_allclose(out["kv_cache"], torch.stack(full[1:]).numpy(), rtol=1e-5, atol=1e-5)


def test_gallery_scores_are_mean_caption_log_likelihoods(model):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 4 + 1 + 5, 7))
    tokens = rng.integers(0, 7, (3, 5))
    lengths = np.array([5, 3, 1])
    got = caption_log_likelihood(logits, tokens, 4, lengths)
    t = torch.log_softmax(torch.from_numpy(logits), -1)
    for c in range(3):
        want = np.mean([t[c, 4 + j, tokens[c, j]].item() for j in range(lengths[c])])
        assert got[c] == pytest.approx(want, rel=1e-5)
    # the pipeline: one batched prefill over the gallery, before the prompt pass
    calls = []
    pipe = Blip2CaptionPipeline(max_new_tokens=2, max_candidates=5)
    out = pipe.run({"pixel_values": np.zeros((1, 3, 32, 32), np.float32)}, torch_call_stage(model, calls))
    assert calls[1] == ("lm_prefill", {"language_model_inputs": (5, 8, 64), "input_ids": (5, 8)})
    assert calls[2][1]["input_ids"] == (1, 1)
    assert out["itm_scores"].shape == (1, 5)


def test_cache_helpers_and_greedy_ties():
    assert greedy(np.array([[[0.0, 3.0, 3.0]]])).tolist() == [[1]]
    shape = (1, 2, 3, 4)
    past = present_to_past({"logits": 0, "present.1.key": np.ones(shape), "present.1.value": np.zeros(shape),
                            "present.0.key": np.full(shape, 2.0), "present.0.value": np.full(shape, 3.0)})
    assert sorted(past) == ["past_key_values.0.key", "past_key_values.0.value", "past_key_values.1.key",
                            "past_key_values.1.value"]
    assert stacked_cache(past)[:, 0, 0, 0, 0].tolist() == [2.0, 3.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="no present"):
        present_to_past({"logits": 0})
    with pytest.raises(ValueError, match="max_new_tokens"):
        Blip2CaptionPipeline(max_new_tokens=0)


def test_synthetic_split_is_deterministic_and_captions_follow_the_grammar(tmp_path):
    a, ca = make_split(12, 5)
    b, cb = make_split(12, 5)
    assert np.array_equal(a, b) and ca == cb and a.shape == (12, 32, 32, 3) and a.dtype == np.uint8
    assert len(set(all_captions())) == 48 and set(ca) <= set(all_captions())
    key, path = small_split(tmp_path, 6)
    assert key == "data.kwargs.data_file" and path.is_file()
    samples = load_samples(path)
    assert len(samples) == 6 and samples[0]["inputs"]["pixel_values"].shape == (1, 3, 32, 32)
    t = samples[0]["target"]
    assert decode(t["caption_ids"]) == t["caption"] and t["caption_ids"][-1] == EOS_ID
    assert all_captions()[t["candidate_index"]] == t["caption"]
    assert encode("a red circle") == [VOCAB.index(w) for w in ("a", "red", "circle")]
    with pytest.raises(DeployError, match="does not exist"):
        load_samples(tmp_path / "missing.npz")


@pytest.mark.skipif(not CKPT.is_file(), reason=f"the demo checkpoint {CKPT.name} is not trained yet (train.py)")
def test_trained_checkpoint_captions_and_retrieves(tmp_path):
    """The shipped checkpoint describes colour, shape and side: the metrics mean something (random weights do not)."""
    from pytest_autoware_deploy.evaluate.captioning import CaptioningEvaluator

    path = write_split(tmp_path, "val", 24)
    samples = load_samples(path)
    results = {}
    for name, model in (("trained", build_model(**DEMO)), ("random", build_model(**DEMO, seed=5))):
        if name == "trained":
            model.load_state_dict(torch.load(CKPT, weights_only=True))
        pipe, ev = Blip2CaptionPipeline(max_new_tokens=8), CaptioningEvaluator()
        for s in samples:
            ev.update(pipe.run(s["inputs"], torch_call_stage(model.eval())), s["target"])
        results[name] = ev.compute()
    assert results["trained"]["bleu4"] > 0.7 and results["trained"]["recall@5"] > 0.8, results["trained"]
    assert results["random"]["bleu4"] < 0.3 and results["random"]["recall@1"] < 0.3, results["random"]
