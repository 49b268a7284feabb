"""Label-free mode: title pseudo-queries made from the corpus."""
from __future__ import annotations

import pytest

from conftest import write_tiny_beir
from crossdistill.data.source import BeirSource
from crossdistill.data.weak import PREFIX, TitlePseudoQueries


@pytest.fixture
def unlabelled(tmp_path):
    folder = write_tiny_beir(tmp_path / "beir", n_docs=40, n_train=10, n_test=6)
    return BeirSource(path=str(folder), train_labels=False).load(tmp_path / "cache")


def test_withheld_train_labels_leave_no_train_queries(unlabelled):
    assert unlabelled.train_qids == [] and unlabelled.qrels["train"] == {} and not unlabelled.label_free


def test_title_pseudo_queries(unlabelled):
    data = TitlePseudoQueries(train_queries=12, dev_queries=5, min_words=3, seed=1).apply(unlabelled)
    assert data.label_free and len(data.train_qids) == 12 and len(data.dev_qids) == 5
    assert not set(data.train_qids) & set(data.dev_qids)
    corpus = data.dataset.corpus
    title = dict(zip(corpus["docid"], corpus["title"]))
    body = dict(zip(corpus["docid"], corpus["text"]))
    test_docs = {d for judged in data.qrels["test"].values() for d in judged}
    for split in ("train", "dev"):
        for qid, judged in data.qrels[split].items():
            (docid, grade), = judged.items()
            assert qid == PREFIX + docid and grade == 1 and docid not in test_docs
            assert data.dataset.queries[qid] == title[docid]
            # training sees the body alone; evaluation keeps the title in the document text
            assert data.train_doc_text[docid] == body[docid]
            assert data.doc_text[docid].startswith(title[docid])
    assert data.qrels["test"] == unlabelled.qrels["test"]


def test_too_few_titles_is_a_clear_error(unlabelled):
    with pytest.raises(ValueError, match="title of >= 9 words"):
        TitlePseudoQueries(min_words=9).apply(unlabelled)


@pytest.fixture
def labelled(tmp_path):
    folder = write_tiny_beir(tmp_path / "beir", n_docs=40, n_train=10, n_test=6)
    return BeirSource(path=str(folder), dev_size=3).load(tmp_path / "cache")


def test_distillation_queries_keep_dev_and_test_documents_out(labelled):
    corpus = labelled.dataset.corpus
    title = dict(zip(corpus["docid"], corpus["title"]))
    body = dict(zip(corpus["docid"], corpus["text"]))
    held_out = {d for split in ("dev", "test") for judged in labelled.qrels[split].values() for d in judged}
    assert len(held_out) == 9
    teacher_docs = ["d30", "d31"]
    extra = TitlePseudoQueries(min_words=3, distill_queries=100, seed=2).distillation_queries(
        labelled, exclude_docs=teacher_docs)
    # 40 docs, 9 judged for dev/test, 2 the teacher's: all the other 29 (fewer than asked for)
    sources = {qid.removeprefix(PREFIX) for qid in extra.queries}
    assert len(sources) == 29 and not sources & (held_out | set(teacher_docs))
    for qid, judged in extra.qrels.items():
        (docid, grade), = judged.items()
        assert qid == PREFIX + docid and grade == 1 and extra.queries[qid] == title[docid]
    assert extra.doc_text == body   # titles hidden from every document these queries are mined against
    assert set(labelled.train_qids).isdisjoint(extra.queries) and labelled.qrels["train"]  # labels untouched
    few = TitlePseudoQueries(min_words=3, distill_queries=5, seed=2).distillation_queries(labelled)
    assert len(few.queries) == 5


def test_distillation_queries_off_by_default_and_in_label_free_mode(labelled, unlabelled):
    assert TitlePseudoQueries().distillation_queries(labelled) is None
    label_free = TitlePseudoQueries(train_queries=12, dev_queries=5, min_words=3).apply(unlabelled)
    assert TitlePseudoQueries(min_words=3, distill_queries=5).distillation_queries(label_free) is None
    with pytest.raises(ValueError, match="distill_queries must be >= 0"):
        TitlePseudoQueries(distill_queries=-1)
