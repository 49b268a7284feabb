"""The whole pipeline through the real Hydra configs, with tiny models on a tiny BEIR folder."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import compose, console_text, tiny_overrides
from crossdistill.evaluation.trace import TRACE_COLUMNS
from crossdistill.mining.pairs import margin_scale, student_margins
from crossdistill.pipeline.train import run
from crossdistill.retrieval.bm25 import BM25Retriever


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tiny_beir, tmp_path_factory):
    out, cache = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("cache")
    # the checkpoints are compared with the exports below: kept (a run removes them when it ends by default)
    cfg = compose([*tiny_overrides(tiny_bert, tiny_beir, out, cache), "keep_checkpoints=true",
                   f"evaluation.transfer=[{tiny_beir}]"])   # another collection: here the same one, to check against
    value = run(cfg)
    return cfg, out, cache, value


def test_results_json_reports_every_system_and_stage(finished_run):
    cfg, out, _, value = finished_run
    results = json.loads((out / "results.json").read_text())
    systems = {"bm25", "hybrid_zero_shot", "student_init", "teacher_over_bm25", "express_lane", "teacher_over_student",
               "student", "hybrid_student"}
    # the names before 2026-12-06 are kept as aliases for one release, listed under "renamed"
    old = {"teacher_rerank": "teacher_over_bm25", "teacher_rerank_student": "express_lane",
           "distill_teacher_rerank_student": "teacher_over_student"}
    assert set(results["systems"]) == systems | set(old)
    assert all(results["systems"][o] == results["systems"][n] for o, n in old.items())
    assert results["renamed"]["systems.teacher_rerank_student"] == "systems.express_lane"
    assert results["teacher"]["reranker"] == results["teacher"]["express_lane"]
    assert results["label_free"] is False and len(results["rounds"]) == 1
    for name, metrics in results["systems"].items():
        for m in ("ndcg@10", "mrr@10", "recall@100"):
            assert 0.0 <= metrics[m] <= 1.0, (name, m)
    assert "lift@3" in results["systems"]["student"]
    assert {"data", "bm25", "teacher", "student_init", "mining", "student", "test", "export"} <= set(results["stages"])
    assert all(s["wall_s"] >= 0 and s["peak_rss_mb"] > 0 for s in results["stages"].values())
    assert results["queries"] == 8
    assert (out / "report" / "report.md").exists()
    # train.py returns the best dev nDCG@10 (what a sweeper optimises): the best distilled epoch's, or the zero-shot
    # start's when no epoch beat it on dev (then the start is what the run keeps)
    init_dev = results["dev"]["student_init"]["ndcg@10"]
    assert value == pytest.approx(max(init_dev, *(h["ndcg@10"] for h in results["dev"]["history"])))
    if results["best_epoch"] == -1:
        assert results["systems"]["student"]["ndcg@10"] == pytest.approx(results["systems"]["student_init"]["ndcg@10"])


def test_student_metrics_logged_every_epoch(finished_run):
    _, out, _, _ = finished_run
    metrics = pd.read_csv(out / "csv" / "student" / "metrics.csv")
    logged = metrics.dropna(subset=["dev/ndcg@10"])
    assert sorted(logged["epoch"].tolist()) == [0, 1]
    for col in ("dev/recall@10", "dev/recall@100", "dev/mrr@10", "dev/lift@3", "dev/p@3_student",
                "dev/p@3_reranked", "dev/taxonomy/candidate_failure"):
        assert col in metrics.columns


def test_traces_have_documented_columns_and_one_row_per_candidate(finished_run):
    cfg, out, _, _ = finished_run
    names = sorted(p.stem for p in (out / "traces").glob("*.parquet"))
    assert names == ["dev_epoch=000", "dev_epoch=001", "dev_init", "test_final", "test_init"]
    trace = pd.read_parquet(out / "traces" / "test_final.parquet")
    # The default teacher is an ensemble, the express lane another (the student's own cosine added): a raw-score
    # column per member of either after the documented columns, then the teacher's score.
    members = ("member_cross_encoder", "member_bm25", "member_student", "member_zero_shot")
    assert tuple(trace.columns) == (*TRACE_COLUMNS, *members, "teacher_score")
    shortlist = trace[trace.in_shortlist]
    assert shortlist[list(members)].notna().all().all()
    np.testing.assert_allclose(shortlist.member_student, shortlist.student_score, rtol=1e-5, atol=1e-6)

    def combined(frame, weights):   # sum of the weights x each member's z-score within the query's shortlist
        return sum(w * frame.groupby("qid")[f"member_{m}"].transform(lambda s: (s - s.mean()) / (s.std(ddof=0) or 1.0))
                   for m, w in weights.items())

    results = json.loads((out / "results.json").read_text())
    ensemble, reranker = results["teacher"]["ensemble"], results["teacher"]["express_lane"]
    np.testing.assert_allclose(shortlist.express_lane_score, combined(shortlist, reranker["weights"]), atol=1e-5)
    np.testing.assert_allclose(shortlist.teacher_score, combined(shortlist, ensemble["weights"]), atol=1e-5)
    # results.json and the report show each member alone reranking the same shortlists, and the ensemble
    assert set(ensemble["dev_members"]) == {"cross_encoder", "bm25", "zero_shot"}
    assert set(ensemble["test_members"]) == {"cross_encoder", "bm25", "zero_shot", "student"}
    from crossdistill.evaluation.metrics import evaluate
    from crossdistill.evaluation.runs import rerank_frame

    def reranked(frame, score):
        judged = {q: {d: int(g) for d, g in zip(t.docid, t.label) if g > 0} for q, t in frame.groupby("qid")}
        return evaluate(rerank_frame(frame[frame.in_shortlist], score), judged, ("ndcg@10",))["ndcg@10"]

    assert ensemble["test_members"]["bm25"] == pytest.approx(reranked(trace, shortlist.member_bm25))
    assert ensemble["test_ndcg@10"] == pytest.approx(reranked(trace, shortlist.teacher_score))
    assert reranker["test_ndcg@10"] == pytest.approx(reranked(trace, shortlist.express_lane_score))
    # The reranker's weights: chosen on the zero-shot dev top-k, then again on the dev trace of the epoch kept, the
    # best of the grid there (so at least every member alone), never on test
    kept = "dev_init" if results["best_epoch"] < 0 else f"dev_epoch={results['best_epoch']:03d}"
    assert [r["shortlists"] for r in reranker["rounds"]] == ["zero-shot dev", kept]
    dev = pd.read_parquet(out / "traces" / f"{kept}.parquet")
    dev_shortlist = dev[dev.in_shortlist]
    chosen = reranked(dev, combined(dev_shortlist, reranker["weights"]))
    assert reranker["dev_ndcg@10"] == pytest.approx(chosen)
    for member in reranker["members"]:
        assert chosen >= reranked(dev, dev_shortlist[f"member_{member}"]) - 1e-9
    report = (out / "report" / "report.md").read_text()
    assert "The teacher is an ensemble" in report and "The express lane (the reranker" in report
    assert "teacher_rerank" not in report   # tables skip the old names
    assert shortlist.groupby("qid").size().eq(cfg.evaluation.rerank_depth).all()
    assert not shortlist.duplicated(["qid", "docid"]).any()
    assert shortlist.student_init_rank.notna().any()
    per_query = pd.read_parquet(out / "traces" / "per_query" / "test_final.parquet")
    assert sorted(per_query.qid) == sorted(trace.qid.unique())
    assert {"candidate_failure", "scoring_failure", "fixed_by_express_lane", "broken_by_express_lane"} <= set(
        per_query.columns)


def test_the_exported_express_lane_reproduces_the_runs_figure_in_eval(finished_run, tiny_beir, tmp_path):
    """express_lane.json holds the members and the weights the run chose; eval.py with it and the exported student
    gives the run's express_lane figure on the same test split."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from conftest import CONFIGS
    from crossdistill.pipeline.evaluate import run as evaluate

    _, out, _, _ = finished_run
    results = json.loads((out / "results.json").read_text())
    spec = json.loads((out / "express_lane.json").read_text())
    assert spec["weights"] == results["teacher"]["express_lane"]["weights"] and spec["cross_encoder"] == "teacher"
    assert set(spec["members"]) == set(results["teacher"]["express_lane"]["members"])
    assert spec["test"] == results["systems"]["express_lane"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra_compose(config_name="eval", overrides=[
            "data=beir", f"data.path={tiny_beir}", f"model={out / 'student'}", f"express_lane={out}", "device=cpu",
            "evaluation.show_progress=false", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}",
            f"paths.cache_dir={tmp_path / 'cache'}"])
    systems = evaluate(cfg)
    for metric in ("ndcg@10", "mrr@10", "recall@10"):
        assert systems["rerank_model"][metric] == pytest.approx(results["systems"]["express_lane"][metric], abs=1e-6)
    assert systems["model"]["ndcg@10"] == pytest.approx(results["systems"]["student"]["ndcg@10"], abs=1e-6)


