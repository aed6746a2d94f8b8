"""GLIP's host-side text path: the caption's phrases -> BERT tokens, the positive map, BERT's token features.

GLIP deploys the image branch and the fusion head; the text encoder runs where the caption is known (the
host), as mmdet's ``GLIP`` runs ``language_model`` before the head. Tokenization is HuggingFace's
``BertTokenizer`` (a word-piece vocabulary file; the demo's holds the synthetic grammar's words), captions
"red square . blue circle ." as GLIP writes them, padded to ``max_text_len`` (mmdet's ``pad_to_max``).
The positive map (mmdet ``create_positive_map``): row p marks the tokens of phrase p, each ``1/len`` so that
``token_probs @ positive_map.T`` is the mean over the phrase's tokens (``convert_grounding_to_cls_scores``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = Path(__file__).parent / "checkpoints" / "glip_vocab.txt"
COLOURS = ("red", "green", "blue")
SHAPES = ("square", "circle")
PHRASES = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)  # the grounding categories, in this order


def tokenizer(vocab_file=VOCAB):
    """HF's ``BertTokenizer`` over ``vocab_file`` (one token a line). transformers 5 takes the vocabulary as
    ``vocab`` (and silently ignores ``vocab_file``: every word becomes [UNK]); 4.x as ``vocab_file``."""
    import inspect

    from transformers import BertTokenizer

    words = Path(vocab_file).read_text().split()
    if "vocab" in inspect.signature(BertTokenizer.__init__).parameters:
        tok = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True)
    else:
        tok = BertTokenizer(vocab_file=str(vocab_file), do_lower_case=True)
    unknown = [w for w in words if tok.convert_tokens_to_ids(w) != words.index(w)]
    if unknown:
        raise RuntimeError(f"BertTokenizer did not take the vocabulary of {vocab_file}: {unknown} map elsewhere")
    return tok


def encode_caption(tok, phrases, max_text_len, categories=PHRASES):
    """``phrases`` (in caption order) -> ``input_ids (T,)``, ``attention_mask (T,)``, ``positive_map (P, T)``
    with P = ``len(categories)`` (rows of phrases absent from the caption stay zero)."""
    index = {p: i for i, p in enumerate(categories)}
    ids, spans = [tok.cls_token_id], {}
    for phrase in phrases:
        if phrase not in index:
            raise ValueError(f"phrase {phrase!r} is not one of the categories {list(categories)}")
        piece = tok.convert_tokens_to_ids(tok.tokenize(phrase))
        spans[phrase] = (len(ids), len(ids) + len(piece))
        ids += piece + tok.convert_tokens_to_ids(["."])
    ids.append(tok.sep_token_id)
    if len(ids) > max_text_len:
        raise ValueError(f"caption {' . '.join(phrases)!r} is {len(ids)} tokens, more than max_text_len "
                         f"{max_text_len}")
    input_ids = np.full(max_text_len, tok.pad_token_id, np.int64)
    input_ids[:len(ids)] = ids
    mask = (np.arange(max_text_len) < len(ids)).astype(np.int64)
    pmap = np.zeros((len(categories), max_text_len), np.float32)
    for phrase, (a, b) in spans.items():
        pmap[index[phrase], a:b] = 1.0 / (b - a)
    return input_ids, mask, pmap
