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
    """Per query, split the scored shortlist into better and worse docs; sample pairs from their product.

    The artifact is read as arrays and each query's rows as positions into them (not a grouped frame per query:
    100k queries' groups cost minutes and a Python string per row); queries are visited in sorted qid order and
    each query's rows in artifact order, so a seed gives the same pairs however the artifact is stored."""

    pairs_per_query: int
    seed: int

    def split(self, score: np.ndarray, label: np.ndarray, from_qrels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One query's better and worse rows, as positions into its arrays (teacher score, label, origin "qrels")."""
        raise NotImplementedError

    def build(self, artifact: datasets.Dataset | pd.DataFrame) -> pd.DataFrame:
        frame = _frame(artifact)
        if frame.empty:
            return pd.DataFrame([], columns=PAIR_COLUMNS)
        rng = random.Random(self.seed)
        codes, qids = pd.factorize(frame["qid"], sort=True)
        by_query = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[by_query], np.arange(len(qids) + 1))
        score = frame["teacher_score"].to_numpy(dtype=np.float64)
        label = frame["label"].to_numpy()
        from_qrels = (frame["origin"] == "qrels").to_numpy(dtype=bool)
        row_a, row_b = [], []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            rows = by_query[start:stop]
            better, worse = self.split(score[rows], label[rows], from_qrels[rows])
            worse = worse[label[rows][worse] <= 0]   # the false-negative guard, for every strategy
            pairs = [(a, b) for a in rows[better].tolist() for b in rows[worse].tolist()]
            if len(pairs) > self.pairs_per_query:
                pairs = rng.sample(pairs, self.pairs_per_query)
            row_a += [a for a, _ in pairs]
            row_b += [b for _, b in pairs]
        row_a, row_b = np.asarray(row_a, dtype=np.int64), np.asarray(row_b, dtype=np.int64)
        qid, docid = frame["qid"].array, frame["docid"].array   # taken in place (Arrow): no string per row
        return pd.DataFrame({"qid": qid.take(row_a), "docid_a": docid.take(row_a), "docid_b": docid.take(row_b),
                             "margin": score[row_a] - score[row_b]}, columns=PAIR_COLUMNS)


@dataclass
class PositiveVsShortlist(PairStrategy):
    """Judged positives against shortlist negatives: the classic margin-MSE setup on labelled queries."""

    pairs_per_query: int = 4
    seed: int = 0

    def split(self, score, label, from_qrels):
        return np.flatnonzero(label > 0), np.flatnonzero(~from_qrels)


@dataclass
class TeacherTopVsRest(PairStrategy):
    """The teacher's top ``top`` shortlist docs against the rest; needs no labels (label-free mode)."""

    top: int = 2
    pairs_per_query: int = 4
    seed: int = 0

    def split(self, score, label, from_qrels):
        ranked = np.argsort(-score, kind="stable")   # best first, ties in artifact order
        return ranked[: self.top], ranked[self.top:]


def student_margins(scored: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """The mining student's score margin s(q, a) - s(q, b) for every pair, from the artifact's dense scores."""
    rows = pd.MultiIndex.from_arrays([scored.qid, scored.docid])   # codes per level: no tuple per pair
    dense = np.append(scored["dense_score"].to_numpy(dtype=np.float64), np.nan)   # position -1 (absent): NaN
    a = rows.get_indexer(pd.MultiIndex.from_arrays([pairs.qid, pairs.docid_a]))
    b = rows.get_indexer(pd.MultiIndex.from_arrays([pairs.qid, pairs.docid_b]))
    return dense[a] - dense[b]


def student_agreement(pairs: pd.DataFrame, margins: np.ndarray) -> float:
    """Share of pairs the mining student already orders as the teacher does (sign of its cosine margin, from
    :func:`student_margins`, equals the sign of the teacher margin; ties count as disagreement). Near 1, the pairs
    have little left to teach."""
    if pairs.empty:
        return float("nan")
    return float((np.sign(margins) * np.sign(pairs.margin.to_numpy()) > 0).mean())


def margin_scale(pairs: pd.DataFrame, margins: np.ndarray) -> float:
    """The student score scale that gives the mining student's margins (:func:`student_margins`) the teacher's size
    on these pairs: mean |teacher margin| / mean |student margin|. Margin-MSE then asks the student to reorder
    pairs, not to stretch its whole score range to logit size (which bends a cosine space out of shape). NaN when
    the student gives every pair the same score (nothing to measure)."""
    student = np.abs(margins).mean() if len(pairs) else 0.0
    return float(pairs.margin.abs().mean() / student) if student > 0 else float("nan")


def unjudged_pairs(strategy) -> TeacherTopVsRest:
    """Pairs for queries without judgments: the teacher's top of each shortlist against the rest (``pairs``' own
    settings when it is that strategy already, else its pairs per query and seed with the top 2)."""
    if isinstance(strategy, TeacherTopVsRest):
        return strategy
    return TeacherTopVsRest(pairs_per_query=strategy.pairs_per_query, seed=strategy.seed)
