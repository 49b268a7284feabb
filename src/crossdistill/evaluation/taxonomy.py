"""Failure taxonomy and sliced lift, computed from a single trace.

Averages hide *why* a ranking fails. Splitting queries into candidate failures (the relevant
document never reached the shortlist, so no reranker can help) and scoring failures (it did,
but the express lane ranked it too low) tells you whether to improve recall or the reranker;
the fixed/broken counts show what the express lane's reranking actually changes. nDCG is recomputed
here (linear gain, log2(rank+1) discount, as trec_eval) so this module depends only on the trace.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

TAXONOMY_KEYS = ("candidate_failure", "missed_relevant", "scoring_failure",
                 "fixed_by_express_lane", "broken_by_express_lane", "queries")


def _ranks(s: pd.Series) -> np.ndarray:
    """Nullable ranks as floats, NaN = not retrieved (NaN <= k is False, which is what we want)."""
    return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()


def ndcg_by_query(trace: pd.DataFrame, rank_col: str, k: int) -> pd.Series:
    """nDCG@k per qid of the ranking given by ``rank_col``; NaN for queries without relevant docs.

    Exact for full-corpus ranks because every relevant document has a trace row (shortlist or
    out-of-shortlist), and only relevant documents carry gain.
    """
    qids = trace["qid"].unique()
    rel = trace.loc[trace["label"] > 0, ["qid", rank_col, "label"]]
    ranks, gain = _ranks(rel[rank_col]), rel["label"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrib = np.where(ranks <= k, gain / np.log2(ranks + 1), 0.0)
    dcg = pd.Series(contrib, index=rel["qid"].to_numpy()).groupby(level=0).sum()
    ideal = rel.sort_values(["qid", "label"], ascending=[True, False])
    pos = ideal.groupby("qid").cumcount().to_numpy()
    idcg_contrib = np.where(pos < k, ideal["label"].to_numpy(float) / np.log2(pos + 2), 0.0)
    idcg = pd.Series(idcg_contrib, index=ideal["qid"].to_numpy()).groupby(level=0).sum()
    return (dcg / idcg).reindex(qids).rename(f"ndcg@{k}")


def classify_queries(trace: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """One row per query: failure flags, nDCG@k of the student (full-corpus ranks) and of the
    express-lane-reranked shortlist (relevant docs outside it count as not retrieved), their
    difference ``lift@k``, whitespace query length and the origin slice (origin of the
    best-first-stage-ranked relevant shortlist doc; "none" when there is none)."""
    qids = pd.Index(trace["qid"].unique(), name="qid")
    rel = trace[trace["label"] > 0]

    def by_q(values) -> pd.Series:  # per-query sum over the relevant rows, 0 for queries without any
        return pd.Series(values, index=rel["qid"].to_numpy()).groupby(level=0).sum().reindex(qids, fill_value=0)

    n_rel = by_q(np.ones(len(rel), dtype=int)).astype(int)
    n_in = by_q(rel["in_shortlist"].to_numpy(dtype=bool)).astype(int)
    student_hit = by_q(_ranks(rel["student_rank"]) <= k) > 0
    reranked_hit = by_q(_ranks(rel["express_lane_rank"]) <= k) > 0
    best = rel[rel["in_shortlist"]].sort_values("first_stage_rank").drop_duplicates("qid").set_index("qid")["origin"]
    out = pd.DataFrame(index=qids)
    out["query"] = trace.groupby("qid", sort=False)["query"].first().reindex(qids)
    out["n_relevant"] = n_rel
    out["missed_relevant"] = n_rel - n_in
    out["candidate_failure"] = (n_rel > 0) & (n_in == 0)
    out["scoring_failure"] = (n_in > 0) & ~reranked_hit
    out["fixed_by_express_lane"] = ~student_hit & reranked_hit
    out["broken_by_express_lane"] = student_hit & ~reranked_hit
    out[f"ndcg@{k}_student"] = ndcg_by_query(trace, "student_rank", k).reindex(qids)
    out[f"ndcg@{k}_express_lane"] = ndcg_by_query(trace, "express_lane_rank", k).reindex(qids)
    out[f"lift@{k}"] = out[f"ndcg@{k}_express_lane"] - out[f"ndcg@{k}_student"]
    out["query_len"] = out["query"].fillna("").astype(str).str.split().str.len().astype(int)
    out["origin"] = best.reindex(qids).fillna("none").astype(str)
    return out.reset_index()


def taxonomy_counts(trace: pd.DataFrame, k: int = 3) -> dict[str, float]:
    """Totals over the queries that have judged-relevant docs (the only ones nDCG can score);
    ``queries`` is that denominator and ``missed_relevant`` sums documents, not queries."""
    q = classify_queries(trace, k)
    q = q[q["n_relevant"] > 0]
    return {key: float(len(q)) if key == "queries" else float(q[key].sum()) for key in TAXONOMY_KEYS}


def _bin_labels(edges: Sequence[int], start: int = 0, names: Sequence[str] | None = None,
                ) -> list[tuple[str, float, float]]:
    """(label, lo, hi] integer bins from ascending edges, values starting at ``start``;
    ``names`` overrides the labels when it has one per bin."""
    bins, lo, first = [], -np.inf, start
    for e in edges:
        bins.append((str(e) if first == e else f"{first}-{e}", lo, e))
        lo, first = e, e + 1
    bins.append((f"{first}+", lo, np.inf))
    if names is not None and len(names) == len(bins):
        bins = [(n, a, b) for n, (_, a, b) in zip(names, bins)]
    return bins


def lift_by_slice(trace: pd.DataFrame, k: int = 3, query_len_bins: Sequence[int] = (8, 16),
                  relevant_bins: Sequence[int] = (1, 2)) -> dict[str, float]:
    """Mean lift@k per slice, with a ``"<slice>:n"`` companion holding the number of queries.

    Slices: query length (short/medium/long for two edges: <=8, <=16, >16 tokens by default),
    origin of the best relevant shortlist doc (bm25/dense/both/none) and number of relevant docs
    (1, 2, 3+ by default). Only queries with relevant docs are used; empty slices are omitted.
    """
    q = classify_queries(trace, k)
    q = q[q["n_relevant"] > 0]
    lift = q[f"lift@{k}"]
    out: dict[str, float] = {}

    def add(name: str, mask: pd.Series) -> None:
        if mask.any():
            out[name], out[f"{name}:n"] = float(lift[mask].mean()), float(mask.sum())

    for label, lo, hi in _bin_labels(query_len_bins, 0, ("short", "medium", "long")):
        add(f"query_len={label}", (q["query_len"] > lo) & (q["query_len"] <= hi))
    for origin in ("bm25", "dense", "both", "none"):
        add(f"origin={origin}", q["origin"] == origin)
    for label, lo, hi in _bin_labels(relevant_bins, start=1):
        add(f"n_relevant={label}", (q["n_relevant"] > lo) & (q["n_relevant"] <= hi))
    return out
