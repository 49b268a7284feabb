"""Show how one query's candidates were ranked by every stage of one evaluation."""

import argparse
import sys
from pathlib import Path

from rich.console import Console

from crossdistill.evaluation.explain import explain, load_query_trace


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", type=Path)
    p.add_argument("qid")
    p.add_argument("--eval", dest="eval_name", default=None, help="trace name (default: test_final, else the last)")
    args = p.parse_args(argv)
    try:  # check first so a bad qid / eval also sets the exit status
        load_query_trace(args.run_dir, args.qid, args.eval_name)
    except LookupError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    # A trace row has a dozen columns: never squeeze it below 150 characters (Rich uses 80 off a terminal).
    console = Console()
    if console.width < 150:
        console = Console(width=150)
    explain(args.run_dir, args.qid, args.eval_name, console=console)
    return 0


