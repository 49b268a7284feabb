"""Evaluation only (eval.py): an existing bi-encoder over the whole corpus of any BEIR folder, optionally with a
cross-encoder reranking the shortlists (the express lane: lift@3, the score trace's express lane columns) and a user's TREC run as a
further first stage. Writes results.json, TREC runs, the trace and the report, like a training run."""
from __future__ import annotations

import json

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sentence_transformers import SentenceTransformer

from crossdistill.common.fingerprint import cache_key
from crossdistill.common.io import write_text_atomic
from crossdistill.common.layout import FINAL_TEST
from crossdistill.console import results_table
from crossdistill.data.beir import DataError
from crossdistill.evaluation.evaluator import HEADLINE, RetrievalEvaluator
from crossdistill.evaluation.metrics import evaluate
from crossdistill.evaluation.report import write_report
from crossdistill.evaluation.runs import rerank, rerank_head, ties_as_ranks, write_trec_run
from crossdistill.models import resolve_model
from crossdistill.models.cross_encoder import load_cross_encoder
from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage
from crossdistill.pipeline.stages.data import IndexBM25, PrepareData
from crossdistill.pipeline.stages.outputs import hybrid
from crossdistill.pipeline.stages.transfer import TransferTest
from crossdistill.pipeline.train import run_stages
from crossdistill.retrieval.run_file import read_trec_run, run_for_queries
from crossdistill.retrieval.student_pairs import StudentPairs
from crossdistill.teacher.ensemble_scores import EnsembleScores, cross_encoder_reranking
from crossdistill.teacher.express_lane import ExpressLaneSpec
from crossdistill.teacher.members import MemberScope


def device(cfg: DictConfig) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else str(cfg.device)


def apply_express_lane(cfg: DictConfig) -> ExpressLaneSpec | None:
    """``express_lane=<file or run folder>``: its cross-encoder, depths, BM25 settings and precision replace the
    config's, so the evaluation scores as the run did."""
    if not cfg.get("express_lane"):
        return None
    spec = ExpressLaneSpec.load(cfg.express_lane)
    cfg.reranker = str(spec.folder(cfg.express_lane, "cross_encoder"))
    cfg.reranker_max_length = spec.cross_encoder_max_length or cfg.reranker_max_length
    cfg.evaluation.rerank_depth, cfg.evaluation.retrieval_depth = spec.rerank_depth, spec.retrieval_depth
    cfg.evaluation.precision = spec.precision
    OmegaConf.update(cfg, "bm25", spec.bm25, merge=False)
    return spec


class LoadModels(Stage):
    """The bi-encoder as it is (its own pooling and normalisation), and the optional cross-encoder reranker (with
    ``express_lane=``: the exported run's express lane, its members with its weights)."""

    name, needs, provides = "models", ("data", "bm25", "bm25_runs"), ("student", "evaluator")

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg, data = ctx.cfg, ctx.data
        ctx.student = SentenceTransformer(resolve_model(cfg.model), device=device(cfg))
        ctx.cross_encoder = load_cross_encoder(cfg.reranker, cfg.reranker_max_length).to(device(cfg)) \
            if cfg.reranker else None
        queries, settings, layout = data.dataset.queries, instantiate(cfg.evaluation), ctx.layout
        scope = cache_key(data=data.fingerprint, queries=sorted(queries.items()))
        reranking = None if ctx.cross_encoder is None else cross_encoder_reranking(
            ctx.cross_encoder, queries, data.doc_text, batch_size=settings.teacher_batch_size,
            precision=settings.precision, scope=scope, cache_dir=layout.evaluation_cache if layout.cache else None,
            backend=settings.backend)
        ctx.evaluator = RetrievalEvaluator(settings, data.doc_text, queries, data.qrels, ctx.bm25_runs, layout=layout,
                                           cache_scope=scope, reranking=reranking)
        if cfg.get("express_lane"):
            lane = ExpressLaneSpec.load(cfg.express_lane)
            ensemble, logits = lane.ensemble(), reranking.cross_encoder
            if not ensemble.is_plain_teacher:
                member_scope = MemberScope(ctx.evaluator.embeddings, logits, ctx.bm25, lane.zero_shot, lane.normalize)
                ctx.evaluator.reranking = EnsembleScores.build(queries, logits, ensemble, ensemble, member_scope)