def test_onnx_files_are_exported_and_checked(finished_run):
    """Both models' ONNX fp32 files match PyTorch; the int8 ones are measured on test beside fp32."""
    _, out, _, _ = finished_run
    results = json.loads((out / "results.json").read_text())
    for folder in ("student", "teacher"):
        assert (out / folder / "onnx" / "model.onnx").exists() and (out / folder / "onnx" / "model_qint8.onnx").exists()
    student, cross_encoder = results["onnx"]["student"], results["onnx"]["cross_encoder"]
    assert student["fp32"]["faithful"] and student["fp32"]["min_cosine"] >= 0.9999 and student["fp32"]["n"] > 0
    assert cross_encoder["fp32"]["faithful"] and cross_encoder["fp32"]["max_abs_diff"] <= 1e-3
    assert 0.0 <= student["int8"]["test"]["ndcg@10"] <= 1.0
    # the fp32 figure it is compared with is the run's express lane over the same shortlists
    assert cross_encoder["int8"]["test_express_lane_ndcg@10_fp32"] == pytest.approx(
        results["test_final"]["ndcg@10_reranked"], abs=1e-6)
    assert cross_encoder["int8"]["test_cross_encoder_ndcg@10_fp32"] == pytest.approx(
        results["teacher"]["express_lane"]["test_members"]["cross_encoder"], abs=1e-6)


