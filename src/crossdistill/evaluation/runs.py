"""TREC run files and ranking helpers.

Run = dict[qid, list[(docid, score)]], sorted by score descending, best first.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from crossdistill.common.io import atomic_path
from crossdistill.evaluation.metrics import evaluate
from crossdistill.retrieval.run_file import read_trec_run
from crossdistill.types import Run

__all__ = ["read_trec_run", "rerank", "rerank_frame", "rerank_head", "reranked_ndcg", "ties_as_ranks", "top_k", "write_trec_run"]


def write_trec_run(run: Run, path: str | Path, tag: str) -> None:
    """Write 'qid Q0 docid rank score tag' lines, rank from 1 in list order.

    Atomic (temp file in the same directory + os.replace) so a crash or a
    concurrent reader never sees a half-written run. Scores use repr() so they
    round-trip exactly.
    """
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be non-empty without whitespace, got {tag!r}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for qid, ranked in run.items():
            f.writelines(f"{qid} Q0 {doc} {rank} {float(score)!r} {tag}\n"
                         for rank, (doc, score) in enumerate(ranked, start=1))


def ties_as_ranks(run: Run) -> Run:
    """Queries whose scores tie get descending ranks-as-scores; the others keep their scores.

    trec_eval and ir-measures order tied scores by docid, not by file rank, so a fused (RRF) run with ties
    scored differently in those tools than in the list order the pipeline measured (hybrid student nDCG@10 0.719
    vs 0.727 on SciFact test). Strictly decreasing scores make every tool see the list order.
    """
    out: Run = {}
    for qid, ranked in run.items():
        scores = [s for _, s in ranked]
        if all(a > b for a, b in zip(scores, scores[1:])):
            out[qid] = list(ranked)
        else:
            out[qid] = [(d, float(len(ranked) - i)) for i, (d, _) in enumerate(ranked)]
    return out


def top_k(scores: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """The k highest-scoring (docid, score), score desc, ties broken by docid (deterministic)."""
    if k <= 0:
        return []
    return heapq.nsmallest(k, scores.items(), key=lambda kv: (-kv[1], kv[0]))


def rerank(run: Run, scores: Mapping[tuple[str, str], float], k: int) -> Run:
    """Reorder each query's first k candidates by scores[(qid, docid)], returning only those k.

    This is what a reranker over a top-k shortlist yields. The sort is stable, so
    tied reranker scores keep the first-stage order. A missing score raises KeyError
    rather than silently ranking the doc last.
    """
    out: Run = {}
    for qid, ranked in run.items():
        try:
            pairs = [(doc, float(scores[(qid, doc)])) for doc, _ in ranked[:k]]
        except KeyError as e:
            raise KeyError(f"rerank: no score for (qid, docid) {e.args[0]!r}") from None
        out[qid] = sorted(pairs, key=lambda p: -p[1])
    return out


def rerank_head(run: Run, reranked: Run, k: int) -> Run:
    """Each query's reranked top ``k`` followed by the first stage's order below it.

    The two parts carry scores on different scales (reranker logits above, first-stage scores below), so the
    scores are replaced by descending ranks-as-scores: any tool that sorts a TREC run by score (trec_eval,
    ir-measures) then sees the same order as the list.
    """
    out: Run = {}
    for qid, hits in run.items():
        head = reranked.get(qid, hits[:k])[:k]
        seen = {d for d, _ in head}
        ranked = head + [(d, s) for d, s in hits if d not in seen]
        out[qid] = [(d, float(len(ranked) - i)) for i, (d, _) in enumerate(ranked)]
    return out


def rerank_frame(frame: pd.DataFrame, score: pd.Series) -> Run:
    """Each query's rows of ``frame`` (qid, docid) ordered by ``score``; ties keep the frame's order."""
    ordered = frame[["qid", "docid"]].assign(_s=np.asarray(score, dtype=float), _pos=np.arange(len(frame)))
    ordered = ordered.sort_values(["qid", "_s", "_pos"], ascending=[True, False, True])
    return {q: list(zip(g.docid, g._s.astype(float))) for q, g in ordered.groupby("qid", sort=False)}


def reranked_ndcg(frame: pd.DataFrame, score: pd.Series, qrels, k: int = 10) -> float:
    """Mean nDCG@k of ``frame``'s shortlists reordered by ``score`` (a reranker judged on the lists it was given)."""
    return evaluate(rerank_frame(frame, score), qrels, (f"ndcg@{k}",))[f"ndcg@{k}"]
