"""First-stage miners: which candidates each training query's shortlist holds, and why each one entered it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from crossdistill.retrieval.fusion import ShortlistTable, reciprocal_rank_fusion, shortlist_columns, shortlist_from_run
from crossdistill.retrieval.run_file import read_trec_run, run_for_queries
from crossdistill.retrieval.topk import TopKRun
from crossdistill.types import Run, Shortlists


def shortlist_of(run: Run, origin: str, depth: int) -> Shortlists | ShortlistTable:
    """A single first stage's shortlists: as columns when the run is held as arrays (millions of pairs), else as
    candidate lists."""
    return shortlist_columns(run, origin, depth) if isinstance(run, TopKRun) else shortlist_from_run(run, origin, depth)


@dataclass
class BM25Miner:
    """Lexical shortlist: cheap, and it finds the term-overlap negatives a dense student confuses."""

    depth: int = 10
    needs_dense = False
    name = "bm25"

    def shortlists(self, bm25: Run, dense: Run | None = None) -> Shortlists | ShortlistTable:
        return shortlist_of(bm25, "bm25", self.depth)


@dataclass
class DenseMiner:
    """The student's own top-k: its current mistakes are the negatives it most needs to see."""

    depth: int = 10
    needs_dense = True
    name = "dense"

    def shortlists(self, bm25: Run | None, dense: Run) -> Shortlists | ShortlistTable:
        return shortlist_of(dense, "dense", self.depth)


@dataclass
class HybridMiner:
    """Reciprocal-rank fusion of both: more recall in the same shortlist budget."""

    depth: int = 10
    rrf_k: int = 60
    needs_dense = True
    name = "hybrid"

    def shortlists(self, bm25: Run, dense: Run) -> Shortlists:
        return reciprocal_rank_fusion(bm25, dense, self.depth, self.rrf_k)


@dataclass
class RunFileMiner:
    """The user's own first stage: each query's top ``depth`` from a TREC run file (Pyserini BM25, SPLADE, ...).

    The query set is the one the BM25 run every miner receives covers; a query the file lacks gets an empty
    shortlist (its judged positives are still scored).
    """

    path: str
    depth: int = 10
    needs_dense = False
    name = "run_file"

    @cached_property
    def run(self) -> Run:
        return read_trec_run(self.path)

    def cache_identity(self) -> dict:
        """What the mined artifact's key records of this miner: the file's content, not just its name."""
        return {"name": self.name, "depth": self.depth, "sha256": hashlib.sha256(Path(self.path).read_bytes()).hexdigest()}

    def shortlists(self, bm25: Run, dense: Run | None = None) -> Shortlists:
        return shortlist_from_run(run_for_queries(self.run, bm25), "run", self.depth)


def miner_identity(miner) -> dict:
    """The part of a mined artifact's cache key that names its miner."""
    return miner.cache_identity() if hasattr(miner, "cache_identity") else {"name": miner.name, **vars(miner)}