@pytest.mark.parametrize("backend", ["onnx", "torch", "openvino"])
def test_the_searcher_serves_the_runs_express_lane_with_its_trace(finished_run, tmp_path, monkeypatch, backend):
    """crossdistill.serving.Searcher on the exported run: the student's top k over the whole corpus and the express
    lane's order of it are the run's own test evaluation's (its trace), query by query."""
    from crossdistill.commands import search as search_command
    from crossdistill.serving.search import Searcher

    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "cache"))   # the run's corpus, loaded as the run did
    _, out, _, _ = finished_run
    searcher = Searcher.load(out, backend=backend)
    trace = pd.read_parquet(out / "traces" / "test_final.parquet")
    k = searcher.lane.rerank_depth
    for qid, rows in trace[trace.in_shortlist].groupby("qid"):
        hits = searcher.search(rows["query"].iloc[0], k=k)
        assert [h.docid for h in sorted(hits, key=lambda h: h.student_rank)] == \
            rows.sort_values("student_rank").docid.tolist(), qid
        assert [h.docid for h in hits] == rows.sort_values("express_lane_rank").docid.tolist(), qid
        by_doc = rows.set_index("docid")
        for h in hits:
            assert h.express_lane_score == pytest.approx(by_doc.express_lane_score[h.docid], abs=1e-4)
            assert h.members["bm25"] == pytest.approx(by_doc.member_bm25[h.docid], rel=1e-5)
            assert h.members["cross_encoder"] == pytest.approx(by_doc.member_cross_encoder[h.docid], abs=1e-4)
    assert search_command.main([str(out), "gene expression", "--k", "3", "--backend", backend]) == 0


def test_transfer_reports_the_students_on_another_collection_as_an_independent_evaluation(finished_run, tiny_beir):
    """evaluation.transfer: the zero-shot start and the kept student on the listed collection's test split; the
    student's figures equal sentence-transformers' encode + exact cosine + ir-measures on the exported student."""
    import ir_measures
    from ir_measures import R, nDCG
    from sentence_transformers import SentenceTransformer

    from crossdistill.data.beir import load_beir

    _, out, _, _ = finished_run
    results = json.loads((out / "results.json").read_text())
    record = results["transfer"][tiny_beir.name]
    assert set(record["systems"]) == {"bm25", "student_init", "student"} and record["queries"] == 8
    data = load_beir(tiny_beir, splits=["test"])
    qrels = data.qrels["test"]
    model = SentenceTransformer(str(out / "student"), device="cpu")
    docs = data.documents
    doc_ids = list(data.doc_ids)
    doc_emb = model.encode([docs[d] for d in doc_ids], convert_to_tensor=True)
    q_emb = model.encode([data.queries[q] for q in qrels], convert_to_tensor=True)
    scores = (q_emb @ doc_emb.T).tolist()
    depth = results["config"]["evaluation"]["retrieval_depth"]   # what the run retrieves: recall@100 counts that deep
    run = [ir_measures.ScoredDoc(q, d, s) for q, row in zip(qrels, scores)
           for d, s in sorted(zip(doc_ids, row), key=lambda x: -x[1])[:depth]]
    judged = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    expected = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], judged, run)
    assert record["systems"]["student"]["ndcg@10"] == pytest.approx(expected[nDCG @ 10], abs=1e-4)
    assert record["systems"]["student"]["recall@100"] == pytest.approx(expected[R @ 100], abs=1e-4)
    assert record["ndcg@10_vs_start"]["student"] == pytest.approx(
        record["systems"]["student"]["ndcg@10"] - record["systems"]["student_init"]["ndcg@10"])
    assert "On other collections" in (out / "report" / "report.md").read_text()
    assert "On other collections" in (out / "student" / "README.md").read_text()


