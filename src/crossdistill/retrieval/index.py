"""Dense search backends (the config group ``evaluation.index``): exact inner product on the CPU or a GPU, or a
FAISS index (the ``faiss`` extra: ``pip install faiss-cpu``, or faiss-gpu) - flat (exact), HNSW or IVF - for corpora
where exact search is too slow. An approximate index's recall against exact search is measured on the test queries
and recorded (results.json ``evaluation.index``), so an ANN loss is never silent."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from crossdistill.retrieval.dense import exact_search
from crossdistill.retrieval.topk import TopKRun
from crossdistill.types import Run


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ExactSearch:
    """Brute-force top-k by inner product, ``batch_size`` queries at a time; on ``device`` (auto: the GPU when there
    is one, the corpus copied there once per set of embeddings)."""

    approximate = False

    def __init__(self, device: str = "auto", batch_size: int = 256):
        self.device, self.batch_size = device, batch_size
        self._placed: tuple[torch.Tensor, torch.Tensor] | None = None   # (CPU embeddings, their device copy)

    def _on_device(self, doc_emb: torch.Tensor) -> torch.Tensor:
        device = _device(self.device)
        if device.type == "cpu":
            return doc_emb
        if self._placed is None or self._placed[0] is not doc_emb:
            self._placed = (doc_emb, doc_emb.to(device, torch.float32))
        return self._placed[1]

    def search(self, query_emb: torch.Tensor, doc_emb: torch.Tensor, query_ids: Sequence[str],
               doc_ids: Sequence[str], k: int) -> Run:
        return exact_search(query_emb, self._on_device(doc_emb), query_ids, doc_ids, k, self.batch_size)

    def describe(self) -> dict:
        return {"kind": "exact", "device": str(_device(self.device))}


class FaissSearch:
    """A FAISS inner-product index over the corpus embeddings, rebuilt when the embeddings change (each epoch's
    student). ``kind``: flat (exact), hnsw (``hnsw_m`` links, ``ef_search``), ivf (``nlist`` cells, default
    4 sqrt(n), ``nprobe`` searched)."""

    def __init__(self, kind: str = "hnsw", hnsw_m: int = 32, ef_construction: int = 200, ef_search: int = 2048,
                 nlist: int | None = None, nprobe: int = 256, threads: int | None = None):
        if kind not in ("flat", "hnsw", "ivf"):
            raise ValueError(f"evaluation.index.kind must be flat, hnsw or ivf, got {kind!r}")
        try:
            import faiss  # noqa: F401
        except ImportError:
            raise ImportError("evaluation.index=faiss needs the faiss extra: pip install faiss-cpu") from None
        self.kind, self.hnsw_m, self.ef_construction, self.ef_search = kind, hnsw_m, ef_construction, ef_search
        self.nlist, self.nprobe, self.threads = nlist, nprobe, threads
        self.approximate = kind != "flat"
        self._built: tuple[torch.Tensor, object] | None = None   # (the embeddings indexed, the index)

    def _build(self, doc_emb: np.ndarray):
        import faiss

        if self.threads:
            faiss.omp_set_num_threads(self.threads)
        n, dim = doc_emb.shape
        if self.kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction, index.hnsw.efSearch = self.ef_construction, self.ef_search
        else:
            nlist = max(1, min(n, self.nlist or int(4 * math.sqrt(n))))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(doc_emb)
            index.nprobe = min(self.nprobe, nlist)
        index.add(doc_emb)
        return index

    def search(self, query_emb: torch.Tensor, doc_emb: torch.Tensor, query_ids: Sequence[str],
               doc_ids: Sequence[str], k: int) -> Run:
        if query_emb.shape[0] != len(query_ids) or doc_emb.shape[0] != len(doc_ids):
            raise ValueError("embedding rows must match the number of ids")
        if self._built is None or self._built[0] is not doc_emb:
            self._built = (doc_emb, self._build(np.ascontiguousarray(doc_emb.float().numpy())))
        k = min(k, len(doc_ids))
        scores, idx = self._built[1].search(np.ascontiguousarray(query_emb.float().numpy()), k)
        # FAISS pads a query with fewer than k hits with row -1, after its hits.
        return TopKRun(query_ids, doc_ids, np.maximum(idx, 0), scores, counts=(idx >= 0).sum(axis=1))

    def describe(self) -> dict:
        params = {"hnsw": {"hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction, "ef_search": self.ef_search},
                  "ivf": {"nlist": self.nlist, "nprobe": self.nprobe}}.get(self.kind, {})
        return {"kind": f"faiss_{self.kind}", **params}


def recall_against_exact(approximate: Run, exact: Run, k: int) -> float:
    """Mean share of each query's exact top-k that the approximate search also returned in its top k."""
    shares = [len({d for d, _ in approximate.get(q, [])[:k]} & {d for d, _ in hits[:k]}) / max(1, len(hits[:k]))
              for q, hits in exact.items()]
    return sum(shares) / len(shares) if shares else float("nan")
