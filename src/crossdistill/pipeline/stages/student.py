"""The student: its zero-shot start, each distillation round, and the test evaluations of what was kept."""
from __future__ import annotations

import pytorch_lightning as pl
from hydra.utils import instantiate

from crossdistill.common.fingerprint import cache_key
from crossdistill.common.instantiate import finish_loggers, instantiate_group, make_trainer
from crossdistill.common.layout import FINAL_TEST, round_suffix
from crossdistill.evaluation.evaluator import HEADLINE, RetrievalEvaluator
from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage
from crossdistill.pipeline.stages.teacher import load_best


def build_evaluator(ctx: RunContext) -> RetrievalEvaluator:
    data, queries = ctx.data, ctx.data.dataset.queries
    return RetrievalEvaluator(instantiate(ctx.cfg.evaluation), data.doc_text, queries, data.qrels, ctx.bm25_runs,
                              teacher=ctx.teacher.model, layout=ctx.layout,
                              cache_scope=cache_key(data=data.fingerprint, queries=sorted(queries.items())))


class ZeroShotBaseline(Stage):
    """The student before distillation, evaluated on dev and test over the whole corpus."""

    name, needs = "student_init", ("data", "bm25_runs", "teacher")
    provides = ("student", "evaluator", "init", "corpus_emb")

    def compute(self, ctx: RunContext, key: str | None) -> None:
        ctx.student, ctx.evaluator = instantiate(ctx.cfg.student), build_evaluator(ctx)
        ctx.corpus_emb = ctx.evaluator.encode_corpus(ctx.student.encoder, persist=True)
        ctx.init = {split: ctx.evaluator.evaluate(ctx.student.encoder, split, f"{split}_init", -1,
                                                  corpus_emb=ctx.corpus_emb) for split in ("dev", "test")}


class DistillRound(Stage):
    """One round of distillation on the round's mined pairs; dev is evaluated every epoch over the whole corpus,
    the round's best epoch is loaded, and the best student across rounds is remembered (by dev only)."""

    needs = ("student", "mined", "evaluator")

    def __init__(self, round_: int):
        self.round, self.name = round_, f"student{round_suffix(round_)}"

    def _resolve_scale(self, ctx: RunContext) -> None:
        # Fixed from round 1 on: a scale that moved between rounds would move the target with it.
        if not (ctx.student.auto_scale and self.round == 1):
            return
        if not ctx.mined["info"]["margin_scale"] > 0:
            raise ValueError("student.scale=auto: the mined pairs give no student margin to measure the scale "
                             "from; set student.scale to a number")
        ctx.student.set_scale(ctx.mined["info"]["margin_scale"])
        ctx.console.log(f"student.scale=auto -> {ctx.student.loss_fn.scale:.2f}")

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg, student, offset = ctx.cfg, ctx.student, ctx.epochs_done
        self._resolve_scale(ctx)
        dm = instantiate(cfg.student_data).bind(ctx.mined["dataset"])
        epochs = dm.hparams.epochs
        callbacks = instantiate_group(cfg.callbacks.student, dirpath=str(ctx.layout.checkpoints(self.name)),
                                      evaluator=ctx.evaluator, epoch_offset=offset)
        trainer = make_trainer(cfg, self.name, ctx.layout.root, max_epochs=epochs, callbacks=callbacks,
                               limit_val_batches=0, num_sanity_val_steps=0)
        # Re-seeded here: otherwise the shuffle and dropout streams depend on whether the teacher was trained
        # in this run or loaded from the cache (measured: dev nDCG@10 0.597 vs 0.570 for the same config).
        pl.seed_everything(cfg.seed + self.round - 1, workers=True)
        trainer.fit(student, datamodule=dm)
        finish_loggers(trainer.loggers)
        epoch = load_best(student, trainer.checkpoint_callback)
        epoch = offset + (epoch if epoch >= 0 else epochs - 1)
        # From the metrics files, not the callback: under ddp_spawn the callback's state stays in the workers.
        metric = cfg.optimized_metric.split("/", 1)[1]
        dev = max((h[metric] for h in ctx.layout.dev_epoch_metrics() if offset <= h["epoch"] < offset + epochs),
                  default=float("nan"))
        ctx.epochs_done += epochs
        if dev > ctx.best.dev or ctx.best.state is None:
            ctx.best.dev, ctx.best.epoch = dev, epoch
            ctx.best.state = {k: v.detach().clone() for k, v in student.state_dict().items()}
        ctx.rounds.append({"round": self.round, "dev": dev, "epoch": epoch, **ctx.mined["info"]})


class RoundTest(Stage):
    """With several rounds, each round's student on test too (reported only, never used to choose)."""

    needs, rank_zero_only = ("student", "evaluator"), True

    def __init__(self, round_: int):
        self.round, self.name = round_, f"test_round{round_}"

    def compute(self, ctx: RunContext, key: str | None) -> None:
        record = ctx.rounds[-1]
        res = ctx.evaluator.evaluate(ctx.student.encoder, "test", f"test_round{self.round}", record["epoch"])
        record["test"] = {m: res.metrics[m] for m in (*HEADLINE, "lift@3")}


class FinalTest(Stage):
    """The student kept by dev, evaluated on test."""

    name, needs, provides, rank_zero_only = "test", ("student", "evaluator"), ("final",), True

    def compute(self, ctx: RunContext, key: str | None) -> None:
        ctx.student.load_state_dict(ctx.best.state)
        ctx.final = ctx.evaluator.evaluate(ctx.student.encoder, "test", FINAL_TEST, ctx.best.epoch)
