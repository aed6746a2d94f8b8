"""Captioning and image-text retrieval metrics, accumulated sample by sample (BLIP-2 and other captioners).

Per sample the evaluator reads the generated token ids (greedy decode, fixed length; cut at the first EOS)
and, when the model scores a gallery of captions, those scores; the target holds the reference token ids
(``caption_ids``, EOS-terminated) and the caption's index in the gallery (``candidate_index``).

- ``bleu1``..``bleu4``: corpus BLEU (Papineni et al. 2002: clipped n-gram precisions over the whole corpus,
  geometric mean of 1..n, brevity penalty against the closest reference length), over token ids. No BLEU
  library is installed here (nltk, sacrebleu), so it is implemented below and checked against nltk's own
  documented example (tests/evaluate/test_captioning.py).
- ``token_accuracy``: reference tokens (EOS included) reproduced at the same position; ``exact_match``:
  whole captions equal.
- ``recall@1``/``recall@5``: image -> text retrieval, the reference caption among the ``k`` best-scored
  gallery captions (ties ranked by gallery order, the pessimistic-free deterministic rule).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def ngrams(tokens, n: int) -> Counter:
    tokens = tuple(tokens)
    return Counter(tokens[i:i + n] for i in range(len(tokens) - n + 1))


def corpus_bleu(references, hypotheses, max_n: int = 4) -> float:
    """Corpus BLEU-``max_n`` with uniform weights: ``references[i]`` is a list of reference token lists for
    ``hypotheses[i]``. 0 when some order has no match (unsmoothed, as nltk's and sacrebleu's 'none')."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference sets for {len(hypotheses)} hypotheses")
    matched, total = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for refs, hyp in zip(references, hypotheses):
        hyp = list(hyp)
        refs = [list(r) for r in refs]
        if not refs:
            raise ValueError("every hypothesis needs at least one reference")
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in refs), key=lambda n: (abs(n - len(hyp)), n))
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            best = Counter()
            for r in refs:
                best |= ngrams(r, n)
            matched[n - 1] += sum(min(c, best[g]) for g, c in counts.items())
            total[n - 1] += max(len(hyp) - n + 1, 0)
    if hyp_len == 0 or any(m == 0 for m in matched):
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matched, total)) / max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(log_p)


def cut_at_eos(ids, eos_token_id: int, pad_token_id: int | None = None) -> list[int]:
    out = []
    for t in np.asarray(ids).reshape(-1):
        t = int(t)
        if t == eos_token_id:
            break
        if t != pad_token_id:
            out.append(t)
    return out


def retrieval_rank(scores, index: int) -> int:
    """0-based rank of gallery entry ``index`` by descending score; ties go to the lower gallery index."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    s = scores[index]
    return int((scores > s).sum() + (scores[:index] == s).sum())


class CaptioningEvaluator:
    """``update(outputs, target)`` per sample; ``compute()`` -> bleu1..4, token_accuracy, exact_match, recall@k."""

    def __init__(self, output_name="output_ids", scores_name="itm_scores", eos_token_id=2, pad_token_id=1,
                 primary_metric="bleu4", recall_at=(1, 5), decode=None, num_examples=4):
        self.output_name, self.scores_name = output_name, scores_name
        self.eos, self.pad = int(eos_token_id), pad_token_id
        self.recall_at = tuple(int(k) for k in recall_at)
        allowed = {"bleu1", "bleu2", "bleu3", "bleu4", "token_accuracy", "exact_match"} | {
            f"recall@{k}" for k in self.recall_at}
        if primary_metric not in allowed:
            raise ValueError(f"primary_metric {primary_metric!r} is not one of {sorted(allowed)}")
        self.primary_metric = primary_metric
        self.decode = decode
        self.num_examples = int(num_examples)
        self.hyps, self.refs, self.ranks = [], [], []
        self.token_hits = self.token_total = self.exact = 0
        self.gallery_size = None

    def _decoder(self):
        if self.decode is None:
            return None
        if callable(self.decode):
            return self.decode
        import importlib

        module, _, attr = str(self.decode).partition(":")
        return getattr(importlib.import_module(module), attr)

    def update(self, outputs: dict, target):
        if self.output_name not in outputs:
            raise KeyError(f"CaptioningEvaluator: no output {self.output_name!r} among {sorted(outputs)}")
        generated = np.asarray(outputs[self.output_name]).reshape(-1)
        ref_ids = [int(t) for t in np.asarray(target["caption_ids"]).reshape(-1)]
        ref_words = cut_at_eos(ref_ids, self.eos, self.pad)
        hyp_words = cut_at_eos(generated, self.eos, self.pad)
        self.hyps.append(hyp_words)
        self.refs.append([ref_words])
        self.token_hits += sum(int(i < len(generated) and int(generated[i]) == t) for i, t in enumerate(ref_ids))
        self.token_total += len(ref_ids)
        self.exact += int(hyp_words == ref_words)
        index = int(target.get("candidate_index", -1)) if isinstance(target, dict) else -1
        scores = outputs.get(self.scores_name)
        if scores is not None and np.asarray(scores).size and index >= 0:
            scores = np.asarray(scores).reshape(-1)
            self.gallery_size = scores.size
            self.ranks.append(retrieval_rank(scores, index))

    def compute(self) -> dict:
        n = len(self.hyps)
        result = {f"bleu{k}": corpus_bleu(self.refs, self.hyps, k) if n else 0.0 for k in range(1, 5)}
        result.update(token_accuracy=self.token_hits / self.token_total if self.token_total else 0.0,
                      exact_match=self.exact / n if n else 0.0, num_samples=n)
        if self.ranks:
            ranks = np.asarray(self.ranks)
            result.update({f"recall@{k}": float((ranks < k).mean()) for k in self.recall_at})
            result.update(mean_rank=float(ranks.mean() + 1), gallery_size=int(self.gallery_size),
                          retrieval_samples=len(self.ranks))
        else:
            result.update({f"recall@{k}": None for k in self.recall_at})
        decode = self._decoder()
        if decode is not None:
            result["examples"] = [{"generated": decode(h), "reference": decode(r[0])}
                                  for h, r in zip(self.hyps[:self.num_examples], self.refs[:self.num_examples])]
        return result
