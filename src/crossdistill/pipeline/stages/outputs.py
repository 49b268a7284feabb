"""What a finished run leaves: the exported models, the systems side by side on test (results.json, TREC runs)
and the report."""
from __future__ import annotations

import json
import shutil

import pandas as pd
from omegaconf import OmegaConf

from crossdistill.common.instantiate import log_final
from crossdistill.common.io import write_text_atomic
from crossdistill.common.layout import FINAL_TEST, dev_epoch_metrics
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
from crossdistill.serving.fidelity import cross_encoder_onnx, student_onnx
from crossdistill.teacher.express_lane import ExpressLaneSpec
from crossdistill.types import Run


class Export(Stage):
    name, needs, rank_zero_only = "export", ("student", "cross_encoder"), True

    def compute(self, ctx: RunContext, key: str | None) -> None:
        export_student(ctx.student, ctx.layout.student)
        export_teacher(ctx.cross_encoder, ctx.layout.teacher)


class ExportOnnx(Stage):
    """The exported student and cross-encoder also as ONNX fp32 and int8 files (``export.onnx``), each checked as it
    is written (crossdistill/serving/fidelity.py): fp32 against PyTorch on a sample of the run's texts, int8 by the
    student's and the express lane's test nDCG@10 beside fp32."""

    name, needs, provides, rank_zero_only = "export_onnx", ("final", "express_lane"), ("onnx",), True

    def applies(self, ctx: RunContext) -> bool:
        return bool(OmegaConf.select(ctx.cfg, "export.onnx", default=False))

    def compute(self, ctx: RunContext, key: str | None) -> None:
        data, n, lane = ctx.data, int(ctx.cfg.export.check_texts), ctx.express_lane
        queries, qrels = data.dataset.queries, data.qrels["test"]
        student = student_onnx(ctx.layout.student, data.doc_text, data.doc_ids, {q: queries[q] for q in sorted(qrels)},
                               qrels, n, ctx.evaluator.retrieval_depth)
        frame = lane.trace_frame(pd.read_parquet(ctx.layout.trace(FINAL_TEST)))
        if lane.column("cross_encoder") not in frame:   # a lone cross-encoder: its logits are the express lane's score
            frame[lane.column("cross_encoder")] = frame.express_lane_score
        cross_encoder = cross_encoder_onnx(ctx.layout.teacher, frame, lane, queries, data.doc_text, qrels, n)
        ctx.onnx = {"student": student, "cross_encoder": cross_encoder}
        s, c = student, cross_encoder
        ctx.console.log(f"ONNX: student fp32 min cosine {s['fp32']['min_cosine']:.6f}, int8 test nDCG@10 "
                        f"{s['int8']['test']['ndcg@10']:.3f}; cross-encoder fp32 max |diff| {c['fp32']['max_abs_diff']:.1e}, "
                        f"express lane with int8 {c['int8']['test_express_lane_ndcg@10']:.3f} "
                        f"(fp32 {c['int8']['test_express_lane_ndcg@10_fp32']:.3f})")
        for name, record in ctx.onnx.items():
            if not record["fp32"]["faithful"]:
                ctx.console.log(f"[red]warning: the {name}'s fp32 ONNX file does not match PyTorch: {record['fp32']}")


def express_lane_spec(ctx: RunContext, systems: dict) -> ExpressLaneSpec:
    """What reranks the exported student's top k, as the run chose it: ``<run>/express_lane.json``."""
    cfg, lane = ctx.cfg, ctx.express_lane
    catalog = OmegaConf.to_container(cfg.ensemble.get("catalog") or {}, resolve=True)
    catalog |= {name: {"_target_": "crossdistill.teacher.members.BiEncoderMember", "model": model}
                for name, model in (cfg.ensemble.get("bi_encoders") or {}).items()}
    return ExpressLaneSpec(
        members={m: catalog[m] for m in lane.members}, weights=dict(lane.weights),
        rerank_depth=ctx.evaluator.rerank_depth, retrieval_depth=ctx.evaluator.retrieval_depth,
        cross_encoder_max_length=cfg.teacher.get("max_length"), bm25=OmegaConf.to_container(cfg.bm25, resolve=True),
        zero_shot=cfg.student.model, normalize=cfg.student.normalize, precision=ctx.evaluator.precision,
        test=systems.get("express_lane", {}))


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
        "test_final": ctx.final.metrics, "teacher": teacher_record(ctx), "mining": ctx.rounds[0] if ctx.rounds else {},
        "rounds": ctx.rounds,
        "student_scale": ctx.student.scale, "evaluation": ctx.evaluator.corpus_record() | (
            {} if ctx.dev_evaluator is ctx.evaluator else {"dev_documents": f"training view ({ctx.data.train_view})"})
        | ({} if data.dev_judgments == "qrels" else {"dev_judgments": data.dev_judgments}),
        **({"onnx": ctx.onnx} if ctx.onnx else {}), **({"transfer": ctx.transfer} if ctx.transfer else {}),
        **({"guard": ctx.guard} if ctx.guard else {}),
        **({"interpolation": ctx.interpolation | {"dev_trace": ctx.best.dev_trace}} if ctx.interpolation else {}),
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
        express_lane_spec(ctx, systems).save(ctx.layout.root)
        results = results_record(ctx, systems)
        write_results(ctx, results, runs)
        # Our own cards over the export's interim ones, now that results.json holds what they report.
        write_cards(results, ctx.layout.root, ctx.layout.student, ctx.layout.teacher)
        layout = ctx.layout
        log_final(ctx.cfg, layout.root.name, results["config"],
                  {f"test/{system}/{m}": v for system, metrics in systems.items() for m, v in metrics.items()},
                  artifacts={"results": [layout.results, layout.report.parent], "model": [layout.student]})
