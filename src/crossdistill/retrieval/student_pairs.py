"""The scores of the student whose shortlists are reranked (the ensemble member ``student``): its cosines of
(query, document) pairs, from its run, its corpus embeddings, or encoded now."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from crossdistill.common.codes import factorize, mapped
from crossdistill.retrieval.corpus_embeddings import CorpusEmbeddings
from crossdistill.retrieval.dense import pair_scores


class StudentPairs:
    """The cosines of the student whose shortlists are scored, taken from its ``run`` where the run holds the pair,
    else from ``corpus_emb`` (its embeddings of the whole corpus, when at hand), else from the missing documents
    encoded now with ``encoder`` (never the whole corpus: it may hold millions)."""

    def __init__(self, encoder, embeddings: CorpusEmbeddings, run=None, corpus_emb: torch.Tensor | None = None):
        self.encoder, self.embeddings, self.run, self.corpus_emb = encoder, embeddings, run or {}, corpus_emb

    def __call__(self, queries: Mapping[str, str], qids: Sequence[str], docids: Sequence[str]) -> np.ndarray:
        qids, docids = list(qids), list(docids)
        held = {q: dict(self.run[q]) for q in set(qids) if q in self.run}
        out = np.fromiter((held.get(q, {}).get(d, np.nan) for q, d in zip(qids, docids)), np.float64, len(qids))
        missing = np.flatnonzero(np.isnan(out))
        if len(missing):
            codes, distinct = factorize([qids[i] for i in missing])
            q_emb = self.embeddings.queries(self.encoder, [queries[q] for q in distinct])
            rows = mapped(self.embeddings.docs.rows, [docids[i] for i in missing])
            if self.corpus_emb is not None:
                doc_emb, doc_rows = self.corpus_emb, rows
            else:
                distinct_rows, doc_rows = np.unique(rows, return_inverse=True)
                doc_emb = self.embeddings.rows(self.encoder, distinct_rows.tolist())
            out[missing] = pair_scores(q_emb, doc_emb, codes, doc_rows)
        return out
