"""TopKRun: a Run held as arrays reads back as the lists it stands for."""
import pickle

import numpy as np
import pytest

from crossdistill.retrieval.topk import TopKRun


def test_reads_back_each_query_list_up_to_its_count():
    run = TopKRun(["q1", "q2"], ["a", "b", "c"], rows=np.array([[2, 0, 1], [1, 2, 0]]),
                  scores=np.array([[3.5, 2.0, 1.0], [0.25, 0.0, 0.0]]), counts=[3, 1])
    assert run["q1"] == [("c", 3.5), ("a", 2.0), ("b", 1.0)]
    assert run["q2"] == [("b", 0.25)]
    assert run == {"q1": [("c", 3.5), ("a", 2.0), ("b", 1.0)], "q2": [("b", 0.25)]}   # Mapping equality
    assert run.get("q3") is None and "q2" in run and list(run.items())[1] == ("q2", [("b", 0.25)])
    assert pickle.loads(pickle.dumps(run)) == run
    assert run.nbytes == 2 * 3 * 4 * 2 + 2 * 4


def test_rejects_mismatched_shapes_and_repeated_queries():
    with pytest.raises(ValueError, match="must be"):
        TopKRun(["q"], ["a"], rows=np.zeros((1, 2)), scores=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="repeat"):
        TopKRun(["q", "q"], ["a"], rows=np.zeros((2, 1)), scores=np.zeros((2, 1)))
