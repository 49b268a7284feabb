"""Serving an exported run: the student on the fastest faithful backend, the corpus's embeddings searched whole
(FAISS when installed, exact otherwise), and the express lane (express_lane.json) over the student's top k. Every
hit carries its score trace: the student's rank and score, each express-lane member's raw score, and the express
lane's score and rank.

    searcher = Searcher.load("outputs/2026-12-06/10-00-00")
    for hit in searcher.search("statins and heart disease", k=10):
        print(hit.rank, hit.docid, hit.student_rank, hit.score, hit.members)
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from crossdistill.common.io import atomic_path
from crossdistill.configs.resolvers import user_cache
from crossdistill.data.corpus import Corpus
from crossdistill.models.onnx_models import OnnxBiEncoder, OnnxCrossEncoder
from crossdistill.retrieval.corpus_embeddings import CorpusEmbeddings
from crossdistill.teacher.express_lane import ExpressLaneSpec
from crossdistill.teacher.members import MemberScope

# backend -> (the exported folders' file, the runtime that runs it); torch: the SentenceTransformer folder itself
BACKENDS = {"onnx": ("model.onnx", "onnxruntime"), "onnx-int8": ("model_qint8.onnx", "onnxruntime"),
            "openvino": ("model.onnx", "openvino"), "torch": None}
QID = "query"


@dataclass
class Hit:
    """One document of a query's result, with its score trace."""

    docid: str
    rank: int
    score: float                       # what ranks it: the express lane's score in its top k, else the student's
    student_rank: int
    student_score: float
    express_lane_rank: int | None = None
    express_lane_score: float | None = None
    members: dict[str, float] = field(default_factory=dict)   # each express-lane member's raw score


class TorchBiEncoder:
    """A SentenceTransformer folder in PyTorch fp32, with the ONNX wrappers' ``encode``."""

    def __init__(self, folder: Path):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device="cpu")

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)


