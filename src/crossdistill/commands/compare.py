"""Compare the distilled students of two runs query by query (nDCG@10 on dev and test, paired randomization test).

    crossdistill compare outputs/benchmark_quality/strong_teacher outputs/benchmark_quality/strong_teacher_pairs8
"""
import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from crossdistill.evaluation.compare import compare_runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path, help="the reference run directory")
    p.add_argument("run_b", type=Path, help="the run compared against it")
    p.add_argument("--splits", default="dev,test")
    p.add_argument("--samples", type=int, default=20_000, help="random sign patterns (exact for <= 16 queries)")
    args = p.parse_args(argv)
    try:
        rows = compare_runs(args.run_a, args.run_b, args.splits.split(","), samples=args.samples)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    table = Table(title=f"nDCG@10: B = {args.run_b}  vs  A = {args.run_a}")
    for col in ("split", "queries", "A", "B", "B - A", "p (paired)", "B better", "B worse"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for c in rows:
        table.add_row(c.split, str(c.queries), f"{c.mean_a:.3f}", f"{c.mean_b:.3f}", f"{c.difference:+.3f}",
                      f"{c.p_value:.3f}", str(c.wins), str(c.losses))
    Console().print(table)
    return 0


