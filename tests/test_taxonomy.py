"""Failure taxonomy and sliced lift on a hand-built trace whose answers are worked out below (k=3).

q1 "what causes fever" (3 tokens, short). Relevant d1 (grade 2), shortlisted (origin both),
   student rank 4, teacher rank 1.  -> fixed by the teacher.
   nDCG@3 student 0; teacher 2/log2(2) / 2 = 1; lift +1.
q2 (10 tokens, medium). Relevant e1 (1) shortlisted (bm25, first-stage 1), student 1, teacher 4;
   relevant e2 (1) not shortlisted, student 50.  -> scoring failure, broken by the teacher, 1 missed.
   nDCG@3 student 1 / (1 + 1/log2 3) = 0.6131; teacher 0; lift -0.6131.
q3 (20 tokens, long). Relevant f1 (1) not shortlisted but student rank 2; the shortlist (g, h) has
   nothing relevant.  -> candidate failure, broken by the teacher, 1 missed. Origin slice "none".
   nDCG@3 student (1/log2 3) / 1 = 0.6309; teacher 0; lift -0.6309.
q4 (5 tokens, short). Relevant k1 (2, dense, fs 1, student 1, teacher 1), k2 (1, dense, fs 2,
   student 3, teacher 2), k3 (1, not shortlisted, beyond student depth). Both top-3 hit: neither
   fixed nor broken, 1 missed. IDCG = 2 + 1/log2 3 + 1/log2 4 = 3.1309.
   student (2 + 1/log2 4) / IDCG = 0.7985; teacher (2 + 1/log2 3) / IDCG = 0.8403; lift +0.0418.
q5 has no relevant document: ignored by counts and slices.

Counts over 4 queries: candidate 1 (q3), missed 3 (q2, q3, q4), scoring 1 (q2), fixed 1 (q1),
broken 2 (q2, q3).
"""

import math

import pandas as pd
import pytest

from crossdistill.evaluation.taxonomy import classify_queries, lift_by_slice, taxonomy_counts
from crossdistill.evaluation.trace import TRACE_COLUMNS

L2, L3, L4 = math.log2(2), math.log2(3), math.log2(4)
IDCG4 = 2 + 1 / L3 + 1 / L4
LIFT = {
    "q1": 1.0,
    "q2": -(1 / (1 + 1 / L3)),
    "q3": -(1 / L3),
    "q4": (2 + 1 / L3) / IDCG4 - (2 + 1 / L4) / IDCG4,
}
QUERIES = {
    "q1": "what causes fever",
    "q2": " ".join(f"w{i}" for i in range(10)),
    "q3": " ".join(f"w{i}" for i in range(20)),
    "q4": "a b c d e",
    "q5": "nothing judged here",
}
# (qid, docid, label, origin ("" = not shortlisted), first_stage_rank, student_rank, express_lane_rank)
ROWS = [
    ("q1", "a", 0, "dense", 1, 1, 2), ("q1", "d1", 2, "both", 2, 4, 1), ("q1", "b", 0, "bm25", 3, 2, 3),
    ("q2", "e1", 1, "bm25", 1, 1, 4), ("q2", "x", 0, "dense", 2, 2, 1), ("q2", "y", 0, "dense", 3, 3, 2),
    ("q2", "z", 0, "both", 4, 5, 3), ("q2", "e2", 1, "", None, 50, None),
    ("q3", "g", 0, "bm25", 1, 7, 1), ("q3", "h", 0, "bm25", 2, 8, 2), ("q3", "f1", 1, "", None, 2, None),
    ("q4", "k1", 2, "dense", 1, 1, 1), ("q4", "k2", 1, "dense", 2, 3, 2), ("q4", "m", 0, "both", 3, 2, 3),
    ("q4", "k3", 1, "", None, None, None),
    ("q5", "n1", 0, "bm25", 1, 1, 1),
]


