"""Choosing the teacher's weights (and the express lane's) on the current student's dev shortlists, and recording
each choice in ``teacher_info``. Used by the teacher, express lane and mining stages."""
from __future__ import annotations

import pandas as pd

from crossdistill.evaluation.runs import reranked_ndcg
from crossdistill.pipeline.context import RunContext
from crossdistill.retrieval.fusion import reciprocal_rank_fusion
from crossdistill.retrieval.student_pairs import StudentPairs


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
    """The teacher's weights, the best combination reranking the current student's dev shortlists (its top-k, or
    their RRF with BM25's: ``ensemble.choose_on``); recorded in ``teacher_info`` (and, after the first choice, under
    ``ensemble.rounds``). A separate express lane (``ensemble.express_lane``) is chosen on the same shortlists the
    first time (``express_lane``)."""
    ensemble, ev, qrels = ctx.teacher, ctx.dev_evaluator, ctx.data.qrels["dev"]
    run = ev.retrieve(ctx.student.encoder, sorted(qrels), ctx.corpus_emb)
    lists = ev.shortlists("dev", run) if ensemble.choose_on == "student" else \
        reciprocal_rank_fusion(ctx.bm25_runs["dev"], run, ev.rerank_depth)
    frame = ev.reranking.frame([(q, c.docid) for q, cands in lists.items() for c in cands],
                               StudentPairs(ctx.student.encoder, ev.embeddings, run, ctx.corpus_emb))
    on = f"the {ensemble.choose_on} dev top {ev.rerank_depth}"
    # The student's own order of the same shortlists, beside the teacher's: what the guard compares (stages/guard.py)
    order = {(q, docid): -i for q, ranked in run.items() for i, (docid, _) in enumerate(ranked)}
    student = reranked_ndcg(frame, pd.Series([order.get(k, -1e9) for k in zip(frame.qid, frame.docid)],
                                             index=frame.index, dtype=float), qrels)
    record_choice(ctx, "ensemble", info := {**ensemble.choose(frame, qrels), "shortlists": ensemble.choose_on,
                                            "dev_student": student})
    log_choice(ctx, f"teacher{when}", info, on)
    if ctx.express_lane is not ensemble and "express_lane" not in ctx.teacher_info:
        record_choice(ctx, "express_lane", info := {**ctx.express_lane.choose(frame, qrels), "shortlists": "zero-shot dev"})
        log_choice(ctx, "express lane", info, on)
