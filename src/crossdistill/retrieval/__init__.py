"""First-stage retrieval: BM25, exact dense search, and candidate shortlists (incl. RRF hybrid)."""

from .bm25 import BM25Retriever, Run
from .dense import encode, exact_search
from .fusion import Candidate, Shortlists, reciprocal_rank_fusion, shortlist_from_run

__all__ = [
    "BM25Retriever",
    "Candidate",
    "Run",
    "Shortlists",
    "encode",
    "exact_search",
    "reciprocal_rank_fusion",
    "shortlist_from_run",
]
