"""Bi-encoders: a SentenceTransformer (mean pooling) that embeds queries and documents separately."""
from __future__ import annotations

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize

from crossdistill.models.references import resolve_model


def load_bi_encoder(model: str, normalize: bool) -> SentenceTransformer:
    """Load a SentenceTransformer and add or drop its Normalize module, so the saved model scores as trained."""
    encoder = SentenceTransformer(resolve_model(model), device="cpu")
    has_norm = isinstance(encoder[len(encoder) - 1], Normalize)
    if normalize and not has_norm:
        encoder.append(Normalize())
    elif not normalize and has_norm:
        del encoder[len(encoder) - 1]
    # Mean pooling never reads BERT's pooler; frozen, it is no "unused parameter" for DDP's gradient sync.
    pooler = getattr(encoder.transformers_model, "pooler", None)
    if pooler is not None:
        pooler.requires_grad_(False)
    return encoder
