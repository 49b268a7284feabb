"""Shortlists from one run and RRF hybrid: hand-computed scores, origins and ranks."""

import pytest

from crossdistill.retrieval import Candidate, reciprocal_rank_fusion, shortlist_from_run

BM25 = {"q": [("a", 12.0), ("b", 9.0), ("c", 3.0)]}
DENSE = {"q": [("c", 0.9), ("d", 0.8), ("a", 0.1)]}


def test_shortlist_from_run():
    sl = shortlist_from_run(DENSE, "dense", k=2)
    assert sl["q"] == [
        Candidate("c", "dense", 1, 0.9, None, 1),
        Candidate("d", "dense", 2, 0.8, None, 2),
    ]
    assert shortlist_from_run(BM25, "bm25", k=10)["q"][2] == Candidate("c", "bm25", 3, 3.0, 3, None)
    with pytest.raises(ValueError):
        shortlist_from_run(BM25, "both", k=1)


def test_rrf_hand_computed():
    sl = reciprocal_rank_fusion(BM25, DENSE, k=10, rrf_k=60)["q"]
    expected = {
        "a": 1 / 61 + 1 / 63,  # bm25 #1, dense #3
        "c": 1 / 63 + 1 / 61,  # bm25 #3, dense #1 -> exact tie with a, broken by docid
        "b": 1 / 62,
        "d": 1 / 62,
    }
    assert [c.docid for c in sl] == ["a", "c", "b", "d"]
    for c in sl:
        assert c.score == pytest.approx(expected[c.docid], abs=1e-12)
    assert [c.rank for c in sl] == [1, 2, 3, 4]
    by_id = {c.docid: c for c in sl}
    assert (by_id["a"].origin, by_id["a"].bm25_rank, by_id["a"].dense_rank) == ("both", 1, 3)
    assert (by_id["c"].origin, by_id["c"].bm25_rank, by_id["c"].dense_rank) == ("both", 3, 1)
    assert (by_id["b"].origin, by_id["b"].bm25_rank, by_id["b"].dense_rank) == ("bm25", 2, None)
    assert (by_id["d"].origin, by_id["d"].bm25_rank, by_id["d"].dense_rank) == ("dense", None, 2)


def test_rrf_truncates_and_rrf_k_matters():
    sl = reciprocal_rank_fusion(BM25, DENSE, k=2, rrf_k=1)["q"]
    # rrf_k=1: a = 1/2 + 1/4, c = 1/4 + 1/2 (tie), b = d = 1/3
    assert [c.docid for c in sl] == ["a", "c"]
    assert sl[0].score == pytest.approx(0.75)


def test_rrf_query_in_one_run_only():
    sl = reciprocal_rank_fusion({"q1": [("x", 1.0)]}, {"q2": [("y", 1.0)]}, k=5)
    assert sl["q1"] == [Candidate("x", "bm25", 1, 1 / 61, 1, None)]
    assert sl["q2"] == [Candidate("y", "dense", 1, 1 / 61, None, 1)]
