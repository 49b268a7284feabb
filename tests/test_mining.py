"""Mining: artifact caching and atomic writes, pair strategies and their false-negative guard."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from crossdistill.common.fingerprint import cache_key, state_dict_fingerprint
from crossdistill.common.io import write_parquet_atomic
from crossdistill.mining.artifact import ARTIFACT_COLUMNS, load_or_build
from crossdistill.mining.pairs import PositiveVsShortlist, TeacherTopVsRest, margin_scale, student_agreement, student_margins
from crossdistill.mining.scoring import earlier_scores
from crossdistill.teacher.ensemble import TeacherEnsemble


def artifact() -> pd.DataFrame:
    rows = [  # qid, docid, origin, teacher_score, label
        ("q1", "a", "bm25", 5.0, 1), ("q1", "b", "bm25", 6.0, 0), ("q1", "c", "bm25", 1.0, 0),
        ("q1", "p", "qrels", 3.0, 1),
        ("q2", "x", "bm25", 2.0, 0), ("q2", "y", "bm25", 4.0, 1), ("q2", "z", "bm25", 0.5, 0),
    ]
    df = pd.DataFrame(rows, columns=["qid", "docid", "origin", "ce_score", "label"])
    df["first_stage_rank"], df["first_stage_score"], df["bm25_rank"], df["dense_rank"] = 1, 1.0, 1, None
    df["bm25_score"], df["dense_score"] = 0.0, 0.0
    return df[list(ARTIFACT_COLUMNS)]


def scored() -> pd.DataFrame:
    return artifact().assign(teacher_score=lambda d: d.ce_score)


def test_positive_vs_shortlist_pairs_every_positive_with_unjudged_shortlist_docs():
    pairs = PositiveVsShortlist(pairs_per_query=100).build(scored())
    got = {(r.qid, r.docid_a, r.docid_b): r.margin for r in pairs.itertuples()}
    assert got == {("q1", "a", "b"): -1.0, ("q1", "a", "c"): 4.0, ("q1", "p", "b"): -3.0, ("q1", "p", "c"): 2.0,
                   ("q2", "y", "x"): 2.0, ("q2", "y", "z"): 3.5}


def test_teacher_top_never_uses_a_judged_positive_as_worse_doc():
    pairs = TeacherTopVsRest(top=1, pairs_per_query=100).build(scored())
    # q1: teacher's top is b (6.0); a and p are judged positives, so only c may be the worse doc
    assert set(zip(pairs.qid, pairs.docid_a, pairs.docid_b)) == {("q1", "b", "c"), ("q2", "y", "x"),
                                                                ("q2", "y", "z")}


def _pairs_group_by_group(strategy, frame: pd.DataFrame) -> list[tuple]:
    """The pair strategies as first written: a grouped frame per query, sorted by qid (the reference)."""
    import random

    rng, rows = random.Random(strategy.seed), []
    for qid, group in frame.groupby("qid", sort=True):
        if isinstance(strategy, TeacherTopVsRest):
            group = group.sort_values("teacher_score", ascending=False, kind="stable")
            better, worse = group.iloc[: strategy.top], group.iloc[strategy.top:]
        else:
            better, worse = group[group.label > 0], group[group.origin != "qrels"]
        worse = worse[worse.label <= 0]
        pairs = [(qid, a, b, sa - sb) for a, sa in zip(better.docid, better.teacher_score)
                 for b, sb in zip(worse.docid, worse.teacher_score)]
        rows += pairs if len(pairs) <= strategy.pairs_per_query else rng.sample(pairs, strategy.pairs_per_query)
    return rows


@pytest.mark.parametrize("strategy", [PositiveVsShortlist(pairs_per_query=3, seed=5),
                                      TeacherTopVsRest(top=2, pairs_per_query=3, seed=5)])
def test_pairs_from_arrays_equal_the_group_by_group_pairs(strategy):
    """Queries interleaved in the artifact, tied teacher scores, judged positives with origin qrels, sampling: the
    array implementation gives the same pairs, in the same order, as grouping the frame query by query."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"qid": rng.choice([f"q{i}" for i in range(30)], n),
                          "docid": [f"d{i}" for i in rng.integers(0, 200, n)],
                          "origin": rng.choice(["bm25", "dense", "qrels"], n, p=[.6, .3, .1]),
                          "label": rng.choice([0, 0, 0, 1, 2], n),
                          "teacher_score": rng.integers(-3, 4, n).astype(float)})   # many ties
    built = strategy.build(frame)
    assert list(built.columns) == ["qid", "docid_a", "docid_b", "margin"] and len(built) > 30
    assert list(built.itertuples(index=False, name=None)) == _pairs_group_by_group(strategy, frame)


