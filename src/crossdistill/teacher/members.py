"""The scorers behind a teacher ensemble's members other than the cross-encoder: each maps (queries, qids,
docids) -> one score per pair. Frozen bi-encoders score by cosine with corpus embeddings cached on disk by their
weights' content key (the zero-shot student's are the ones its baseline evaluation already made)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from crossdistill.common.codes import factorize, mapped
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.retrieval.dense import pair_scores

Scorer = Callable[[Mapping[str, str], Sequence[str], Sequence[str]], np.ndarray]


class FrozenBiEncoder:
    """Cosine of a frozen bi-encoder's query and document embeddings; query embeddings are kept by text."""

    def __init__(self, encoder, evaluator):
        self.encoder, self.evaluator = encoder.eval(), evaluator
        self.corpus_emb = evaluator.encode_corpus(encoder, persist=True)
        self.rows: dict[str, int] = {}
        self.query_emb = torch.empty(0, self.corpus_emb.shape[1])

    def _embed(self, texts: Sequence[str]) -> None:
        new = sorted({t for t in texts if t not in self.rows})
        if new:
            emb = self.evaluator.encode_query_texts(self.encoder, new)
            self.rows.update({t: len(self.rows) + i for i, t in enumerate(new)})
            self.query_emb = torch.cat([self.query_emb, emb])

    def __call__(self, queries: Mapping[str, str], qids: Sequence[str], docids: Sequence[str]) -> np.ndarray:
        codes, distinct = factorize(qids)   # each distinct query once: millions of pairs, no string per pair
        texts = [queries[q] for q in distinct]
        self._embed(texts)
        query_rows = np.fromiter((self.rows[t] for t in texts), np.int64, len(texts))[codes]
        return pair_scores(self.query_emb, self.corpus_emb, query_rows,
                           mapped(self.evaluator.doc_index, docids)).astype(np.float64)


class BM25Pairs:
    """BM25 scores of (qid, docid) pairs from the run's index (a class, not a closure: DDP spawn pickles it)."""

    def __init__(self, bm25):
        self.bm25 = bm25

    def __call__(self, queries: Mapping[str, str], qids: Sequence[str], docids: Sequence[str]) -> np.ndarray:
        return self.bm25.score_pairs(queries, qids, docids)


def build_scorers(ensemble, bm25, evaluator, student_cfg, members=None) -> dict[str, Scorer]:
    """A scorer per member (``ensemble``'s, or ``members``) the cross-encoder is not (its logits come from the
    evaluator's cache or mining), nor the student (its scores come with the shortlists they rerank:
    evaluation/student_pairs.py)."""
    scorers: dict[str, Scorer] = {}
    for member in members if members is not None else ensemble.members:
        if member == "bm25":
            scorers[member] = BM25Pairs(bm25)
        elif member == "zero_shot":   # the student's starting weights, loaded afresh: never the student in training
            scorers[member] = FrozenBiEncoder(load_bi_encoder(student_cfg.model, student_cfg.normalize), evaluator)
        elif member not in ("cross_encoder", "student"):
            scorers[member] = FrozenBiEncoder(load_bi_encoder(ensemble.bi_encoders[member], True), evaluator)
    return scorers
