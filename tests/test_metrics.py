import math
import random
import time

import pytest

from crossdistill.evaluation.metrics import (
    METRIC_NAMES,
    evaluate,
    lift_at_k,
    mrr_at_k,
    ndcg_at_k,
    parse_metric,
    per_query,
    precision_at_k,
    recall_at_k,
    to_ir_measures_name,
)

log2 = math.log2
J = {"d1": 1, "d2": 2, "d9": 0}  # d9 judged non-relevant


def test_ndcg_hand_computed():
    # ranking d3(unjudged), d1(1), d2(2); ideal is d2(2), d1(1)
    expected = (1 / log2(3) + 2 / log2(4)) / (2 / log2(2) + 1 / log2(3))
    assert ndcg_at_k(["d3", "d1", "d2"], J, 3) == pytest.approx(expected, abs=1e-12)
    # cut at 2: only d1 counts; ideal still cut at 2
    assert ndcg_at_k(["d3", "d1", "d2"], J, 2) == pytest.approx(
        (1 / log2(3)) / (2 / log2(2) + 1 / log2(3)), abs=1e-12
    )
    assert ndcg_at_k(["d2", "d1"], J, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["d9", "d3"], J, 3) == 0.0
    # negative grades count as gain 0 (trec_eval), not as a penalty
    assert ndcg_at_k(["n", "d1"], {"n": -1, "d1": 1}, 3) == pytest.approx(1 / log2(3))


