"""The keep-the-start guard (``rounds.keep_zero_shot``): distillation must show on dev that it helps, or the run keeps
and exports the zero-shot start, saying why in the console and in results.json (``guard``).

Checks on dev, never on test:

- before any mining (``rounds.teacher_must_beat_start``): a dev on which the start already scores at least
  ``ensemble.saturated`` cannot confirm a gain (label-free title pseudo-queries: 0.975 at the start and 0.976 after a
  distillation that lost 0.04 on the real queries); and the teacher, reranking the start's own dev shortlists, must
  rank them better than the start does: a teacher no better than what it would teach has nothing dev can confirm.
  Either way the rounds are skipped;
- after the rounds: a distilled epoch must beat the start's dev figure (DistillRound keeps the best by dev, the start
  included), else the start is what the run keeps.
"""
from __future__ import annotations

from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage


def _metric(ctx: RunContext) -> str:
    return ctx.cfg.optimized_metric.split("/", 1)[1]


class TeacherGate(Stage):
    """Before mining, once the start is evaluated on the dev that will judge the rounds: skip distillation when dev
    cannot confirm a gain (the start already at ``ensemble.saturated`` or above on it) or when the teacher does not
    rerank the start's dev shortlists better than the start orders them (``teacher_info['ensemble']``: both figures,
    on the shortlists the teacher's weights were chosen on)."""

    name, needs = "teacher_gate", ("teacher", "init")

    def applies(self, ctx: RunContext) -> bool:
        rounds = ctx.cfg.rounds
        return bool(rounds.get("keep_zero_shot", True) and rounds.get("teacher_must_beat_start", True))

    def compute(self, ctx: RunContext, key: str | None) -> None:
        metric, info = _metric(ctx), (ctx.teacher_info or {}).get("ensemble") or {}
        start, saturated = float(ctx.init["dev"].metrics[metric]), float(ctx.cfg.ensemble.get("saturated", 0.95))
        ctx.guard = {}
        if "dev_student" in info:   # a lone cross-encoder with fixed weights was never measured against the start
            ctx.guard = {"teacher_dev": float(info["dev_ndcg@10"]), "start_dev_shortlists": float(info["dev_student"])}
        teacher, own = ctx.guard.get("teacher_dev"), ctx.guard.get("start_dev_shortlists")
        if start >= saturated:
            reason = (f"the zero-shot start already scores {start:.4f} on dev ({metric}; >= ensemble.saturated "
                      f"{saturated:g}): this dev cannot confirm a gain, so distillation was skipped and the start kept")
        elif teacher is not None and not teacher > own + 1e-9:
            reason = (f"the teacher ranks the start's dev shortlists no better than the start does (nDCG@10 "
                      f"{teacher:.4f} vs {own:.4f}): it has nothing dev can confirm to teach, so distillation was "
                      f"skipped and the zero-shot start kept")
        else:
            if teacher is not None:
                ctx.console.log(f"guard: the teacher ranks the start's dev shortlists better than the start does "
                                f"(nDCG@10 {teacher:.4f} vs {own:.4f}); the start's dev {metric} {start:.4f}: distilling")
            return
        ctx.guard.update(kept="start", distilled=False, reason=reason + " (rounds.teacher_must_beat_start)")
        ctx.console.log(f"[yellow]guard: {ctx.guard['reason']}")


class GuardVerdict(Stage):
    """After the rounds: which student the run keeps (the start or a distilled epoch), by dev, and why."""

    name, needs, rank_zero_only = "guard", ("init",), False

    def applies(self, ctx: RunContext) -> bool:
        return bool(ctx.cfg.rounds.get("keep_zero_shot", True))

    def compute(self, ctx: RunContext, key: str | None) -> None:
        metric, record = _metric(ctx), dict(ctx.guard or {})
        start = float(ctx.init["dev"].metrics[metric])
        distilled = max((float(r["dev"]) for r in ctx.rounds), default=None)
        record.update(metric=f"dev/{metric}", start_dev=start, distilled_dev=distilled)
        if record.get("kept") != "start":   # the gate let the rounds run
            if ctx.best.epoch < 0:
                record.update(kept="start", distilled=True, reason=(
                    f"no distilled epoch beat the zero-shot start on dev (best {distilled:.4f} vs the start's "
                    f"{start:.4f}, {metric}); the run keeps and exports the start"))
            else:
                record.update(kept="distilled", distilled=True, reason=(
                    f"epoch {ctx.best.epoch} beat the zero-shot start on dev ({ctx.best.dev:.4f} vs {start:.4f}, "
                    f"{metric})"))
        ctx.guard = record
        style = "[yellow]" if record["kept"] == "start" else ""
        ctx.console.log(f"{style}guard: kept the {'zero-shot start' if record['kept'] == 'start' else 'distilled student'}"
                        f": {record['reason']}")
