"""Pair strategies: turn a teacher-scored artifact into (query, better doc, worse doc, teacher margin) rows.

Every strategy keeps the false-negative guard: a document judged relevant for the query is never the worse doc.
The margin is always t(q, a) - t(q, b) in raw logits; it may be negative when the teacher disagrees with a
label, and distillation keeps it that way (the student learns the teacher's view, not the label's).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import datasets
import pandas as pd

PAIR_COLUMNS = ("qid", "docid_a", "docid_b", "margin")


def _frame(artifact: datasets.Dataset | pd.DataFrame) -> pd.DataFrame:
    return artifact.to_pandas() if isinstance(artifact, datasets.Dataset) else artifact


def _sampled_pairs(rng: random.Random, qid: str, better: pd.DataFrame, worse: pd.DataFrame, n: int) -> list[tuple]:
    """Up to ``n`` (qid, a, b, t_a - t_b) rows from the cross product; ``worse`` is already guarded."""
    pairs = [(qid, a.docid, b.docid, a.teacher_score - b.teacher_score)
             for a in better.itertuples() for b in worse.itertuples()]
    return pairs if len(pairs) <= n else rng.sample(pairs, n)


@dataclass
class PositiveVsShortlist:
    """Judged positives against shortlist negatives: the classic margin-MSE setup on labelled queries."""

    pairs_per_query: int = 4
    seed: int = 0

    def build(self, artifact) -> pd.DataFrame:
        rng = random.Random(self.seed)
        rows = []
        for qid, g in _frame(artifact).groupby("qid", sort=True):
            negatives = g[(g.label <= 0) & (g.origin != "qrels")]
            rows += _sampled_pairs(rng, qid, g[g.label > 0], negatives, self.pairs_per_query)
        return pd.DataFrame(rows, columns=PAIR_COLUMNS)


@dataclass
class TeacherTopVsRest:
    """The teacher's top ``top`` shortlist docs against the rest; needs no labels (label-free mode)."""

    top: int = 2
    pairs_per_query: int = 4
    seed: int = 0

    def build(self, artifact) -> pd.DataFrame:
        rng = random.Random(self.seed)
        rows = []
        for qid, g in _frame(artifact).groupby("qid", sort=True):
            g = g.sort_values("teacher_score", ascending=False, kind="stable")
            best, rest = g.iloc[: self.top], g.iloc[self.top:]
            rows += _sampled_pairs(rng, qid, best, rest[rest.label <= 0], self.pairs_per_query)
        return pd.DataFrame(rows, columns=PAIR_COLUMNS)