def test_pairs_per_query_caps_and_is_seeded():
    a = PositiveVsShortlist(pairs_per_query=2, seed=1).build(scored())
    b = PositiveVsShortlist(pairs_per_query=2, seed=1).build(scored())
    assert a.groupby("qid").size().max() == 2 and a.equals(b)


def test_load_or_build_reuses_and_never_leaves_a_partial_file(tmp_path):
    path = tmp_path / "mining" / "k.parquet"

    def broken():
        raise KeyboardInterrupt  # an interrupted scoring run

    with pytest.raises(KeyboardInterrupt):
        load_or_build(path, broken)
    assert not path.exists()

    ds, reused = load_or_build(path, artifact)
    assert not reused and len(ds) == 7
    ds2, reused2 = load_or_build(path, lambda: pytest.fail("must not rebuild"))
    assert reused2 and ds2.ce_score.tolist() == artifact().ce_score.tolist()


def test_cache_key_and_fingerprint_follow_content():
    m = torch.nn.Linear(2, 2)
    fp = state_dict_fingerprint(m)
    assert fp == state_dict_fingerprint(m)
    with torch.no_grad():
        m.weight[0, 0] += 1
    assert fp != state_dict_fingerprint(m)
    assert cache_key(a=1, b=[1, 2]) == cache_key(b=[1, 2], a=1) != cache_key(a=2, b=[1, 2])