def test_exported_student_loads_and_matches_module(finished_run):
    from hydra.utils import instantiate
    from sentence_transformers import SentenceTransformer

    from crossdistill.retrieval.dense import encode
    from crossdistill.student.module import BiEncoderStudent

    cfg, out, _, _ = finished_run
    texts = ["cell gene expression", "the quick brown fox jumps over the lazy dog"]
    if json.loads((out / "results.json").read_text())["best_epoch"] < 0:
        # dev kept the zero-shot start: the export is the starting weights
        module = instantiate(cfg.student)
    else:
        ckpt = next((out / "checkpoints" / "student").glob("*.ckpt"))
        module = BiEncoderStudent.load_from_checkpoint(ckpt, map_location="cpu")
    expected = encode(module.encoder, texts, max_seq_length=module.hparams.eval_max_doc_length)
    loaded = SentenceTransformer(str(out / "student"), device="cpu")
    got = torch.from_numpy(np.asarray(loaded.encode(texts)))
    assert torch.allclose(got, expected, atol=1e-5)


def test_exported_teacher_loads_as_cross_encoder_with_raw_logits(finished_run):
    from sentence_transformers import CrossEncoder

    from crossdistill.teacher.module import CrossEncoderTeacher

    _, out, _, _ = finished_run
    ckpt = next((out / "checkpoints" / "teacher").glob("*.ckpt"))
    module = CrossEncoderTeacher.load_from_checkpoint(ckpt, map_location="cpu").eval()
    pairs = [("cell gene", "cell gene expression in mice"), ("dog", "a quick brown fox")]
    with torch.inference_mode():
        expected = module.score([p[0] for p in pairs], [p[1] for p in pairs])
    loaded = CrossEncoder(str(out / "teacher"), device="cpu")
    assert isinstance(loaded.activation_fn, torch.nn.Identity)
    assert torch.allclose(torch.as_tensor(loaded.predict(pairs)), expected, atol=1e-5)


def test_mining_artifact_has_provenance_and_guarded_pairs(finished_run):
    cfg, out, _, _ = finished_run
    artifact = pd.read_parquet(out / "mining" / "artifact.parquet")
    assert {"qid", "docid", "origin", "first_stage_rank", "first_stage_score", "teacher_score", "label"} <= set(
        artifact.columns)
    assert set(artifact.origin) <= {"bm25", "qrels"}
    pairs = pd.read_parquet(out / "mining" / "pairs.parquet")
    label = artifact.set_index(["qid", "docid"]).label
    assert (label.loc[list(zip(pairs.qid, pairs.docid_b))].to_numpy() <= 0).all()  # never a judged positive
    score = artifact.set_index(["qid", "docid"]).teacher_score
    np.testing.assert_allclose(pairs.margin, score.loc[list(zip(pairs.qid, pairs.docid_a))].to_numpy()
                               - score.loc[list(zip(pairs.qid, pairs.docid_b))].to_numpy(), atol=1e-6)


def test_rerun_reuses_cached_teacher_and_artifact(finished_run, tiny_bert, tiny_beir, tmp_path):
    _, first_out, cache, _ = finished_run
    artifact = next((cache / "mining").glob("*.parquet"))
    before = artifact.stat().st_mtime_ns
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path, cache) + [
        "student_data.epochs=1", "logger=wandb", "ensemble=cross_encoder", "student.scale=auto"])
    run(cfg)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["teacher"].get("cached")
    assert results["mining"]["reused"] is True
    assert artifact.stat().st_mtime_ns == before
    # scale=auto: the mean |teacher margin| / mean |student margin| of the pairs this run trained on
    scored, pairs = (pd.read_parquet(tmp_path / "mining" / f) for f in ("artifact.parquet", "pairs.parquet"))
    assert results["student_scale"] == pytest.approx(margin_scale(pairs, student_margins(scored, pairs)))
    assert results["student_scale"] == pytest.approx(results["mining"]["margin_scale"])


def test_student_training_does_not_depend_on_whether_the_teacher_was_cached(finished_run, tiny_bert, tiny_beir,
                                                                            tmp_path):
    _, first_out, cache, _ = finished_run
    run(compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path, cache)))   # same config, teacher from the cache
    first, again = (json.loads((d / "results.json").read_text()) for d in (first_out, tmp_path))
    assert again["teacher"].get("cached") and not first["teacher"].get("cached")
    assert again["dev"]["history"] == first["dev"]["history"]
    from safetensors.torch import load_file

    weights = [load_file(str(next((d / "student").rglob("model.safetensors")))) for d in (first_out, tmp_path)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])   # the same shuffle and dropout


