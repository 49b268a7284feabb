"""A first stage's top-k lists held as two arrays instead of Python tuples.

A :data:`~crossdistill.types.Run` for 100,000 mined queries at depth 100 is ten million ``(docid, score)`` tuples,
1-2 GB of Python objects; as ``int32`` document rows and ``float32`` scores it is 80 MB. :class:`TopKRun` is a
read-only ``Mapping`` qid -> ``[(docid, score)]`` that builds one query's list when it is asked for, so every
consumer of a Run reads it unchanged.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np


class TopKRun(Mapping):
    """``rows[i, :counts[i]]`` are query ``query_ids[i]``'s documents (rows of ``doc_ids``), best first, with
    ``scores[i, :counts[i]]``. ``doc_ids`` is shared, not copied. Scores come back as Python floats of the stored
    ``float32`` values (what BM25, FAISS and a float32 matmul produce)."""

    def __init__(self, query_ids: Sequence[str], doc_ids: Sequence[str] | np.ndarray, rows: np.ndarray,
                 scores: np.ndarray, counts: np.ndarray | None = None):
        rows, scores = np.asarray(rows), np.asarray(scores)
        if rows.shape != scores.shape or rows.ndim != 2 or rows.shape[0] != len(query_ids):
            raise ValueError(f"rows {rows.shape} and scores {scores.shape} must be [queries={len(query_ids)}, k]")
        self.query_ids = list(query_ids)
        self._position = {q: i for i, q in enumerate(self.query_ids)}
        if len(self._position) != len(self.query_ids):
            raise ValueError("query ids repeat")
        self.doc_ids = doc_ids if isinstance(doc_ids, np.ndarray) else np.asarray(list(doc_ids), dtype=object)
        self.rows = rows.astype(np.int32, copy=False)
        self.scores = scores.astype(np.float32, copy=False)
        self.counts = (np.full(len(self.query_ids), rows.shape[1], dtype=np.int32) if counts is None
                       else np.asarray(counts, dtype=np.int32))

    def __getitem__(self, qid: str) -> list[tuple[str, float]]:
        i = self._position[qid]
        n = int(self.counts[i])
        return list(zip(self.doc_ids[self.rows[i, :n]].tolist(), self.scores[i, :n].tolist()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.query_ids)

    def __len__(self) -> int:
        return len(self.query_ids)

    def __repr__(self) -> str:
        return f"TopKRun({len(self)} queries, k={self.rows.shape[1]})"

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.scores.nbytes + self.counts.nbytes
