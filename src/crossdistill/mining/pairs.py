"""Pair strategies: turn a teacher-scored artifact into (query, better doc, worse doc, teacher margin) rows.

Every strategy keeps the false-negative guard: a document judged relevant for the query is never the worse doc.
The margin is always t(q, a) - t(q, b) in raw logits; it may be negative when the teacher disagrees with a
label, and distillation keeps it that way (the student learns the teacher's view, not the label's).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import datasets
import numpy as np
import pandas as pd

PAIR_COLUMNS = ("qid", "docid_a", "docid_b", "margin")


def _frame(artifact: datasets.Dataset | pd.DataFrame) -> pd.DataFrame:
    return artifact.to_pandas() if isinstance(artifact, datasets.Dataset) else artifact


class PairStrategy:
    """Per query, split the scored shortlist into better and worse docs; sample pairs from their product."""

    pairs_per_query: int
    seed: int

    def split(self, group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        raise NotImplementedError

    def build(self, artifact: datasets.Dataset | pd.DataFrame) -> pd.DataFrame:
        rng = random.Random(self.seed)
        rows = []
        for qid, group in _frame(artifact).groupby("qid", sort=True):
            better, worse = self.split(group)
            worse = worse[worse.label <= 0]  # the false-negative guard, for every strategy
            worse_rows = list(zip(worse.docid.tolist(), worse.teacher_score.tolist()))
            pairs = [(qid, a, b, sa - sb) for a, sa in zip(better.docid.tolist(), better.teacher_score.tolist())
                     for b, sb in worse_rows]
            rows += pairs if len(pairs) <= self.pairs_per_query else rng.sample(pairs, self.pairs_per_query)
        return pd.DataFrame(rows, columns=PAIR_COLUMNS)


@dataclass
class PositiveVsShortlist(PairStrategy):
    """Judged positives against shortlist negatives: the classic margin-MSE setup on labelled queries."""

    pairs_per_query: int = 4
    seed: int = 0

    def split(self, group):
        return group[group.label > 0], group[group.origin != "qrels"]


@dataclass
class TeacherTopVsRest(PairStrategy):
    """The teacher's top ``top`` shortlist docs against the rest; needs no labels (label-free mode)."""

    top: int = 2
    pairs_per_query: int = 4
    seed: int = 0

    def split(self, group):
        group = group.sort_values("teacher_score", ascending=False, kind="stable")
        return group.iloc[: self.top], group.iloc[self.top:]


def _student_margins(scored: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """The mining student's score margin s(q, a) - s(q, b) for every pair, from the artifact's dense scores."""
    dense = scored.set_index(["qid", "docid"])["dense_score"]
    a = dense.reindex(list(zip(pairs.qid, pairs.docid_a))).to_numpy()
    b = dense.reindex(list(zip(pairs.qid, pairs.docid_b))).to_numpy()
    return a - b


def student_agreement(scored: pd.DataFrame, pairs: pd.DataFrame) -> float:
    """Share of pairs the mining student already orders as the teacher does (sign of its cosine margin equals the
    sign of the teacher margin; ties count as disagreement). Near 1, the pairs have little left to teach."""
    if pairs.empty:
        return float("nan")
    return float((np.sign(_student_margins(scored, pairs)) * np.sign(pairs.margin.to_numpy()) > 0).mean())


def margin_scale(scored: pd.DataFrame, pairs: pd.DataFrame) -> float:
    """The student score scale that gives the mining student's margins the teacher's size on these pairs:
    mean |teacher margin| / mean |student margin|. Margin-MSE then asks the student to reorder pairs, not to
    stretch its whole score range to logit size (which bends a cosine space out of shape). NaN when the student
    gives every pair the same score (nothing to measure)."""
    student = np.abs(_student_margins(scored, pairs)).mean() if len(pairs) else 0.0
    return float(pairs.margin.abs().mean() / student) if student > 0 else float("nan")
