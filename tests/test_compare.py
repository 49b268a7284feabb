"""Paired comparison of two runs: per-query nDCG from traces and the sign-flip randomization test."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from crossdistill.evaluation.compare import compare_runs, paired_randomization_test, per_query_ndcg


def _trace(rows):
    return pd.DataFrame(rows, columns=["qid", "docid", "student_rank", "label"]).astype({"student_rank": "Int64"})


def test_per_query_ndcg_from_the_judged_documents_ranks():
    trace = _trace([
        ("q1", "a", 1, 0), ("q1", "b", 2, 1), ("q1", "c", 5, 1), ("q1", "x", 30, 0),
        ("q2", "r", None, 1), ("q2", "s", 1, 0),        # q2's relevant doc is beyond the retrieval depth
        ("q3", "t", 12, 1),                             # ranked, but below k
    ])
    got = per_query_ndcg(trace, k=10)
    ideal = 1 + 1 / math.log2(3)
    assert got["q1"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / ideal)
    assert got["q2"] == 0.0 and got["q3"] == 0.0


def test_paired_randomization_test_exact_values():
    # three equal gains: only the all-plus and all-minus patterns (2 of 8) reach the observed mean
    assert paired_randomization_test([0, 0, 0], [1, 1, 1]) == pytest.approx(0.25)
    # differences (+1, -1): the mean is 0, nothing to explain
    assert paired_randomization_test([0, 1], [1, 0]) == 1.0
    # (+2, +1, -1): |sum| 2; sums 2s1 + s2 - s3 over the 8 sign patterns are 2, 4, 0, 2, -2, 0, -4, -2: 6 of 8
    assert paired_randomization_test([0, 0, 1], [2, 1, 0]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="equal-length"):
        paired_randomization_test([0, 1], [1])


def test_sampled_test_agrees_with_a_consistent_gain():
    a = [0.0] * 40
    assert paired_randomization_test(a, [0.1] * 40, samples=5000) < 0.001


def test_compare_runs_on_finished_run_directories(tmp_path):
    def make_run(name, test_ranks, best_epoch=1):
        d = tmp_path / name
        (d / "traces").mkdir(parents=True)
        (d / "results.json").write_text(f'{{"best_epoch": {best_epoch}}}')
        rows = [(f"q{i}", f"d{i}", r, 1) for i, r in enumerate(test_ranks)]
        _trace(rows).to_parquet(d / "traces" / "test_final.parquet")
        _trace(rows[:2]).to_parquet(d / "traces" / f"dev_epoch={best_epoch:03d}.parquet")
        return d

    a = make_run("a", [1, 1, 3, 20])
    b = make_run("b", [1, 2, 1, 1], best_epoch=0)
    dev, test = compare_runs(a, b)
    assert (dev.split, dev.queries, test.queries) == ("dev", 2, 4)
    assert (test.wins, test.losses) == (2, 1)
    assert test.difference == pytest.approx(((1 / math.log2(3) - 1) + (1 - 0.5) + 1) / 4)
    assert compare_runs(a, a, ["test"])[0].p_value == 1.0
    c = make_run("c", [1, 1])
    with pytest.raises(ValueError, match="different test queries"):
        compare_runs(a, c, ["test"])

    from crossdistill.commands import compare as compare_script

    assert compare_script.main([str(a), str(b)]) == 0
    assert compare_script.main([str(a), str(c)]) == 1   # a clear error, not a traceback
