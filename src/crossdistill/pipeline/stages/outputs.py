"""What a finished run leaves: the exported models, the systems side by side on test (results.json, TREC runs)
and the report."""
from __future__ import annotations

import json
import shutil

from omegaconf import OmegaConf

from crossdistill.common.instantiate import log_final
from crossdistill.common.io import write_text_atomic
from crossdistill.common.layout import dev_epoch_metrics
from crossdistill.console import results_table
from crossdistill.evaluation.evaluator import HEADLINE
from crossdistill.evaluation.metrics import evaluate
from crossdistill.evaluation.report import write_report
from crossdistill.evaluation.results_keys import with_aliases
from crossdistill.evaluation.runs import rerank_head, ties_as_ranks, write_trec_run
from crossdistill.export import export_student, export_teacher
from crossdistill.model_card import write_cards
from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage
from crossdistill.retrieval.fusion import reciprocal_rank_fusion
from crossdistill.types import Run


class Export(Stage):
    name, needs, rank_zero_only = "export", ("student", "cross_encoder"), True

    def compute(self, ctx: RunContext, key: str | None) -> None:
        export_student(ctx.student, ctx.layout.student)
        export_teacher(ctx.cross_encoder, ctx.layout.teacher)


def hybrid(bm25: Run, dense: Run, depth: int) -> Run:
    """RRF of BM25 and a dense run, as a full ranking to the retrieval depth."""
    return {q: [(c.docid, c.score) for c in cands] for q, cands in reciprocal_rank_fusion(bm25, dense, depth).items()}


def test_systems(ctx: RunContext) -> tuple[dict[str, dict], dict[str, Run]]:
    """Every system's test metrics, side by side on the same queries, and the runs they come from."""
    qrels, bm25, final, init = ctx.data.qrels["test"], ctx.bm25_runs["test"], ctx.final, ctx.init["test"]
    depth, k = ctx.evaluator.retrieval_depth, ctx.evaluator.rerank_depth
    runs = {"bm25": bm25,
            "hybrid_zero_shot": hybrid(bm25, init.run, depth),   # what a user gets without any training
            "student_init": init.run,
            "teacher_over_bm25": ctx.teacher_over_bm25,
            # The express lane reranking the distilled student's top-k, the student's order below it.
            "express_lane": rerank_head(final.run, final.reranked, k),
            # The teacher over the same top-k, where the express lane is another ensemble.
            **({"teacher_over_student": rerank_head(final.run, final.teacher_reranked, k)}
               if final.teacher_reranked is not None else {}),
            "student": final.run,
            "hybrid_student": hybrid(bm25, final.run, depth)}

    def headline(metrics):
        return {m: metrics[m] for m in (*HEADLINE, "lift@3")}

    evaluated = {"student_init": headline(init.metrics), "student": headline(final.metrics),
                 **{f"student_round{rec['round']}": rec["test"] for rec in ctx.rounds if "test" in rec}}
    order = ["bm25", "hybrid_zero_shot", "student_init", "teacher_over_bm25", "express_lane",
             *(["teacher_over_student"] if final.teacher_reranked is not None else []),
             *(n for n in evaluated if n.startswith("student_round")), "student", "hybrid_student"]
    return {n: evaluated[n] if n in evaluated else evaluate(runs[n], qrels, HEADLINE) for n in order}, runs


def teacher_record(ctx: RunContext) -> dict:
    """The teacher's record (and the express lane's, where it is another ensemble), with each member alone reranking
    the final student's test shortlists."""
    info, metrics = dict(ctx.teacher_info), ctx.final.metrics
    members = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("ndcg@10_reranked/")}
    if not members:
        return info
    if "ensemble" in info:
        info["ensemble"] = {**info["ensemble"], "test_members": members,
                            "test_ndcg@10": metrics.get("ndcg@10_teacher", metrics.get("ndcg@10_reranked"))}
    if "express_lane" in info:
        info["express_lane"] = {**info["express_lane"], "test_members": members,
                                "test_ndcg@10": metrics.get("ndcg@10_reranked")}
    return info


