"""ONNX export of the student and the cross-encoder: the exported graphs reproduce the PyTorch models."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling

from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.models.cross_encoder import load_cross_encoder
from crossdistill.models.onnx_models import (
    OnnxBiEncoder,
    OnnxCrossEncoder,
    check_bi_encoder,
    check_cross_encoder,
    export_bi_encoder_onnx,
    export_cross_encoder_onnx,
)

MAX_SEQ = 16
LONG = "a quick brown fox jumps over the lazy dog and the cat runs fast in the city by the river near the sea and the mountain"
TEXTS = ["the dog", LONG, "cell", "deep neural retrieval search query document", "x", "brown fox"]
PAIRS = [("the dog", "a quick brown fox"), ("deep neural retrieval search query document ranking", "cell"),
         ("x", LONG), (LONG, LONG), ("cells", "cells")]

# A plain client: onnxruntime and the folder's tokenizer, nothing from crossdistill.
PLAIN_CLIENT = """
import json, sys
import numpy as np, onnxruntime as ort
from transformers import AutoTokenizer
folder, texts, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
tokenizer = AutoTokenizer.from_pretrained(folder)
features = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
session = ort.InferenceSession(folder + "/onnx/model.onnx", providers=["CPUExecutionProvider"])
feeds = {i.name: features[i.name].astype(np.int64) for i in session.get_inputs()}
np.save(out, session.run(["sentence_embedding"], feeds)[0])
assert "crossdistill" not in sys.modules
"""


def _cosine(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def student(tiny_bert, tmp_path_factory):
    model = load_bi_encoder(str(tiny_bert), normalize=True)
    model.max_seq_length = MAX_SEQ
    folder = tmp_path_factory.mktemp("student")
    model.save(str(folder))
    model.train()
    paths = export_bi_encoder_onnx(model, folder)
    assert model.training and model.device.type == "cpu"  # export left the model as it was
    model.eval()
    return model, folder, paths


@pytest.fixture(scope="module")
def cross(tiny_bert, tmp_path_factory):
    model = load_cross_encoder(str(tiny_bert), 32)
    # At BERT's init scale (std 0.02) the tiny model's logits are ~1e-4 whatever the input: a 1e-3 tolerance would
    # test nothing. Larger weights spread the logits over about +-1 and make the segment ids matter.
    torch.manual_seed(0)
    with torch.no_grad():
        for weight in model.model.parameters():
            if weight.dim() > 1:
                weight.normal_(std=0.3)
    folder = tmp_path_factory.mktemp("cross")
    model.save(str(folder))
    return model, folder, export_cross_encoder_onnx(model, folder)


def test_student_onnx_matches_sentence_transformer_in_a_plain_client(student, tmp_path):
    model, folder, paths = student
    assert paths["fp32"] == str(folder / "onnx" / "model.onnx")
    assert len(model.tokenizer(LONG)["input_ids"]) > MAX_SEQ  # truncation matters for LONG
    out = tmp_path / "emb.npy"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    subprocess.run([sys.executable, "-c", PLAIN_CLIENT, str(folder), json.dumps(TEXTS), str(out)], check=True, env=env,
                   cwd=tmp_path, timeout=600)
    got = np.load(out)
    ref = model.encode(TEXTS, convert_to_tensor=False, normalize_embeddings=False)
    assert got.shape == ref.shape == (len(TEXTS), 32)
    assert _cosine(got, ref).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # Normalize is inside the graph

    # The 0.9999 bar would catch an export that truncated at 512 or pooled over padding too.
    model.max_seq_length = 128
    untruncated = model.encode([LONG])
    model.max_seq_length = MAX_SEQ
    assert _cosine(untruncated[0], ref[1]) < 0.999
    features = model.tokenizer(TEXTS, padding=True, truncation=True, max_length=MAX_SEQ, return_tensors="pt")
    with torch.no_grad():
        unmasked = model.transformers_model(**features).last_hidden_state.mean(dim=1).numpy()
    assert _cosine(unmasked, ref).min() < 0.999


def test_onnx_bi_encoder_and_check(student):
    model, folder, _ = student
    encoder = OnnxBiEncoder(folder, threads=1)
    assert encoder.max_length == MAX_SEQ
    emb = encoder.encode(TEXTS, batch_size=4)  # sorted batches, scattered back to the input order
    assert emb.dtype == np.float32 and emb.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(emb[2], encoder.encode([TEXTS[2]])[0], atol=1e-5)  # padding never leaks in
    report = check_bi_encoder(model, encoder, TEXTS)
    assert set(report) == {"min_cosine", "mean_cosine", "n"} and report["n"] == len(TEXTS)
    assert 0.9999 <= report["min_cosine"] <= report["mean_cosine"] <= 1.0 + 1e-6
    assert report["min_cosine"] == pytest.approx(_cosine(emb, model.encode(TEXTS)).min(), abs=1e-6)


def test_cross_encoder_onnx_logits_match(cross):
    model, folder, paths = cross
    assert paths["fp32"] == str(folder / "onnx" / "model.onnx")
    scorer = OnnxCrossEncoder(folder)
    assert scorer.max_length == 32
    ref = model.predict(PAIRS, activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    got = scorer.predict(PAIRS, batch_size=2)
    assert got.dtype == np.float32 and got.shape == (len(PAIRS),)
    assert np.abs(got - ref).max() <= 1e-3
    assert np.ptp(ref) > 0.5  # logits spread wide enough for the tolerance to mean something

    # Dropping the segment ids would move the logits far past the tolerance.
    features = scorer.tokenizer([q for q, _ in PAIRS], [d for _, d in PAIRS], padding=True, truncation=True, max_length=32,
                                return_tensors="np")
    feeds = {name: features[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
    assert feeds["token_type_ids"].any(axis=1).all()
    feeds["token_type_ids"] = np.zeros_like(feeds["token_type_ids"])
    assert np.abs(scorer.session.run(["logits"], feeds)[0] - ref).max() > 1e-2

    report = check_cross_encoder(model, scorer, PAIRS)
    assert set(report) == {"max_abs_diff", "mean_abs_diff", "n"} and report["n"] == len(PAIRS)
    assert 0.0 <= report["mean_abs_diff"] <= report["max_abs_diff"] <= 1e-3
    assert report["max_abs_diff"] == pytest.approx(np.abs(got - ref).max(), abs=1e-6)


def test_int8_models_run(student, cross):
    _, student_folder, student_paths = student
    _, cross_folder, cross_paths = cross
    assert student_paths["int8"] == str(student_folder / "onnx" / "model_qint8.onnx")
    assert cross_paths["int8"] == str(cross_folder / "onnx" / "model_qint8.onnx")
    emb = OnnxBiEncoder(student_folder, file="model_qint8.onnx").encode(TEXTS)
    assert emb.shape == (len(TEXTS), 32) and np.isfinite(emb).all()
    logits = OnnxCrossEncoder(cross_folder, file="model_qint8.onnx").predict(PAIRS)
    assert logits.shape == (len(PAIRS),) and np.isfinite(logits).all()


def test_export_without_quantize_and_other_pooling(student, tmp_path):
    model, _, _ = student
    assert export_bi_encoder_onnx(model, tmp_path, quantize=False)["int8"] is None
    assert not (tmp_path / "onnx" / "model_qint8.onnx").exists()
    cls_model = SentenceTransformer(modules=[model[0], Pooling(32, pooling_mode="cls")], device="cpu")
    with pytest.raises(ValueError, match="mean pooling"):
        export_bi_encoder_onnx(cls_model, tmp_path / "cls")
