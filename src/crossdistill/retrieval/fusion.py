"""Turning first-stage runs into per-query candidate shortlists (single retriever or RRF hybrid).

Each candidate remembers which first stage(s) proposed it and at what rank, so later stages
(teacher scoring, hard-negative mining, analysis) can tell lexical from semantic candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossdistill.retrieval.topk import TopKRun
from crossdistill.types import Candidate, Run, Shortlists

# Origins a first stage may not take: they say a candidate came from the judgments (mining adds the positives) or
# from both runs of a fusion. Any other name is a first stage's (bm25, dense, run, or a new kind's).
_RESERVED = ("", "qrels", "both")


def _ranks(hits: list[tuple[str, float]]) -> dict[str, int]:
    """docid -> 1-based rank; a duplicated docid keeps its best (first) rank."""
    ranks: dict[str, int] = {}
    for i, (docid, _) in enumerate(hits, start=1):
        ranks.setdefault(docid, i)
    return ranks


def shortlist_from_run(run: Run, origin: str, k: int) -> Shortlists:
    """The top ``k`` of one retriever's run (assumed best first), tagged with ``origin``."""
    if origin in _RESERVED:
        raise ValueError(f"a first stage's origin must be a name other than {_RESERVED}, got {origin!r}")
    out: Shortlists = {}
    for qid, hits in run.items():
        out[qid] = [
            Candidate(
                docid=docid,
                origin=origin,
                rank=r,
                score=float(score),
                bm25_rank=r if origin == "bm25" else None,
                dense_rank=r if origin == "dense" else None,
            )
            for r, (docid, score) in enumerate(hits[:k], start=1)
        ]
    return out


@dataclass
class ShortlistTable:
    """Shortlists as columns: ``frame`` has one row per candidate (qid, docid, origin, first_stage_rank,
    first_stage_score, bm25_rank, dense_rank), queries in ``queries`` order (which also names the queries whose
    shortlist is empty), each best first."""

    queries: list[str]
    frame: pd.DataFrame


def shortlist_columns(run: TopKRun, origin: str, k: int) -> ShortlistTable:
    """:func:`shortlist_from_run` for a :class:`TopKRun`, as a :class:`ShortlistTable` in the same order: 100k
    queries' shortlists make no candidate objects and no Python string per row (the ids are taken in Arrow)."""
    if origin in _RESERVED:
        raise ValueError(f"a first stage's origin must be a name other than {_RESERVED}, got {origin!r}")
    k = min(k, run.rows.shape[1])
    kept = np.arange(k) < np.minimum(run.counts, k)[:, None]   # [queries, k]: within each query's count
    query_pos, rank0 = np.nonzero(kept)   # row-major: queries in run order, each best first
    rank = pd.array(rank0 + 1, dtype="Int64")
    none = pd.array(np.zeros(len(rank0), dtype=np.int64), dtype="Int64")
    none[:] = pd.NA
    return ShortlistTable(run.query_ids, pd.DataFrame({
        "qid": pd.Series(run.query_ids, dtype="str").take(query_pos).reset_index(drop=True),
        "docid": pd.Series(run.doc_ids, dtype="str").take(run.rows[:, :k][kept]).reset_index(drop=True),
        "origin": pd.Series([origin] * len(rank0), dtype="str"),
        "first_stage_rank": rank, "first_stage_score": run.scores[:, :k][kept].astype(np.float64),
        "bm25_rank": rank if origin == "bm25" else none.copy(), "dense_rank": rank if origin == "dense" else none.copy(),
    }))


def reciprocal_rank_fusion(bm25: Run, dense: Run, k: int, rrf_k: int = 60) -> Shortlists:
    """Hybrid shortlist by Reciprocal Rank Fusion (Cormack et al., 2009).

    RRF uses only ranks, so BM25 and dot-product scores need no calibration against each
    other. A document's fused score is ``sum 1/(rrf_k + rank)`` over the runs that contain
    it; the top ``k`` by fused score are kept (ties broken by docid). Queries present in
    only one run are fused with an empty list for the other.
    """
    out: Shortlists = {}
    for qid in dict.fromkeys([*bm25, *dense]):
        b_ranks, d_ranks = _ranks(bm25.get(qid, [])), _ranks(dense.get(qid, []))
        fused: list[tuple[float, str]] = []
        for docid in b_ranks.keys() | d_ranks.keys():
            br, dr = b_ranks.get(docid), d_ranks.get(docid)
            score = (1.0 / (rrf_k + br) if br else 0.0) + (1.0 / (rrf_k + dr) if dr else 0.0)
            fused.append((score, docid))
        fused.sort(key=lambda x: (-x[0], x[1]))
        out[qid] = [
            Candidate(
                docid=docid,
                origin="both" if docid in b_ranks and docid in d_ranks else ("bm25" if docid in b_ranks else "dense"),
                rank=r,
                score=score,
                bm25_rank=b_ranks.get(docid),
                dense_rank=d_ranks.get(docid),
            )
            for r, (score, docid) in enumerate(fused[:k], start=1)
        ]
    return out
