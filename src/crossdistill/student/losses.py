"""The student's objective: a weighted sum of distillation losses, each one class here and one entry in the config
(``student.losses.<name>: {_target_, weight, ...}``), as Lightning IR's ``loss_functions=[(loss, weight)]``.

Every loss reads a :class:`ScoredBatch` (the step's embeddings, the teacher's margins and the student's score
scale) in :meth:`DistillLoss.from_batch`; its ``forward`` takes plain tensors, the form the equivalence tests
against sentence-transformers' losses call. Student scores are ``scale * <q, d>`` everywhere.

Margin-MSE: Hofstaetter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
Distillation", 2020, arXiv:2010.02666.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from crossdistill.student.batch import ScoredBatch


class DistillLoss(nn.Module):
    """One term of the student's objective: ``weight x from_batch(batch)``, logged as ``student/<name>_loss``. A new
    term is a subclass with ``from_batch`` and an entry under ``student.losses`` naming it with ``_target_``."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def from_batch(self, batch: ScoredBatch) -> Tensor:
        raise NotImplementedError

    def bind(self, encoder: nn.Module) -> None:
        """Called once with the student's encoder at its start weights, before training (a term that reads the
        weights rather than the batch keeps what it needs here)."""


def margin_mse(query: Tensor, doc_a: Tensor, doc_b: Tensor, teacher_margin: Tensor, scale: float) -> Tensor:
    student_margin = scale * ((query * doc_a).sum(-1) - (query * doc_b).sum(-1))
    return torch.nn.functional.mse_loss(student_margin, teacher_margin.to(student_margin.dtype))


class MarginMSELoss(DistillLoss):
    """MSE between the student's margin and the teacher's margin.

    Inputs: query, doc_a and doc_b embeddings, each [batch, dim]. Label: ``teacher_margin`` [batch] =
    t(q, a) - t(q, b) in raw teacher logits, a fixed target. The student's score is ``scale * <q, d>``: with
    normalised embeddings the dot product lives in [-1, 1] while logit margins span several units, and the scale
    lets the two meet without changing the ranking. With scale 1 this is exactly sentence-transformers'
    ``MarginMSELoss`` (dot product), which the tests check. In a batch: every worse doc against its group's query
    and better doc.
    """

    def __init__(self, scale: float = 1.0, weight: float = 1.0):
        super().__init__(weight)
        self.scale = scale

    def forward(self, query: Tensor, doc_a: Tensor, doc_b: Tensor, teacher_margin: Tensor) -> Tensor:
        return margin_mse(query, doc_a, doc_b, teacher_margin, self.scale)

    def from_batch(self, batch: ScoredBatch) -> Tensor:
        owner = batch.owner
        return margin_mse(batch.query[owner], batch.better[owner], batch.worse, batch.margins, batch.scale)


def in_batch_cross_entropy(query: Tensor, docs: Tensor, target: Tensor, mask: Tensor, scale: float) -> Tensor:
    if mask.shape != (query.shape[0], docs.shape[0]):
        raise ValueError(f"InBatchNegativesLoss: mask must be [queries, docs] = {[query.shape[0], docs.shape[0]]}, "
                         f"got {list(mask.shape)}")
    logits = scale * query @ docs.T
    keep = torch.nn.functional.one_hot(target, docs.shape[0]).bool()
    logits = logits.masked_fill(mask & ~keep, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, target)


