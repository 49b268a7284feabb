"""What one distillation step holds: the texts of its groups (:class:`DistillBatch`, from the collate function),
and the same groups encoded by the student (:class:`ScoredBatch`, what every loss reads)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


@dataclass
class DistillBatch:
    """``B`` groups: each a query and its better doc; ``N`` worse docs, the i-th belonging to group ``owner[i]`` with
    the teacher's margin ``margins[i]`` = t(q, better) - t(q, worse) in raw teacher logits."""

    queries: list[str]      # [B]
    better: list[str]       # [B]
    worse: list[str]        # [N]
    owner: Tensor           # [N] long, values in [0, B)
    margins: Tensor         # [N] float

    def __post_init__(self):
        if not len(self.queries) == len(self.better):
            raise ValueError(f"DistillBatch: {len(self.queries)} queries but {len(self.better)} better docs")
        if not len(self.worse) == len(self.owner) == len(self.margins):
            raise ValueError(f"DistillBatch: {len(self.worse)} worse docs, {len(self.owner)} owners and "
                             f"{len(self.margins)} margins must be as many")

    def __len__(self) -> int:
        return len(self.worse)

    @property
    def texts(self) -> list[str]:
        """Every document the step encodes: the better docs, then the worse ones."""
        return [*self.better, *self.worse]


@dataclass
class ScoredBatch:
    """A :class:`DistillBatch` encoded: query [B, dim] and docs [B + N, dim] embeddings (:attr:`DistillBatch.texts`
    order, encoded in one call), and the scale of the student's score ``scale * <q, d>``."""

    batch: DistillBatch
    query: Tensor
    docs: Tensor
    scale: float

    def __post_init__(self):
        expected = (len(self.batch.queries), len(self.batch.better) + len(self.batch.worse))
        got = (self.query.shape[0], self.docs.shape[0])
        if expected != got:
            raise ValueError(f"ScoredBatch: embeddings for (queries, docs) {got}, the batch has {expected}")

    @property
    def better(self) -> Tensor:
        return self.docs[: len(self.batch.better)]

    @property
    def worse(self) -> Tensor:
        return self.docs[len(self.batch.better):]

    @property
    def owner(self) -> Tensor:
        return self.batch.owner

    @property
    def margins(self) -> Tensor:
        return self.batch.margins

    @cached_property
    def not_negative(self) -> Tensor:
        """[B, B + N]: True where a doc may not be a negative of a query: a better doc of any group with the same
        query text (wherever it sits in the batch)."""
        queries, texts = self.batch.queries, self.batch.texts
        better = [{a for qa, a in zip(queries, self.batch.better) if qa == qi} for qi in queries]
        return torch.tensor([[t in better[i] for t in texts] for i in range(len(queries))], device=self.query.device)