def test_failed_write_keeps_the_previous_file_intact(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet_atomic(artifact(), path)
    before = path.read_bytes()
    bad = artifact().assign(ce_score=[object()] * 7)  # pyarrow cannot serialise this column
    with pytest.raises(Exception):
        write_parquet_atomic(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.parquet"]  # no temp file left behind


def test_plain_ensemble_keeps_raw_logits_and_weighted_members_add_z_scores():
    df = pd.DataFrame({"qid": ["q", "q", "q"], "ce_score": [3.0, 1.0, 2.0], "bm25_score": [0.0, 10.0, 5.0],
                       "zero_shot_score": [0.5, 0.5, 0.5]})
    assert TeacherEnsemble(members=["cross_encoder"]).combine(df).tolist() == [3.0, 1.0, 2.0]
    assert TeacherEnsemble(members=["cross_encoder"]).is_plain_teacher
    # z(ce): mean 2, population std sqrt(2/3); bm25: mean 5, std 5 sqrt(2/3); a constant member: z = 0
    std = (2 / 3) ** 0.5
    z_ce = [1 / std, -1 / std, 0.0]
    z_bm25 = [-5 / (std * 5), 5 / (std * 5), 0.0]
    ensemble = TeacherEnsemble(members=["cross_encoder", "bm25", "zero_shot"],
                               weights={"cross_encoder": 1.0, "bm25": 2.0, "zero_shot": 1.0})
    assert not ensemble.is_plain_teacher
    assert ensemble.combine(df).tolist() == pytest.approx([c + 2 * b for c, b in zip(z_ce, z_bm25)])


def test_ensemble_weights_are_chosen_by_dev_reranking():
    # q1: the cross-encoder puts the relevant doc last, BM25 first; q2: both put it first.
    df = pd.DataFrame({"qid": ["q1"] * 3 + ["q2"] * 3, "docid": ["a", "b", "c", "x", "y", "z"],
                       "ce_score": [1.0, 3.0, 2.0, 5.0, 1.0, 0.0], "bm25_score": [9.0, 1.0, 2.0, 3.0, 2.0, 1.0]})
    qrels = {"q1": {"a": 1}, "q2": {"x": 1}}
    ensemble = TeacherEnsemble(members=["cross_encoder", "bm25"], grid=[0.0, 0.5, 1.0])
    # (1, 0), (0, 1); (1, .5), (.5, 1), (1, 1): scaled copies only once
    assert ensemble.candidates()[:2] == [{"cross_encoder": 1.0, "bm25": 0.0}, {"cross_encoder": 0.0, "bm25": 1.0}]
    assert len(ensemble.candidates()) == 5
    info = ensemble.choose(df, qrels)
    # BM25 alone ranks both relevant docs first (nDCG 1); the cross-encoder alone gets q1 at rank 3: 0.5 mean of
    # 1 and 1/log2(4) = 0.5 -> 0.75. The first combination reaching 1.0 in order (fewest members first) is BM25.
    assert info["dev_members"] == pytest.approx({"cross_encoder": 0.75, "bm25": 1.0})
    assert info["weights"] == {"cross_encoder": 0.0, "bm25": 1.0}
    assert info["dev_ndcg@10"] == pytest.approx(1.0)
    assert ensemble.weights == info["weights"]


def test_dev_weights_are_chosen_again_on_new_shortlists_and_config_weights_never_move():
    df = pd.DataFrame({"qid": ["q1"] * 3, "docid": ["a", "b", "c"], "ce_score": [1.0, 3.0, 2.0],
                       "bm25_score": [9.0, 1.0, 2.0], "dense_score": [0.1, 0.3, 0.2]})
    ensemble = TeacherEnsemble(members=["cross_encoder", "bm25", "student"])
    assert ensemble.follows_student and ensemble.column("student") == "dense_score"
    assert ensemble.choose(df, {"q1": {"a": 1}})["weights"] == {"cross_encoder": 0.0, "bm25": 1.0, "student": 0.0}
    # a later round's shortlist on which only the student finds the relevant document: dev chooses again
    later = df.assign(bm25_score=[1.0, 9.0, 2.0], dense_score=[0.9, 0.1, 0.2])
    assert ensemble.choose(later, {"q1": {"a": 1}})["weights"] == {"cross_encoder": 0.0, "bm25": 0.0, "student": 1.0}
    fixed = TeacherEnsemble(members=["cross_encoder", "bm25", "student"], weights={"cross_encoder": 1, "bm25": 1})
    assert not fixed.follows_student and fixed.choose(later, {"q1": {"a": 1}})["chosen_on"] == "config"
    assert fixed.weights == {"cross_encoder": 1.0, "bm25": 1.0, "student": 0.0}
    assert not TeacherEnsemble(members=["cross_encoder", "bm25", "zero_shot"]).follows_student


def test_a_saturated_dev_set_keeps_equal_weights():
    # every member alone ranks the relevant document first: dev cannot tell them apart
    df = pd.DataFrame({"qid": ["q1"] * 3, "docid": ["a", "b", "c"], "ce_score": [3.0, 1.0, 2.0],
                       "bm25_score": [9.0, 8.0, 1.0]})
    ensemble = TeacherEnsemble(members=["cross_encoder", "bm25"])
    info = ensemble.choose(df, {"q1": {"a": 1}})
    assert info["weights"] == {"cross_encoder": 1.0, "bm25": 1.0} == ensemble.weights
    assert info["chosen_on"].startswith("equal weights") and info["dev_members"] == {"cross_encoder": 1.0, "bm25": 1.0}
    # the same data with a bar above 1.0 is chosen as usual: the first best combination, the cross-encoder alone
    assert TeacherEnsemble(members=["cross_encoder", "bm25"], saturated=1.01).choose(df, {"q1": {"a": 1}})[
        "weights"] == {"cross_encoder": 1.0, "bm25": 0.0}


def test_ensemble_rejects_unknown_members_and_empty_weights():
    with pytest.raises(ValueError, match="mpnet"):
        TeacherEnsemble(members=["cross_encoder", "mpnet"])
    assert TeacherEnsemble(members=["mpnet"], bi_encoders={"mpnet": "all-mpnet-base-v2"}).members == ["mpnet"]
    with pytest.raises(ValueError, match="non-zero"):
        TeacherEnsemble(members=["cross_encoder", "bm25"], weights={"bm25": 0.0})
    with pytest.raises(ValueError, match="ensemble.express_lane.*mpnet"):
        TeacherEnsemble(members=["cross_encoder"], express_lane=["cross_encoder", "mpnet"])


def test_the_express_lane_is_the_teacher_or_its_own_ensemble_chosen_on_dev():
    teacher = TeacherEnsemble(members=["cross_encoder", "bm25"], weights={"cross_encoder": 1, "bm25": 1})
    assert teacher.express_lane_ensemble() is teacher
    teacher = TeacherEnsemble(members=["cross_encoder", "bm25"], weights={"cross_encoder": 1, "bm25": 1},
                              express_lane=["cross_encoder", "student"], grid=[0.0, 1.0])
    lane = teacher.express_lane_ensemble()
    assert lane is not teacher and lane.members == ["cross_encoder", "student"] and lane.from_dev
    # the student's own score orders q1 right where the cross-encoder does not: dev picks it in, the teacher is unmoved
    df = pd.DataFrame({"qid": ["q1"] * 3, "docid": ["a", "b", "c"], "ce_score": [1.0, 3.0, 2.0],
                       "dense_score": [0.9, 0.1, 0.2]})
    assert lane.choose(df, {"q1": {"a": 1}})["weights"] == {"cross_encoder": 0.0, "student": 1.0}
    assert teacher.weights == {"cross_encoder": 1.0, "bm25": 1.0}


def test_bm25_score_pairs_equals_search_scores():
    from crossdistill.retrieval.bm25 import BM25Retriever

    bm25 = BM25Retriever().index(["a", "b", "c"], ["the cat sat on the mat", "dogs run fast", "cats and dogs"])
    hits = dict(bm25.search({"q": "cat dog"}, 3)["q"])
    assert bm25.score_pairs({"q": "cat dog"}, ["q"] * 3, list("abc")) == pytest.approx([hits[d] for d in "abc"])
    # Pairs of several queries, interleaved: each query scored once, every pair in its place.
    queries = {"q": "cat dog", "r": "run fast"}
    other = dict(bm25.search({"r": "run fast"}, 3)["r"])
    scores = bm25.score_pairs(queries, pd.Series(["q", "r", "q", "r"], index=[9, 8, 7, 6]), ["a", "b", "c", "a"])
    assert scores.dtype == np.float64 and scores.tolist() == pytest.approx([hits["a"], other["b"], hits["c"], 0.0])
    assert bm25.score_pairs(queries, [], []).tolist() == []
    with pytest.raises(KeyError, match="'zz' is not in the BM25 index"):
        bm25.score_pairs(queries, ["q", "q"], ["a", "zz"])


def test_student_agreement_counts_pairs_ordered_like_the_teacher():
    df = scored().assign(dense_score=[0.9, 0.1, 0.5, 0.2, 0.3, 0.3, 0.1])
    pairs = pd.DataFrame({"qid": ["q1", "q1", "q1", "q2", "q2"], "docid_a": ["a", "a", "p", "y", "y"],
                          "docid_b": ["b", "c", "b", "x", "z"], "margin": [-1.0, 4.0, -3.0, 2.0, 3.5]})
    # student margins: a-b +0.8 (teacher -1: disagree), a-c +0.4 (agree), p-b +0.1 (teacher -3: disagree),
    # y-x 0.0 (tie: disagree), y-z +0.2 (agree) -> 2 of 5
    assert student_margins(df, pairs).tolist() == pytest.approx([0.8, 0.4, 0.1, 0.0, 0.2])
    assert student_agreement(pairs, student_margins(df, pairs)) == pytest.approx(0.4)


def test_margin_scale_matches_mean_absolute_margins():
    df = scored().assign(dense_score=[0.9, 0.1, 0.5, 0.2, 0.3, 0.3, 0.1])
    pairs = pd.DataFrame({"qid": ["q1", "q1", "q2"], "docid_a": ["a", "a", "y"], "docid_b": ["b", "c", "z"],
                          "margin": [-1.0, 4.0, 3.5]})
    # |student margins| 0.8, 0.4, 0.2 -> mean 0.4667; |teacher margins| mean 8.5 / 3 = 2.8333 -> 6.0714
    assert margin_scale(pairs, student_margins(df, pairs)) == pytest.approx((8.5 / 3) / (1.4 / 3))
    assert math.isnan(margin_scale(pairs, student_margins(df.assign(dense_score=0.5), pairs)))  # a flat student: nothing to measure


@pytest.mark.parametrize("origin", ["bm25", "dense"])
def test_shortlist_columns_give_the_frame_candidate_lists_give(origin):
    """A run held as arrays goes to columns without candidate objects: the scored artifact's frame is the same, row
    for row and dtype for dtype, as through per-query candidate lists (queries with short or empty lists, judged
    positives inside and outside the shortlist, grade 0 judgments)."""
    from crossdistill.mining.scoring import shortlist_frame
    from crossdistill.retrieval.fusion import shortlist_columns, shortlist_from_run
    from crossdistill.retrieval.topk import TopKRun

    rng = np.random.default_rng(1)
    docs = np.asarray([f"d{i}" for i in range(50)], dtype=object)
    qids = [f"q{i}" for i in range(12)]
    rows = np.stack([rng.choice(50, 8, replace=False) for _ in qids])
    counts = rng.integers(0, 9, 12)
    counts[[1, 3]] = 0   # empty shortlists: query 1 has judgments, query 3 none
    run = TopKRun(qids, docs, rows, np.sort(rng.random((12, 8)))[:, ::-1], counts=counts)
    assert (run.counts == 0).any() and (run.counts < 8).any()
    qrels = {q: {str(docs[rows[i, 0]]): 1, str(docs[rows[i, 7]]): 2, "d49": 0, f"x{i}": 1}
             for i, q in enumerate(qids) if i % 3}
    for k in (5, 20):
        lists = shortlist_frame(shortlist_from_run(run, origin, k), qrels)
        columns = shortlist_frame(shortlist_columns(run, origin, k), qrels)
        assert (lists.origin == "qrels").any() and (lists.label > 0).any()
        pd.testing.assert_frame_equal(columns, lists)
        pd.testing.assert_frame_equal(shortlist_frame(shortlist_columns(run, origin, k), qrels, False),
                                      shortlist_frame(shortlist_from_run(run, origin, k), qrels, False))


def test_earlier_scores_finds_each_pair_an_earlier_round_scored_and_nan_elsewhere():
    frame = pd.DataFrame({"qid": ["q1", "q1", "q2", "q2", "q3"], "docid": ["a", "b", "a", "c", "a"]})
    round1 = pd.DataFrame({"qid": ["q2", "q1", "q1", "q9"], "docid": ["a", "a", "z", "a"],
                           "ce_score": [2.0, 1.0, 7.0, 9.0]})
    round2 = pd.DataFrame({"qid": ["q2", "q2"], "docid": ["c", "a"], "ce_score": [3.0, 2.5]})   # q2/a again
    found = earlier_scores(frame, [round1, round2])
    np.testing.assert_array_equal(found, [1.0, np.nan, 2.5, 3.0, np.nan])   # the later round wins
    np.testing.assert_array_equal(earlier_scores(frame, []), np.full(5, np.nan))
