"""Choosing the teacher ensemble's weights (and the express lane's reranker's) on the current student's dev
shortlists, and recording each choice in ``teacher_info``. Used by the ensemble, reranker and mining stages."""
from __future__ import annotations

from crossdistill.evaluation.student_pairs import StudentPairs
from crossdistill.pipeline.context import RunContext
from crossdistill.retrieval.fusion import reciprocal_rank_fusion


def record_choice(ctx: RunContext, name: str, info: dict) -> None:
    """``teacher_info[name]``: the latest choice, with every choice so far under ``rounds`` after the first."""
    earlier = ctx.teacher_info.get(name)
    if earlier is not None:
        info["rounds"] = [*earlier.get("rounds", [earlier]), dict(info)]
    ctx.teacher_info[name] = info


def log_choice(ctx: RunContext, what: str, info: dict, on: str) -> None:
    alone = ", ".join(f"{m} {v:.3f}" for m, v in info["dev_members"].items())
    ctx.console.log(f"{what}: weights {info['weights']} ({info['chosen_on']}): dev nDCG@10 {info['dev_ndcg@10']:.3f} "
                    f"reranking {on} (members alone: {alone})")


def choose_ensemble_weights(ctx: RunContext, when: str = "") -> None:
    """The ensemble's weights, the best combination reranking the current student's dev shortlists (its top-k, or
    their RRF with BM25's: ``ensemble.choose_on``); recorded in ``teacher_info`` (and, after the first choice, under
    ``ensemble.rounds``). A separate reranker (``ensemble.reranker``) is chosen on the same shortlists the first
    time (``reranker``)."""
    ensemble, ev, qrels = ctx.ensemble, ctx.dev_evaluator, ctx.data.qrels["dev"]
    run = ev.retrieve(ctx.student.encoder, sorted(qrels), ctx.corpus_emb)
    lists = ev.shortlists("dev", run) if ensemble.choose_on == "student" else \
        reciprocal_rank_fusion(ctx.bm25_runs["dev"], run, ev.rerank_depth)
    frame = ev.member_frame([(q, c.docid) for q, cands in lists.items() for c in cands],
                            StudentPairs(ctx.student.encoder, ev, run, ctx.corpus_emb))
    on = f"the {ensemble.choose_on} dev top {ev.rerank_depth}"
    record_choice(ctx, "ensemble", info := {**ensemble.choose(frame, qrels), "shortlists": ensemble.choose_on})
    log_choice(ctx, f"teacher ensemble{when}", info, on)
    if ctx.reranker is not ensemble and "reranker" not in ctx.teacher_info:
        record_choice(ctx, "reranker", info := {**ctx.reranker.choose(frame, qrels), "shortlists": "zero-shot dev"})
        log_choice(ctx, "express lane reranker", info, on)
