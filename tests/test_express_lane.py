"""crossdistill express-lane: the reranker's weights chosen on a run's dev trace, applied to its test trace."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from crossdistill.commands import express_lane as el


def _trace(qid: str, docs: list[str], relevant: str, student: list[float], teacher: list[float], ce: list[float],
           bm25: list[float]) -> pd.DataFrame:
    order = sorted(range(len(docs)), key=lambda i: -student[i])
    return pd.DataFrame({"qid": qid, "docid": docs, "in_shortlist": True, "label": [int(d == relevant) for d in docs],
                         "student_score": student, "student_rank": [order.index(i) + 1 for i in range(len(docs))],
                         "express_lane_score": teacher, "member_cross_encoder": ce, "member_bm25": bm25})


def test_weights_come_from_the_dev_trace_and_the_test_trace_is_measured_with_them(tmp_path):
    (tmp_path / "traces").mkdir()
    (tmp_path / "results.json").write_text(json.dumps({"best_epoch": 0}))
    # dev: only BM25 puts the relevant document first, so dev chooses BM25 alone
    _trace("q1", ["a", "b", "c"], "a", student=[0.1, 0.3, 0.2], teacher=[0.0, 1.0, 2.0], ce=[0.0, 2.0, 1.0],
           bm25=[9.0, 1.0, 2.0]).to_parquet(tmp_path / "traces" / "dev_epoch=000.parquet")
    # test: the student ranks the relevant y second, BM25 first, the run's reranker last
    _trace("q2", ["x", "y", "z"], "y", student=[0.3, 0.2, 0.1], teacher=[2.0, 0.0, 1.0], ce=[1.0, 0.0, 2.0],
           bm25=[1.0, 5.0, 2.0]).to_parquet(tmp_path / "traces" / "test_final.parquet")
    res = el.express_lane(tmp_path, ["cross_encoder", "bm25", "student"], [0.0, 0.5, 1.0])
    assert res["weights"] == {"cross_encoder": 0.0, "bm25": 1.0, "student": 0.0}
    test = res["systems"]["test"]
    second, third = 1 / math.log2(3), 1 / math.log2(4)
    assert test["student"]["ndcg@10"] == pytest.approx(second) and test["student"]["lift@3"] == pytest.approx(0.0)
    assert test["run's express lane"]["ndcg@10"] == pytest.approx(third)
    assert test["run's express lane"]["lift@3"] == pytest.approx(third - second)
    assert test["interpolated"] == pytest.approx({"ndcg@10": 1.0, "lift@3": 1.0 - second})


def test_a_member_the_traces_lack_is_named(tmp_path, capsys):
    (tmp_path / "traces").mkdir()
    (tmp_path / "results.json").write_text(json.dumps({"best_epoch": 0}))
    for name in ("dev_epoch=000", "test_final"):
        _trace("q", ["a", "b"], "a", [0.2, 0.1], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]).to_parquet(
            tmp_path / "traces" / f"{name}.parquet")
    assert el.main([str(tmp_path), "--members", "cross_encoder,mpnet"]) == 1
    assert "mpnet" in capsys.readouterr().err