def test_mrr_recall_precision_short_ranking():
    ranking = ["d3", "d9", "d2"]  # shorter than k=10
    assert mrr_at_k(ranking, J, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(ranking, J, 2) == 0.0
    assert recall_at_k(ranking, J, 10) == pytest.approx(1 / 2)
    assert recall_at_k(["d1", "d2"], J, 1) == pytest.approx(1 / 2)
    # P@k divides by k even though only 2 docs were retrieved
    assert precision_at_k(["d1", "d2"], J, 3) == pytest.approx(2 / 3)
    assert precision_at_k(ranking, J, 3) == pytest.approx(1 / 3)
    assert recall_at_k([], {"a": 0}, 10) == 0.0


def test_parse_metric_and_names():
    assert parse_metric("ndcg@10") == (ndcg_at_k, 10)
    assert parse_metric("MRR@5") == (mrr_at_k, 5)
    assert parse_metric("recall@100") == (recall_at_k, 100)
    assert parse_metric("p@3") == (precision_at_k, 3)
    assert parse_metric("precision@3") == (precision_at_k, 3)
    for bad in ("map@10", "ndcg", "ndcg@", "ndcg@0", "ndcg@x", "@10"):
        with pytest.raises(ValueError, match="bad metric"):
            parse_metric(bad)
    assert [to_ir_measures_name(m) for m in METRIC_NAMES] == [
        "nDCG@10", "RR@10", "R@10", "R@100", "P@3", "nDCG@3",
    ]


def test_per_query_conventions():
    qrels = {"q1": {"a": 1}, "q2": {"b": 2}, "q3": {"c": 0}}
    run = {"q1": [("x", 1.0), ("a", 1.0)], "q9": [("a", 1.0)]}
    pq = per_query(run, qrels, ["mrr@10", "ndcg@3"])
    assert set(pq) == {"q1", "q2"}  # q3 has no relevant doc, q9 unjudged
    assert pq["q1"]["mrr@10"] == 0.5  # tie keeps list order, not docid order
    assert pq["q2"] == {"mrr@10": 0.0, "ndcg@3": 0.0}  # judged but missing from run
    assert evaluate(run, qrels, ["mrr@10"]) == {"mrr@10": 0.25}
    assert evaluate({}, {}, ["mrr@10"]) == {"mrr@10": 0.0}


def test_lift_at_k():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    base = {"q1": [("x", 3.0), ("a", 2.0)], "q2": [("b", 1.0)]}
    reranked = {"q1": [("a", 9.0), ("x", 1.0)], "q2": [("b", 1.0)]}
    # q1 goes from 1/log2(3) to 1, q2 stays at 1
    expected = ((1 + 1) - (1 / log2(3) + 1)) / 2
    assert lift_at_k(base, reranked, qrels, k=3) == pytest.approx(expected)
    assert lift_at_k(reranked, base, qrels) == pytest.approx(-expected)
    assert lift_at_k(base, base, qrels) == 0.0


def _fixture(seed=0, n_queries=30):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(200)]
    qrels, run = {}, {}
    for i in range(n_queries):
        qid = f"q{i}"
        judged = rng.sample(docs, rng.randint(1, 25))
        # every 7th query has only non-relevant judgments
        qrels[qid] = {d: (0 if i % 7 == 3 else rng.choice([0, 0, 1, 2])) for d in judged}
        if i % 5 == 4:
            continue  # judged query missing from the run
        n = 0 if i == 1 else rng.randint(0, 120)  # q1: empty ranking
        # bias towards judged docs so metrics are non-trivial; the rest are unjudged
        cands = list(dict.fromkeys(rng.sample(judged, len(judged) // 2) + rng.sample(docs, n)))[:n]
        scores = rng.sample(range(10**6), len(cands))  # distinct: pytrec_eval re-sorts by score
        run[qid] = sorted(zip(cands, (s / 1000 for s in scores)), key=lambda p: -p[1])
    run["unjudged"] = [("d1", 1.0)]
    return run, qrels


def test_agrees_with_ir_measures():
    ir_measures = pytest.importorskip("ir_measures")
    run, qrels = _fixture()
    # ir-measures scores no-relevant queries as 0; we drop them, so compare on the rest
    rel_qrels = {q: j for q, j in qrels.items() if any(g > 0 for g in j.values())}
    assert len(rel_qrels) >= 20 and len(rel_qrels) < len(qrels)
    assert any(q not in run for q in rel_qrels) and run["q1"] == []
    ir_run = {q: dict(r) for q, r in run.items()}
    ours = evaluate(run, qrels)
    for m in METRIC_NAMES:
        measure = ir_measures.parse_measure(to_ir_measures_name(m))
        ref = ir_measures.calc_aggregate([measure], rel_qrels, ir_run)[measure]
        assert ours[m] == pytest.approx(ref, abs=1e-6), m
        assert 0 < ours[m] < 1, m  # fixture must be non-trivial
    # per-query agreement too
    measures = [ir_measures.parse_measure(to_ir_measures_name(m)) for m in METRIC_NAMES]
    names = dict(zip(measures, METRIC_NAMES))
    pq = per_query(run, qrels)
    seen = set()
    for row in ir_measures.iter_calc(measures, rel_qrels, ir_run):
        assert pq[row.query_id][names[row.measure]] == pytest.approx(row.value, abs=1e-6)
        seen.add(row.query_id)
    assert seen == set(pq)


def test_documented_divergence_on_queries_without_relevant_docs():
    """ir-measures averages no-relevant queries in as 0; we exclude them."""
    ir_measures = pytest.importorskip("ir_measures")
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}}
    run = {"q1": [("a", 1.0)], "q2": [("b", 1.0)]}
    measure = ir_measures.parse_measure("nDCG@10")
    assert ir_measures.calc_aggregate([measure], qrels, {q: dict(r) for q, r in run.items()})[measure] == 0.5
    assert evaluate(run, qrels, ["ndcg@10"])["ndcg@10"] == 1.0


def test_speed():
    rng = random.Random(1)
    qrels = {f"q{i}": {f"d{j}": rng.randint(0, 2) for j in rng.sample(range(500), 20)} for i in range(300)}
    run = {q: [(f"d{j}", -float(r)) for r, j in enumerate(rng.sample(range(500), 100))] for q in qrels}
    t = time.perf_counter()
    evaluate(run, qrels)
    assert time.perf_counter() - t < 0.5
