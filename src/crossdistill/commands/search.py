"""Search an exported run's corpus: the student on ONNX (or PyTorch) over every document, the express lane over its
top k, and each hit's score trace (student rank and score, each member's score, the express lane's score and rank).

    crossdistill search outputs/2026-12-06/10-00-00 "statins and heart disease" --k 10 --backend onnx-int8
"""
import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from crossdistill.serving.search import BACKENDS, Searcher


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run folder (student/, teacher/, express_lane.json, results.json)")
    p.add_argument("query", nargs="+", help="one or more queries")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--backend", choices=list(BACKENDS), default="onnx")
    p.add_argument("--no-rerank", action="store_true", help="the student alone, no express lane")
    args = p.parse_args(argv)
    try:
        searcher = Searcher.load(args.run, backend=args.backend, rerank=not args.no_rerank)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    console = Console(width=max(Console().width, 120))
    for query in args.query:
        start = time.perf_counter()
        trace = searcher.trace(query, args.k)
        took = (time.perf_counter() - start) * 1000
        table = Table(title=f"{query!r}: {took:.1f} ms ({args.backend}"
                            f"{'' if searcher.lane is None else ', express lane over the top ' + str(searcher.lane.rerank_depth)})")
        labels = {"student_rank": "student #", "student_score": "student", "express_lane_rank": "lane #",
                  "express_lane_score": "lane"}
        for column in trace.columns:   # the members' raw scores under their names
            table.add_column(labels.get(column, column.removeprefix("member_")),
                             justify="left" if column == "docid" else "right")
        for row in trace.itertuples(index=False):
            table.add_row(*(v if isinstance(v, str) else "" if v is None or v != v else
                            f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)
    return 0
