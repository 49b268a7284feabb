"""Inference runtimes inside the pipeline (``inference_backend``): each backend's output against PyTorch's, a new
export when the weights change, and a pipeline run on ONNX Runtime that ranks as the PyTorch run does."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from conftest import compose, tiny_overrides
from crossdistill.models import runtimes
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.models.cross_encoder import load_cross_encoder, predict_logits
from crossdistill.pipeline.train import run
from crossdistill.retrieval.dense import encode

LONG = "a quick brown fox jumps over the lazy dog and the cat runs fast in the city by the river near the sea and the mountain"
TEXTS = ["the dog", LONG, "cell", "deep neural retrieval search query document", "x", "brown fox", "the cat runs"]
PAIRS = [("the dog", "a quick brown fox"), ("deep neural retrieval search query document ranking", "cell"),
         ("x", LONG), (LONG, LONG), ("cells", "cells"), ("brown fox", "the lazy dog")]
# fp32 graphs must reproduce PyTorch; int8 weights move them a little, by a bounded amount
FAITHFUL = {"onnx": (0.9999, 1e-3), "openvino": (0.9999, 1e-3), "onnx-int8": (0.99, 0.1)}
BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(b == "openvino" and importlib.util.find_spec("openvino") is None,
                                                     reason="the openvino extra is not installed"))
            for b in ("onnx", "onnx-int8", "openvino")]


def _spread(model: torch.nn.Module) -> None:
    """At BERT's init scale (std 0.02) a tiny model's outputs barely depend on the input: a tolerance would test
    nothing. Larger weights make every token, the mask and the segment ids matter."""
    torch.manual_seed(0)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.normal_(std=0.3)


def _cosine(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def student(tiny_bert):
    model = load_bi_encoder(str(tiny_bert), normalize=True)
    model.max_seq_length = 16
    _spread(model)
    return model


@pytest.fixture(scope="module")
def cross(tiny_bert):
    model = load_cross_encoder(str(tiny_bert), 32)
    _spread(model.model)
    return model


@pytest.mark.parametrize("backend", BACKENDS)
def test_encode_on_each_backend_matches_torch(student, backend):
    ref = encode(student, TEXTS, batch_size=3)
    got = encode(student, TEXTS, batch_size=3, backend=backend)   # sorted batches, scattered back in input order
    assert got.shape == ref.shape and got.dtype == torch.float32
    cosine = _cosine(got, ref)
    assert cosine.min() >= FAITHFUL[backend][0]
    assert (_cosine(got[:, None], ref[None]).argmax(1) == np.arange(len(TEXTS))).all()   # each text is its own nearest
    short = encode(student, TEXTS, batch_size=3, max_seq_length=4, backend=backend)   # the length override reaches it
    assert _cosine(short[1], ref[1]) < 0.999


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_encoder_logits_on_each_backend_match_torch(cross, backend):
    ref = np.asarray(predict_logits(cross, PAIRS, batch_size=2))
    got = np.asarray(predict_logits(cross, PAIRS, batch_size=2, backend=backend))
    assert np.ptp(ref) > 0.5   # spread wide enough for the tolerance to mean something
    assert np.abs(got - ref).max() <= FAITHFUL[backend][1]
    if backend != "onnx-int8":
        assert (np.argsort(-got) == np.argsort(-ref)).all()


def test_a_changed_student_is_exported_again_and_an_unchanged_one_is_not(student, monkeypatch):
    exports = []
    original = runtimes._Compiled.__init__
    monkeypatch.setattr(runtimes._Compiled, "__init__", lambda self, *a: (exports.append(a[1]), original(self, *a))[1])
    first = encode(student, TEXTS, backend="onnx")
    again = encode(student, TEXTS, backend="onnx")
    assert len(exports) <= 1 and torch.equal(first, again)   # the fixture's graph may already be held
    encode(student, TEXTS, backend="onnx-int8")
    encode(student, TEXTS, backend="onnx")   # each backend keeps its own graph: switching back exports nothing
    assert exports[-1:] == ["onnx-int8"] or len(exports) == 0
    held = len(exports)
    with torch.no_grad():   # what an optimizer step does: the same parameters, written in place
        student[0].auto_model.embeddings.word_embeddings.weight.mul_(1.5)
    try:
        moved = encode(student, TEXTS, backend="onnx")
        assert len(exports) == held + 1
        assert _cosine(moved, encode(student, TEXTS)).min() >= 0.9999   # the new weights, not the held graph
        assert _cosine(moved, first).min() < 0.999
    finally:
        with torch.no_grad():
            student[0].auto_model.embeddings.word_embeddings.weight.div_(1.5)


def test_an_unknown_backend_is_refused(student):
    with pytest.raises(ValueError, match="inference_backend must be one of"):
        encode(student, TEXTS, backend="tensorrt")


def test_pipeline_on_onnx_ranks_as_on_torch(tiny_bert, tiny_beir, tmp_path, monkeypatch):
    """The smallest pipeline twice, the second with every inference pass on ONNX Runtime: the same test metrics
    (the two runtimes' scores differ by float rounding, not by rank on this corpus)."""
    exported = []
    original = runtimes._Compiled.__init__
    monkeypatch.setattr(runtimes._Compiled, "__init__",
                        lambda self, model, *a: (exported.append(type(model).__name__), original(self, model, *a))[1])
    results = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        cfg = compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / f"cache-{backend}") +
                      [f"inference_backend={backend}", "export.onnx=false"])
        run(cfg)
        results[backend] = json.loads((out / "results.json").read_text())
    # the student (zero-shot, each epoch, the test) and the cross-encoder (mining, reranking) both ran exported
    assert exported.count("SentenceTransformer") >= 3 and "CrossEncoder" in exported
    torch_test, onnx_test = (results[b]["systems"] for b in ("torch", "onnx"))
    for system in ("student_init", "student", "express_lane", "teacher_over_bm25"):
        for metric, value in torch_test[system].items():
            if isinstance(value, float):
                assert onnx_test[system][metric] == pytest.approx(value, abs=0.02), (system, metric)
