"""A finished run's student interpolated in weight space with its zero-shot start (WiSE-FT, Wortsman et al. 2022):
weights = (1 - alpha) x start + alpha x distilled. Averaging with the start is the standard guard against forgetting
what the start knew about other collections; this command prices it on the run's own data (dev and test nDCG@10 and
recall@100 over the whole corpus, per alpha) and saves the merged students as SentenceTransformer folders, for
`eval.py` on the collections a user cares about. Dev says what it costs in-domain; only other collections can say
what it buys.

    crossdistill interpolate outputs/<run> --alphas 0.5,0.75,1 --json interpolation.json --save merged/
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table
from sentence_transformers import SentenceTransformer

from crossdistill.common.machine import describe, machine
from crossdistill.evaluation.evaluator import RetrievalEvaluator
from crossdistill.models import resolve_model
from crossdistill.student.interpolation import interpolate


def merged_students(run: Path, alphas: list[float]):
    """(alpha, model) for each alpha: the run's exported student merged with the zero-shot start its config names
    (one model, its weights replaced for each alpha: use it before asking for the next)."""
    config = json.loads((run / "results.json").read_text())["config"]
    start = SentenceTransformer(resolve_model(config["student"]["model"]), device="cpu")
    tuned = SentenceTransformer(str(run / "student"), device="cpu")
    start_state, tuned_state = start.state_dict(), copy.deepcopy(tuned.state_dict())
    for alpha in alphas:   # the loaded student, its weights replaced: no second read of the folder
        tuned.load_state_dict(interpolate(start_state, tuned_state, alpha))
        yield alpha, tuned


def run_evaluator(run: Path, work: Path) -> RetrievalEvaluator:
    """The run's data (its config, resolved as it ran), split and indexed again, evaluated without a reranker."""
    from crossdistill.pipeline.context import RunContext
    from crossdistill.pipeline.stages.data import IndexBM25, PrepareData
    from crossdistill.pipeline.train import run_stages

    cfg = OmegaConf.create(json.loads((run / "results.json").read_text())["config"])
    cfg.paths.output_dir = str(work)
    ctx = run_stages(RunContext.start(cfg), [PrepareData(), IndexBM25()])
    return RetrievalEvaluator(instantiate(cfg.evaluation), ctx.data.doc_text, ctx.data.dataset.queries, ctx.data.qrels,
                              ctx.bm25_runs)


def measure(run: Path, alphas: list[float], save: Path | None) -> dict:
    out = {"run": str(run), "machine": describe(machine()), "finished": None, "alphas": {}}
    with tempfile.TemporaryDirectory() as work:
        ev = run_evaluator(run, Path(work))
        splits = [s for s in ("dev", "test") if ev.qrels.get(s)]
        for alpha, model in merged_students(run, alphas):
            emb = ev.embeddings.corpus(model)
            out["alphas"][f"{alpha:g}"] = {
                split: {m: v for m, v in ev.evaluate(model, split, f"{split}_alpha", 0, corpus_emb=emb).metrics.items()
                        if m in ("ndcg@10", "recall@100", "mrr@10")} for split in splits}
            if save is not None:
                model.save(str(save / f"alpha={alpha:g}"))
    out["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run directory (results.json, student/)")
    p.add_argument("--alphas", default="0.5,0.75,1", help="weights of the distilled student (0 = the start)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--save", type=Path, help="save each merged student under SAVE/alpha=<a>/")
    args = p.parse_args(argv)
    alphas = [float(a) for a in args.alphas.split(",")]
    if not all(0.0 <= a <= 1.0 for a in alphas):
        print(f"error: --alphas must lie in [0, 1], got {args.alphas}", file=sys.stderr)
        return 2
    for needed in (args.run / "results.json", args.run / "student"):
        if not needed.exists():
            print(f"error: {needed} does not exist: give a finished run directory", file=sys.stderr)
            return 1
    res = measure(args.run, alphas, args.save)
    table = Table(title=f"{args.run}: the student interpolated with its zero-shot start (weight of the distilled student)")
    for col in ("alpha", "dev nDCG@10", "dev R@100", "test nDCG@10", "test R@100"):
        table.add_column(col, justify="right")
    for alpha, r in res["alphas"].items():
        table.add_row(alpha, *(f"{r[s][m]:.3f}" if s in r else "-" for s in ("dev", "test") for m in ("ndcg@10", "recall@100")))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


