"""Ranking metrics in plain Python, following trec_eval / ir-measures conventions.

Why not call ir-measures every epoch? It round-trips through pytrec_eval's C
structures and re-sorts the run by (score, docid), which silently reorders
tied scores. These functions score the run's list order as given, are fast
enough for per-epoch evaluation, and are tested for agreement with ir-measures.

Types:
    Run   = dict[qid, list[(docid, score)]]  sorted by score descending, best first
    Qrels = dict[qid, dict[docid, grade]]    grade > 0 means relevant

Conventions (checked against ir-measures 0.4.3 / pytrec_eval):
    * gain = grade, negative grades count as 0 (trec_eval does the same);
      unjudged docs have gain 0; discount = log2(rank + 1);
      the ideal DCG uses the judged grades, cut at k.
    * P@k divides by k even when fewer than k docs were retrieved.
    * A judged query absent from the run scores 0 on every metric (as in ir-measures).
    * Queries with no grade > 0 judgment are EXCLUDED from per_query/evaluate.
      ir-measures instead includes them with value 0 (lowering the mean), so
      the means agree with ir-measures only on qrels restricted to queries with
      at least one relevant doc. Excluding them is the BEIR/TREC-sane choice:
      every metric is undefined (0/0) for such a query.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from crossdistill.types import Qrels, Run

METRIC_NAMES = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "p@3", "ndcg@3")

# Precomputed discounts 1/log2(rank+1) for rank = 1..; extended on demand.
_DISCOUNTS: list[float] = [1.0 / math.log2(r + 1) for r in range(1, 1025)]


def _discounts(k: int) -> list[float]:
    while len(_DISCOUNTS) < k:
        _DISCOUNTS.append(1.0 / math.log2(len(_DISCOUNTS) + 2))
    return _DISCOUNTS


def ndcg_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gain (= grade, negatives as 0), as trec_eval's ndcg_cut."""
    disc = _discounts(k)
    dcg = 0.0
    for i, doc in enumerate(ranking[:k]):
        g = judgments.get(doc, 0)
        if g > 0:
            dcg += g * disc[i]
    if dcg == 0.0:
        return 0.0
    ideal = sorted((g for g in judgments.values() if g > 0), reverse=True)[:k]
    idcg = sum(g * disc[i] for i, g in enumerate(ideal))
    return dcg / idcg


def mrr_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first doc with grade > 0 in the top k, else 0."""
    for i, doc in enumerate(ranking[:k]):
        if judgments.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def _hits(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> int:
    return sum(1 for doc in ranking[:k] if judgments.get(doc, 0) > 0)


def recall_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """|relevant in top k| / |relevant| (relevant = grade > 0); 0 if nothing is relevant."""
    n_rel = sum(1 for g in judgments.values() if g > 0)
    return _hits(ranking, judgments, k) / n_rel if n_rel else 0.0


def precision_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """|relevant in top k| / k -- divides by k even if fewer were retrieved (trec_eval P_k)."""
    return _hits(ranking, judgments, k) / k


_FAMILIES: dict[str, Callable[[Sequence[str], Mapping[str, int], int], float]] = {
    "ndcg": ndcg_at_k,
    "mrr": mrr_at_k,
    "recall": recall_at_k,
    "p": precision_at_k,
    "precision": precision_at_k,
}
_IR_MEASURES_FAMILY = {ndcg_at_k: "nDCG", mrr_at_k: "RR", recall_at_k: "R", precision_at_k: "P"}


def parse_metric(name: str) -> tuple[Callable[[Sequence[str], Mapping[str, int], int], float], int]:
    """'ndcg@10' -> (ndcg_at_k, 10). Case-insensitive; families: ndcg, mrr, recall, p/precision."""
    family, sep, cutoff = name.strip().lower().partition("@")
    if not sep or family not in _FAMILIES or not cutoff.isdigit() or int(cutoff) < 1:
        raise ValueError(
            f"bad metric {name!r}: expected '<family>@<k>' with family in "
            f"{sorted(_FAMILIES)} and integer k >= 1, e.g. 'ndcg@10'"
        )
    return _FAMILIES[family], int(cutoff)


def to_ir_measures_name(name: str) -> str:
    """'ndcg@10' -> 'nDCG@10', 'mrr@10' -> 'RR@10', 'recall@100' -> 'R@100', 'p@3' -> 'P@3'."""
    fn, k = parse_metric(name)
    return f"{_IR_MEASURES_FAMILY[fn]}@{k}"


def per_query(run: Run, qrels: Qrels, metrics: Sequence[str] = METRIC_NAMES) -> dict[str, dict[str, float]]:
    """qid -> metric -> value over every qrels query with at least one grade > 0.

    A judged query missing from the run scores 0; run queries not in qrels are
    ignored; queries with no relevant judgment are skipped (see module docstring
    for how this differs from ir-measures). The run's list order is the ranking,
    so tied scores keep the order they were given in.
    """
    parsed = [(m, *parse_metric(m)) for m in metrics]
    max_k = max((k for _, _, k in parsed), default=0)
    out: dict[str, dict[str, float]] = {}
    for qid, judgments in qrels.items():
        if not any(g > 0 for g in judgments.values()):
            continue
        ranking = [doc for doc, _ in run.get(qid, ())[:max_k]]
        out[qid] = {m: fn(ranking, judgments, k) for m, fn, k in parsed}
    return out


def evaluate(run: Run, qrels: Qrels, metrics: Sequence[str] = METRIC_NAMES) -> dict[str, float]:
    """Mean of per_query over the judged queries (0.0 for every metric if there are none)."""
    pq = per_query(run, qrels, metrics)
    n = len(pq)
    return {m: (sum(v[m] for v in pq.values()) / n if n else 0.0) for m in metrics}


def lift_at_k(base: Run, reranked: Run, qrels: Qrels, k: int = 3) -> float:
    """Mean nDCG@k(reranked) - mean nDCG@k(base) over the same judged queries.

    Both sides use per_query over the same qrels, so the query set is identical
    (a query missing from one run counts as 0 there rather than being dropped).
    """
    m = f"ndcg@{k}"
    return evaluate(reranked, qrels, [m])[m] - evaluate(base, qrels, [m])[m]
