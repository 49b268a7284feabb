"""The student: its zero-shot start, each distillation round, and the test evaluations of what was kept."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from crossdistill.common.fingerprint import cache_key, state_dict_fingerprint
from crossdistill.common.instantiate import finish_loggers, instantiate_group, make_trainer
from crossdistill.common.io import atomic_path, write_text_atomic
from crossdistill.common.layout import FINAL_TEST, dev_epoch_metrics, dev_epoch_name, round_suffix
from crossdistill.evaluation.evaluator import HEADLINE, RetrievalEvaluator
from crossdistill.pipeline.context import BestStudent, RunContext
from crossdistill.pipeline.encoding import encode_corpus, encoding_trainer
from crossdistill.pipeline.ensemble_choice import choose_ensemble_weights, log_choice, record_choice
from crossdistill.pipeline.stages.base import Stage
from crossdistill.pipeline.stages.fit import load_best, resumable_fit
from crossdistill.teacher.ensemble_scores import EnsembleScores, cross_encoder_reranking
from crossdistill.teacher.members import MemberScope


def build_evaluator(ctx: RunContext, training_view: bool = False) -> RetrievalEvaluator:
    """The evaluator over the corpus, or (``training_view``) over what training reads: label-free mode's title-less
    documents, where its dev title pseudo-queries are a task and not a lookup (its own caches, by that view)."""
    data, queries, layout = ctx.data, ctx.data.dataset.queries, ctx.layout
    docs, view = (data.train_doc_text, {"view": "training"}) if training_view else (data.doc_text, {})
    settings, scope = instantiate(ctx.cfg.evaluation), cache_key(data=data.fingerprint, queries=sorted(queries.items()), **view)
    reranking = cross_encoder_reranking(ctx.cross_encoder.model, queries, docs, batch_size=settings.teacher_batch_size,
                                        precision=settings.precision, scope=scope, backend=settings.backend,
                                        cache_dir=layout.evaluation_cache if layout.cache is not None else None)
    return RetrievalEvaluator(settings, docs, queries, data.qrels, ctx.bm25_runs, layout=layout, cache_scope=scope,
                              reranking=reranking)


class ZeroShotStudent(Stage):
    """The student before distillation and the evaluators (the corpus; the training view, when it differs); the
    training view encoded with its starting weights."""

    name, needs = "zero_shot", ("data", "bm25_runs", "cross_encoder")
    provides = ("student", "evaluator", "dev_evaluator", "corpus_emb")

    def compute(self, ctx: RunContext, key: str | None) -> None:
        ctx.student, ctx.evaluator = instantiate(ctx.cfg.student), build_evaluator(ctx)
        ctx.dev_evaluator = ctx.evaluator if ctx.data.train_doc_text is ctx.data.doc_text else \
            build_evaluator(ctx, training_view=True)
        ctx.corpus_emb = encode_corpus(ctx, ctx.student.encoder)


class ChooseTeacher(Stage):
    """The teacher around the cross-encoder (config group ``ensemble``): its members' scorers, and its weights (fixed,
    or the best combination reranking the zero-shot student's dev shortlists; with a ``student`` member, chosen again
    before each later round), and the express lane (``ensemble.express_lane``; else the teacher). From here on the
    evaluators rerank with the express lane; a lone cross-encoder that is both changes nothing."""

    name, needs = "ensemble", ("student", "evaluator", "dev_evaluator", "bm25", "bm25_train", "corpus_emb")
    provides = ("teacher", "express_lane")

    def compute(self, ctx: RunContext, key: str | None) -> None:
        teacher, ev, student = instantiate(ctx.cfg.ensemble), ctx.dev_evaluator, ctx.cfg.student
        ctx.teacher, ctx.express_lane = teacher, teacher.express_lane_ensemble()
        if teacher.is_plain_teacher and ctx.express_lane is teacher:
            ctx.teacher_info["ensemble"] = {"members": teacher.members, "weights": teacher.weights}
            return
        # Each evaluator's members read its documents: BM25 and frozen encoders over the same view.
        for evaluator, bm25 in {id(ctx.evaluator): (ctx.evaluator, ctx.bm25), id(ev): (ev, ctx.bm25_train)}.values():
            logits = evaluator.reranking.cross_encoder
            scope = MemberScope(evaluator.embeddings, logits, bm25, student.model, student.normalize)
            evaluator.reranking = EnsembleScores.build(evaluator.queries, logits, ctx.express_lane, teacher, scope)
        choose_ensemble_weights(ctx)


class ChooseExpressLane(Stage):
    """The express lane (``ensemble.express_lane``) chosen again on the dev trace of the epoch about to be tested (a
    round's kept epoch, or the run's): its members' scores of the dev shortlists of the very student it will rerank
    on test. Never test."""

    needs, rank_zero_only = ("student", "teacher", "express_lane"), True

    def __init__(self, round_: int | None = None):
        self.round, self.name = round_, "express_lane" if round_ is None else f"express_lane_round{round_}"

    def applies(self, ctx: RunContext) -> bool:
        return ctx.express_lane is not ctx.teacher and ctx.express_lane.from_dev

    def compute(self, ctx: RunContext, key: str | None) -> None:
        epoch = ctx.best.epoch if self.round is None else ctx.rounds[-1]["epoch"]
        name = "dev_init" if epoch < 0 else dev_epoch_name(epoch)
        if self.round is None and ctx.best.dev_trace:   # the kept student is not an epoch's (interpolation)
            name = ctx.best.dev_trace
        frame = ctx.express_lane.trace_frame(pd.read_parquet(ctx.layout.trace(name)))
        record_choice(ctx, "express_lane", info := {**ctx.express_lane.choose(frame, ctx.data.qrels["dev"]),
                                                    "shortlists": name})
        log_choice(ctx, f"express lane for the {'round ' + str(self.round) if self.round else 'final'} test",
                   info, f"the kept student's dev top {ctx.evaluator.rerank_depth} ({name})")


class ZeroShotBaseline(Stage):
    """The student before distillation, evaluated on dev and test over the whole corpus."""

    name, needs = "student_init", ("student", "evaluator", "dev_evaluator", "corpus_emb", "teacher")
    provides = ("init",)
    # ... and, with rounds.keep_zero_shot, the zero-shot student as the best so far (a round must beat it on dev)

    def compute(self, ctx: RunContext, key: str | None) -> None:
        # The test corpus: what mining searched, or (label-free: training reads another view) the whole documents,
        # encoded now, a share per rank under DDP.
        test_emb = ctx.corpus_emb if ctx.evaluator is ctx.dev_evaluator else \
            encode_corpus(ctx, ctx.student.encoder, ctx.evaluator, persist=False)
        ctx.init = {"dev": ctx.dev_evaluator.evaluate(ctx.student.encoder, "dev", "dev_init", -1,
                                                      corpus_emb=ctx.corpus_emb),
                    "test": ctx.evaluator.evaluate(ctx.student.encoder, "test", "test_init", -1, corpus_emb=test_emb)}
        if ctx.cfg.rounds.get("keep_zero_shot", True):
            # The start is a candidate too: a distillation that dev says hurts is not what the run keeps.
            metric = ctx.cfg.optimized_metric.split("/", 1)[1]
            ctx.best = BestStudent(ctx.init["dev"].metrics[metric], -1,
                                   {k: v.detach().clone() for k, v in ctx.student.state_dict().items()})


class DistillRound(Stage):
    """One round of distillation on the round's mined pairs; dev is evaluated every epoch over the whole corpus,
    the round's best epoch is loaded, and the best student across rounds is remembered (by dev only)."""

    needs = ("student", "mined", "dev_evaluator")

    def __init__(self, round_: int):
        self.round, self.name = round_, f"student{round_suffix(round_)}"

    def _resolve_scale(self, ctx: RunContext) -> None:
        # Fixed from round 1 on: a scale that moved between rounds would move the target with it.
        if not (ctx.student.auto_scale and self.round == 1):
            return
        if not ctx.mined.info["margin_scale"] > 0:
            raise ValueError("student.scale=auto: the mined pairs give no student margin to measure the scale "
                             "from; set student.scale to a number")
        ctx.student.set_scale(ctx.mined.info["margin_scale"])
        ctx.console.log(f"student.scale=auto -> {ctx.student.scale:.2f}")

    def key(self, ctx: RunContext) -> str:
        """The round's inputs: the student it starts from, the teacher (its margins and the dev lift), the pairs, what
        came before, and every setting."""
        cfg = ctx.cfg
        settings = {k: OmegaConf.to_container(cfg[k], resolve=True)
                    for k in ("student", "student_data", "callbacks", "evaluation", "trainer")}
        return cache_key(start=state_dict_fingerprint(ctx.student), teacher=ctx.teacher_fingerprint(),
                         ensemble=ctx.teacher_info.get("ensemble", {}).get("weights"),
                         reranker=None if ctx.express_lane is ctx.teacher else ctx.express_lane.members,
                         pairs=hashlib.sha256(pd.util.hash_pandas_object(ctx.mined.pairs).to_numpy()).hexdigest(),
                         round=self.round, offset=ctx.epochs_done, best=[ctx.best.dev, ctx.best.epoch],
                         settings=settings, metric=cfg.optimized_metric, seed=cfg.seed)

    def outputs(self, ctx: RunContext, key: str) -> list[Path]:
        # The record last: it is written last, so its presence means the weights beside it are whole.
        return [ctx.layout.stage_file(f"{self.name}-{key}.{part}") for part in ("safetensors", "best.safetensors",
                                                                                 "json")]

    def load(self, ctx: RunContext, key: str) -> None:
        weights, best, record = self.outputs(ctx, key)
        saved = json.loads(record.read_text())
        self._resolve_scale(ctx)
        ctx.student.load_state_dict(load_file(str(weights)))
        ctx.best = BestStudent(saved["best_dev"], saved["best_epoch"], load_file(str(best)))
        ctx.epochs_done = saved["epochs_done"]
        ctx.rounds.append(saved["record"])

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg, student, offset = ctx.cfg, ctx.student, ctx.epochs_done
        self._resolve_scale(ctx)
        dm = instantiate(cfg.student_data).bind(ctx.mined.dataset)
        epochs = dm.hparams.epochs
        checkpoints = ctx.layout.checkpoints(self.name)
        callbacks = instantiate_group(cfg.callbacks.student, dirpath=str(checkpoints), evaluator=ctx.dev_evaluator,
                                      epoch_offset=offset)
        trainer = make_trainer(cfg, self.name, ctx.layout.root, max_epochs=epochs, callbacks=callbacks,
                               limit_val_batches=0, num_sanity_val_steps=0)
        # Re-seeded here: otherwise the shuffle and dropout streams depend on whether the teacher was trained
        # in this run or loaded from the cache (measured: dev nDCG@10 0.597 vs 0.570 for the same config).
        pl.seed_everything(cfg.seed + self.round - 1, workers=True)
        resumable_fit(ctx, self.name, key, trainer, student, dm, checkpoints)
        finish_loggers(trainer.loggers)
        epoch = load_best(student, trainer.checkpoint_callback)
        epoch = offset + (epoch if epoch >= 0 else epochs - 1)
        # From the metrics files, not the callback: under ddp_spawn the callback's state stays in the workers.
        metric = cfg.optimized_metric.split("/", 1)[1]
        dev = max((h[metric] for h in dev_epoch_metrics(ctx.layout) if offset <= h["epoch"] < offset + epochs),
                  default=float("nan"))
        ctx.epochs_done += epochs
        if dev > ctx.best.dev or ctx.best.state is None:
            ctx.best.dev, ctx.best.epoch = dev, epoch
            ctx.best.state = {k: v.detach().clone() for k, v in student.state_dict().items()}
        ctx.rounds.append({"round": self.round, "dev": dev, "epoch": epoch, **ctx.mined.info})
        if ctx.is_global_zero:
            self._save(ctx, key)

    def _save(self, ctx: RunContext, key: str) -> None:
        weights, best, record = self.outputs(ctx, key)
        for path, state in ((weights, ctx.student.state_dict()), (best, ctx.best.state)):
            with atomic_path(path) as tmp:
                save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp))
        write_text_atomic(json.dumps({"record": ctx.rounds[-1], "best_dev": ctx.best.dev, "best_epoch": ctx.best.epoch,
                                      "epochs_done": ctx.epochs_done}, default=float), record)


class ShareTestEncoding(Stage):
    """Under DDP: the whole test corpus under the weights about to be tested (the round's student; without a round,
    the one dev kept), encoded a share per rank and gathered into every rank's evaluator, so the test evaluation
    that follows on rank 0 finds it there instead of encoding it alone while the other ranks exit. Not run with one
    process (the evaluation encodes the corpus itself)."""

    needs = ("student", "evaluator")

    def __init__(self, round_: int | None = None):
        self.round, self.name = round_, "test_encoding" if round_ is None else f"test_encoding_round{round_}"

    def applies(self, ctx: RunContext) -> bool:
        self._trainer = encoding_trainer(ctx)
        return self._trainer.world_size > 1

    def compute(self, ctx: RunContext, key: str | None) -> None:
        if self.round is None:
            ctx.student.load_state_dict(ctx.best.state)
        encode_corpus(ctx, ctx.student.encoder, ctx.evaluator, persist=False, trainer=self._trainer)


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
