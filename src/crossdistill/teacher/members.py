"""The members a teacher ensemble combines: one class per kind, listed with ``_target_`` in the ensemble config's
``catalog`` (configs/ensemble/default.yaml). A new kind is one subclass of :class:`Member` and one catalog entry.

A member names the column its raw score has in mining artifacts and member frames, and makes a scorer over one
view of the corpus (a :class:`MemberScope`): a picklable callable ``(queries, qids, docids, student) -> scores``,
one float per pair, where ``student`` is the scorer of the student whose shortlists are scored
(:class:`~crossdistill.retrieval.student_pairs.StudentPairs`). Frozen bi-encoders score by cosine with corpus
embeddings cached on disk by their weights' content key (the zero-shot student's are the ones its baseline
evaluation already made).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from crossdistill.common.codes import factorize, mapped
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.retrieval.dense import pair_scores

if TYPE_CHECKING:
    from crossdistill.retrieval.bm25 import BM25Retriever
    from crossdistill.retrieval.corpus_embeddings import CorpusEmbeddings
    from crossdistill.teacher.cross_encoder_scores import CrossEncoderScores

Scorer = Callable[[Mapping[str, str], Sequence[str], Sequence[str], Any], np.ndarray]


@dataclass
class MemberScope:
    """What members score with over one view of the corpus (an evaluator's): its embeddings (and so its documents),
    the cross-encoder's logits, BM25 over the same documents, and the student's starting weights."""

    embeddings: CorpusEmbeddings
    cross_encoder: CrossEncoderScores | None = None
    bm25: BM25Retriever | None = None
    student_model: str | None = None
    student_normalize: bool = True


class Member:
    """One kind of frozen scorer. ``column``: its raw score's column (default ``<name>_score``, the name being its
    catalog key)."""

    column: str | None = None
    name: str = ""

    def named(self, name: str) -> Member:
        self.name = name
        self.column = self.column or f"{name}_score"
        return self

    def scorer(self, scope: MemberScope) -> Scorer:
        raise NotImplementedError


class FrozenBiEncoder:
    """Cosine of a frozen bi-encoder's query and document embeddings; query embeddings are kept by text."""

    def __init__(self, encoder, embeddings: CorpusEmbeddings):
        self.encoder, self.embeddings = encoder.eval(), embeddings
        self.corpus_emb = embeddings.corpus(encoder, persist=True)
        self.rows: dict[str, int] = {}
        self.query_emb = torch.empty(0, self.corpus_emb.shape[1])

    def _embed(self, texts: Sequence[str]) -> None:
        new = sorted({t for t in texts if t not in self.rows})
        if new:
            emb = self.embeddings.queries(self.encoder, new)
            self.rows.update({t: len(self.rows) + i for i, t in enumerate(new)})
            self.query_emb = torch.cat([self.query_emb, emb])

    def __call__(self, queries: Mapping[str, str], qids: Sequence[str], docids: Sequence[str],
                 student=None) -> np.ndarray:
        codes, distinct = factorize(qids)   # each distinct query once: millions of pairs, no string per pair
        texts = [queries[q] for q in distinct]
        self._embed(texts)
        query_rows = np.fromiter((self.rows[t] for t in texts), np.int64, len(texts))[codes]
        return pair_scores(self.query_emb, self.corpus_emb, query_rows,
                           mapped(self.embeddings.docs.rows, docids)).astype(np.float64)


class CrossEncoderPairs:
    def __init__(self, scores: CrossEncoderScores):
        self.scores = scores

    def __call__(self, queries, qids, docids, student=None) -> np.ndarray:
        pairs = list(zip(qids, docids))
        logits = self.scores.scores(pairs)
        return np.fromiter((logits[p] for p in pairs), np.float64, len(pairs))


class BM25Pairs:
    """BM25 scores of (qid, docid) pairs from the run's index (a class, not a closure: DDP spawn pickles it)."""

    def __init__(self, bm25: BM25Retriever):
        self.bm25 = bm25

    def __call__(self, queries, qids, docids, student=None) -> np.ndarray:
        return self.bm25.score_pairs(queries, qids, docids)


class StudentScores:
    def __call__(self, queries, qids, docids, student=None) -> np.ndarray:
        if student is None:
            raise RuntimeError("the ensemble member `student` scores with the student whose shortlists are "
                               "reranked: pass its scorer (StudentPairs)")
        return student(queries, qids, docids)


class CrossEncoderMember(Member):
    """The cross-encoder trained here (or loaded): its raw logits."""

    column = "ce_score"

    def scorer(self, scope: MemberScope) -> Scorer:
        if scope.cross_encoder is None:
            raise ValueError("the ensemble member cross_encoder needs a cross-encoder")
        return CrossEncoderPairs(scope.cross_encoder)


class BM25Member(Member):
    """BM25 over the same documents."""

    column = "bm25_score"

    def scorer(self, scope: MemberScope) -> Scorer:
        return BM25Pairs(scope.bm25)


class StudentMember(Member):
    """The student whose shortlists are scored: the one that mined the round, or the one evaluated (frozen while
    scored; the weights being trained are never a member). In mining artifacts its cosine is ``dense_score``."""

    column = "dense_score"

    def scorer(self, scope: MemberScope) -> Scorer:
        return StudentScores()


class BiEncoderMember(Member):
    """A frozen bi-encoder (e.g. all-mpnet-base-v2): cosine of its embeddings, the corpus encoded once and cached."""

    def __init__(self, model: str, normalize: bool = True):
        self.model, self.normalize = model, normalize

    def scorer(self, scope: MemberScope) -> Scorer:
        return FrozenBiEncoder(load_bi_encoder(self.model, self.normalize), scope.embeddings)


class ZeroShotMember(Member):
    """The student's starting weights, loaded afresh and frozen: never the student in training."""

    def scorer(self, scope: MemberScope) -> Scorer:
        return FrozenBiEncoder(load_bi_encoder(scope.student_model, scope.student_normalize), scope.embeddings)
