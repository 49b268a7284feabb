"""BM25Retriever on a toy corpus: ranking, stemming, k capping, degenerate queries."""

import pytest

from crossdistill.retrieval import BM25Retriever

DOC_IDS = ["d1", "d2", "d3", "d4", "d5", "d6"]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Marathon runners are running long distances every morning.",
    "A recipe for chocolate cake with fresh strawberries.",
    "Quantum computers exploit superposition and entanglement.",
    "Birds migrate south in the winter to find food.",
    "The stock market fell sharply after the interest rate announcement.",
]


@pytest.fixture(scope="module")
def retriever():
    return BM25Retriever().index(DOC_IDS, TEXTS)


def test_obvious_match_ranked_first(retriever):
    run = retriever.search({"q1": "chocolate cake recipe", "q2": "quantum entanglement"}, k=3)
    assert run["q1"][0][0] == "d3"
    assert run["q2"][0][0] == "d4"
    scores = [s for _, s in run["q1"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_stemming_matches_inflections(retriever):
    # "runs" never appears in the corpus; it only matches d2's "running"/"runners" via the stem.
    run = retriever.search({"q": "runs"}, k=6)
    assert [d for d, _ in run["q"]] == ["d2"]
    no_stem = BM25Retriever(stemmer=None).index(DOC_IDS, TEXTS)
    assert no_stem.search({"q": "runs"}, k=6)["q"] == []


def test_k_capped_at_corpus_size(retriever):
    run = retriever.search({"q": "the fox dog market birds cake quantum running"}, k=100)
    assert len(run["q"]) == len(DOC_IDS)
    assert sorted(d for d, _ in run["q"]) == sorted(DOC_IDS)


def test_k_limits_results(retriever):
    run = retriever.search({"q": "the fox dog market birds cake quantum running"}, k=2)
    assert len(run["q"]) == 2


def test_oov_and_stopword_queries_do_not_crash(retriever):
    run = retriever.search({"oov": "xylophone zzzz", "stop": "the of and", "empty": "", "ok": "stock market"}, k=5)
    assert set(run) == {"oov", "stop", "empty", "ok"}
    for qid in ("oov", "stop", "empty"):
        assert all(s == 0 for _, s in run[qid])  # empty list: zero-score docs are dropped
    assert run["ok"][0][0] == "d6"


def test_search_before_index_raises():
    with pytest.raises(RuntimeError):
        BM25Retriever().search({"q": "x"}, k=1)


def test_a_pickled_index_scores_and_stems_as_the_original():
    import pickle

    from crossdistill.retrieval.bm25 import BM25Retriever

    bm25 = BM25Retriever().index(["a", "b", "c"], ["the cat sat on the mat", "dogs run fast", "cats and dogs running"])
    copy = pickle.loads(pickle.dumps(bm25))
    queries = {"q": "running cats", "r": "dog runs"}   # stemming maps the surface forms onto the indexed stems
    assert copy.search(queries, 3) == bm25.search(queries, 3) and copy.search(queries, 3)["q"]
    assert copy.score_pairs(queries, ["q", "r"], ["c", "b"]).tolist() == bm25.score_pairs(queries, ["q", "r"], ["c", "b"]).tolist()
    assert bm25._tokenizer.stemmer is not None   # pickling left the original untouched


def test_score_pairs_equals_bm25s_full_score_vector_with_repeated_terms():
    """The postings lookup gives, for every pair, bm25s' own score of that document (a repeated query term counts
    twice, as in bm25s); the fallback for unsorted postings gives the same."""
    import random

    rng = random.Random(3)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(300)]
    ids = [f"doc{i:03d}" for i in range(300)]
    bm25 = BM25Retriever(stemmer=None, stopwords=None).index(ids, texts)
    queries = {"q": "w1 w2 w2 w39", "r": "w7 nothing", "s": "unknownword"}
    pairs = [(q, ids[rng.randrange(300)]) for q in queries for _ in range(50)]
    expected = []
    for qid, docid in pairs:
        tokens = bm25._tokenizer.tokenize([queries[qid]], update_vocab=False, return_as="ids", show_progress=False)[0]
        expected.append(float(bm25._model.get_scores(tokens)[ids.index(docid)]))
    assert any(e > 0 for e in expected) and any(e == 0 for e in expected)
    assert bm25.score_pairs(queries, *zip(*pairs)) == pytest.approx(expected, rel=1e-6)
    bm25._postings_sorted = False
    assert bm25.score_pairs(queries, *zip(*pairs)) == pytest.approx(expected, rel=1e-6)


def test_search_holds_top_lists_as_arrays_ties_by_docid():
    from crossdistill.retrieval.topk import TopKRun

    # Three identical documents tie; they come back in docid order whatever the index order.
    bm25 = BM25Retriever().index(["z", "m", "a", "x"], ["apple pie", "apple pie", "apple pie", "banana bread"])
    run = bm25.search({"q": "apple", "none": "zzzz"}, k=4)
    assert isinstance(run, TopKRun) and run.rows.dtype.name == "int32"
    assert [d for d, _ in run["q"]] == ["a", "m", "z"]    # "x" scores 0: dropped
    assert run["none"] == [] and list(run) == ["q", "none"] and len(run) == 2


def test_numba_backend_returns_the_numpy_runs():
    """bm25.backend=numba (bm25s's compiled scorer) is a speed choice only: the same scores, and the same documents in
    the same order above the k-th score, on a corpus with ties, repeated and unknown query terms, over more queries
    than the parallel threshold."""
    pytest.importorskip("numba")
    import random

    rng = random.Random(3)
    words = [f"w{i}" for i in range(40)]
    ids = [f"d{i:03d}" for i in range(300)]
    texts = [" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in ids]
    queries = {f"q{i}": " ".join(rng.choices(words + ["unseen"], k=rng.randint(1, 5))) for i in range(300)}
    numpy_run = BM25Retriever(stemmer=None, stopwords=None).index(ids, texts).search(queries, k=20)
    numba_run = BM25Retriever(stemmer=None, stopwords=None, backend="numba").index(ids, texts).search(queries, k=20)
    for qid in queries:
        scores = [s for _, s in numpy_run[qid]]
        assert [s for _, s in numba_run[qid]] == pytest.approx(scores, rel=1e-6), qid
        # Which of the documents tied at the k-th score make the cut is each backend's own; above it, the same.
        above = [d for d, s in numpy_run[qid] if scores and s > scores[-1] + 1e-5]
        assert [d for d, _ in numba_run[qid][:len(above)]] == above, qid


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="bm25.backend"):
        BM25Retriever(backend="rust")
