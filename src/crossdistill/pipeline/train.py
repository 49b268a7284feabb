"""The training pipeline: data -> BM25 -> teacher -> zero-shot student -> teacher ensemble (weights on dev) ->
[label-free on unjudged queries: their distillation set and teacher-judged dev] ->
(mining -> distillation) x rounds [skipped when dev is saturated or the teacher no better than the start there] -> the guard's verdict
(the start or a distilled student, by dev) -> [interpolation with the start, alpha on dev] -> test -> export -> report. Each
stage is timed with its peak memory (results.json ``stages``)."""
from __future__ import annotations

from collections.abc import Iterator

from omegaconf import DictConfig

from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage
from crossdistill.pipeline.stages.data import IndexBM25, PrepareData
from crossdistill.pipeline.stages.guard import GuardVerdict, TeacherGate
from crossdistill.pipeline.stages.interpolation import InterpolateWithStart
from crossdistill.pipeline.stages.mining import MineRound
from crossdistill.pipeline.stages.outputs import Export, ExportOnnx, Report, Tidy
from crossdistill.pipeline.stages.student import (
    ChooseExpressLane,
    ChooseTeacher,
    DistillRound,
    FinalTest,
    RoundTest,
    ShareTestEncoding,
    ZeroShotBaseline,
    ZeroShotStudent,
)
from crossdistill.pipeline.stages.teacher import TeacherOverBM25, TrainCrossEncoder
from crossdistill.pipeline.stages.transfer import TransferTest
from crossdistill.pipeline.stages.unjudged import UnjudgedQueries


def train_stages(rounds: int) -> Iterator[Stage]:
    yield from (PrepareData(), IndexBM25(), TrainCrossEncoder(), ZeroShotStudent(), ChooseTeacher(), UnjudgedQueries(),
                ZeroShotBaseline(), TeacherGate(), TeacherOverBM25())
    for r in range(1, rounds + 1):
        yield from (MineRound(r), DistillRound(r))
        if rounds > 1:
            yield from (ChooseExpressLane(r), ShareTestEncoding(r), RoundTest(r))
    yield from (GuardVerdict(), InterpolateWithStart(), ChooseExpressLane(), ShareTestEncoding(), FinalTest(), TransferTest(), Export(),
                ExportOnnx(), Report(), Tidy())


def run_stages(ctx: RunContext, stages) -> RunContext:
    for stage in stages:
        if getattr(stage, "round", None) is not None and not ctx.distilling:   # a round's stages, guard said skip
            continue
        if (stage.rank_zero_only and not ctx.is_global_zero) or not stage.applies(ctx):
            continue
        with ctx.recorder(stage.name):
            stage(ctx)
    return ctx


def run(cfg: DictConfig) -> float:
    """The whole pipeline; returns the best dev value of ``cfg.optimized_metric`` (what Hydra sweepers optimise)."""
    ctx = RunContext.start(cfg)
    run_stages(ctx, train_stages(int(cfg.rounds.count)))
    return ctx.best.dev
