"""The ONNX files of an exported run, written and checked: fp32 against PyTorch on a sample of the run's texts
(student cosine >= 0.9999, cross-encoder logits within 1e-3), int8 by what it ranks on the test split beside fp32
(the student's nDCG@10 and recall@100 over the whole corpus; the express lane's nDCG@10 over the student's top k
with the int8 cross-encoder's logits in place of the fp32 ones)."""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from sentence_transformers import CrossEncoder, SentenceTransformer

from crossdistill.evaluation.metrics import evaluate
from crossdistill.evaluation.runs import reranked_ndcg
from crossdistill.models.onnx_models import (
    CHECK_BATCH,
    OnnxBiEncoder,
    OnnxCrossEncoder,
    check_bi_encoder,
    check_cross_encoder,
    export_bi_encoder_onnx,
    export_cross_encoder_onnx,
)
from crossdistill.retrieval.dense import exact_search

MIN_COSINE, MAX_LOGIT_DIFF = 0.9999, 1e-3


def sample_texts(docs, queries: Mapping[str, str], n: int, seed: int = 13) -> list[str]:
    """``n`` of the corpus's documents at random (seeded) and ``n`` queries: what the fp32 files are checked on."""
    rng = random.Random(seed)
    rows = sorted(rng.sample(range(len(docs)), min(n, len(docs))))
    return [*docs.texts(rows), *list(queries.values())[:n]]


def student_onnx(folder: Path, docs, doc_ids: Sequence[str], queries: Mapping[str, str], qrels, n: int,
                 depth: int = 100) -> dict:
    """Export the student folder's model to ONNX fp32 and int8 and check both: the record results.json keeps."""
    model = SentenceTransformer(str(folder), device="cpu")
    export_bi_encoder_onnx(model, folder)
    texts = sample_texts(docs, queries, n)
    fp32 = check_bi_encoder(model, OnnxBiEncoder(folder), texts)
    int8 = OnnxBiEncoder(folder, "model_qint8.onnx")
    record = {"fp32": {"file": "onnx/model.onnx", **fp32, "faithful": fp32["min_cosine"] >= MIN_COSINE},
              "int8": {"file": "onnx/model_qint8.onnx", **check_bi_encoder(model, int8, texts)}}
    qids = sorted(qrels)
    doc_emb = torch.from_numpy(int8.encode(docs.texts(range(len(doc_ids))), batch_size=CHECK_BATCH))
    run = exact_search(torch.from_numpy(int8.encode([queries[q] for q in qids])), doc_emb, qids, list(doc_ids), depth)
    record["int8"]["test"] = evaluate(run, qrels, ("ndcg@10", f"recall@{depth}"))
    return record


def cross_encoder_onnx(folder: Path, frame: pd.DataFrame, lane, queries: Mapping[str, str], docs, qrels,
                       n: int) -> dict:
    """Export the cross-encoder folder's model to ONNX fp32 and int8 and check both. ``frame``: the test trace's
    shortlists as the express lane's member frame (``lane.trace_frame``), whose cross-encoder column holds the run's
    fp32 logits; the int8 logits replace them to measure the express lane with the int8 file."""
    model = CrossEncoder(str(folder), device="cpu")
    export_cross_encoder_onnx(model, folder)
    pairs = [(queries[q], text) for q, text in zip(frame.qid, docs.many(frame.docid))]
    sample = pairs[:: max(1, len(pairs) // n)][:n]
    fp32 = check_cross_encoder(model, OnnxCrossEncoder(folder), sample)
    int8 = OnnxCrossEncoder(folder, "model_qint8.onnx")
    column = lane.column("cross_encoder")
    with_int8 = frame.assign(**{column: int8.predict(pairs)})
    return {"fp32": {"file": "onnx/model.onnx", **fp32, "faithful": fp32["max_abs_diff"] <= MAX_LOGIT_DIFF},
            "int8": {"file": "onnx/model_qint8.onnx", **check_cross_encoder(model, int8, sample),
                     "test_express_lane_ndcg@10": reranked_ndcg(with_int8, lane.combine(with_int8), qrels),
                     "test_express_lane_ndcg@10_fp32": reranked_ndcg(frame, lane.combine(frame), qrels),
                     # the cross-encoder alone over the same shortlists: the express lane may weigh it 0
                     "test_cross_encoder_ndcg@10": reranked_ndcg(with_int8, with_int8[column], qrels),
                     "test_cross_encoder_ndcg@10_fp32": reranked_ndcg(frame, frame[column], qrels)}}
