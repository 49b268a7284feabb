"""First stages: what puts a document on a query's shortlist. One class per kind, each listed with ``_target_`` in
``configs/first_stages/*.yaml``; a miner is ``{first_stage, depth}`` (mining/miners.py). A new kind is one subclass
of :class:`FirstStage` and one yaml file.

A first stage ranks the queries of a :class:`SearchScope` (``search``), gives its shortlists with the reason each
candidate entered (``shortlists``: its origin and rank), scores given pairs where it can (``score_pairs``), and says
what a cached artifact's key must record of it (``identity``)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossdistill.retrieval.fusion import ShortlistTable, reciprocal_rank_fusion, shortlist_columns, shortlist_from_run
from crossdistill.retrieval.run_file import read_trec_run, run_for_queries
from crossdistill.retrieval.topk import TopKRun
from crossdistill.types import Run, Shortlists

if TYPE_CHECKING:
    from crossdistill.retrieval.bm25 import BM25Retriever


def shortlist_of(run: Run, origin: str, depth: int) -> Shortlists | ShortlistTable:
    """A single first stage's shortlists: as columns when the run is held as arrays (millions of pairs), else as
    candidate lists."""
    return shortlist_columns(run, origin, depth) if isinstance(run, TopKRun) else shortlist_from_run(run, origin, depth)


@dataclass
class SearchScope:
    """What first stages search with for one query set: its queries, BM25 over the documents training reads and BM25's
    run of these queries (made once per query set), and the current student's run (``dense``: made on first use)."""

    queries: Mapping[str, str]
    bm25_run: Run
    dense: Callable[[], Run]
    bm25: BM25Retriever | None = None

    @cached_property
    def dense_run(self) -> Run:
        return self.dense()


class FirstStage:
    """``name``: the stage's name in records and cache keys; ``origin``: the reason its candidates carry."""

    name = origin = ""

    def search(self, scope: SearchScope) -> Run:
        raise NotImplementedError

    def shortlists(self, scope: SearchScope, depth: int) -> Shortlists | ShortlistTable:
        return shortlist_of(self.search(scope), self.origin, depth)

    def score_pairs(self, scope: SearchScope, qids: Sequence[str], docids: Sequence[str]) -> np.ndarray:
        """This stage's score of each (qid, docid) pair: where it has none, the pair's score in its own run (NaN
        for pairs the run does not hold)."""
        held = {q: dict(hits) for q, hits in self.search(scope).items()}
        return np.fromiter((held.get(q, {}).get(d, np.nan) for q, d in zip(qids, docids)), np.float64, len(qids))

    def identity(self) -> dict:
        """What a mined artifact's key records of this stage beside its name and the miner's depth."""
        return {}


class BM25FirstStage(FirstStage):
    """Lexical: cheap, and it finds the term-overlap negatives a dense student confuses."""

    name = origin = "bm25"

    def search(self, scope: SearchScope) -> Run:
        return scope.bm25_run

    def score_pairs(self, scope: SearchScope, qids: Sequence[str], docids: Sequence[str]) -> np.ndarray:
        return scope.bm25.score_pairs(scope.queries, qids, docids)


class DenseFirstStage(FirstStage):
    """The student's own top-k over the whole corpus: its current mistakes are the negatives it most needs to see."""

    name, origin = "dense", "dense"

    def search(self, scope: SearchScope) -> Run:
        return scope.dense_run


class FusedFirstStage(FirstStage):
    """Reciprocal-rank fusion of BM25 and the student (Cormack et al., 2009): more recall in the same shortlist
    budget; each candidate's origin says which of the two (or both) held it."""

    name = "hybrid"

    def __init__(self, rrf_k: int = 60):
        self.rrf_k = rrf_k

    def search(self, scope: SearchScope) -> Run:
        fused = reciprocal_rank_fusion(scope.bm25_run, scope.dense_run, 10**9, self.rrf_k)
        return {q: [(c.docid, c.score) for c in cands] for q, cands in fused.items()}

    def shortlists(self, scope: SearchScope, depth: int) -> Shortlists:
        return reciprocal_rank_fusion(scope.bm25_run, scope.dense_run, depth, self.rrf_k)

    def identity(self) -> dict:
        return {"rrf_k": self.rrf_k}


class RunFileFirstStage(FirstStage):
    """The user's own first stage: each query's top documents from a TREC run file (Pyserini BM25, SPLADE, ...). The
    query set is the one BM25's run covers; a query the file lacks gets an empty shortlist (its judged positives are
    still scored)."""

    name, origin = "run_file", "run"

    def __init__(self, path: str):
        self.path = path

    @cached_property
    def run(self) -> Run:
        return read_trec_run(self.path)

    def search(self, scope: SearchScope) -> Run:
        return run_for_queries(self.run, scope.bm25_run)

    def identity(self) -> dict:
        """The file's content, not just its name."""
        return {"sha256": hashlib.sha256(Path(self.path).read_bytes()).hexdigest()}