def results_record(ctx: RunContext, systems: dict) -> dict:
    data, cfg, rec = ctx.data, ctx.cfg, ctx.recorder
    return with_aliases({
        "dataset": data.dataset.name, "split": "test", "label_free": data.label_free,
        **({"pseudo_queries": data.pseudo_queries} if data.label_free else {}),
        "queries": len(data.qrels["test"]), "docs": len(data.doc_ids),
        "splits": {"train": len(data.train_qids), "dev": len(data.dev_qids), "test": len(data.qrels["test"])},
        "systems": systems, "best_epoch": ctx.best.epoch, "optimized_metric": cfg.optimized_metric,
        "dev": {"student_init": ctx.init["dev"].metrics, "best": ctx.best.dev,
                "history": dev_epoch_metrics(ctx.layout)},
        "test_final": ctx.final.metrics, "teacher": teacher_record(ctx), "mining": ctx.rounds[0], "rounds": ctx.rounds,
        "student_scale": ctx.student.scale, "evaluation": ctx.evaluator.corpus_record() | (
            {} if ctx.dev_evaluator is ctx.evaluator else {"dev_documents": f"training view ({ctx.data.train_view})"})
        | ({} if data.dev_judgments == "qrels" else {"dev_judgments": data.dev_judgments}),
        "stages": rec.stages, "total_wall_s": rec.total_wall_s, "peak_rss_mb": rec.peak_rss_mb,
        "config": OmegaConf.to_container(cfg, resolve=True),
    })


def write_results(ctx: RunContext, results: dict, runs: dict[str, Run]) -> None:
    """TREC runs (ranks-as-scores where scores tie, so every tool sees the list order), results.json, the report
    and the table on the console."""
    for name, run in runs.items():
        write_trec_run(ties_as_ranks(run), ctx.layout.trec_run(name), tag=name)
    write_text_atomic(json.dumps(results, indent=2, default=float), ctx.layout.results)
    report = write_report(ctx.layout.root)
    ctx.console.print(results_table(results))
    ctx.console.print(f"report: {report}")
    ctx.console.print(f"run directory: {ctx.layout.root}")


class Tidy(Stage):
    """A finished run keeps what a user takes home (the exported folders, results, traces, runs, report, mining
    artifacts, logs); the checkpoints with their optimiser state and the rounds' weights, which only ``resume=``
    needs, go unless ``keep_checkpoints=true``."""

    name, rank_zero_only = "tidy", True

    def applies(self, ctx: RunContext) -> bool:
        return not ctx.cfg.get("keep_checkpoints", False)

    def compute(self, ctx: RunContext, key: str | None) -> None:
        freed = 0
        for folder in (ctx.layout.checkpoint_root, ctx.layout.stages, ctx.layout.exchange):
            if folder.exists():
                freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                shutil.rmtree(folder)
        ctx.console.log(f"removed checkpoints and round weights ({freed / 2**20:.0f} MiB; keep_checkpoints=true "
                        "keeps them)")


class Report(Stage):
    name, needs, rank_zero_only = "report", ("final", "init", "teacher_over_bm25"), True

    def compute(self, ctx: RunContext, key: str | None) -> None:
        systems, runs = test_systems(ctx)
        results = results_record(ctx, systems)
        write_results(ctx, results, runs)
        # Our own cards over the export's interim ones, now that results.json holds what they report.
        write_cards(results, ctx.layout.root, ctx.layout.student, ctx.layout.teacher)
        layout = ctx.layout
        log_final(ctx.cfg, layout.root.name, results["config"],
                  {f"test/{system}/{m}": v for system, metrics in systems.items() for m, v in metrics.items()},
                  artifacts={"results": [layout.results, layout.report.parent], "model": [layout.student]})
