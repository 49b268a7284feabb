"""Cross-encoders: ``[CLS] query [SEP] doc`` -> one raw relevance logit."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from sentence_transformers import CrossEncoder

from crossdistill.common.batching import longest_first, to_device
from crossdistill.models.references import resolve_model
from crossdistill.models.runtimes import forward


def load_cross_encoder(model: str, max_length: int) -> CrossEncoder:
    """A bi-encoder folder (e.g. all-MiniLM-L6-v2) gets a fresh one-logit head; a cross-encoder folder keeps its own.

    The activation is the identity: distillation needs raw logits (their differences are the margins), never
    sigmoid-squashed scores, and the saved config records it so ``CrossEncoder(path)`` predicts logits too.
    """
    return CrossEncoder(resolve_model(model), num_labels=1, max_length=max_length, activation_fn=torch.nn.Identity())


@torch.inference_mode()
def predict_logits(model: CrossEncoder, pairs: Sequence[tuple[str, str]], batch_size: int = 64,
                   precision: str = "32", backend: str = "torch") -> list[float]:
    """Raw logits for (query, doc) pairs, in input order, outside a Trainer (evaluation inside training loops), on
    ``backend`` (``inference_backend``: :mod:`crossdistill.models.runtimes`)."""
    order = longest_first([doc for _, doc in pairs])
    out = [0.0] * len(pairs)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            features = to_device(model.preprocess([pairs[i] for i in idx]), model.device)
            scores = forward(model, features, backend, precision, "scores").squeeze(-1).cpu().tolist()
            for i, s in zip(idx, scores):
                out[i] = s
    finally:
        model.train(was_training)
    return out