def test_export_script_turns_a_checkpoint_into_a_loadable_model(finished_run, tmp_path):

    from sentence_transformers import CrossEncoder, SentenceTransformer

    from crossdistill.commands import export as export_script
    from crossdistill.retrieval.dense import encode
    from crossdistill.student.module import BiEncoderStudent

    _, out, _, _ = finished_run
    export_script.main([str(next((out / "checkpoints" / "student").glob("*.ckpt"))), str(tmp_path / "s")])
    export_script.main([str(next((out / "checkpoints" / "teacher").glob("*.ckpt"))), str(tmp_path / "t")])
    texts = ["cell gene expression"]
    # the checkpoint's weights, as the pipeline's evaluation encodes them
    module = BiEncoderStudent.load_from_checkpoint(next((out / "checkpoints" / "student").glob("*.ckpt")),
                                                   map_location="cpu")
    expected = encode(module.encoder, texts, max_seq_length=module.hparams.eval_max_doc_length).numpy()
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path / "s"), device="cpu").encode(texts), expected,
                               atol=1e-5)
    pairs = [("cell gene", "cell gene expression in mice")]
    np.testing.assert_allclose(CrossEncoder(str(tmp_path / "t"), device="cpu").predict(pairs),
                               CrossEncoder(str(out / "teacher"), device="cpu").predict(pairs), atol=1e-5)


def test_hybrid_miner_shortlists_carry_dense_and_bm25_origins(tiny_bert, tiny_beir, tmp_path):
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path, tmp_path / "cache") + ["miner=hybrid", "student_data.epochs=1"])
    run(cfg)
    artifact = pd.read_parquet(tmp_path / "mining" / "artifact.parquet")
    assert {"dense", "both"} & set(artifact.origin)
    assert artifact.dense_rank.notna().any() and artifact.bm25_rank.notna().any()


def test_label_free_mode_trains_on_title_pseudo_queries(tiny_bert, tiny_beir, tmp_path):
    out = tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        "data.train_labels=false", "weak_supervision.train_queries=20", "weak_supervision.dev_queries=6",
        "weak_supervision.min_words=3", "student_data.epochs=1",
        "ensemble.weights={cross_encoder: 1.0, bm25: 1.0, zero_shot: 1.0}"])   # every member in every trace
    run(cfg)
    results = json.loads((out / "results.json").read_text())
    assert results["label_free"] is True and results["queries"] == 8   # the real test split is what is reported
    # kind auto (the default): titles, as enough documents have one (60, 8 of them judged for test: 52 >= 26)
    assert results["pseudo_queries"] == "auto -> title: 52 documents have a title of >= 3 words, 26 wanted"
    pairs = pd.read_parquet(out / "mining" / "pairs.parquet")
    assert len(pairs) and pairs.qid.str.startswith("pseudo-title:").all()
    # the positive of a pseudo-query is the document whose title it is
    positives = pairs.groupby("qid").docid_a.agg(set)
    assert sum(q.removeprefix("pseudo-title:") in docs for q, docs in positives.items()) == len(positives)
    dev = pd.read_parquet(out / "traces" / "dev_init.parquet")
    assert dev.qid.str.startswith("pseudo-title:").all()
    # Train and dev read the documents without their titles everywhere, not only in the teacher's and the student's
    # input: a title query must not find its document by its title through BM25 (nor through a member's score).
    assert results["evaluation"]["dev_documents"] == "training view (without titles)"
    docs = [json.loads(line) for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()]
    bodies = BM25Retriever().index([d["_id"] for d in docs], [d["text"] for d in docs])
    titles = {f"pseudo-title:{d['_id']}": d["title"] for d in docs}
    artifact = pd.read_parquet(out / "mining" / "artifact.parquet")
    assert artifact.bm25_score.tolist() == pytest.approx(
        bodies.score_pairs(titles, artifact.qid, artifact.docid), rel=1e-5)
    shortlisted = dev[dev.in_shortlist]
    assert shortlisted.member_bm25.tolist() == pytest.approx(
        bodies.score_pairs(titles, shortlisted.qid, shortlisted.docid), rel=1e-5)
    # The test split reads the whole documents ("title text").
    whole = BM25Retriever().index([d["_id"] for d in docs], [f"{d['title']} {d['text']}" for d in docs])
    queries = {q["_id"]: q["text"] for q in map(json.loads, (tiny_beir / "queries.jsonl").read_text().splitlines())}
    test = pd.read_parquet(out / "traces" / "test_init.parquet").query("in_shortlist")
    assert test.member_bm25.tolist() == pytest.approx(whole.score_pairs(queries, test.qid, test.docid),
                                                       rel=1e-5)