class OnnxLogits:
    """The cross-encoder member's logits from ONNX Runtime, for the query being served (``CrossEncoderScores``'s
    ``scores``)."""

    def __init__(self, model: OnnxCrossEncoder, docs: Corpus):
        self.model, self.docs, self.queries = model, docs, {}

    def scores(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        texts = self.docs.many(d for _, d in pairs)
        logits = self.model.predict([(self.queries[q], t) for (q, _), t in zip(pairs, texts)])
        return dict(zip(pairs, logits.astype(float)))


def run_corpus(run: Path) -> Corpus:
    """The corpus the run was trained and evaluated on, loaded as the run loaded it (its results.json config)."""
    config = json.loads((run / "results.json").read_text())["config"]
    return instantiate(OmegaConf.create(config["data"])).load(Path(user_cache()) / "data").doc_text


class Searcher:
    """``Searcher.load(run)``; ``search(query, k)``. ``backend``: onnx (fp32), onnx-int8, openvino (fp32, the
    openvino extra) or torch (fp32)."""

    def __init__(self, student, docs: Corpus, doc_emb: np.ndarray, lane: ExpressLaneSpec | None = None,
                 ensemble=None, scorers: dict | None = None, logits: OnnxLogits | None = None):
        self.student, self.docs, self.doc_ids, self.lane, self.ensemble = student, docs, list(docs.ids), lane, ensemble
        self.scorers, self.logits = scorers or {}, logits
        self.index = _index(doc_emb)

    @classmethod
    def load(cls, run: str | Path, backend: str = "onnx", rerank: bool = True, corpus: Corpus | None = None,
             threads: int | None = None) -> Searcher:
        run = Path(run)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        docs = corpus if corpus is not None else run_corpus(run)
        student = TorchBiEncoder(run / "student") if backend == "torch" else \
            OnnxBiEncoder(run / "student", BACKENDS[backend][0], threads=threads, runtime=BACKENDS[backend][1])
        doc_emb = _corpus_embeddings(run, backend, student, docs)
        if not rerank or not (run / "express_lane.json").exists():
            return cls(student, docs, doc_emb)
        lane = ExpressLaneSpec.load(run)
        file, runtime = BACKENDS[backend] or BACKENDS["onnx"]
        logits = OnnxLogits(OnnxCrossEncoder(lane.folder(run, "cross_encoder"), file, threads=threads, runtime=runtime),
                            docs)
        bm25 = instantiate(lane.bm25).index(list(docs.ids), docs) if "bm25" in lane.members else None
        scope = MemberScope(CorpusEmbeddings(docs, precision="32", cache_dir=run / "serving"), logits, bm25,
                            lane.zero_shot, lane.normalize)
        ensemble = lane.ensemble()   # its members instantiated once: their scorers here, their columns in search
        return cls(student, docs, doc_emb, lane, ensemble, {m: ensemble.catalog[m].scorer(scope) for m in lane.members},
                   logits)

    def _student(self, query: str, k: int) -> tuple[list[str], np.ndarray]:
        q = self.student.encode([query]).astype(np.float32)
        scores, rows = self.index(q, k)
        return [self.doc_ids[r] for r in rows], scores

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The student's top ``max(k, rerank depth)`` over the whole corpus; the express lane reorders its top
        ``rerank_depth``; the first ``k`` hits, each with its trace."""
        depth = max(k, self.lane.rerank_depth if self.lane else 0)
        docids, scores = self._student(query, depth)
        hits = [Hit(d, i + 1, float(s), i + 1, float(s)) for i, (d, s) in enumerate(zip(docids, scores))]
        if self.lane is None:
            return hits[:k]
        head = hits[: self.lane.rerank_depth]
        frame = self._members(query, head)
        combined = self.ensemble.combine(frame).to_numpy(float)
        order = np.argsort(-combined, kind="stable")
        for rank, i in enumerate(order, start=1):
            hit = head[i]
            hit.express_lane_rank, hit.express_lane_score, hit.score = rank, float(combined[i]), float(combined[i])
            hit.members = {m: float(frame[self.ensemble.column(m)].iloc[i]) for m in self.ensemble.members}
        reranked = [head[i] for i in order] + hits[self.lane.rerank_depth:]
        for rank, hit in enumerate(reranked, start=1):
            hit.rank = rank
        return reranked[:k]

    def _members(self, query: str, head: list[Hit]) -> pd.DataFrame:
        """Each member's raw score of the query's top documents (the ``student`` member: the student's own)."""
        queries, qids, docids = {QID: query}, [QID] * len(head), [h.docid for h in head]
        if self.logits is not None:
            self.logits.queries = queries
        own = {h.docid: h.student_score for h in head}
        student = lambda _q, _qids, ids: np.array([own[d] for d in ids])   # noqa: E731
        frame = pd.DataFrame({"qid": qids, "docid": docids})
        for member in self.ensemble.members:
            frame[self.ensemble.column(member)] = self.scorers[member](queries, qids, docids, student)
        return frame

    def trace(self, query: str, k: int = 10) -> pd.DataFrame:
        """``search`` as a table: one row per hit, one column per trace field (members as ``member_<name>``)."""
        rows = [{**{f: getattr(h, f) for f in ("rank", "docid", "score", "student_rank", "student_score",
                                               "express_lane_rank", "express_lane_score")},
                 **{f"member_{m}": v for m, v in h.members.items()}} for h in self.search(query, k)]
        return pd.DataFrame(rows)


def _index(doc_emb: np.ndarray):
    """Inner-product search over every document: FAISS's flat index when installed, else a matrix product."""
    try:
        import faiss
    except ImportError:
        emb = torch.from_numpy(doc_emb)

        def search(q: np.ndarray, k: int):
            top = torch.topk(torch.from_numpy(q) @ emb.T, min(k, len(emb)), dim=1)
            return top.values[0].numpy(), top.indices[0].tolist()
        return search
    index = faiss.IndexFlatIP(doc_emb.shape[1])
    index.add(np.ascontiguousarray(doc_emb, dtype=np.float32))

    def search(q: np.ndarray, k: int):
        scores, rows = index.search(q, min(k, index.ntotal))
        return scores[0], rows[0].tolist()
    return search


def _corpus_embeddings(run: Path, backend: str, student, docs: Corpus) -> np.ndarray:
    """The corpus encoded by the served student, kept in ``<run>/serving/`` for the next load."""
    path = run / "serving" / f"corpus-{backend}-{len(docs)}.npy"
    if path.exists():
        return np.load(path)
    emb = student.encode(docs.texts(range(len(docs)))).astype(np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, emb)
    return emb
