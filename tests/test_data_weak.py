"""Label-free mode: title pseudo-queries made from the corpus."""
from __future__ import annotations

import pytest

from conftest import write_tiny_beir
from crossdistill.data.source import BeirSource
from crossdistill.data.weak import PREFIX, TitlePseudoQueries, teacher_judgments


@pytest.fixture
def unlabelled(tmp_path):
    folder = write_tiny_beir(tmp_path / "beir", n_docs=40, n_train=10, n_test=6)
    return BeirSource(path=str(folder), train_labels=False).load(tmp_path / "cache")


def test_withheld_train_labels_leave_no_train_queries(unlabelled):
    assert unlabelled.train_qids == [] and unlabelled.qrels["train"] == {} and not unlabelled.label_free


def test_title_pseudo_queries(unlabelled):
    data = TitlePseudoQueries(kind="title", train_queries=12, dev_queries=5, min_words=3, seed=1).apply(unlabelled)
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
        TitlePseudoQueries(kind="title", min_words=9).apply(unlabelled)


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
    label_free = TitlePseudoQueries(kind="title", train_queries=12, dev_queries=5, min_words=3).apply(unlabelled)
    assert TitlePseudoQueries(min_words=3, distill_queries=5).distillation_queries(label_free) is None
    with pytest.raises(ValueError, match="distill_queries must be >= 0"):
        TitlePseudoQueries(distill_queries=-1)


def write_sentence_beir(folder, n_docs: int = 40, n_test: int = 6, seed: int = 0):
    """Bodies of three or four sentences ("Word word ... word."); test queries: four words of their document."""
    import json
    import random

    from conftest import _WORDS

    rng, words = random.Random(seed), sorted(set(_WORDS))
    (folder / "qrels").mkdir(parents=True)
    docs = {}
    for i in range(n_docs):
        sentences = [" ".join(rng.choices(words, k=rng.randint(5, 9))).capitalize() + "." for _ in range(rng.randint(3, 4))]
        docs[f"d{i}"] = (" ".join(rng.sample(words, 3)), " ".join(sentences))
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": t, "text": b}) + "\n"
                                                 for d, (t, b) in docs.items()))
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for i in range(n_test):
        queries.append(json.dumps({"_id": f"q{i}", "text": " ".join(rng.sample(docs[f"d{i}"][1].split(), 4))}))
        qrels.append(f"q{i}\td{i}\t1")
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return folder


def test_unjudged_queries_are_those_no_split_in_use_judges(tmp_path):
    """The train split's queries with their labels withheld; never a test query, a query whose text is a test
    query's, or a pseudo-query; None with labels, when off, or when every query is judged."""
    import json

    folder = write_tiny_beir(tmp_path / "beir", n_docs=40, n_train=10, n_test=6)
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    texts = {q["_id"]: q["text"] for q in queries}
    # q0 repeats test query q10's text (a duplicate across splits must not leak the test split in)
    with open(folder / "queries.jsonl", "w") as f:
        for q in queries:
            f.write(json.dumps({"_id": q["_id"], "text": texts["q10"].upper() if q["_id"] == "q0" else q["text"]}) + "\n")
    unlabelled = BeirSource(path=str(folder), train_labels=False).load(tmp_path / "cache")
    weak = TitlePseudoQueries(train_queries=12, dev_queries=5, min_words=3, seed=1, unjudged_queries=True)
    data = weak.apply(unlabelled)
    unjudged = weak.unjudged(data)
    assert sorted(unjudged.queries) == sorted(f"q{i}" for i in range(1, 10))
    assert unjudged.queries["q3"] == texts["q3"] and unjudged.qrels == {}
    assert unjudged.doc_text is data.train_doc_text   # the documents as training reads them (titles hidden)
    assert TitlePseudoQueries(min_words=3, unjudged_queries=False).unjudged(data) is None
    labelled = BeirSource(path=str(folder), dev_size=3).load(tmp_path / "cache2")
    assert weak.unjudged(labelled) is None
    only_test = write_tiny_beir(tmp_path / "only-test", n_docs=40, n_train=0, n_test=6)
    (only_test / "qrels" / "train.tsv").unlink()   # BEIR folders that ship test queries only
    data = weak.apply(BeirSource(path=str(only_test), train_labels=False).load(tmp_path / "cache3"))
    assert weak.unjudged(data) is None