def test_label_free_mode_distils_on_the_unjudged_queries(tiny_bert, tiny_beir, tmp_path):
    """unjudged_queries: with the train qrels withheld, the student distils on the train split's query texts (no split
    in use judges them), each query's pairs the teacher's top 2 of its shortlist against the rest; dev_queries of them
    are held out as dev, judged by the teacher (its top 2); the teacher still learns from title pseudo-queries, and
    no test query is mined or becomes dev."""
    out = tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        "data.train_labels=false", "weak_supervision.unjudged_queries=true", "weak_supervision.train_queries=20",
        "weak_supervision.dev_queries=6", "weak_supervision.min_words=3", "student_data.epochs=1",
        "pairs.pairs_per_query=2", "ensemble.weights={cross_encoder: 1.0, bm25: 1.0, zero_shot: 1.0}"])
    run(cfg)
    results = json.loads((out / "results.json").read_text())
    train_split = {f"q{i}" for i in range(24)}   # write_tiny_beir: q0..q23 train, q24..q31 test
    artifact = pd.read_parquet(out / "mining" / "artifact.parquet")
    dev = pd.read_parquet(out / "traces" / "dev_init.parquet")
    mined, held_out = set(artifact.qid), set(dev.qid)
    assert len(held_out) == 6 and len(mined) == 18 and mined | held_out == train_split and not mined & held_out
    assert (artifact.label == 0).all()   # no judgment reaches the mined pairs
    assert results["mining"]["query_set"] == "unjudged" and results["mining"]["queries"] == 18
    assert results["evaluation"]["dev_judgments"].startswith("held-out unjudged queries")
    assert results["teacher"]["ensemble"]["chosen_on"] == "config"
    pairs = pd.read_parquet(out / "mining" / "pairs.parquet")
    assert set(pairs.qid) == mined and pairs.groupby("qid").size().eq(2).all()
    # docid_a is among the teacher's top 2 of the query's shortlist, docid_b below them
    rank = artifact.assign(r=artifact.groupby("qid").teacher_score.rank(ascending=False, method="first"))
    rank = rank.set_index(["qid", "docid"]).r
    assert (rank.loc[list(zip(pairs.qid, pairs.docid_a))].to_numpy() <= 2).all()
    assert (rank.loc[list(zip(pairs.qid, pairs.docid_b))].to_numpy() > 2).all()
    assert (pairs.margin > 0).all()
    # dev: each held-out query judged by the teacher, its top 2 relevant
    assert dev[dev.label > 0].groupby("qid").size().eq(2).all() and dev[dev.label > 0].qid.nunique() == 6


def test_label_free_with_too_few_unjudged_queries_distils_on_the_pseudo_queries(tiny_bert, tiny_beir, tmp_path, capsys):
    """24 unjudged queries are fewer than 2 x dev_queries (13): no dev can be held out of them, and a handful is no
    distillation set (cacm has 12 beside its 52 judged ones): the pseudo-queries are distilled on, and judge dev."""
    out = tmp_path / "run"
    run(compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        "data.train_labels=false", "weak_supervision.unjudged_queries=true", "weak_supervision.train_queries=20",
        "weak_supervision.dev_queries=13", "weak_supervision.min_words=3", "student_data.epochs=1", "export.onnx=false"]))
    results = json.loads((out / "results.json").read_text())
    assert "query_set" not in results["mining"] and "dev_judgments" not in results["evaluation"]
    assert pd.read_parquet(out / "mining" / "artifact.parquet").qid.str.startswith("pseudo-title:").all()
    assert "only 24 unjudged queries (fewer than 2 x dev_queries = 26); distilling on the pseudo-queries" in \
        console_text(capsys.readouterr().out)


def test_label_free_sentence_pseudo_queries(tiny_bert, tmp_path):
    """kind=sentence: each pseudo-query is a sentence of a body, and everything training and dev read (BM25 included)
    shows its document without that sentence. Here through kind=auto, the default: the titles (3 words) are below
    min_words (4), so it takes sentences."""
    from test_data_weak import write_sentence_beir

    beir, out = write_sentence_beir(tmp_path / "beir"), tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_bert, beir, out, tmp_path / "cache") + [
        "data.train_labels=false", "weak_supervision.train_queries=20",
        "weak_supervision.dev_queries=6", "student_data.epochs=1"])
    run(cfg)
    results = json.loads((out / "results.json").read_text())
    assert results["pseudo_queries"] == "auto -> sentence: 0 documents have a title of >= 4 words, 26 wanted"
    assert results["evaluation"]["dev_documents"] == "training view (without the pseudo-queries' sentences)"
    artifact = pd.read_parquet(out / "mining" / "artifact.parquet")
    assert artifact.qid.str.startswith("pseudo-sentence:").all()
    docs = {d["_id"]: d for d in map(json.loads, (beir / "corpus.jsonl").read_text().splitlines())}
    # The same pseudo-queries made again (seeded), and BM25 over the documents as training shows them.
    from crossdistill.data.source import BeirSource
    from crossdistill.data.weak import TitlePseudoQueries

    data = TitlePseudoQueries(kind="sentence", train_queries=20, dev_queries=6, seed=cfg.seed).apply(
        BeirSource(path=str(beir), train_labels=False).load(tmp_path / "check"))
    view = BM25Retriever().index(list(docs), [data.train_doc_text[d] for d in docs])
    assert artifact.bm25_score.tolist() == pytest.approx(
        view.score_pairs(data.dataset.queries, artifact.qid, artifact.docid), rel=1e-5)
    assert set(artifact.qid) <= set(data.train_qids)


