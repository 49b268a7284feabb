"""``crossdistill <command>``: what a user runs around a training run, one subcommand each (``--help`` on each).

    crossdistill train ...          = crossdistill-train / python train.py (Hydra overrides)
    crossdistill eval ...           = crossdistill-eval / python eval.py
    crossdistill export CKPT OUT    a Lightning checkpoint -> SentenceTransformer / CrossEncoder folder
    crossdistill report RUN         the Markdown report with plots of a run folder
    crossdistill explain RUN QID    one query's candidates, ranked by every stage (the score trace)
    crossdistill compare RUN_A RUN_B   the students of two runs query by query, paired test
    crossdistill express-lane RUN   the express lane's weights chosen again on a run's dev trace
    crossdistill interpolate RUN    the student averaged with its zero-shot start (WiSE-FT), priced on dev and test
    crossdistill search RUN QUERY   search an exported run's corpus (ONNX student + express lane), with score traces
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module under crossdistill.commands, one line for the listing)
COMMANDS = {
    "export": ("export", "a Lightning checkpoint -> SentenceTransformer / CrossEncoder folder"),
    "report": ("report", "write the Markdown report (with plots) of a run folder"),
    "explain": ("explain", "show how one query's candidates were ranked by every stage"),
    "compare": ("compare", "compare the students of two runs query by query (paired test)"),
    "express-lane": ("express_lane", "choose the express lane's weights again on a run's dev trace"),
    "interpolate": ("interpolate", "average a run's student with its zero-shot start (WiSE-FT), priced on dev/test"),
    "search": ("search", "search an exported run's corpus: ONNX student, express lane, each hit's score trace"),
}


def usage() -> str:
    lines = ["usage: crossdistill <command> [args]", "", "commands:",
             "  train          the pipeline (Hydra overrides; = crossdistill-train, python train.py)",
             "  eval           evaluate a bi-encoder on a BEIR folder (= crossdistill-eval, python eval.py)"]
    lines += [f"  {name:<14} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name in ("train", "eval"):
        from crossdistill import cli

        sys.argv = [f"crossdistill-{name}", *rest]   # Hydra reads its overrides from sys.argv
        (cli.train if name == "train" else cli.evaluate)()
        return 0
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"crossdistill.commands.{COMMANDS[name][0]}")
    sys.argv[0] = f"crossdistill {name}"   # argparse's prog in usage and errors
    return int(module.main(rest) or 0)