def test_teacher_judgments_are_each_querys_top_documents():
    scores = {("a", "d1"): 0.1, ("a", "d2"): 2.0, ("a", "d3"): 1.0, ("a", "d4"): 1.0, ("b", "d1"): -1.0}
    # ties: the earlier pair wins (d3 before d4)
    assert teacher_judgments(scores, 2) == {"a": {"d2": 1, "d3": 1}, "b": {"d1": 1}}
    assert teacher_judgments(scores, 1) == {"a": {"d2": 1}, "b": {"d1": 1}}


def test_unjudged_queries_hold_out_a_dev_set(tmp_path):
    from crossdistill.data.weak import QuerySet

    qs = QuerySet(queries={f"q{i}": f"text {i}" for i in range(10)}, qrels={}, doc_text={})
    train, dev = TitlePseudoQueries(dev_queries=3, seed=1).split_unjudged(qs)
    assert len(dev) == 3 and sorted(set(train.queries) | set(dev)) == sorted(qs.queries)
    assert not set(train.queries) & set(dev) and all(train.queries[q] == qs.queries[q] for q in train.queries)
    assert TitlePseudoQueries(dev_queries=3, seed=1).split_unjudged(qs)[1] == dev   # seeded
    train, dev = TitlePseudoQueries(dev_queries=6, seed=1).split_unjudged(qs)   # fewer than twice dev_queries
    assert dev == [] and train is qs


def test_split_sentences_and_cloze():
    from crossdistill.data.weak import cloze, split_sentences

    body = "Cells divide. The rate fell (p < 0.05) e.g. in mice. 3 of 4 trials failed."
    assert split_sentences(body) == ["Cells divide.", "The rate fell (p < 0.05) e.g. in mice.", "3 of 4 trials failed."]
    # a lower-cased, tokenized collection (MED) ends its sentences with a stop standing alone
    assert split_sentences("levels of free fatty acids . correlation was found e.g. in mice . none") == [
        "levels of free fatty acids .", "correlation was found e.g. in mice .", "none"]
    # ... or with a stop after a word, where no capital is left to look for (but not after a short word or an initial)
    assert split_sentences("tissues of rabbits. removed 24 hr. after an i.v. injection. none") == [
        "tissues of rabbits.", "removed 24 hr. after an i.v. injection.", "none"]
    import random

    # only the 4-to-8-word sentences are drawn; the body loses exactly that sentence
    sentence, rest = cloze(body, random.Random(0), min_words=4, max_words=8)
    assert sentence == "3 of 4 trials failed." and rest == "Cells divide. The rate fell (p < 0.05) e.g. in mice."
    assert cloze("One sentence only here.", random.Random(0), 1, 10) is None
    assert cloze(body, random.Random(0), min_words=20, max_words=30) is None


def test_sentence_pseudo_queries_hide_their_sentence_from_training(tmp_path):
    from crossdistill.data.corpus import contents
    from crossdistill.data.weak import SENTENCE_PREFIX, split_sentences

    folder = write_sentence_beir(tmp_path / "beir")
    data = BeirSource(path=str(folder), train_labels=False).load(tmp_path / "cache")
    data = TitlePseudoQueries(kind="sentence", train_queries=20, dev_queries=5, min_words=4, seed=1).apply(data)
    assert data.label_free and len(data.train_qids) == 20 and len(data.dev_qids) == 5
    corpus = data.dataset.corpus
    title, body = dict(zip(corpus["docid"], corpus["title"])), dict(zip(corpus["docid"], corpus["text"]))
    test_docs = {d for judged in data.qrels["test"].values() for d in judged}
    sources = set()
    for split in ("train", "dev"):
        for qid, judged in data.qrels[split].items():
            (docid, grade), = judged.items()
            assert qid == SENTENCE_PREFIX + docid and grade == 1 and docid not in test_docs
            sentence = data.dataset.queries[qid]
            assert sentence in split_sentences(body[docid])
            rest = [t for t in split_sentences(body[docid]) if t != sentence]
            assert data.train_doc_text[docid] == contents(title[docid], " ".join(rest))   # title kept, sentence gone
            assert sentence not in data.train_doc_text[docid] and sentence in data.doc_text[docid]
            sources.add(docid)
    others = [d for d in corpus["docid"] if d not in sources]
    assert [data.train_doc_text[d] for d in others] == [data.doc_text[d] for d in others]   # the rest: whole
    assert data.train_view == "without the pseudo-queries' sentences"
    with pytest.raises(ValueError, match="sentence of 50-60 words"):
        TitlePseudoQueries(kind="sentence", min_words=50, max_words=60).apply(
            BeirSource(path=str(folder), train_labels=False).load(tmp_path / "cache"))


