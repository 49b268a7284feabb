import random

from crossdistill.teacher.data import title_pseudo_groups, title_query_sources, training_groups, validation_groups


def test_training_groups_put_positive_first_and_never_use_judged_docs_as_negatives():
    queries = {"q": "query"}
    qrels = {"q": {"p1": 1, "p2": 2, "z": 0}}
    bm25 = {"q": [("p1", 9.0), ("n1", 8.0), ("z", 7.0), ("n2", 6.0), ("p2", 5.0), ("n3", 4.0)]}
    text = {d: f"text {d}" for d in ("p1", "p2", "z", "n1", "n2", "n3")}
    groups = training_groups(["q"], queries, qrels, bm25, text, negatives=2, depth=6, seed=0)
    assert [g["docs"][0] for g in groups] == ["text p1", "text p2"]  # one group per judged positive
    for g in groups:
        assert set(g["docs"][1:]) <= {"text n1", "text n2", "text n3", "text z"}  # judged 0 is a fine negative
        assert "text p1" not in g["docs"][1:] and "text p2" not in g["docs"][1:]


def test_validation_groups_carry_the_shortlist_and_judgments():
    groups = validation_groups(["q"], {"q": "query"}, {"q": {"b": 1}}, {"q": [("a", 2.0), ("b", 1.0)]},
                               {"a": "A", "b": "B"}, depth=1)
    assert groups == [{"queries": "query", "docids": ["a"], "docs": ["A"], "judgments": {"b": 1}}]


def test_title_pseudo_groups_use_title_as_query_and_hide_titles():
    ids = ["d1", "d2", "d3", "d4"]
    titles = ["gene expression in mouse brain", "short", "cancer risk in human patients", "blood dose trial data"]
    bodies = ["body one", "body two", "body three", "body four"]

    def search(queries, k):
        return {q: [(q, 9.0)] + [(d, 1.0) for d in ids if d != q][: k - 1] for q in queries}

    groups = title_pseudo_groups(ids, titles, bodies, search, n=10, negatives=2, depth=3, seed=0)
    assert len(groups) == 3  # "short" has fewer than 4 words
    for g in groups:
        src = titles.index(g["queries"])
        assert g["docs"][0] == bodies[src]
        assert bodies[src] not in g["docs"][1:] and set(g["docs"]) <= set(bodies)


def test_title_query_sources_name_the_documents_the_teacher_trains_on():
    ids = [f"d{i}" for i in range(30)]
    titles = [f"title {i} about cell biology" if i % 3 else "too short" for i in range(30)]
    bodies = [f"body {i}" for i in range(30)]

    def search(queries, k):
        return {q: [(d, 1.0) for d in ids][:k] for q in queries}

    groups = title_pseudo_groups(ids, titles, bodies, search, n=8, negatives=2, depth=5, seed=3)
    chosen = title_query_sources(titles, bodies, 8, random.Random(3))
    assert len(chosen) == 8 and all(i % 3 for i in chosen)  # only titles of >= 4 words
    assert [g["queries"] for g in groups] == [titles[i] for i in chosen]
