"""Lexical first stage: BM25 via ``bm25s`` (sparse, precomputed-score index).

Defaults follow BEIR/Anserini (Lucene scoring, k1=0.9, b=0.4, English Snowball stemming,
English stopwords) so numbers are comparable with published BM25 baselines.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence

import bm25s
import numpy as np
import pandas as pd
from bm25s.tokenization import Tokenized, Tokenizer

from crossdistill.common.codes import factorize, positions_in
from crossdistill.data.corpus import Corpus
from crossdistill.retrieval.topk import TopKRun
from crossdistill.types import Run

# Below this many queries the thread pool costs more than it saves.
_PARALLEL_MIN_QUERIES = 256


class BM25Retriever:
    """BM25 over an in-memory corpus; ``index`` once, then ``search`` any number of times."""

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        method: str = "lucene",
        stemmer: str | None = "english",
        stopwords: str | None = "en",
        backend: str = "numpy",
        show_progress: bool = False,
    ):
        if backend not in ("numpy", "numba"):
            raise ValueError(f"bm25.backend must be numpy or numba, not {backend!r}")
        self.k1, self.b, self.method, self.backend = k1, b, method, backend
        self.stemmer_name, self.stopwords = stemmer, stopwords
        self.show_progress = show_progress
        self._doc_ids: np.ndarray | None = None
        self._docid_rank: np.ndarray | None = None   # each document's place in docid order (ties break by docid)
        self._model: bm25s.BM25 | None = None
        self._tokenizer: Tokenizer | None = None
        self._row_of: pd.Index | None = None   # docid -> index row, built on first use

    def _new_tokenizer(self) -> Tokenizer:
        stemmer = None
        if self.stemmer_name:
            import Stemmer  # PyStemmer; its stemWord is what bm25s calls per new word

            stemmer = Stemmer.Stemmer(self.stemmer_name)
        return Tokenizer(lower=True, stopwords=self.stopwords, stemmer=stemmer)

    def __getstate__(self) -> dict:
        """Picklable (DDP spawn sends the evaluator, and with it the ensemble's BM25 member, to its workers):
        PyStemmer's C object is dropped and made anew on unpickling; the vocabulary and index travel as they are."""
        state = dict(self.__dict__)
        if self._tokenizer is not None:
            tokenizer = copy.copy(self._tokenizer)
            tokenizer.stemmer = None
            state["_tokenizer"] = tokenizer
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._tokenizer is not None and self.stemmer_name:
            import Stemmer

            self._tokenizer.stemmer = Stemmer.Stemmer(self.stemmer_name).stemWord

    def index(self, doc_ids: Sequence[str], texts: Sequence[str] | Corpus) -> "BM25Retriever":
        """Tokenise (building the vocabulary) and index the corpus; returns self for chaining. A :class:`Corpus` is
        read a block of rows at a time, so its texts are never all held as Python strings."""
        if len(doc_ids) != len(texts):
            raise ValueError(f"{len(doc_ids)} doc ids but {len(texts)} texts")
        if len(doc_ids) == 0:
            raise ValueError("cannot index an empty corpus")
        self._tokenizer = self._new_tokenizer()
        # update_vocab=True also registers the empty token "", which queries with no known
        # token fall back to: it matches no document, so those queries score 0 everywhere.
        ids: list[list[int]] = []
        for block in (texts.blocks() if isinstance(texts, Corpus) else [list(texts)]):
            ids += self._tokenizer.tokenize(block, update_vocab=True, return_as="ids", show_progress=False)
        tokens = Tokenized(ids=ids, vocab=self._tokenizer.get_vocab_dict())
        self._model = bm25s.BM25(k1=self.k1, b=self.b, method=self.method, backend=self.backend)
        self._model.index(tokens, show_progress=self.show_progress)
        self._doc_ids = np.asarray(list(doc_ids), dtype=object)
        self._row_of = None
        self._docid_rank = np.empty(len(self._doc_ids), dtype=np.int32)
        self._docid_rank[np.argsort(self._doc_ids, kind="stable")] = np.arange(len(self._doc_ids), dtype=np.int32)
        self._postings_sorted = _postings_sorted(self._model.scores)
        return self

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        """Top-``k`` documents per query, best first.

        ``k`` is capped at the corpus size. Documents with score 0 (no query term in common)
        are dropped, so a query with only OOV/stopword tokens gets an empty list instead of
        arbitrary zero-score documents that would pollute a fused shortlist. Ties are broken
        by docid for determinism.
        """
        if self._model is None:
            raise RuntimeError("call index() before search()")
        if not queries or k <= 0:
            return {qid: [] for qid in queries}
        qids = list(queries)
        k = min(k, len(self._doc_ids))
        # update_vocab=False adds no new stems, but still maps unseen surface forms whose stem
        # is known ("runs" -> "run"); "never" would silently drop them and break stemming.
        q_tokens = self._tokenizer.tokenize([queries[q] for q in qids], update_vocab=False, return_as="ids", show_progress=False)
        n_threads = 0 if len(qids) < _PARALLEL_MIN_QUERIES else min(4, os.cpu_count() or 1)
        idx, scores = self._model.retrieve(q_tokens, k=k, sorted=True, show_progress=self.show_progress, n_threads=n_threads)
        idx, scores = np.asarray(idx), np.asarray(scores, dtype=np.float32)
        # Best first, ties by docid; documents scoring 0 sort last and are cut off by the per-query counts.
        order = np.lexsort((self._docid_rank[idx], -scores), axis=1)
        idx, scores = np.take_along_axis(idx, order, axis=1), np.take_along_axis(scores, order, axis=1)
        return TopKRun(qids, self._doc_ids, idx, scores, counts=(scores > 0).sum(axis=1))

    def score_pairs(self, queries: Mapping[str, str], qids: Sequence[str], docids: Sequence[str]) -> np.ndarray:
        """BM25 score of each (qids[i], docids[i]) pair, also for documents outside any top-k (0 = no shared term).

        Each query term's postings (sorted document rows) are looked up for just the query's paired documents,
        so neither time nor memory grows with the corpus size per pair (no full score vector per query). The
        pairs arrive as two columns and leave as one float64 array: millions of mined pairs make no Python tuples.
        """
        if self._model is None:
            raise RuntimeError("call index() before score_pairs()")
        if len(qids) != len(docids):
            raise ValueError(f"{len(qids)} qids but {len(docids)} docids")
        rows = self.doc_rows(docids)
        if len(rows) == 0:
            return np.zeros(0, dtype=np.float64)
        codes, unique = factorize(qids)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(unique) + 1))
        tokens = self._tokenizer.tokenize([queries[q] for q in unique], update_vocab=False, return_as="ids",
                                          show_progress=False)
        out = np.zeros(len(rows), dtype=np.float32)
        for j, ids in enumerate(tokens):
            positions = order[bounds[j]:bounds[j + 1]]
            out[positions] = self._pair_scores(ids, rows[positions])
        return out.astype(np.float64)

    def doc_rows(self, docids: Sequence[str]) -> np.ndarray:
        """The index rows of ``docids`` (a KeyError names the first one the index does not hold)."""
        if getattr(self, "_row_of", None) is None:   # (an index pickled before this attribute existed)
            self._row_of = pd.Index(self._doc_ids)
        return positions_in(self._row_of, docids, "BM25 index")

    def _pair_scores(self, token_ids: Sequence[int], doc_rows: np.ndarray) -> np.ndarray:
        """Sum over the query's terms (repeats count again, as in ``get_scores``) of each document's term score."""
        if not self._postings_sorted:
            return self._model.get_scores(list(token_ids))[doc_rows]
        data, indices, indptr = (self._model.scores[k] for k in ("data", "indices", "indptr"))
        total = np.zeros(len(doc_rows), dtype=np.float32)
        for t in token_ids:
            start, end = indptr[t], indptr[t + 1]
            postings = indices[start:end]
            at = np.searchsorted(postings, doc_rows)
            found = at < len(postings)
            found[found] = postings[at[found]] == doc_rows[found]
            total[found] += data[start + at[found]]
        return total


def _postings_sorted(scores: Mapping[str, np.ndarray]) -> bool:
    """Whether every term's postings list holds strictly increasing document rows (a canonical CSC matrix)."""
    indices, indptr = scores["indices"], scores["indptr"]
    if len(indices) < 2:
        return True
    rising = np.diff(indices.astype(np.int64)) > 0
    rising[indptr[1:-1][(indptr[1:-1] > 0) & (indptr[1:-1] < len(indices))] - 1] = True   # term boundaries
    return bool(rising.all())
