"""evaluate/captioning.py: BLEU against nltk's documented numbers and its definition, retrieval ranks, the evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.evaluate.captioning import CaptioningEvaluator, corpus_bleu, cut_at_eos, retrieval_rank

# nltk.translate.bleu_score.corpus_bleu's docstring example (https://www.nltk.org/_modules/nltk/translate/bleu_score)
HYP1 = "It is a guide to action which ensures that the military always obeys the commands of the party".split()
REF1A = "It is a guide to action that ensures that the military will forever heed Party commands".split()
REF1B = ("It is the guiding principle which guarantees the military forces always being under the command of "
         "the Party").split()
REF1C = "It is the practical guide for the army always to heed the directions of the party".split()
HYP2 = "he read the book because he was interested in world history".split()
REF2A = "he was interested in world history because he read the book".split()

tokens = st.lists(st.integers(0, 6), min_size=0, max_size=12)


def test_corpus_bleu_matches_nltk_documented_value():
    assert corpus_bleu([[REF1A, REF1B, REF1C], [REF2A]], [HYP1, HYP2]) == pytest.approx(0.5920778868801042, abs=1e-12)


def test_bleu_brevity_penalty_and_zero_order():
    ref = [1, 2, 3, 4, 5, 6, 7, 8]
    assert corpus_bleu([[ref]], [ref]) == 1.0
    assert corpus_bleu([[ref]], [ref[:4]]) == pytest.approx(math.exp(1 - 8 / 4))  # all n-grams match, BP only
    assert corpus_bleu([[ref]], [[9, 9, 9, 9]]) == 0.0
    with pytest.raises(ValueError, match="reference sets"):
        corpus_bleu([[ref]], [ref, ref])


@given(st.lists(st.tuples(tokens, tokens), min_size=1, max_size=6))
def test_bleu_is_a_score_in_unit_interval_and_one_on_itself(pairs):
    refs = [[r] for r, _ in pairs]
    hyps = [h for _, h in pairs]
    b = corpus_bleu(refs, hyps)
    assert 0.0 <= b <= 1.0 + 1e-12
    if all(len(r) >= 4 for r, _ in pairs):
        assert corpus_bleu(refs, [r for r, _ in pairs]) == pytest.approx(1.0)
    assert corpus_bleu(refs[::-1], hyps[::-1]) == pytest.approx(b)  # corpus statistics: order-free


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=20), st.data())
def test_retrieval_rank_is_stable_descending_position(scores, data):
    i = data.draw(st.integers(0, len(scores) - 1))
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    assert retrieval_rank(np.asarray(scores, np.float32), i) == order.index(i)


def test_cut_at_eos_drops_padding():
    assert cut_at_eos([4, 1, 5, 2, 7], eos_token_id=2, pad_token_id=1) == [4, 5]


def _sample(gen, ref, scores=None, index=0):
    out = {"output_ids": np.asarray([gen])}
    if scores is not None:
        out["itm_scores"] = np.asarray([scores], np.float32)
    return out, {"caption_ids": np.asarray(ref), "candidate_index": index}


def test_evaluator_metrics_on_known_outputs():
    ev = CaptioningEvaluator()
    ev.update(*_sample([4, 5, 9, 2, 1, 1], [4, 5, 9, 2], scores=[0.1, 0.9, 0.3], index=1))  # exact, rank 0
    ev.update(*_sample([4, 6, 9, 2, 1, 1], [4, 5, 9, 2], scores=[0.8, 0.2, 0.9], index=0))  # one word wrong, rank 1
    r = ev.compute()
    assert r["num_samples"] == 2 and r["exact_match"] == 0.5
    assert r["token_accuracy"] == 7 / 8
    assert r["recall@1"] == 0.5 and r["recall@5"] == 1.0 and r["gallery_size"] == 3
    assert r["bleu1"] == pytest.approx(5 / 6)
    assert r["bleu4"] == 0.0  # 6 words: too short for any 4-gram to match
    assert ev.primary_metric == "bleu4"


def test_evaluator_without_gallery_reports_no_recall_and_bad_metric_name_is_refused():
    ev = CaptioningEvaluator(primary_metric="token_accuracy")
    ev.update(*_sample([4, 2], [4, 2]))
    assert ev.compute()["recall@1"] is None
    with pytest.raises(ValueError, match="primary_metric 'cider'"):
        CaptioningEvaluator(primary_metric="cider")
    with pytest.raises(KeyError, match="no output 'output_ids'"):
        CaptioningEvaluator().update({"x": np.zeros(1)}, {"caption_ids": [2]})