def test_title_pseudo_queries_are_mined_and_distilled_beside_the_labelled_ones(tiny_bert, tiny_beir, tmp_path):
    out = tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        "weak_supervision.distill_queries=10", "weak_supervision.min_words=3", "student_data.epochs=1"])
    run(cfg)
    results = json.loads((out / "results.json").read_text())
    pairs = pd.read_parquet(out / "mining" / "pairs.parquet")
    pseudo = pairs[pairs.qid.str.startswith("pseudo-title:")]
    assert pseudo.qid.nunique() == 10 and set(pairs.qid) - set(pseudo.qid)   # both kinds of query, one dataset
    assert (pseudo.docid_a == pseudo.qid.str.removeprefix("pseudo-title:")).all()  # the title's own document
    info = results["mining"]
    assert info["pseudo"]["queries"] == 10 and info["pseudo"]["pairs"] == len(pseudo)
    assert info["pairs"] == len(pairs) and info["shortlisted"] == len(pd.read_parquet(out / "mining" /
                                                                                          "artifact.parquet"))
    assert len(list((tmp_path / "cache" / "mining").glob("*.parquet"))) == 2   # one cached artifact per query set


def test_rounds_remine_with_the_student_and_keep_the_best_by_dev(tiny_bert, tiny_beir, tmp_path):
    out = tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        "rounds.count=2", "rounds.miner.depth=6", "student_data.epochs=1",
        "rounds.keep_zero_shot=false"])   # the rounds compete with each other only (the start competing: the finished_run tests)
    value = run(cfg)
    results = json.loads((out / "results.json").read_text())
    first, second = results["rounds"]
    assert (first["miner"], second["miner"]) == ("bm25", "hybrid")
    assert {"student_round1", "student_round2", "mining_round2", "student_round2"} <= (
        set(results["systems"]) | set(results["stages"]))
    assert sorted(p.stem for p in (out / "traces").glob("dev_epoch=*.parquet")) == ["dev_epoch=000", "dev_epoch=001"]
    assert value == pytest.approx(max(first["dev"], second["dev"]))
    best = first if first["dev"] >= second["dev"] else second
    assert results["systems"]["student"]["ndcg@10"] == pytest.approx(best["test"]["ndcg@10"])
    artifact = pd.read_parquet(out / "mining_round2" / "artifact.parquet")
    assert set(artifact.origin) & {"dense", "both"}   # the student's own shortlist entered round 2
    # Pairs round 1 had scored keep round 1's teacher logit; only the others went to the teacher again.
    earlier = pd.read_parquet(out / "mining" / "artifact.parquet").set_index(["qid", "docid"]).ce_score
    shared = artifact.join(earlier.rename("round1"), on=["qid", "docid"], how="inner")
    assert 0 < len(shared) < len(artifact)
    assert (shared.ce_score == shared.round1).all()
    assert (second["teacher_scored"], second["earlier_round_scores"]) == (len(artifact) - len(shared), len(shared))
    assert (first["teacher_scored"], first["earlier_round_scores"]) == (first["shortlisted"], 0)
    report = (out / "report" / "report.md").read_text()
    assert "Source: dev_epoch=*.metrics.json." in report   # the per-epoch section spans both rounds


def test_a_trec_run_file_supplies_the_mining_shortlists(tiny_bert, tiny_beir, tmp_path):
    run_file = tmp_path / "train.trec"   # a first stage of the user's own, deeper than the miner's depth (6)
    run_file.write_text("".join(f"q{i} Q0 d{(i + j) % 60} {j} {10.0 - j} mine\n" for i in range(24)
                                for j in range(1, 9)))
    out = tmp_path / "run"
    run(compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        "miner=run_file", f"miner.first_stage.path={run_file}", "miner.depth=6", "student_data.epochs=1"]))
    artifact = pd.read_parquet(out / "mining" / "artifact.parquet")
    shortlisted = artifact[artifact.origin == "run"]
    assert set(artifact.origin) <= {"run", "qrels"} and len(shortlisted)
    for qid, rows in shortlisted.groupby("qid"):
        i = int(qid.removeprefix("q"))
        assert rows.sort_values("first_stage_rank").docid.tolist() == [f"d{(i + j) % 60}" for j in range(1, 7)]


