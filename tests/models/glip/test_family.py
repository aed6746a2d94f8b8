"""The glip family: captions and positive maps, synthetic scenes, the host's BERT in the loader, the
grounding post-processing, the bundled specs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import DeployError
from pytest_autoware_deploy.models.glip.dataset import load_samples
from pytest_autoware_deploy.models.glip.postprocess import decode_grounding, postprocess
from pytest_autoware_deploy.models.glip.synthetic import SEEDS, SIZE, make_split, write_split
from pytest_autoware_deploy.models.glip.text import PHRASES, encode_caption, tokenizer
from pytest_autoware_deploy.spec.load import load_spec

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "deploy_specs" / "glip.py"
FULL = REPO / "deploy_specs" / "glip_full.py"


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(len(PHRASES))), st.integers(1, len(PHRASES)))
def test_positive_map_marks_each_named_phrases_own_tokens(order, n):
    tok = tokenizer()
    phrases = [PHRASES[i] for i in order[:n]]
    ids, mask, pmap = encode_caption(tok, phrases, 32)
    assert ids[0] == tok.cls_token_id and ids[mask.sum() - 1] == tok.sep_token_id
    words = tok.convert_ids_to_tokens([int(i) for i, m in zip(ids, mask) if m])
    assert " ".join(words[1:-1]) == " . ".join(phrases) + " ."
    for p, row in enumerate(pmap):
        if PHRASES[p] in phrases:
            assert row.sum() == pytest.approx(1.0)
            assert tok.convert_ids_to_tokens(ids[row > 0].tolist()) == PHRASES[p].split()
        else:
            assert not row.any()


def test_captions_that_do_not_fit_or_name_unknown_phrases_are_refused():
    tok = tokenizer()
    with pytest.raises(ValueError, match="more than max_text_len 8"):
        encode_caption(tok, list(PHRASES[:3]), 8)
    with pytest.raises(ValueError, match="'pink square' is not one of the categories"):
        encode_caption(tok, ["pink square"], 16)


def test_synthetic_scenes_are_deterministic_and_name_an_absent_phrase():
    a, b = make_split(20, SEEDS["val"]), make_split(20, SEEDS["val"])
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    images, captions, boxes, labels = a
    assert images.shape == (20, SIZE, SIZE, 3) and images.dtype == np.uint8
    for caption, box, label in zip(captions, boxes, labels):
        present = {PHRASES[i] for i in label[label >= 0]}
        named = caption.split(" . ")
        assert present < set(named) and len(named) == len(present) + 1
        inside = box[label >= 0]
        assert (inside >= 0).all() and (inside <= SIZE).all() and (inside[:, 2:] > inside[:, :2]).all()


def test_loader_feeds_the_hosts_bert_features_and_a_missing_file_is_one_clear_error(tmp_path):
    from pytest_autoware_deploy.models.glip.train import DEMO

    path = write_split(tmp_path, "val", 3)
    samples = load_samples(path, bert_config=DEMO["bert_config"], max_text_len=16)
    x = samples[0]["inputs"]
    assert x["img"].shape == (1, 3, SIZE, SIZE) and x["text_feats"].shape == (1, 16, 32)
    assert x["text_masks"].shape == (1, 16) and x["positive_map"].shape == (1, len(PHRASES), 16)
    assert all(v.dtype == np.float32 for v in x.values())
    big = load_samples(path, bert_config=DEMO["bert_config"], max_text_len=16, image_size=(96, 128), limit=1)[0]
    assert big["inputs"]["img"].shape == (1, 3, 96, 128)
    np.testing.assert_allclose(big["target"]["boxes"], samples[0]["target"]["boxes"] * [2, 1.5, 2, 1.5], rtol=1e-5)
    with pytest.raises(DeployError, match=r"GLIP data file .*missing.npz does not exist \(make data-glip"):
        load_samples(tmp_path / "missing.npz")


def test_postprocess_keeps_the_best_box_per_phrase_and_thresholds_scores():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40]], np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.7], [0.02, 0.6]], np.float32)
    det = postprocess(boxes, scores, score_thr=0.05, nms_iou=0.5)
    assert det.labels.tolist() == [0, 1, 1] and det.scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    with pytest.raises(KeyError, match=r"no output\(s\) \['boxes'\]"):
        decode_grounding({"phrase_scores": scores[None]})


def test_full_spec_has_glip_t_dimensions_without_allocating():
    spec = load_spec(FULL)
    kw = spec.cfg["model"]["kwargs"]
    assert kw["embed_dims"] == 96 and kw["depths"] == (2, 2, 6, 2) and kw["out_channels"] == 256
    assert kw["bert_config"]["hidden_size"] == 768 and kw["num_dyhead_blocks"] == 6
    assert spec.cfg["data"]["kwargs"]["image_size"] == (800, 1344)


def test_bundled_spec_passes_with_shipped_checkpoint(pytester, tmp_path):
    val = write_split(tmp_path / "data", "val", 12, SEEDS["val"])
    work = tmp_path / "wd"
    result = pytester.runpytest_inprocess(
        f"--deploy-config={SPEC}", "--deploy-cfg-options", f"data.kwargs.data_file={val}",
        "benchmark.rounds=2", "benchmark.warmup=1", "benchmark.batch_sizes=[1]", "verification.num_samples=1",
        f"--deploy-work-dir={work}", "-p", "no:cacheprovider", "-k", "not tensorrt")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()[-3000:]
    spec = json.loads((work / "deploy_report.json").read_text())["specs"]["glip"]
    backends = spec["backends"]
    for name in ("pytorch", "onnx", "onnx:fp16"):
        assert backends[name]["evaluation"]["mAP"] >= 0.3, name
