"""Behaviour of load_beir / BeirDataset on small fixture folders written in tmp_path."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest

from crossdistill.data import BeirDataset, DataError, load_beir

CORPUS = [
    {"_id": "d1", "title": "Alpha", "text": "first doc", "extra": 1},
    {"_id": "d2", "text": "no title here"},
    {"_id": "d3", "title": "", "text": " padded "},
    {"_id": "d4", "title": "Delta", "text": "fourth doc"},
    {"_id": "d5", "title": None, "text": "null title"},
    {"_id": "d6", "title": "Zeta", "text": "sixth doc"},
]
QUERIES = [{"_id": q, "text": f"query {q}"} for q in ("q1", "q2", "q3", "q4", "q5")]
TRAIN = "query-id\tcorpus-id\tscore\nq2\td1\t1\nq1\td2\t1\nq1\td3\t0\n"
TEST = "query-id\tcorpus-id\tscore\nq3\td4\t2\nq4\td1\t1\n"


def write(root, corpus=None, queries=None, qrels=None):
    """Write a BEIR folder; corpus/queries may be raw strings to inject bad lines."""
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus or CORPUS), ("queries.jsonl", queries or QUERIES)):
        text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
        (root / name).write_text(text, encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    for split, text in (qrels or {"train": TRAIN, "test": TEST}).items():
        (root / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


def jsonl(rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def test_good_folder_loads(tmp_path):
    ds = load_beir(write(tmp_path / "toy"))
    assert isinstance(ds, BeirDataset) and ds.name == "toy"
    assert len(ds.corpus) == 6 and ds.corpus.column_names == ["docid", "title", "text", "contents", "body"]
    assert ds.doc_ids == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert ds.doc_index["d4"] == 3
    assert ds.rows_of(pd.Series(["d4", "d1", "d4"], index=[5, 6, 7])).tolist() == [3, 0, 3]
    with pytest.raises(KeyError, match="'d9' is not in the corpus"):
        ds.rows_of(["d1", "d9"])
    assert ds.corpus["title"][1] == "" and ds.corpus["title"][4] == ""
    texts = ["Alpha first doc", "no title here", "padded", "Delta fourth doc", "null title", "Zeta sixth doc"]
    assert list(ds.documents.values()) == texts and ds.documents.texts([5, 0]) == [texts[5], texts[0]]
    assert ds.documents["d4"] == "Delta fourth doc" and ds.documents.view("body")["d4"] == "fourth doc"
    assert ds.documents.lengths([0, 2]).tolist() == [len(texts[0]), len(texts[2])]
    assert len(ds.queries) == 5 and ds.queries["q5"] == "query q5"
    assert ds.qrels == {"train": {"q2": {"d1": 1}, "q1": {"d2": 1, "d3": 0}}, "test": {"q3": {"d4": 2}, "q4": {"d1": 1}}}
    assert list(ds.split_queries("train")) == ["q2", "q1"]
    assert ds.split_queries("test") == {"q3": "query q3", "q4": "query q4"}
    with pytest.raises(KeyError):
        ds.split_queries("dev")
    assert len(ds.fingerprint) == 64


def test_splits_selection_and_headerless(tmp_path):
    root = write(tmp_path / "toy", qrels={"test": "q3\td4\t1\n\nq4\td1\t1\n"})
    assert set(load_beir(root, splits=None).qrels) == {"test"}
    assert load_beir(root, splits=["test"]).qrels["test"] == {"q3": {"d4": 1}, "q4": {"d1": 1}}
    with pytest.raises(DataError, match=r"train\.tsv"):
        load_beir(root)  # default asks for train too


def test_fingerprint_tracks_bytes(tmp_path):
    root = write(tmp_path / "toy")
    fp = load_beir(root).fingerprint
    assert load_beir(root).fingerprint == fp
    assert load_beir(root, splits=["test"]).fingerprint != fp
    assert load_beir(root, splits=["test", "train"]).fingerprint == fp
    (root / "qrels" / "test.tsv").write_text(TEST.replace("\t2\n", "\t3\n"))
    fp2 = load_beir(root).fingerprint
    assert fp2 != fp
    (root / "corpus.jsonl").write_text((root / "corpus.jsonl").read_text().replace("first", "First"))
    assert load_beir(root).fingerprint not in (fp, fp2)


# (case id, file, content override, expected line, expected field or None, message fragment)
Q = "query-id\tcorpus-id\tscore\n"
BAD = [
    ("bad-json", "corpus.jsonl", jsonl([CORPUS[0], "{not json"] + CORPUS[1:]), 2, None, "not valid JSON"),
    ("not-object", "queries.jsonl", jsonl([QUERIES[0], "[1, 2]"] + QUERIES[1:]), 2, None, "JSON object"),
    ("missing-id", "corpus.jsonl", jsonl(CORPUS + [{"text": "x"}]), 7, "_id", "missing"),
    ("int-id", "queries.jsonl", jsonl(QUERIES + [{"_id": 7, "text": "x"}]), 6, "_id", "string"),
    ("missing-text", "corpus.jsonl", jsonl(CORPUS[:2] + [{"_id": "dx"}] + CORPUS[2:]), 3, "text", "missing"),
    ("bad-title", "corpus.jsonl", jsonl(CORPUS + [{"_id": "dx", "title": 3, "text": "x"}]), 7, "title", "string"),
    ("bad-text", "queries.jsonl", jsonl(QUERIES + [{"_id": "qx", "text": ["x"]}]), 6, "text", "string"),
    ("dup-doc", "corpus.jsonl", jsonl(CORPUS[:4] + ["", {"_id": "d2", "text": "again"}] + CORPUS[4:]), 6, "_id", "line 2"),
    ("dup-query", "queries.jsonl", jsonl(QUERIES + [{"_id": "q1", "text": "again"}]), 6, "_id", "line 1"),
    ("qrels-columns", "qrels/train.tsv", Q + "q1\td2\n", 2, None, "3 tab-separated columns"),
    ("qrels-score", "qrels/train.tsv", Q + "q1\td2\t1\nq2\td1\thigh\n", 3, "score", "integer"),
    ("qrels-query", "qrels/test.tsv", Q + "q3\td4\t1\nqZ\td1\t1\n", 3, "query-id", "'qZ'"),
    ("qrels-doc", "qrels/test.tsv", Q + "q3\tdZ\t1\n", 2, "corpus-id", "'dZ'"),
    ("qrels-header", "qrels/train.tsv", "qid\tdocid\tgrade\nq1\td2\t1\n", 1, None, "header"),
    ("qrels-dup", "qrels/train.tsv", Q + "q1\td2\t1\nq1\td2\t0\n", 3, "corpus-id", "line 2"),
]


@pytest.mark.parametrize("case,fname,content,line,field,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_file_line_field(tmp_path, case, fname, content, line, field, fragment):
    root = write(tmp_path / "toy")
    (root / fname).write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_beir(root)
    err, msg = info.value, str(info.value)
    assert str(root / fname) in msg and f"line {line}" in msg and fragment in msg
    assert err.line == line and err.field == field
    if field:
        assert f"field '{field}'" in msg


def test_decode_error_names_line(tmp_path):
    root = write(tmp_path / "toy")
    (root / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "ok"}\n{"_id": "q2", "text": "\xff"}\n')
    with pytest.raises(DataError, match=r"queries\.jsonl line 2: not valid UTF-8"):
        load_beir(root, splits=None)


@pytest.mark.parametrize(
    "setup,fragment",
    [
        (lambda r: r.rename(r.with_name("gone")), "folder does not exist"),
        (lambda r: (r / "corpus.jsonl").unlink(), "corpus.jsonl: file does not exist"),
        (lambda r: (r / "queries.jsonl").unlink(), "queries.jsonl: file does not exist"),
        (lambda r: (r / "qrels" / "test.tsv").unlink(), "test.tsv: qrels file for requested split 'test'"),
        (lambda r: (r / "qrels" / "test.tsv").write_text(Q + "\n"), "test.tsv: no judgement rows"),
        (lambda r: (r / "qrels" / "test.tsv").write_text(Q + "q3\td4\t0\n"), "test.tsv: no row with a positive grade"),
        (lambda r: (r / "corpus.jsonl").write_text("\n\n"), "corpus.jsonl: no documents"),
    ],
)
def test_missing_files_and_empty_splits(tmp_path, setup, fragment):
    root = write(tmp_path / "toy")
    setup(root)
    with pytest.raises(DataError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        load_beir(root)


def test_data_error_shape():
    err = DataError("/x/scifact/corpus.jsonl", "missing", line=17, field="_id")
    assert str(err) == "/x/scifact/corpus.jsonl line 17, field '_id': missing"
    assert isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.line, back.field, back.problem, str(back)) == (err.path, 17, "_id", "missing", str(err))


def test_subset_keeps_judged_docs(tmp_path):
    ds = load_beir(write(tmp_path / "toy"))
    sub = ds.subset(max_docs=4, max_queries={"train": 1, "test": 1}, seed=0)
    assert {s: len(v) for s, v in sub.qrels.items()} == {"train": 1, "test": 1}
    judged = {d for split in sub.qrels.values() for docs in split.values() for d in docs}
    assert judged <= set(sub.doc_ids) and len(sub.doc_ids) == 4
    assert sub.doc_ids == [d for d in ds.doc_ids if d in set(sub.doc_ids)]  # corpus order kept
    assert set(sub.queries) == {q for split in sub.qrels.values() for q in split}
    for split, judged_q in sub.qrels.items():  # kept queries keep all their judgements
        assert all(ds.qrels[split][q] == docs for q, docs in judged_q.items())
    assert sub.doc_index == {d: i for i, d in enumerate(sub.doc_ids)}
    # deterministic, and the fingerprint depends on the arguments
    again = ds.subset(max_docs=4, max_queries={"train": 1, "test": 1}, seed=0)
    assert again.doc_ids == sub.doc_ids and again.qrels == sub.qrels and again.fingerprint == sub.fingerprint
    assert sub.fingerprint != ds.fingerprint
    assert ds.subset(max_docs=5, max_queries={"train": 1, "test": 1}, seed=0).fingerprint != sub.fingerprint
    assert ds.subset(max_docs=4, max_queries={"train": 1, "test": 1}, seed=1).fingerprint != sub.fingerprint
    # judged docs are never dropped to honour max_docs
    tiny = ds.subset(max_docs=1, max_queries=None, seed=0)
    assert set(tiny.doc_ids) == {"d1", "d2", "d3", "d4"} and tiny.qrels == ds.qrels
    with pytest.raises(ValueError, match="dev"):
        ds.subset(max_docs=None, max_queries={"dev": 1}, seed=0)


def test_corpus_is_written_once_as_arrow_and_memory_mapped(tmp_path):
    root = write(tmp_path / "toy")
    in_memory = load_beir(root)
    mapped = load_beir(root, arrow_dir=tmp_path / "arrow")
    files = list((tmp_path / "arrow").iterdir())
    assert len(files) == 1 and files[0].name.startswith("corpus-") and files[0].suffix == ".arrow"
    assert [f["filename"] for f in mapped.corpus.cache_files] == [str(files[0])]   # read from the file, not memory
    assert not in_memory.corpus.cache_files
    assert list(mapped.documents.items()) == list(in_memory.documents.items())
    assert mapped.fingerprint == in_memory.fingerprint
    subset = mapped.subset(max_docs=3, max_queries=None, seed=0)   # rows selected over the mapped table
    assert list(subset.documents.values()) == [in_memory.documents[d] for d in subset.doc_ids]


def test_a_corpus_that_fails_validation_leaves_no_arrow_file(tmp_path):
    root = write(tmp_path / "toy", corpus=[{"_id": "d1", "text": "fine"}, {"_id": "d2"}])
    with pytest.raises(DataError, match="line 2"):
        load_beir(root, arrow_dir=tmp_path / "arrow")
    assert not any((tmp_path / "arrow").iterdir())
