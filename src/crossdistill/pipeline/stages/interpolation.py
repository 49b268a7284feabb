"""The forgetting guard: the kept student averaged in weight space with its zero-shot start (WiSE-FT) at each of
``interpolation.alphas``, each priced by dev (the optimized metric, whole corpus), the smallest alpha within
``interpolation.tolerance`` of the best kept. Never test: the test, the express lane's choice and the export all
see the student this stage keeps."""
from __future__ import annotations

from omegaconf import OmegaConf

from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.encoding import encode_corpus
from crossdistill.pipeline.stages.base import Stage
from crossdistill.student.interpolation import choose_alpha, interpolate

PREFIX = "encoder."   # the LightningModule's keys for its SentenceTransformer's weights


def alpha_name(alpha: float) -> str:
    return f"dev_alpha{alpha:g}"


class InterpolateWithStart(Stage):
    """After the last round, before the express lane is chosen for the test."""

    name, needs, provides = "interpolation", ("student", "dev_evaluator"), ("interpolation",)

    def applies(self, ctx: RunContext) -> bool:
        alphas = OmegaConf.select(ctx.cfg, "interpolation.alphas", default=None) or [1.0]
        return any(float(a) < 1 for a in alphas)

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg, best = ctx.cfg, ctx.best
        metric = cfg.optimized_metric.split("/", 1)[1]
        alphas = sorted({float(a) for a in cfg.interpolation.alphas} - {1.0})
        record = {"alphas": {"1": best.dev}, "tolerance": float(cfg.interpolation.tolerance), "metric": f"dev/{metric}"}
        if best.epoch < 0:   # the start itself was kept: nothing distilled to average with
            ctx.interpolation = {**record, "chosen": 1.0, "reason": "the zero-shot start was kept; nothing to average"}
            ctx.console.log(f"interpolation: skipped ({ctx.interpolation['reason']})")
            return
        start = {PREFIX + k: v for k, v in load_bi_encoder(cfg.student.model, cfg.student.normalize).state_dict().items()}
        tuned = {k: v for k, v in best.state.items() if k.startswith(PREFIX)}
        merged = {}
        for alpha in alphas:
            merged[alpha] = {**best.state, **interpolate(start, tuned, alpha)}
            ctx.student.load_state_dict(merged[alpha])
            emb = encode_corpus(ctx, ctx.student.encoder, persist=False)
            # every rank evaluates (as the zero-shot baseline does): each reaches the same figures and choice
            res = ctx.dev_evaluator.evaluate(ctx.student.encoder, "dev", alpha_name(alpha), best.epoch, corpus_emb=emb)
            record["alphas"][f"{alpha:g}"] = res.metrics[metric]
        values = {float(a): v for a, v in record["alphas"].items()}
        chosen = choose_alpha(values, record["tolerance"])
        if chosen < 1:
            best.state, best.dev, best.dev_trace = merged[chosen], values[chosen], alpha_name(chosen)
        ctx.student.load_state_dict(best.state)
        why = (f"alpha {chosen:g} is the smallest within {record['tolerance']:g} of the best dev {metric} "
               f"({max(values.values()):.4f})")
        ctx.interpolation = {**record, "chosen": chosen, "reason": why}
        ctx.console.log("interpolation with the zero-shot start: " + ", ".join(
            f"alpha {a} {v:.4f}" for a, v in record["alphas"].items()) + f" dev {metric} -> kept alpha {chosen:g} ({why})")
