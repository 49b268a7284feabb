"""Teacher scoring outside a Trainer, for evaluation inside the student's training loop."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from sentence_transformers import CrossEncoder

from crossdistill.common.precision import autocast


@torch.inference_mode()
def predict_logits(model: CrossEncoder, pairs: Sequence[tuple[str, str]], batch_size: int = 64,
                   precision: str = "32") -> list[float]:
    """Raw logits for (query, doc) pairs. Pairs are batched longest-first so batches carry little padding."""
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][1]))
    out = [0.0] * len(pairs)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            features = model.preprocess([pairs[i] for i in idx])
            features = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in features.items()}
            with autocast(precision, model.device):
                scores = model(features)["scores"].squeeze(-1).float().cpu().tolist()
            for i, s in zip(idx, scores):
                out[i] = s
    finally:
        model.train(was_training)
    return out
