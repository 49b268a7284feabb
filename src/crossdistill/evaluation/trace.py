"""Per-evaluation ranking traces: one Parquet file per evaluation, one row per shortlist candidate.

Aggregate metrics say *that* a run got better or worse; the trace says *why*, query by query:
where each relevant document sat in BM25, in the student before and after distillation, in the
fused shortlist and after the express lane reranked it. Relevant documents that never made the
shortlist get their own rows (``in_shortlist=False``) so candidate failures stay visible.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from crossdistill.common.io import write_parquet_atomic
from crossdistill.common.layout import RunLayout, trace_files
from crossdistill.types import Candidate, Run

TRACE_COLUMNS: tuple[str, ...] = (
    "eval", "split", "epoch", "qid", "query", "docid", "in_shortlist", "origin",
    "first_stage_rank", "first_stage_score", "bm25_rank", "bm25_score",
    "student_rank", "student_score", "student_init_rank", "student_init_score",
    "express_lane_rank", "express_lane_score", "label",
)

_DTYPES: dict[str, str] = {
    "eval": "str", "split": "str", "epoch": "int64", "qid": "str", "query": "str", "docid": "str",
    "in_shortlist": "bool", "origin": "str",
    "first_stage_rank": "Int64", "first_stage_score": "float64",
    "bm25_rank": "Int64", "bm25_score": "float64",
    "student_rank": "Int64", "student_score": "float64",
    "student_init_rank": "Int64", "student_init_score": "float64",
    "express_lane_rank": "Int64", "express_lane_score": "float64",
    "label": "int64",
}

_NAN = float("nan")


def _rank_index(run: Run | None, qid: str) -> dict[str, tuple[int, float]]:
    """docid -> (1-based rank, score) for one query; empty when the run is absent or lacks the query."""
    if run is None:
        return {}
    index: dict[str, tuple[int, float]] = {}
    for i, (docid, score) in enumerate(run.get(qid, ()), start=1):
        index.setdefault(docid, (i, float(score)))  # a duplicated docid keeps its best rank
    return index


def build_trace(
    *,
    eval_name: str,
    split: str,
    epoch: int,
    queries: Mapping[str, str],
    shortlists: Mapping[str, list[Candidate]],
    express_lane_scores: Mapping[tuple[str, str], float] | None,
    qrels: Mapping[str, Mapping[str, int]],
    student_run: Run,
    student_init_run: Run | None = None,
    bm25_run: Run | None = None,
) -> pd.DataFrame:
    """Join everything known about each (query, candidate) into one flat table.

    Rows cover every qid in ``shortlists``: its candidates in shortlist order, then each
    judged-relevant document missing from the shortlist (ordered by student rank) so users can
    see how far down it ended up. ``express_lane_rank`` orders the shortlist by the express
    lane's score (the reranker's), breaking ties by first-stage rank so the result is
    deterministic. Without a reranker (``express_lane_scores=None``) those columns stay empty.
    """
    rows: list[dict] = []
    scores = express_lane_scores if express_lane_scores is not None else {}
    for qid, shortlist in shortlists.items():
        student, init, bm25 = (_rank_index(r, qid) for r in (student_run, student_init_run, bm25_run))
        judged = qrels.get(qid, {})
        missing = [c.docid for c in shortlist if (qid, c.docid) not in scores]
        if missing and express_lane_scores is not None:
            raise KeyError(f"no express lane score for query {qid!r}, docs {missing[:5]}")
        reranked = sorted(shortlist, key=lambda c: (-scores[(qid, c.docid)], c.rank)) if not missing else []
        reranked_rank = {c.docid: i for i, c in enumerate(reranked, start=1)}

        def row(docid: str, cand: Candidate | None) -> dict:
            s, si, b = student.get(docid), init.get(docid), bm25.get(docid)
            return {
                "eval": eval_name, "split": split, "epoch": epoch, "qid": qid,
                "query": queries.get(qid, ""), "docid": docid, "in_shortlist": cand is not None,
                "origin": cand.origin if cand else "",
                "first_stage_rank": cand.rank if cand else None,
                "first_stage_score": float(cand.score) if cand else _NAN,
                # without a BM25 run, fall back to the rank fusion recorded (no score then)
                "bm25_rank": b[0] if b else (cand.bm25_rank if cand and bm25_run is None else None),
                "bm25_score": b[1] if b else _NAN,
                "student_rank": s[0] if s else None, "student_score": s[1] if s else _NAN,
                "student_init_rank": si[0] if si else None, "student_init_score": si[1] if si else _NAN,
                "express_lane_rank": reranked_rank.get(docid) if cand else None,
                "express_lane_score": float(scores[(qid, docid)]) if cand and reranked_rank else _NAN,
                "label": int(judged.get(docid, 0)),
            }

        rows.extend(row(c.docid, c) for c in shortlist)
        in_shortlist = {c.docid for c in shortlist}
        outside = [d for d, g in judged.items() if g > 0 and d not in in_shortlist]
        outside.sort(key=lambda d: (student.get(d, (math.inf,))[0], d))
        rows.extend(row(d, None) for d in outside)

    df = pd.DataFrame(rows, columns=list(TRACE_COLUMNS))
    return df.astype(_DTYPES)


def write_trace(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Atomic, so a crash mid-write never leaves a truncated Parquet that would break every later report."""
    write_parquet_atomic(df, path)


def read_traces(run_dir: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """All traces of a run, keyed by eval name (file stem) and sorted by it; empty if none."""
    return {name: pd.read_parquet(f) for name, f in trace_files(RunLayout(Path(run_dir))).items()}
