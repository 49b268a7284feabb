"""eval.py: an existing bi-encoder evaluated on a BEIR folder, with a reranker and a user's TREC run as shortlists."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import ir_measures
import pytest
from ir_measures import nDCG

from conftest import ROOT, SUBPROCESS_TIMEOUT, write_tiny_beir
from crossdistill.data.beir import load_beir
from crossdistill.pipeline.evaluate import run
from tiny_models import tiny_sentence_transformer


def compose_eval(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "src" / "crossdistill" / "configs"), version_base="1.3"):
        return compose(config_name="eval", overrides=overrides)


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    folder = tmp_path_factory.mktemp("st") / "model"
    tiny_sentence_transformer(tmp_path_factory.mktemp("bert")).save(str(folder))
    return folder


def eval_overrides(model, beir, out, *extra: str) -> list[str]:
    return ["data=beir", f"data.path={beir}", "data.dev_size=6", f"model={model}", "evaluation.retrieval_depth=20",
            "evaluation.rerank_depth=5", "evaluation.show_progress=false", "device=cpu",
            f"paths.root_dir={out}", f"paths.output_dir={out}", f"paths.cache_dir={out / 'cache'}", *extra]


def tool_ndcg(qrels_split: dict, trec_file) -> float:
    qrels = [ir_measures.Qrel(q, d, g) for q, docs in qrels_split.items() for d, g in docs.items()]
    return ir_measures.calc_aggregate([nDCG @ 10], qrels, ir_measures.read_trec_run(str(trec_file)))[nDCG @ 10]


def test_eval_reports_the_model_as_ir_measures_scores_its_run(tiny_st, tiny_beir, tmp_path):
    systems = run(compose_eval(eval_overrides(tiny_st, tiny_beir, tmp_path)))
    results = json.loads((tmp_path / "results.json").read_text())
    qrels = load_beir(tiny_beir, splits=["test"]).qrels["test"]
    assert set(systems) == {"bm25", "model", "hybrid"} and results["systems"] == systems
    for name in systems:
        assert systems[name]["ndcg@10"] == pytest.approx(tool_ndcg(qrels, tmp_path / "runs" / f"{name}.test.trec"))
    assert (tmp_path / "traces" / "test_final.parquet").exists() and (tmp_path / "report" / "report.md").exists()
    assert "lift@3" not in systems["model"]   # no reranker: nothing to lift


def test_a_trec_run_file_is_evaluated_and_its_shortlists_reranked(tiny_st, tiny_beir, tiny_bert, tmp_path):
    qrels = load_beir(tiny_beir, splits=["test"]).qrels["test"]
    hand = tmp_path / "mine.trec"   # a hand-made first stage: the judged doc at rank 2 for q24, rank 1 for q25
    hand.write_text("q24 Q0 d0 1 9.0 me\nq24 Q0 d24 2 8.0 me\nq24 Q0 d1 3 7.0 me\n"
                    "q25 Q0 d25 1 3.0 me\nq25 Q0 d2 2 2.0 me\nq99 Q0 d3 1 1.0 me\n")
    out = tmp_path / "out"
    systems = run(compose_eval(eval_overrides(tiny_st, tiny_beir, out, f"run_file={hand}",
                                              f"reranker={tiny_bert}", "reranker_max_length=64")))
    # The run file scored as ir-measures scores it (q99 is not a test query; the other six test queries score 0).
    assert systems["run_file"]["ndcg@10"] == pytest.approx(tool_ndcg(qrels, hand))
    assert systems["run_file"]["ndcg@10"] == pytest.approx((1 / 1.584962500721156 + 1.0) / len(qrels))
    # The reranker reordered exactly the file's shortlist (top 5 of each query: here the whole list).
    reranked = ir_measures.read_trec_run(str(out / "runs" / "rerank_run_file.test.trec"))
    by_query = {}
    for row in reranked:
        by_query.setdefault(row.query_id, set()).add(row.doc_id)
    assert by_query["q24"] == {"d0", "d24", "d1"} and by_query["q25"] == {"d25", "d2"}
    assert {"rerank_bm25", "rerank_model", "rerank_hybrid"} <= set(systems) and "lift@3" in systems["model"]


def test_a_bad_run_file_line_stops_eval_with_file_and_line(tiny_st, tmp_path):
    beir = write_tiny_beir(tmp_path / "beir")
    bad = tmp_path / "bad.trec"
    bad.write_text("q24 Q0 d0 1 9.0 me\nq24 Q0 d1 two 8.0 me\n")
    result = subprocess.run([sys.executable, str(ROOT / "eval.py"), *eval_overrides(tiny_st, beir, tmp_path / "o"),
                             f"run_file={bad}"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "bad.trec line 2" in result.stderr and "Traceback" not in result.stderr


def test_per_epoch_evaluation_searches_the_sample_and_test_the_whole_corpus(tiny_st):
    from sentence_transformers import SentenceTransformer

    from crossdistill.evaluation.evaluator import EvaluationSettings, RetrievalEvaluator

    docs = {f"d{i}": f"document {i} about topic {i % 5} and cells" for i in range(40)}
    queries = {"q1": "topic 3 cells", "q2": "topic 1"}
    qrels = {"dev": {"q1": {"d3": 1}, "q2": {"d11": 1}}}
    bm25 = {"dev": {"q1": [("d8", 2.0), ("d13", 1.0)], "q2": [("d1", 1.0)]}}
    settings = EvaluationSettings(retrieval_depth=10, rerank_depth=2, precision="32", show_progress=False,
                                  epoch_corpus="sample", epoch_sample=4, seed=1)
    ev = RetrievalEvaluator(settings, docs, queries, qrels, bm25)
    rows = ev.epoch_rows("dev")
    # judged (d3, d11) + BM25 candidates (d8, d13, d1) + 4 at random
    assert {3, 11, 8, 13, 1} <= set(rows) and len(rows) == 9 and rows == sorted(rows)
    assert ev.epoch_rows("dev") == rows   # the same sample every epoch
    encoder = SentenceTransformer(str(tiny_st), device="cpu")
    sampled = ev.evaluate(encoder, "dev", "dev_epoch=000", 0, per_epoch=True).run
    assert all(len(hits) == 9 for hits in sampled.values())
    assert {d for hits in sampled.values() for d, _ in hits} == {f"d{i}" for i in rows}
    full = ev.evaluate(encoder, "dev", "dev_final", 0).run
    assert all(len(hits) == 10 for hits in full.values())
    assert ev.corpus_record() == {"epoch_corpus": "sample", "corpus_docs": 40, "epoch_sample": 4,
                                  "epoch_docs": {"dev": 9}, "index": {"kind": "exact", "device": "cpu"}}


def test_eval_needs_no_dev_split_and_reads_documents_at_the_models_own_length(tmp_path):
    """A collection with one judged train query (no dev can be carved) evaluates; the model's documents are cut at
    its own max_seq_length, as SentenceTransformer.encode cuts them."""
    import torch
    from sentence_transformers import SentenceTransformer

    beir = write_tiny_beir(tmp_path / "beir", n_train=1)
    folder = tmp_path / "short"
    model = tiny_sentence_transformer(tmp_path / "bert")
    model.max_seq_length = 8   # the tiny docs are 33 words: the cut changes every embedding
    model.save(str(folder))
    out = tmp_path / "out"
    overrides = [o for o in eval_overrides(folder, beir, out) if not o.startswith("data.dev_size")]
    systems = run(compose_eval(overrides))
    data = load_beir(beir, splits=["test"])
    loaded = SentenceTransformer(str(folder), device="cpu")
    ids = data.documents.ids
    docs = torch.from_numpy(loaded.encode([data.documents[d] for d in ids]))
    qrels = data.qrels["test"]
    queries = torch.from_numpy(loaded.encode([data.queries[q] for q in qrels]))
    scores = queries @ docs.T
    top = scores.topk(20, dim=1)
    expected = [ir_measures.ScoredDoc(q, ids[j], float(s)) for q, row, idx in zip(qrels, top.values, top.indices)
                for s, j in zip(row.tolist(), idx.tolist())]
    judged = [ir_measures.Qrel(q, d, g) for q, docs_ in qrels.items() for d, g in docs_.items()]
    assert systems["model"]["ndcg@10"] == pytest.approx(ir_measures.calc_aggregate([nDCG @ 10], judged, expected)[nDCG @ 10],
                                                        abs=1e-6)


def test_eval_takes_other_collections_as_archives_too(tiny_st, tiny_beir, tmp_path):
    """evaluation.transfer: several collections at once, a BEIR folder or a <name>.beir.tar.gz archive; the same
    collection given as an archive scores as the main evaluation does."""
    import tarfile

    archive = tmp_path / "tiny.beir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_beir, arcname="tiny")
    out = tmp_path / "out"
    systems = run(compose_eval(eval_overrides(tiny_st, tiny_beir, out, f"evaluation.transfer=[{archive},{tiny_beir}]")))
    transfer = json.loads((out / "results.json").read_text())["transfer"]
    assert set(transfer) == {"tiny", tiny_beir.name}
    for record in transfer.values():
        assert record["systems"]["model"] == pytest.approx(systems["model"])
        assert record["systems"]["bm25"] == pytest.approx(systems["bm25"])
    with pytest.raises(Exception, match="evaluation.transfer"):
        run(compose_eval(eval_overrides(tiny_st, tiny_beir, tmp_path / "bad", "evaluation.transfer=[/no/such/folder]")))
