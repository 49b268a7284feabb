"""A first stage of the user's own: a TREC run file (``qid Q0 docid rank score tag``), from Pyserini's BM25, a
SPLADE index or any other system, read strictly so a bad line stops the run with its file and line number."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from crossdistill.data.beir import DataError
from crossdistill.types import Run


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run; each query's list is sorted by score desc, ties by file rank."""
    rows: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    if not Path(path).is_file():
        raise DataError(path, "run file does not exist")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataError(path, f"expected 6 fields (qid Q0 docid rank score tag), got {len(parts)}", lineno)
            qid, _, doc, rank, score, _ = parts
            try:
                rows[qid].append((-float(score), int(rank), doc))
            except ValueError:
                raise DataError(path, f"rank must be an integer and score a number, got {rank!r} {score!r}",
                                lineno) from None
    return {qid: [(doc, -neg) for neg, _, doc in sorted(r)] for qid, r in rows.items()}


def run_for_queries(run: Run, qids) -> Run:
    """``run`` restricted to ``qids``, in their order; a query the run lacks gets an empty list."""
    return {qid: list(run.get(qid, ())) for qid in qids}
