"""carve_dev: deterministic, disjoint, covering dev carving of train queries."""

from __future__ import annotations

import pytest

from crossdistill.data import carve_dev

QRELS = {f"q{i:03d}": {"d": 1} for i in range(50)}


def test_count_and_fraction_sizes():
    train, dev = carve_dev(QRELS, 10, seed=0)
    assert len(dev) == 10 and len(train) == 40
    assert set(train) | set(dev) == set(QRELS) and not set(train) & set(dev)
    assert train == sorted(train) and dev == sorted(dev)
    assert len(carve_dev(QRELS, 0.2, seed=0)[1]) == 10
    assert len(carve_dev(QRELS, 0.001, seed=0)[1]) == 1  # rounds to 0, clamped to keep a dev query
    assert carve_dev({"a": {}, "b": {}}, 0.99, seed=0) in ((["a"], ["b"]), (["b"], ["a"]))


def test_deterministic_and_seeded():
    shuffled = dict(reversed(list(QRELS.items())))
    assert carve_dev(QRELS, 10, seed=3) == carve_dev(shuffled, 10, seed=3)
    assert carve_dev(QRELS, 10, seed=3) != carve_dev(QRELS, 10, seed=4)


@pytest.mark.parametrize(
    "qrels,size,fragment",
    [
        ({"q": {"d": 1}}, 1, "need at least 2"),
        ({}, 0.5, "need at least 2"),
        (QRELS, 0, "between 1 and 49"),
        (QRELS, 50, "between 1 and 49"),
        (QRELS, 1.0, "strictly between 0 and 1"),
        (QRELS, 0.0, "strictly between 0 and 1"),
        (QRELS, True, "int count or a float"),
        (QRELS, "5", "int count or a float"),
    ],
)
def test_impossible_requests_raise(qrels, size, fragment):
    with pytest.raises(ValueError, match=fragment):
        carve_dev(qrels, size, seed=0)
