"""The evaluator's on-disk caches: a second run with the same weights and data computes nothing again."""
from __future__ import annotations

import pytest
import torch

import crossdistill.retrieval.corpus_embeddings as embeddings_module
import crossdistill.teacher.cross_encoder_scores as logits_module
from crossdistill.common.layout import RunLayout
from crossdistill.data.corpus import Corpus
from crossdistill.evaluation.evaluator import EvaluationSettings, RetrievalEvaluator
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.models.cross_encoder import load_cross_encoder
from crossdistill.retrieval.student_pairs import StudentPairs
from crossdistill.teacher.ensemble_scores import cross_encoder_reranking

DOCS = {"d1": "cell gene expression", "d2": "quick brown fox", "d3": "gene therapy in mice"}
QUERIES = {"q1": "gene", "q2": "fox"}


def _evaluator(teacher, cache, scope="data-a"):
    layout = RunLayout(cache / "run", cache=cache)
    reranking = None if teacher is None else cross_encoder_reranking(teacher, QUERIES, Corpus.from_mapping(DOCS),
                                                                     cache_dir=layout.evaluation_cache, scope=scope)
    return RetrievalEvaluator(EvaluationSettings(precision="32", show_progress=False), DOCS, QUERIES,
                              {"test": {"q1": {"d1": 1}}}, {}, reranking=reranking, layout=layout, cache_scope=scope)


def test_teacher_scores_and_corpus_embeddings_are_reused_from_disk(tiny_bert, tmp_path, monkeypatch):
    encoder = load_bi_encoder(str(tiny_bert), normalize=True)
    teacher = load_cross_encoder(str(tiny_bert), 32)  # its new head is random: one teacher, same weights
    first = _evaluator(teacher, tmp_path)
    pairs = [("q1", "d1"), ("q2", "d3")]
    scores = first.reranking.cross_encoder.scores(pairs)
    emb = first.embeddings.corpus(encoder, persist=True)

    def forbidden(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(logits_module, "predict_logits", forbidden)
    monkeypatch.setattr(embeddings_module, "encode", forbidden)
    second = _evaluator(teacher, tmp_path)
    assert second.reranking.cross_encoder.scores(pairs) == pytest.approx(scores)
    assert torch.equal(second.embeddings.corpus(encoder, persist=True), emb)
    with torch.no_grad():  # changed weights are a new key: encoded again
        next(encoder.parameters()).add_(1.0)
    with pytest.raises(AssertionError, match="recomputed"):
        second.embeddings.corpus(encoder, persist=True)
    # other data (another scope) never reads these entries
    with pytest.raises(AssertionError, match="recomputed"):
        _evaluator(teacher, tmp_path, scope="data-b").reranking.cross_encoder.scores(pairs)


def test_embeddings_on_disk_are_memory_mapped_and_equal_the_in_memory_ones(tiny_bert, tmp_path, monkeypatch):
    import numpy as np

    encoder = load_bi_encoder(str(tiny_bert), normalize=True)
    in_memory = _evaluator(None, tmp_path / "a").embeddings.corpus(encoder)
    settings = EvaluationSettings(precision="32", show_progress=False, embeddings="disk")
    on_disk = RetrievalEvaluator(settings, DOCS, QUERIES, {"test": {"q1": {"d1": 1}}}, {},
                                 layout=RunLayout(tmp_path / "run", cache=tmp_path / "cache"), cache_scope="s")
    emb = on_disk.embeddings.corpus(encoder, persist=True)
    files = list((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 1 and torch.allclose(emb, in_memory, atol=1e-6)
    assert isinstance(np.load(files[0], mmap_mode="r"), np.memmap)
    monkeypatch.setattr(embeddings_module, "encode", lambda *a, **k: (_ for _ in ()).throw(AssertionError("encoded")))
    again = RetrievalEvaluator(settings, DOCS, QUERIES, {"test": {}}, {},
                               layout=RunLayout(tmp_path / "run2", cache=tmp_path / "cache"), cache_scope="s")
    assert torch.equal(again.embeddings.corpus(encoder, persist=True), emb)   # read back from the file, not encoded
    hits = again.settings.index.search(in_memory[:1], emb, ["q"], list(DOCS), 2)
    assert [d for d, _ in hits["q"]][0] == "d1"


def test_student_member_scores_come_from_the_run_else_from_its_embeddings(tiny_bert, tmp_path, monkeypatch):
    """StudentPairs: a pair its run holds keeps the run's score; another is the cosine of the same weights, from the
    corpus embeddings at hand or, without them, from only the missing documents encoded now."""
    encoder = load_bi_encoder(str(tiny_bert), normalize=True)
    ev = _evaluator(None, tmp_path)
    emb, q_emb = ev.embeddings.corpus(encoder), ev.encode_queries(encoder, ["q1", "q2"])
    cosine = {(q, d): float(q_emb[i] @ emb[j]) for i, q in enumerate(["q1", "q2"]) for j, d in enumerate(DOCS)}
    run = {"q1": [("d1", 0.25)]}   # a run's score (an index's) is used as it is
    pairs = [("q1", "d1"), ("q1", "d3"), ("q2", "d2")]
    qids, docids = [q for q, _ in pairs], [d for _, d in pairs]
    expected = [0.25, cosine[("q1", "d3")], cosine[("q2", "d2")]]
    assert StudentPairs(encoder, ev.embeddings, run, emb)(QUERIES, qids, docids) == pytest.approx(expected, abs=1e-5)
    encoded = []
    original = ev.embeddings.rows
    monkeypatch.setattr(ev.embeddings, "rows", lambda enc, rows: encoded.append(list(rows)) or original(enc, rows))
    assert StudentPairs(encoder, ev.embeddings, run)(QUERIES, qids, docids) == pytest.approx(expected, abs=1e-5)
    assert encoded == [[1, 2]]   # d2 and d3 only: never the whole corpus