def test_a_run_file_naming_unknown_documents_stops_mining(tiny_bert, tiny_beir, tmp_path):
    from crossdistill.data.beir import DataError

    run_file = tmp_path / "train.trec"
    run_file.write_text("".join(f"q{i} Q0 nowhere 1 1.0 mine\n" for i in range(24)))
    with pytest.raises(DataError, match="train.trec.*'nowhere', which is not in the corpus"):
        run(compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path / "run", tmp_path / "cache") + [
            "miner=run_file", f"miner.first_stage.path={run_file}", "student_data.epochs=1"]))



def test_per_epoch_sample_an_approximate_index_embeddings_on_disk_and_hybrid_ensemble_choice(finished_run, tiny_bert, tiny_beir, tmp_path):
    pytest.importorskip("faiss")
    _, _, cache, _ = finished_run
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path, cache) + [
        "student_data.epochs=1", "evaluation.epoch_corpus=sample", "evaluation.epoch_sample=5",
        "evaluation.retrieval_depth=5", "evaluation/index=faiss_hnsw", "ensemble.choose_on=hybrid",
        "evaluation.embeddings=disk"])
    run(cfg)
    results = json.loads((tmp_path / "results.json").read_text())
    # corpus embeddings memory-mapped from .npy files (the zero-shot student's in the cache), none in a .pt
    assert list((cache / "evaluation" / "corpus_embeddings").glob("*.npy"))
    assert not [p for p in tmp_path.rglob("*.pt") if "corpus_embeddings" in p.parts]
    assert results["teacher"]["ensemble"]["shortlists"] == "hybrid"
    record = results["evaluation"]
    assert record["epoch_corpus"] == "sample" and record["corpus_docs"] == 60
    assert record["epoch_sample"] == 5 and 5 < record["epoch_docs"]["dev"] < 60
    # HNSW's recall of the exact top 5, measured on every test evaluation
    assert record["index"]["kind"] == "faiss_hnsw"
    recall = record["index"]["recall@5_vs_exact"]
    assert set(recall) == {"test_init", "test_final"} and all(0.0 <= r <= 1.0 for r in recall.values())


def test_a_student_member_is_the_frozen_student_whose_shortlists_are_scored(tiny_bert, tiny_beir, tmp_path):
    """ensemble.members with ``student``: in evaluation its score is the evaluated student's own cosine (the trace's
    student_score); in round 2's mining it is the cosine of the student that mined (round 1's best, frozen), and the
    weights are chosen on dev again before that round, the teacher score combining them."""
    out = tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        "ensemble.members=[cross_encoder,bm25,student]", "rounds.count=2", "student_data.epochs=1",
        "rounds.keep_zero_shot=false"])
    run(cfg)
    results = json.loads((out / "results.json").read_text())
    ensemble = results["teacher"]["ensemble"]
    assert len(ensemble["rounds"]) == 2 and ensemble["weights"] == ensemble["rounds"][1]["weights"]
    # the express lane: chosen on the zero-shot dev, then on each round's kept epoch's dev trace before
    # its test, then on the run's kept epoch's before the final test
    kept = [f"dev_epoch={r['epoch']:03d}" for r in results["rounds"]]
    chosen_on = [r["shortlists"] for r in results["teacher"]["express_lane"]["rounds"]]
    assert chosen_on == ["zero-shot dev", *kept, f"dev_epoch={results['best_epoch']:03d}"]
    assert set(ensemble["rounds"][0]["dev_members"]) == {"cross_encoder", "bm25", "student"}
    for name in ("test_final", "dev_epoch=001"):
        shortlist = pd.read_parquet(out / "traces" / f"{name}.parquet").query("in_shortlist")
        np.testing.assert_allclose(shortlist.member_student, shortlist.student_score, rtol=1e-5, atol=1e-6)
    artifact = pd.read_parquet(out / "mining_round2" / "artifact.parquet")
    z = {c: artifact.groupby("qid")[c].transform(lambda s: (s - s.mean()) / (s.std(ddof=0) or 1.0))
         for c in ("ce_score", "bm25_score", "dense_score")}
    w = ensemble["weights"]
    expected = w["cross_encoder"] * z["ce_score"] + w["bm25"] * z["bm25_score"] + w["student"] * z["dense_score"]
    np.testing.assert_allclose(artifact.teacher_score, expected, atol=1e-5)
