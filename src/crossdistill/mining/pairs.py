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


def _sample(rng: random.Random, pairs: list[tuple], n: int) -> list[tuple]:
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
            pos = g[g.label > 0]
            neg = g[(g.label <= 0) & (g.origin != "qrels")]
            cand = [(qid, a.docid, b.docid, a.teacher_score - b.teacher_score)
                    for a in pos.itertuples() for b in neg.itertuples()]
            rows += _sample(rng, cand, self.pairs_per_query)
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
            rest = rest[rest.label <= 0]
            cand = [(qid, a.docid, b.docid, a.teacher_score - b.teacher_score)
                    for a in best.itertuples() for b in rest.itertuples()]
            rows += _sample(rng, cand, self.pairs_per_query)
        return pd.DataFrame(rows, columns=PAIR_COLUMNS)