class InBatchNegativesLoss(DistillLoss):
    """Cross-entropy of each query over every document in the batch, its own better doc as the target (the
    in-batch negatives of Karpukhin et al. 2020, "Dense Passage Retrieval", and of sentence-transformers'
    ``MultipleNegativesRankingLoss``; Hofstaetter et al. 2021, TAS-B, pair it with margin-MSE).

    Margin-MSE only sees a query's shortlist, so nothing holds the rest of the corpus below its positive: the
    measured default lost dev recall@100 0.927 -> 0.847 in one round. The other groups' documents are a sample of
    that rest. Inputs: query [B, dim], docs [M, dim] (every doc the batch encoded), target [B] (index of each
    query's own better doc in docs), mask [B, M] (True = not a negative for that query: another of its better
    docs, or the same text again). Logits are ``scale * <q, d>``, the student's score.
    """

    def __init__(self, scale: float = 1.0, weight: float = 1.0):
        super().__init__(weight)
        self.scale = scale

    def forward(self, query: Tensor, docs: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        return in_batch_cross_entropy(query, docs, target, mask, self.scale)

    def from_batch(self, batch: ScoredBatch) -> Tensor:
        target = torch.arange(batch.query.shape[0], device=batch.query.device)
        return in_batch_cross_entropy(batch.query, batch.docs, target, batch.not_negative, batch.scale)


def listwise_kl(query: Tensor, doc_a: Tensor, doc_b: Tensor, owner: Tensor, margins: Tensor, scale: float,
                temperature: float) -> Tensor:
    groups = query.shape[0]
    slot = torch.zeros_like(owner)   # the position of each worse doc within its group, from 1
    for g in range(groups):
        hit = owner == g
        slot[hit] = torch.arange(1, int(hit.sum()) + 1, device=owner.device)
    width = int(slot.max()) + 1 if len(slot) else 1
    student = torch.full((groups, width), float("-inf"), dtype=query.dtype, device=query.device)
    teacher = torch.full((groups, width), float("-inf"), dtype=margins.dtype, device=query.device)
    student[:, 0] = scale * (query * doc_a).sum(-1)
    student[owner, slot] = scale * (query[owner] * doc_b).sum(-1)
    teacher[:, 0] = 0.0
    teacher[owner, slot] = -margins
    t = temperature
    log_q = torch.log_softmax(student / t, dim=1)
    log_p = torch.log_softmax(teacher.to(student.dtype) / t, dim=1)
    valid = torch.isfinite(teacher)
    kl = torch.where(valid, log_p.exp() * (log_p - log_q), torch.zeros_like(log_q)).sum(1)
    return kl.mean() * t * t


class ListwiseKLLoss(DistillLoss):
    """KL divergence between the teacher's and the student's score distributions over each group's documents: a
    query's better document and its worse ones (Lightning IR's ``KLDivergence``; sentence-transformers'
    ``DistillKLDivLoss``, which the tests check it equals for groups of one size).

    loss = T^2 * mean_groups sum_d p_t(d) (log p_t(d) - log p_s(d)),  p = softmax(score / T) over the group.

    The teacher's scores within a group are known up to a constant from the margins (t_a = 0, t_b = -margin), which
    is all a softmax needs. Margin-MSE matches each pair's difference; this matches the whole group's ranking
    distribution at once, so a confidently wrong negative costs more than a near tie. Inputs: query and better doc
    [B, dim], worse docs [N, dim], ``owner`` [N] (the group of each worse doc), ``margins`` [N]. Student scores are
    ``scale * <q, d>``, as in margin-MSE.
    """

    def __init__(self, scale: float = 1.0, temperature: float = 1.0, weight: float = 1.0):
        super().__init__(weight)
        if temperature <= 0:
            raise ValueError(f"ListwiseKLLoss: temperature must be > 0, got {temperature}")
        self.scale, self.temperature = scale, temperature

    def forward(self, query: Tensor, doc_a: Tensor, doc_b: Tensor, owner: Tensor, margins: Tensor) -> Tensor:
        return listwise_kl(query, doc_a, doc_b, owner, margins, self.scale, self.temperature)

    def from_batch(self, batch: ScoredBatch) -> Tensor:
        return listwise_kl(batch.query, batch.better, batch.worse, batch.owner, batch.margins, batch.scale,
                           self.temperature)


class StartAnchorLoss(DistillLoss):
    """L2-SP (Li et al., "Explicit Inductive Bias for Transfer Learning with Convolutional Networks", ICML 2018): the
    squared distance of the trainable weights from the start's, sum_w (w - w_start)^2, so the distilled student moves
    only as far from all-MiniLM-L6-v2 as its teacher's margins pay for (weight decay pulls toward 0 instead). The
    start is the encoder as :meth:`bind` finds it, before round 1 (later rounds anchor to the same start). With weight
    0 nothing is copied."""

    def __init__(self, weight: float = 0.0):
        super().__init__(weight)
        self._params: list[nn.Parameter] = []   # a plain list: the encoder's weights are not registered twice

    def bind(self, encoder: nn.Module) -> None:
        if not self.weight:
            return
        self._params = [p for p in encoder.parameters() if p.requires_grad]
        for i, p in enumerate(self._params):   # buffers follow the module's device, never saved in checkpoints
            self.register_buffer(f"start_{i}", p.detach().clone(), persistent=False)

    def forward(self) -> Tensor:
        if not self._params:
            raise RuntimeError("StartAnchorLoss: bind() was not called with the encoder at its start weights")
        return sum(((p - getattr(self, f"start_{i}")) ** 2).sum() for i, p in enumerate(self._params))

    def from_batch(self, batch: ScoredBatch) -> Tensor:
        return self()
