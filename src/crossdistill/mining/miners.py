"""First-stage miners: which candidates each training query's shortlist holds, and why each one entered it."""
from __future__ import annotations

from dataclasses import dataclass

from crossdistill.retrieval.fusion import Run, Shortlists, reciprocal_rank_fusion, shortlist_from_run


@dataclass
class BM25Miner:
    """Lexical shortlist: cheap, and it finds the term-overlap negatives a dense student confuses."""

    depth: int = 20
    needs_dense = False
    name = "bm25"

    def shortlists(self, bm25: Run, dense: Run | None = None) -> Shortlists:
        return shortlist_from_run(bm25, "bm25", self.depth)


@dataclass
class DenseMiner:
    """The student's own top-k: its current mistakes are the negatives it most needs to see."""

    depth: int = 20
    needs_dense = True
    name = "dense"

    def shortlists(self, bm25: Run | None, dense: Run) -> Shortlists:
        return shortlist_from_run(dense, "dense", self.depth)


@dataclass
class HybridMiner:
    """Reciprocal-rank fusion of both: more recall in the same shortlist budget."""

    depth: int = 20
    rrf_k: int = 60
    needs_dense = True
    name = "hybrid"

    def shortlists(self, bm25: Run, dense: Run) -> Shortlists:
        return reciprocal_rank_fusion(bm25, dense, self.depth, self.rrf_k)