class EvaluateModel(Stage):
    name, needs, provides = "evaluate", ("student", "evaluator"), ("final",)

    def compute(self, ctx: RunContext, key: str | None) -> None:
        ctx.final = ctx.evaluator.evaluate(ctx.student, ctx.cfg.split, FINAL_TEST, 0)


def first_stages(ctx: RunContext) -> dict:
    """The split's first-stage runs: BM25, the model, their RRF, and the user's run file when given."""
    cfg, split = ctx.cfg, ctx.cfg.split
    qids = sorted(ctx.data.qrels[split])
    runs = {"bm25": ctx.bm25_runs[split], "model": ctx.final.run,
            "hybrid": hybrid(ctx.bm25_runs[split], ctx.final.run, ctx.evaluator.retrieval_depth)}
    if cfg.run_file:
        user = read_trec_run(cfg.run_file)
        if not set(user) & set(qids):
            raise DataError(cfg.run_file, f"covers none of the {len(qids)} {split} queries")
        runs["run_file"] = run_for_queries(user, qids)
    return runs


class EvaluationReport(Stage):
    """Every first stage (and, with a reranker, each reranked) side by side: results.json, TREC runs, report."""

    name, needs = "report", ("final",)

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg, layout, qrels, k = ctx.cfg, ctx.layout, ctx.data.qrels[ctx.cfg.split], ctx.evaluator.rerank_depth
        runs = first_stages(ctx)
        if ctx.cross_encoder is not None:
            for name in list(runs):
                run = runs[name]
                ev = ctx.evaluator   # the express lane's score; its student member is the evaluated model's cosine
                scores = None if name == "model" else ev.reranking.scores(
                    [(q, d) for q, hits in run.items() for d, _ in hits[:k]],
                    StudentPairs(ctx.student, ev.embeddings, ctx.final.run))[0]
                reranked = ctx.final.reranked if name == "model" else rerank(run, scores, k)
                runs[f"rerank_{name}"] = rerank_head(run, reranked, k)
        # The model's metrics come from its evaluation (with lift@3 when there is a reranker); the rest from their runs.
        model = dict(ctx.final.metrics) if ctx.cross_encoder is None else {m: ctx.final.metrics[m] for m in (*HEADLINE, "lift@3")}
        systems = {name: model if name == "model" else evaluate(run, qrels, HEADLINE) for name, run in runs.items()}
        for name, run in runs.items():
            write_trec_run(ties_as_ranks(run), layout.trec_run(name, cfg.split), tag=name)
        results = {"dataset": ctx.data.dataset.name, "split": cfg.split, "queries": len(qrels),
                   "docs": len(ctx.data.doc_ids), "model": cfg.model, "reranker": cfg.reranker,
                   "express_lane": cfg.express_lane,
                   "run_file": cfg.run_file, "systems": systems, "test_final": ctx.final.metrics,
                   **({"transfer": ctx.transfer} if ctx.transfer else {}),
                   "stages": ctx.recorder.stages, "config": OmegaConf.to_container(cfg, resolve=True)}
        write_text_atomic(json.dumps(results, indent=2, default=float), layout.results)
        write_report(layout.root)
        ctx.console.print(results_table(results))
        ctx.console.print(f"run directory: {layout.root}")
        ctx.results = results


def run(cfg: DictConfig) -> dict:
    """Evaluate ``cfg.model`` on ``cfg.split``; returns the systems' metrics (also in results.json)."""
    if cfg.split not in ("test", "dev", "train"):
        raise ValueError(f"split must be test, dev or train, got {cfg.split!r}")
    apply_express_lane(cfg)
    ctx = run_stages(RunContext.start(cfg), [PrepareData(), IndexBM25(), LoadModels(), EvaluateModel(),
                                             TransferTest(), EvaluationReport()])
    return ctx.results["systems"]
