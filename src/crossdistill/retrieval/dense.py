"""Dense first stage: our own encode loop plus exact (brute-force) inner-product search.

We do not call ``SentenceTransformer.encode`` because we need control over autocast
precision, temporary ``max_seq_length`` overrides and restoring the training state when
the student is encoded in the middle of training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from crossdistill.common.batching import longest_first, to_device
from crossdistill.models.runtimes import forward
from crossdistill.retrieval.topk import TopKRun
from crossdistill.types import Run

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@torch.inference_mode()
def encode(
    model: "SentenceTransformer",
    texts: Sequence[str],
    batch_size: int = 64,
    precision: str = "32",
    show_progress: bool = False,
    max_seq_length: int | None = None,
    backend: str = "torch",
) -> torch.Tensor:
    """Embed ``texts`` into a float32 CPU tensor ``[n, dim]`` in input order.

    Texts are batched longest-first (by character length) so each batch pads to similar
    lengths, then the original order is restored. ``precision="bf16"`` runs the forward
    under bf16 autocast; ``"32"`` runs in full precision. The model is put in eval mode
    (no dropout) and its training flag and ``max_seq_length`` are restored afterwards. ``backend``: the runtime
    (``inference_backend``: torch, onnx, onnx-int8, openvino; see :mod:`crossdistill.models.runtimes`).
    """
    if precision not in ("32", "bf16"):
        raise ValueError(f"precision must be '32' or 'bf16', got {precision!r}")
    texts = list(texts)
    was_training = model.training
    old_max_len = model.max_seq_length
    device = model.device
    order = longest_first(texts)
    chunks: list[torch.Tensor] = []
    try:
        model.eval()
        if max_seq_length is not None:
            model.max_seq_length = max_seq_length
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="Encoding", disable=not show_progress):
            batch = [texts[i] for i in order[start : start + batch_size]]
            features = to_device(model.preprocess(batch), device)
            emb = forward(model, features, backend, precision, "sentence_embedding")
            chunks.append(emb.cpu())
    finally:
        if max_seq_length is not None:
            model.max_seq_length = old_max_len
        model.train(was_training)
    if not chunks:
        dim = model.get_embedding_dimension() or 0
        return torch.empty(0, dim, dtype=torch.float32)
    sorted_emb = torch.cat(chunks)
    out = torch.empty_like(sorted_emb)
    out[torch.tensor(order)] = sorted_emb
    return out


@torch.inference_mode()
def exact_search(
    query_emb: torch.Tensor,
    doc_emb: torch.Tensor,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int,
    batch_size: int = 256,
) -> Run:
    """Exact top-``k`` by dot product (no ANN, so dense recall is never an index artefact).

    Queries are scored in batches of ``batch_size`` to bound the ``[batch, n_docs]`` score
    matrix; ``k`` is capped at the corpus size.
    """
    if query_emb.shape[0] != len(query_ids) or doc_emb.shape[0] != len(doc_ids):
        raise ValueError("embedding rows must match the number of ids")
    k = min(k, len(doc_ids))
    if k <= 0:
        return {qid: [] for qid in query_ids}
    doc_emb = doc_emb.float()
    rows = np.empty((len(query_ids), k), dtype=np.int32)
    scores = np.empty((len(query_ids), k), dtype=np.float32)
    for start in range(0, len(query_ids), batch_size):
        q = query_emb[start : start + batch_size].to(doc_emb.device, torch.float32)
        top_scores, top_rows = torch.topk(q @ doc_emb.T, k, dim=1)
        rows[start : start + len(q)] = top_rows.cpu().numpy()
        scores[start : start + len(q)] = top_scores.float().cpu().numpy()
    return TopKRun(query_ids, doc_ids, rows, scores)


@torch.inference_mode()
def pair_scores(query_emb: torch.Tensor, doc_emb: torch.Tensor, query_rows: Sequence[int], doc_rows: Sequence[int],
                chunk: int = 65_536) -> np.ndarray:
    """``<q, d>`` for each (query row, doc row) pair, ``chunk`` pairs at a time: memory stays bounded however many
    pairs are mined (stacking one embedding per pair would hold two [pairs, dim] matrices)."""
    out = np.empty(len(query_rows), dtype=np.float32)
    q_rows = torch.from_numpy(np.asarray(query_rows, dtype=np.int64))   # arrays in: no Python int per pair
    d_rows = torch.from_numpy(np.asarray(doc_rows, dtype=np.int64))
    for start in range(0, len(out), chunk):
        q, d = q_rows[start:start + chunk], d_rows[start:start + chunk]
        out[start:start + chunk] = (query_emb[q] * doc_emb[d]).sum(-1).numpy()
    return out
