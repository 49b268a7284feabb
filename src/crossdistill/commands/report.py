"""Write the Markdown report (with plots) for a finished or interrupted run directory."""

import argparse
import sys
from pathlib import Path

from crossdistill.evaluation.report import write_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=None, help="report path (default: RUN_DIR/report/report.md)")
    args = p.parse_args(argv)
    try:
        path = write_report(args.run_dir, args.out)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


