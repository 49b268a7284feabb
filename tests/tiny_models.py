"""Tiny, randomly initialised BERT models for fast offline tests.

Nothing is downloaded: a word-piece vocabulary, a 1-layer BERT and its tokenizer are
written from scratch in milliseconds, so tests can exercise the real
sentence-transformers / transformers loading paths (``SentenceTransformer`` and
``CrossEncoder(dir, num_labels=1)`` both load from the saved directory).
"""

from __future__ import annotations

from pathlib import Path

import torch

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

_WORDS = """
the of and to in is was for on that with as by at from it an be are this which or
has have had not but were its their they been also can more other into all one two
new first may used between after over such these than most some only about when
there would time people use out who data results study cell cells gene genes protein
proteins disease patients treatment effect effects risk increased decreased high
low level levels human model models method methods analysis expression associated
clinical cancer tumor blood brain heart drug drugs dose trial group control rate
found show shows showed evidence role function factor factors response activity
run runs running ran runner fast slow dog dogs cat cats fox jump jumps jumped quick
brown lazy bird birds fly flies flying sun moon star stars sky water fire earth air
red blue green black white big small good bad city cities country river sea ocean
mountain tree trees car cars road train book books read reading write writing paper
computer computers network networks learning deep neural retrieval search query
document documents score ranking rank text word words language vaccine virus covid
infection immune mouse mice acid dna rna mutation mutations receptor pathway
""".split()

_SUBWORDS = ["##s", "##es", "##ed", "##ing", "##er", "##ly", "##al", "##ion", "##a", "##e", "##i", "##o", "##n", "##t"]


def make_vocab() -> dict[str, int]:
    """A few hundred word-piece tokens: specials, common English words, single characters, suffixes."""
    chars = [c for c in "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-"]
    tokens = SPECIAL_TOKENS + list(dict.fromkeys(_WORDS)) + chars + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + _SUBWORDS
    return {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}


def save_tiny_bert(directory: str | Path, hidden_size: int = 32, seed: int = 0, layers: int = 1) -> Path:
    """Write a ``layers``-layer BERT (config + weights) and a fast tokenizer into ``directory``.

    transformers 5: ``BertTokenizerFast(vocab=dict)``; ``vocab_file=`` would be silently ignored.
    """
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = make_vocab()
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(directory)
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=128)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_sentence_transformer(directory: str | Path, hidden_size: int = 32, seed: int = 0):
    """A mean-pooled SentenceTransformer over a freshly written tiny BERT in ``directory``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    path = save_tiny_bert(directory, hidden_size=hidden_size, seed=seed)
    return SentenceTransformer(modules=[Transformer(str(path)), Pooling(hidden_size, "mean")], device="cpu")