def test_corpus_with_texts_reads_some_documents_differently(unlabelled):
    corpus = unlabelled.doc_text
    changed = corpus.with_texts({"d3": "short", "d5": "another text"})
    rows = [corpus.rows[d] for d in ("d2", "d3", "d5")]
    assert changed.texts(rows) == [corpus["d2"], "short", "another text"]
    assert changed.many(["d5", "d3"]) == ["another text", "short"] and changed["d2"] == corpus["d2"]
    assert changed.lengths(rows).tolist() == [len(corpus["d2"]), 5, 12]
    assert [t for block in changed.blocks(size=7) for t in block] == [changed[d] for d in corpus.ids]
    assert corpus["d3"] != "short"   # the original view is unchanged
    with pytest.raises(KeyError, match="nope"):
        corpus.with_texts({"nope": "x"})


def test_kind_auto_takes_titles_when_enough_documents_have_one_else_sentences(tmp_path):
    """weak_supervision.kind=auto: titles when train + dev documents (outside the test judgments) have one of
    min_words, else the sentence pseudo-queries kind=sentence makes, the same ones; the choice is recorded."""
    from crossdistill.data.weak import SENTENCE_PREFIX

    folder = write_sentence_beir(tmp_path / "beir")   # 40 documents, titles of 3 words, 6 of them judged for test

    def load():
        return BeirSource(path=str(folder), train_labels=False).load(tmp_path / "cache")

    weak = TitlePseudoQueries(kind="auto", train_queries=20, dev_queries=5, min_words=3, seed=1)
    data = weak.apply(load())
    assert weak.kind == "title" and data.train_view == "without titles"
    assert all(q.startswith(PREFIX) for q in data.train_qids + data.dev_qids)
    assert data.pseudo_queries == "auto -> title: 34 documents have a title of >= 3 words, 25 wanted"

    weak = TitlePseudoQueries(kind="auto", train_queries=20, dev_queries=5, min_words=4, seed=1)
    data = weak.apply(load())
    assert weak.kind == "sentence" and data.train_view == "without the pseudo-queries' sentences"
    assert data.pseudo_queries == "auto -> sentence: 0 documents have a title of >= 4 words, 25 wanted"
    assert all(q.startswith(SENTENCE_PREFIX) for q in data.train_qids + data.dev_qids)
    explicit = TitlePseudoQueries(kind="sentence", train_queries=20, dev_queries=5, min_words=4, seed=1).apply(load())
    assert data.qrels == explicit.qrels and explicit.pseudo_queries == "sentence"
    assert [data.train_doc_text[d] for d in data.doc_ids] == [explicit.train_doc_text[d] for d in data.doc_ids]

    # kind=title on the same corpus: one line that names the way out
    with pytest.raises(ValueError, match="only 0 documents have a title of >= 4 words.*kind=auto or sentence"):
        TitlePseudoQueries(kind="title", min_words=4).apply(load())


def test_kind_auto_with_neither_titles_nor_sentences_names_no_way_out(unlabelled):
    """Bodies of one unpunctuated run (no second sentence) and titles below min_words: auto has nothing to take,
    and its error does not send the user to kind=auto or sentence."""
    with pytest.raises(ValueError, match=r"only 0 documents have a title of >= 9 words; need more than 100 to make "
                                         r"pseudo-queries$"):
        TitlePseudoQueries(kind="auto", min_words=9).apply(unlabelled)