def make_trace(rows=ROWS) -> pd.DataFrame:
    recs = []
    for qid, docid, label, origin, fs, st, te in rows:
        recs.append({
            "eval": "test_final", "split": "test", "epoch": 2, "qid": qid, "query": QUERIES[qid],
            "docid": docid, "in_shortlist": bool(origin), "origin": origin,
            "first_stage_rank": fs, "first_stage_score": float("nan") if fs is None else 1.0 / fs,
            "bm25_rank": None, "bm25_score": float("nan"),
            "student_rank": st, "student_score": float("nan") if st is None else -float(st),
            "student_init_rank": None, "student_init_score": float("nan"),
            "express_lane_rank": te, "express_lane_score": float("nan") if te is None else -float(te), "label": label,
        })
    df = pd.DataFrame(recs, columns=list(TRACE_COLUMNS))
    ints = ["first_stage_rank", "bm25_rank", "student_rank", "student_init_rank", "express_lane_rank"]
    return df.astype({c: "Int64" for c in ints})


def test_classify_queries_flags_and_ndcg():
    q = classify_queries(make_trace()).set_index("qid")
    assert list(q.index) == ["q1", "q2", "q3", "q4", "q5"]
    assert q["n_relevant"].tolist() == [1, 2, 1, 3, 0]
    assert q["missed_relevant"].tolist() == [0, 1, 1, 1, 0]
    assert q["candidate_failure"].tolist() == [False, False, True, False, False]
    assert q["scoring_failure"].tolist() == [False, True, False, False, False]
    assert q["fixed_by_express_lane"].tolist() == [True, False, False, False, False]
    assert q["broken_by_express_lane"].tolist() == [False, True, True, False, False]
    assert q["origin"].tolist() == ["both", "bm25", "none", "dense", "none"]
    assert q["query_len"].tolist() == [3, 10, 20, 5, 3]
    assert q.loc["q4", "ndcg@3_student"] == pytest.approx((2 + 1 / L4) / IDCG4)
    assert q.loc["q4", "ndcg@3_express_lane"] == pytest.approx((2 + 1 / L3) / IDCG4)
    for qid, lift in LIFT.items():
        assert q.loc[qid, "lift@3"] == pytest.approx(lift)
    assert math.isnan(q.loc["q5", "lift@3"])


def test_taxonomy_counts():
    assert taxonomy_counts(make_trace()) == {
        "candidate_failure": 1.0, "missed_relevant": 3.0, "scoring_failure": 1.0,
        "fixed_by_express_lane": 1.0, "broken_by_express_lane": 2.0, "queries": 4.0,
    }


def test_k_changes_the_verdict():
    # at k=1: q1 still fixed (teacher rank 1), q2 still broken (student rank 1, teacher 4), but q3's
    # student rank 2 is no longer a hit, so q3 is not broken any more; q4 hits at rank 1 both ways.
    c = taxonomy_counts(make_trace(), k=1)
    assert c["broken_by_express_lane"] == 1.0 and c["fixed_by_express_lane"] == 1.0


def test_lift_by_slice():
    s = lift_by_slice(make_trace())
    expected = {
        "query_len=short": ((LIFT["q1"] + LIFT["q4"]) / 2, 2), "query_len=medium": (LIFT["q2"], 1),
        "query_len=long": (LIFT["q3"], 1),
        "origin=bm25": (LIFT["q2"], 1), "origin=dense": (LIFT["q4"], 1), "origin=both": (LIFT["q1"], 1),
        "origin=none": (LIFT["q3"], 1),
        "n_relevant=1": ((LIFT["q1"] + LIFT["q3"]) / 2, 2), "n_relevant=2": (LIFT["q2"], 1),
        "n_relevant=3+": (LIFT["q4"], 1),
    }
    assert set(s) == set(expected) | {f"{k}:n" for k in expected}
    for key, (lift, n) in expected.items():
        assert s[key] == pytest.approx(lift), key
        assert s[f"{key}:n"] == n


def test_lift_by_slice_custom_bins_and_empty_slices_omitted():
    rows = [r for r in ROWS if r[0] != "q4"]  # drop the only dense / 3+ query
    s = lift_by_slice(make_trace(rows), query_len_bins=(4, 12), relevant_bins=(1,))
    assert "origin=dense" not in s and "n_relevant=3+" not in s
    assert s["n_relevant=1"] == pytest.approx((LIFT["q1"] + LIFT["q3"]) / 2)
    assert s["n_relevant=2+"] == pytest.approx(LIFT["q2"])
    assert s["query_len=short"] == pytest.approx(LIFT["q1"])  # 3 tokens <= 4
    assert s["query_len=medium"] == pytest.approx(LIFT["q2"])  # 10 tokens <= 12
    assert s["query_len=long"] == pytest.approx(LIFT["q3"])
