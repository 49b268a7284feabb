"""The shapes every stage passes around, defined once.

Run:        qid -> [(docid, score)], best first (a first stage's ranking, or a reranked shortlist)
Qrels:      qid -> docid -> grade (grade > 0 means relevant)
Candidate:  one shortlisted document and why it entered the shortlist (which first stage, at what rank)
Shortlists: qid -> [Candidate], in shortlist order
"""
from __future__ import annotations

from dataclasses import dataclass

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)   # slots: millions of shortlisted candidates at scale
class Candidate:
    docid: str
    origin: str  # "bm25", "dense", "both" (fused) or "run" (a user's TREC run file): which first stage proposed it
    rank: int  # rank in the shortlist order, from 1
    score: float  # first-stage score (the fused RRF score for hybrid)
    bm25_rank: int | None  # rank in the bm25 run if present (within its depth)
    dense_rank: int | None


Shortlists = dict[str, list[Candidate]]
