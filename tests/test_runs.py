import os

import pytest

from crossdistill.evaluation.runs import read_trec_run, rerank, rerank_head, top_k, write_trec_run


def test_trec_round_trip(tmp_path):
    run = {
        "q1": [("d3", 2.5), ("d1", 0.1 + 0.2), ("d2", -1e-9)],
        "q2": [("d7", 1.0), ("d8", 1.0)],  # tie: file rank order must survive
    }
    path = tmp_path / "sub" / "run.trec"
    write_trec_run(run, path, "bi-encoder")
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 d3 1 2.5 bi-encoder"
    assert lines[3].split()[:4] == ["q2", "Q0", "d7", "1"]
    assert lines[4].split()[3] == "2"
    assert read_trec_run(path) == run  # exact float round trip
    assert [p for p in os.listdir(path.parent)] == ["run.trec"]  # temp file gone


def test_write_is_atomic_on_failure(tmp_path):
    path = tmp_path / "run.trec"
    write_trec_run({"q": [("d", 1.0)]}, path, "old")
    with pytest.raises(TypeError):
        write_trec_run({"q": [("d", 1.0), ("e", object())]}, path, "new")
    assert read_trec_run(path) == {"q": [("d", 1.0)]}  # old file intact
    assert os.listdir(tmp_path) == ["run.trec"]
    with pytest.raises(ValueError):
        write_trec_run({}, path, "bad tag")


def test_read_sorts_by_score(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("q Q0 a 2 0.5 t\nq Q0 b 1 0.9 t\n\n")
    assert read_trec_run(path) == {"q": [("b", 0.9), ("a", 0.5)]}
    path.write_text("q Q0 a 1 0.5\n")
    with pytest.raises(ValueError, match="6 fields"):
        read_trec_run(path)


def test_top_k():
    scores = {"b": 1.0, "a": 1.0, "c": 3.0, "d": -1.0}
    assert top_k(scores, 3) == [("c", 3.0), ("a", 1.0), ("b", 1.0)]
    assert top_k(scores, 10) == [("c", 3.0), ("a", 1.0), ("b", 1.0), ("d", -1.0)]
    assert top_k(scores, 0) == []


def test_rerank():
    run = {"q1": [("a", 4.0), ("b", 3.0), ("c", 2.0), ("d", 1.0)], "q2": [("x", 1.0)]}
    scores = {("q1", "a"): 0.1, ("q1", "b"): 0.9, ("q1", "c"): 0.1, ("q2", "x"): 5.0}
    out = rerank(run, scores, k=3)
    # d is beyond k: dropped even though unscored; a/c tie keeps first-stage order
    assert out == {"q1": [("b", 0.9), ("a", 0.1), ("c", 0.1)], "q2": [("x", 5.0)]}
    assert run["q1"][0] == ("a", 4.0)  # input untouched
    with pytest.raises(KeyError, match="no score"):
        rerank(run, scores, k=4)


def test_rerank_head_keeps_reranked_top_then_first_stage_with_monotone_scores(tmp_path):
    first = {"q": [("a", 9.0), ("b", 8.0), ("c", 7.0), ("d", 6.0)]}
    reranked = {"q": [("b", -1.0), ("a", -5.0)]}   # logits on another scale, lower than the tail's scores
    out = rerank_head(first, reranked, 2)
    assert [d for d, _ in out["q"]] == ["b", "a", "c", "d"]
    assert [s for _, s in out["q"]] == [4.0, 3.0, 2.0, 1.0]
    write_trec_run(out, tmp_path / "r.trec", tag="x")
    assert [d for d, _ in read_trec_run(tmp_path / "r.trec")["q"]] == ["b", "a", "c", "d"]


def test_tied_scores_become_ranks_so_trec_tools_see_the_list_order(tmp_path):
    import ir_measures
    from ir_measures import nDCG

    from crossdistill.evaluation.metrics import evaluate
    from crossdistill.evaluation.runs import ties_as_ranks

    # RRF-style tie: the relevant "a" is listed first but ties with "z", which trec tools would put first (docid).
    run = {"q1": [("a", 0.5), ("z", 0.5), ("m", 0.1)], "q2": [("b", 2.0), ("c", 1.0)]}
    qrels = {"q1": {"a": 1}, "q2": {"c": 1}}
    fixed = ties_as_ranks(run)
    assert fixed["q1"] == [("a", 3.0), ("z", 2.0), ("m", 1.0)] and fixed["q2"] == run["q2"]   # untied: kept
    trec_qrels = [ir_measures.Qrel(q, d, r) for q, docs in qrels.items() for d, r in docs.items()]

    def tool_ndcg(r):
        write_trec_run(r, tmp_path / "r.trec", "t")
        return ir_measures.calc_aggregate([nDCG @ 10], trec_qrels, ir_measures.read_trec_run(str(tmp_path / "r.trec")))[
            nDCG @ 10]

    ours = evaluate(run, qrels, ["ndcg@10"])["ndcg@10"]
    assert tool_ndcg(fixed) == pytest.approx(ours)
    assert tool_ndcg(run) < ours - 0.1   # the raw tied scores measure another order
