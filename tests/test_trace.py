"""build_trace / write_trace / read_traces on small hand-made inputs."""

import math

import pandas as pd
import pytest

from crossdistill.evaluation.trace import TRACE_COLUMNS, build_trace, read_traces, write_trace
from crossdistill.retrieval.fusion import Candidate


def C(docid, origin, rank, score, bm25_rank=None, dense_rank=None):
    return Candidate(docid=docid, origin=origin, rank=rank, score=score, bm25_rank=bm25_rank, dense_rank=dense_rank)


QUERIES = {"q1": "what causes fever", "q2": "red planet"}
SHORTLISTS = {
    "q1": [C("a", "both", 1, 0.9, 1, 1), C("b", "dense", 2, 0.8, None, 2), C("c", "bm25", 3, 0.7, 2, None)],
    "q2": [C("x", "dense", 1, 0.5, None, 1), C("y", "dense", 2, 0.4, None, 2)],
}
# q1: c beats a; a and b tie, so first-stage rank breaks the tie -> c=1, a=2, b=3.
# q2: y beats x -> y=1, x=2.
TEACHER = {("q1", "a"): 1.0, ("q1", "b"): 1.0, ("q1", "c"): 3.0, ("q2", "x"): -2.0, ("q2", "y"): 0.5}
# q1: d is relevant but not shortlisted (student rank 5); e is relevant, not shortlisted, not retrieved
# by the student at all; b is judged non-relevant (0); z (grade 0) must not get a row.
QRELS = {"q1": {"c": 2, "d": 1, "e": 1, "b": 0}, "q2": {"y": 1, "z": 0}}
STUDENT = {"q1": [("b", 9.0), ("a", 8.0), ("c", 7.0), ("f", 6.0), ("d", 5.0)],
           "q2": [("y", 3.0), ("x", 2.0)]}
BM25 = {"q1": [("a", 12.0), ("c", 11.0)], "q2": []}


def make(**kw):
    args = dict(eval_name="dev_epoch=001", split="dev", epoch=1, queries=QUERIES, shortlists=SHORTLISTS,
                express_lane_scores=TEACHER, qrels=QRELS, student_run=STUDENT, bm25_run=BM25)
    return build_trace(**{**args, **kw})


def test_columns_rows_and_dtypes():
    df = make()
    assert tuple(df.columns) == TRACE_COLUMNS
    # 3 + 2 shortlist rows, plus d and e for q1 (relevant, not shortlisted); none for z (grade 0)
    assert list(zip(df.qid, df.docid)) == [("q1", "a"), ("q1", "b"), ("q1", "c"), ("q1", "d"), ("q1", "e"),
                                           ("q2", "x"), ("q2", "y")]
    assert df.in_shortlist.tolist() == [True, True, True, False, False, True, True]
    for col in ("first_stage_rank", "bm25_rank", "student_rank", "student_init_rank", "express_lane_rank"):
        assert str(df[col].dtype) == "Int64", col
    assert df.epoch.dtype == "int64" and df.label.dtype == "int64" and df.in_shortlist.dtype == bool
    assert set(df["eval"]) == {"dev_epoch=001"} and set(df.split) == {"dev"}
    assert df["query"].iloc[0] == "what causes fever"


def test_ranks_scores_and_labels():
    df = make().set_index(["qid", "docid"])
    assert df.loc[("q1", "c"), "express_lane_rank"] == 1
    assert df.loc[("q1", "a"), "express_lane_rank"] == 2  # tie with b broken by first-stage rank
    assert df.loc[("q1", "b"), "express_lane_rank"] == 3
    assert df.loc[("q2", "y"), "express_lane_rank"] == 1 and df.loc[("q2", "x"), "express_lane_rank"] == 2
    assert df.loc[("q1", "c"), "express_lane_score"] == 3.0
    assert df.loc[("q1", "b"), ["student_rank", "student_score"]].tolist() == [1, 9.0]
    assert df.loc[("q1", "c"), ["bm25_rank", "bm25_score"]].tolist() == [2, 11.0]
    assert pd.isna(df.loc[("q1", "b"), "bm25_rank"]) and math.isnan(df.loc[("q1", "b"), "bm25_score"])
    assert df.loc[("q1", "b"), ["origin", "first_stage_rank", "first_stage_score"]].tolist() == ["dense", 2, 0.8]
    assert df.loc[("q1", "c"), "label"] == 2 and df.loc[("q1", "b"), "label"] == 0
    assert df.loc[("q2", "x"), "label"] == 0
    d = df.loc[("q1", "d")]  # out-of-shortlist relevant doc: where it ended up
    assert d.student_rank == 5 and d.origin == "" and d.label == 1
    assert pd.isna(d.first_stage_rank) and pd.isna(d.express_lane_rank) and math.isnan(d.express_lane_score)
    assert pd.isna(df.loc[("q1", "e"), "student_rank"])
    assert df.student_init_rank.isna().all()  # no init run given


def test_init_run_and_missing_bm25_run():
    df = make(student_init_run={"q1": [("c", 0.3), ("d", 0.2)]}, bm25_run=None).set_index(["qid", "docid"])
    assert df.loc[("q1", "d"), ["student_init_rank", "student_init_score"]].tolist() == [2, 0.2]
    assert pd.isna(df.loc[("q1", "a"), "student_init_rank"])
    # without a BM25 run the fusion's bm25 rank is kept (no score)
    assert df.loc[("q1", "c"), "bm25_rank"] == 2 and math.isnan(df.loc[("q1", "c"), "bm25_score"])


def test_missing_teacher_score_is_an_error():
    with pytest.raises(KeyError, match="q2"):
        make(express_lane_scores={k: v for k, v in TEACHER.items() if k != ("q2", "x")})


def test_empty_trace_keeps_schema():
    df = make(shortlists={})
    assert df.empty and tuple(df.columns) == TRACE_COLUMNS and str(df.express_lane_rank.dtype) == "Int64"


def test_write_and_read_roundtrip(tmp_path):
    df = make()
    write_trace(df, tmp_path / "traces" / "dev_epoch=001.parquet")
    write_trace(make(eval_name="dev_epoch=000", epoch=0), tmp_path / "traces" / "dev_epoch=000.parquet")
    write_trace(df, tmp_path / "traces" / "dev_epoch=001.parquet")  # overwrite in place
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == ["dev_epoch=000.parquet",
                                                                      "dev_epoch=001.parquet"]  # no temp files
    traces = read_traces(tmp_path)
    assert list(traces) == ["dev_epoch=000", "dev_epoch=001"]
    back = traces["dev_epoch=001"]
    pd.testing.assert_frame_equal(back, df)
    assert read_traces(tmp_path / "nowhere") == {}
