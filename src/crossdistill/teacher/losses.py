"""Ranking losses for the cross-encoder teacher.

Every loss takes ``scores`` of shape [batch, group]: one query per row, the judged positive in column 0 and
its hard negatives after it. Scores are raw logits; the losses differ only in what they compare.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def listwise_softmax(scores: Tensor) -> Tensor:
    """Softmax cross-entropy with the positive as the target class (a.k.a. localised contrastive estimation).

    loss = mean_i [ -s_i0 + log sum_j exp(s_ij) ]. Reference: Gao et al., "Rethink Training of BERT Rerankers in
    Multi-Stage Retrieval Pipeline", ECIR 2021.
    """
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores, target)


def pairwise_logistic(scores: Tensor) -> Tensor:
    """RankNet: mean over (positive, negative) pairs of log(1 + exp(-(s_pos - s_neg))). Burges et al., ICML 2005."""
    margins = scores[:, :1] - scores[:, 1:]
    return F.softplus(-margins).mean()


def pointwise_bce(scores: Tensor) -> Tensor:
    """Binary cross-entropy on each logit: label 1 for column 0, 0 for the rest (monoBERT, Nogueira & Cho 2019)."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels)


LOSSES = {"listwise": listwise_softmax, "pairwise": pairwise_logistic, "pointwise": pointwise_bce}
