"""The demo's tokenizer: a word-level HuggingFace ``tokenizers`` model over the synthetic captions' words.

Built in code (no download), so the same ids come out on every machine. The special tokens sit where OPT's
checkpoints put them (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2 = BOS = EOS, ``<unk>`` 3); BLIP-2's ``<image>``
placeholder (``image_token_index``) is the last id, as in ``Salesforce/blip2-opt-*``.
"""

from __future__ import annotations

from functools import lru_cache

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 1, 2, 2, 3
COLOURS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("left", "right", "top", "bottom")
WORDS = ("a",) + COLOURS + SHAPES + ("on", "the", "at") + POSITIONS
IMAGE_TOKEN = "<image>"
VOCAB = SPECIALS + WORDS + (IMAGE_TOKEN,)
IMAGE_TOKEN_ID = len(VOCAB) - 1
VOCAB_SIZE = len(VOCAB)


@lru_cache(maxsize=1)
def build_tokenizer():
    """The word-level ``tokenizers.Tokenizer`` (whitespace split, unknown words -> ``<unk>``)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    return tok


def encode(text: str) -> list[int]:
    """Caption words -> ids (no special tokens)."""
    return build_tokenizer().encode(text).ids


def decode(ids, stop_at_eos: bool = True) -> str:
    """Ids -> words, stopping at the first EOS, special tokens dropped."""
    words = []
    for i in ids:
        i = int(i)
        if stop_at_eos and i == EOS_ID:
            break
        if 0 <= i < len(VOCAB) and VOCAB[i] not in SPECIALS and i != IMAGE_TOKEN_ID:
            words.append(VOCAB[i])
    return " ".join(words)
