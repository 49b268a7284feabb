"""encode() with a tiny from-scratch SentenceTransformer, and exact_search vs brute force."""

import numpy as np
import pytest
import torch

from crossdistill.retrieval import encode, exact_search

try:
    from tiny_models import tiny_sentence_transformer
except ImportError:  # tests/ became a package
    from tests.tiny_models import tiny_sentence_transformer

TEXTS = [
    "the quick brown fox",
    "a dog",
    "cancer patients in a clinical trial showed increased risk of heart disease",
    "neural network retrieval",
    "",
    "birds fly over the sea and the mountain",
    "cells",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_sentence_transformer(tmp_path_factory.mktemp("tiny_st"))


def test_encode_matches_one_by_one_and_order(model):
    emb = encode(model, TEXTS, batch_size=3)
    assert emb.dtype == torch.float32 and emb.device.type == "cpu"
    assert emb.shape == (len(TEXTS), model.get_embedding_dimension())
    single = torch.cat([encode(model, [t]) for t in TEXTS])
    torch.testing.assert_close(emb, single, atol=1e-5, rtol=1e-5)


def test_encode_restores_training_mode_and_max_len(model):
    model.train()
    old = model.max_seq_length
    emb_short = encode(model, TEXTS, max_seq_length=4)
    assert model.training and model.max_seq_length == old
    # Truncation actually applied: the long text changes, a 1-word text ("cells") does not.
    full = encode(model, TEXTS)
    assert not torch.allclose(emb_short[2], full[2], atol=1e-4)
    torch.testing.assert_close(emb_short[6], full[6], atol=1e-5, rtol=1e-5)
    model.eval()
    encode(model, TEXTS[:2])
    assert not model.training


def test_encode_bf16_close(model):
    full = encode(model, TEXTS)
    half = encode(model, TEXTS, precision="bf16")
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=1e-2, rtol=1e-2)
    assert not torch.equal(half, full)  # autocast really ran the linears in bf16
    with pytest.raises(ValueError):
        encode(model, TEXTS, precision="fp8")


def test_encode_empty(model):
    assert encode(model, []).shape == (0, model.get_embedding_dimension())


def test_exact_search_matches_bruteforce():
    g = torch.Generator().manual_seed(0)
    q, d = torch.randn(37, 8, generator=g), torch.randn(50, 8, generator=g)
    qids, dids = [f"q{i}" for i in range(37)], [f"d{i}" for i in range(50)]
    run = exact_search(q, d, qids, dids, k=5, batch_size=16)  # several query batches
    scores = q.numpy() @ d.numpy().T
    for i, qid in enumerate(qids):
        top = np.argsort(-scores[i])[:5]
        assert [doc for doc, _ in run[qid]] == [dids[j] for j in top]
        np.testing.assert_allclose([s for _, s in run[qid]], scores[i, top], rtol=1e-5, atol=1e-5)


def test_exact_search_caps_k():
    q, d = torch.eye(2, 3), torch.eye(3)
    run = exact_search(q, d, ["a", "b"], ["x", "y", "z"], k=10)
    assert [doc for doc, _ in run["a"]][0] == "x" and len(run["a"]) == 3
    assert run["b"][0] == ("y", 1.0)


def test_pair_scores_in_chunks_equal_the_dot_products():
    from crossdistill.retrieval.dense import pair_scores

    torch.manual_seed(0)
    q, d = torch.randn(3, 8), torch.randn(5, 8)
    rows_q, rows_d = [0, 2, 2, 1, 0], [4, 0, 3, 3, 1]
    expected = [float(q[i] @ d[j]) for i, j in zip(rows_q, rows_d)]
    assert pair_scores(q, d, rows_q, rows_d, chunk=2).tolist() == pytest.approx(expected, abs=1e-6)
