"""The express lane of a finished run with the student's own score as a reranker member: the teacher ensemble's
members (from the run's traces) plus the evaluated student's cosine, weights chosen on the dev trace of the epoch the
run kept (never test), applied to the test trace of the final student. What a deployment that reranks the student's
top-k would get by interpolating the reranker with its first stage, without changing the teacher.
Since 2026-11-30 the pipeline's own express lane does this (``ensemble.express_lane``, chosen again before each test); the
command re-chooses offline, for runs made before that or another member list.

    crossdistill express-lane benchmarks/default-run
"""
import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from crossdistill.evaluation.metrics import evaluate, lift_at_k
from crossdistill.evaluation.runs import rerank_frame
from crossdistill.teacher.ensemble import TeacherEnsemble


def shortlists(trace: pd.DataFrame, ensemble: TeacherEnsemble) -> tuple[pd.DataFrame, dict]:
    """The trace's shortlisted rows as a member frame, and the judgments the trace holds (every judged document has a
    row)."""
    qrels = {q: {d: int(g) for d, g in zip(t.docid, t.label) if g > 0} for q, t in trace.groupby("qid")}
    return ensemble.trace_frame(trace), qrels


def measure(frame: pd.DataFrame, score: pd.Series, qrels: dict) -> dict:
    reranked = rerank_frame(frame, score)
    return {"ndcg@10": evaluate(reranked, qrels, ("ndcg@10",))["ndcg@10"],
            "lift@3": lift_at_k(rerank_frame(frame, frame.student_order), reranked, qrels)}


def express_lane(run: Path, members: list[str], grid: list[float]) -> dict:
    results = json.loads((run / "results.json").read_text())
    epoch = results["best_epoch"]
    dev_trace = run / "traces" / (f"dev_epoch={epoch:03d}.parquet" if epoch >= 0 else "dev_init.parquet")
    ensemble = TeacherEnsemble(members=members, grid=grid, saturated=1.01)
    (dev, dev_qrels), (test, test_qrels) = (shortlists(pd.read_parquet(p), ensemble)
                                            for p in (dev_trace, run / "traces" / "test_final.parquet"))
    missing = [m for m in members if ensemble.column(m) not in dev]
    if missing:
        raise ValueError(f"the run's traces hold no scores of {missing} (members it has: member_* columns)")
    choice = ensemble.choose(dev, dev_qrels)
    out = {"members": members, "weights": choice["weights"], "dev_trace": dev_trace.name, "systems": {}}
    for name, frame, qrels in (("dev", dev, dev_qrels), ("test", test, test_qrels)):
        out["systems"][name] = {"student": measure(frame, frame.student_order, qrels),
                                "run's express lane": measure(frame, frame.express_lane_score, qrels),
                                "interpolated": measure(frame, ensemble.combine(frame), qrels)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run directory (results.json, traces/)")
    p.add_argument("--members", default="cross_encoder,bm25,student")
    p.add_argument("--grid", default="0,0.5,1")
    p.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = p.parse_args(argv)
    try:
        res = express_lane(args.run, args.members.split(","), [float(g) for g in args.grid.split(",")])
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    weights = ", ".join(f"{m} {w:g}" for m, w in res["weights"].items())
    table = Table(title=f"{args.run}: express lane over the student's top-k (weights on {res['dev_trace']}: {weights})")
    for col in ("reranker", "dev nDCG@10", "dev lift@3", "test nDCG@10", "test lift@3"):
        table.add_column(col, justify="left" if col == "reranker" else "right")
    for name in res["systems"]["dev"]:
        d, t = res["systems"]["dev"][name], res["systems"]["test"][name]
        table.add_row(name, f"{d['ndcg@10']:.3f}", f"{d['lift@3']:+.3f}", f"{t['ndcg@10']:.3f}", f"{t['lift@3']:+.3f}")
    Console().print(table)
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    return 0


