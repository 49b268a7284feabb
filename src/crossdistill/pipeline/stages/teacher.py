"""The cross-encoder: trained (or loaded from the cache by its content key); and the teacher reranking BM25's test
shortlists."""
from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import OmegaConf

from crossdistill.common.fingerprint import cache_key
from crossdistill.common.instantiate import finish_loggers, instantiate_group, make_trainer
from crossdistill.common.io import atomic_dir, quarantine
from crossdistill.evaluation.runs import rerank, rerank_head
from crossdistill.export import export_teacher
from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage
from crossdistill.pipeline.stages.fit import load_best, resumable_fit
from crossdistill.retrieval.student_pairs import StudentPairs


class TrainCrossEncoder(Stage):
    """Trained on the teacher data module's groups, validated on dev shortlists, kept at its best dev epoch and
    cached by content key (data, teacher and teacher-data config, train queries, seed, training precision)."""

    name, needs, provides = "teacher", ("data", "bm25_train", "bm25_runs"), ("cross_encoder", "teacher_data", "teacher_info")

    def key(self, ctx: RunContext) -> str | None:
        cfg = ctx.cfg
        if not cfg.cache.teacher:
            return None
        return cache_key(data=ctx.data.fingerprint, teacher=OmegaConf.to_container(cfg.teacher, resolve=True),
                         teacher_data=OmegaConf.to_container(cfg.teacher_data, resolve=True),
                         train=ctx.data.train_qids, seed=cfg.seed, trainer_precision=str(cfg.trainer.get("precision")),
                         **ctx.data.training_view)   # label-free: negatives from the title-less BM25

    def outputs(self, ctx: RunContext, key: str):
        return [ctx.layout.cached_teacher(key) / "config.json"]

    def discard(self, ctx: RunContext, key: str):
        return [quarantine(ctx.layout.cached_teacher(key))]

    def _bind_data(self, ctx: RunContext) -> None:
        ctx.teacher_data = instantiate(ctx.cfg.teacher_data).bind(ctx.data, ctx.bm25_train, ctx.bm25_runs)

    def load(self, ctx: RunContext, key: str) -> None:
        self._bind_data(ctx)
        cached = ctx.layout.cached_teacher(key)
        # A cross-encoder folder keeps its trained head: one load, no throwaway fresh model.
        ctx.cross_encoder = instantiate(ctx.cfg.teacher, model=str(cached))
        ctx.teacher_info = {"cached": str(cached), "best_epoch": None}

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg, layout = ctx.cfg, ctx.layout
        teacher = instantiate(cfg.teacher)  # first: its new head draws from the freshly seeded generator
        self._bind_data(ctx)
        dm = ctx.teacher_data
        dm.setup("fit")  # in this process, so spawned DDP workers receive the groups instead of rebuilding them
        ctx.console.log(f"teacher: {len(dm.train_groups)} training groups of {1 + dm.hparams.negatives}, "
                        f"{len(dm.val_groups)} dev shortlists")
        callbacks = instantiate_group(cfg.callbacks.teacher, dirpath=str(layout.checkpoints("teacher")))
        trainer = make_trainer(cfg, "teacher", layout.root, max_epochs=dm.hparams.epochs, callbacks=callbacks)
        resumable_fit(ctx, self.name, key, trainer, teacher, dm, layout.checkpoints("teacher"))
        finish_loggers(trainer.loggers)
        best_epoch = load_best(teacher, trainer.checkpoint_callback)
        if key is not None and ctx.is_global_zero:
            with atomic_dir(layout.cached_teacher(key)) as tmp:   # appears whole or not at all
                export_teacher(teacher, tmp)
        score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
        ctx.cross_encoder, ctx.teacher_info = teacher, {"best_epoch": best_epoch,
                                                  "best_val_ndcg@10": float(score or float("nan"))}


class TeacherOverBM25(Stage):
    """The teacher reranking BM25's test top-k: how good a reranker the student learns from is (an ensemble's
    ``student`` member is the zero-shot start here)."""

    name, needs, provides = "teacher_over_bm25", ("evaluator", "bm25_runs", "teacher", "student"), ("teacher_over_bm25",)
    rank_zero_only = False

    def compute(self, ctx: RunContext, key: str | None) -> None:
        k, bm25_test, ev = ctx.cfg.evaluation.rerank_depth, ctx.bm25_runs["test"], ctx.evaluator
        student = StudentPairs(ctx.student.encoder, ev.embeddings, ev.init_runs.get("test"),
                               ctx.corpus_emb if ev is ctx.dev_evaluator else None)
        scores, _ = ev.reranking.scores([(q, d) for q, hits in bm25_test.items() for d, _ in hits[:k]], student,
                                        ensemble=ctx.teacher)
        ctx.teacher_over_bm25 = rerank_head(bm25_test, rerank(bm25_test, scores, k), k)
