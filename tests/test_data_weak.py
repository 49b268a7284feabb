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
