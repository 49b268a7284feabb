"""Margin-MSE, the distillation loss (Hofstaetter et al., "Improving Efficient Neural Ranking Models with
Cross-Architecture Knowledge Distillation", 2020, arXiv:2010.02666)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class MarginMSELoss(nn.Module):
    """MSE between the student's margin and the teacher's margin.

    Inputs: query, doc_a and doc_b embeddings, each [batch, dim]. Label: ``teacher_margin`` [batch] =
    t(q, a) - t(q, b) in raw teacher logits, a fixed target. The student's score is ``scale * <q, d>``: with
    normalised embeddings the dot product lives in [-1, 1] while logit margins span several units, and the scale
    lets the two meet without changing the ranking. With scale 1 this is exactly sentence-transformers'
    ``MarginMSELoss`` (dot product), which the tests check.
    """

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, query: Tensor, doc_a: Tensor, doc_b: Tensor, teacher_margin: Tensor) -> Tensor:
        student_margin = self.scale * ((query * doc_a).sum(-1) - (query * doc_b).sum(-1))
        return torch.nn.functional.mse_loss(student_margin, teacher_margin.to(student_margin.dtype))
