"""Label-free mode on a collection's own unjudged queries: what the student distils on, and a dev the teacher judges.

A dev of title pseudo-queries asks another task (a title for its title-less body) than the real queries the student
now learns from: on SciFact, one round on the unjudged queries moved the title dev from 0.962 to 0.945, so the run
kept its zero-shot start, while the distilled epoch scored 0.683 on the judged test split against the start's 0.646.
With no judgment at all, what dev can still tell is whether the student learned the teacher's ranking on real
queries it never trained on: held-out unjudged queries, each judged by the teacher ensemble (its top documents of
BM25's and the zero-shot student's fused shortlist). The pseudo-queries' dev has validated the teacher and chosen
the ensemble's weights before this stage runs.
"""
from __future__ import annotations

import dataclasses

from hydra.utils import instantiate

from crossdistill.data.weak import teacher_judgments
from crossdistill.mining.pairs import unjudged_pairs
from crossdistill.pipeline.context import RunContext, bm25_depth
from crossdistill.pipeline.stages.base import Stage
from crossdistill.retrieval.fusion import reciprocal_rank_fusion
from crossdistill.retrieval.student_pairs import StudentPairs


class UnjudgedQueries(Stage):
    """With ``weak_supervision.unjudged_queries`` in label-free mode: the collection's queries no split judges become
    the distillation set, ``dev_queries`` of them (held out) the dev set, judged by the teacher ensemble; its top
    documents count as relevant as many as the pairs treat as better (``pairs.top``, else 2)."""

    name, needs = "unjudged", ("data", "teacher", "student", "dev_evaluator", "bm25_train", "bm25_runs", "corpus_emb")

    def applies(self, ctx: RunContext) -> bool:
        return ctx.data.label_free and bool(ctx.cfg.get("weak_supervision", {}).get("unjudged_queries", False))

    def compute(self, ctx: RunContext, key: str | None) -> None:
        weak, depth = instantiate(ctx.cfg.weak_supervision), bm25_depth(ctx.cfg)
        unjudged = weak.unjudged(ctx.data)
        if unjudged is None:
            ctx.console.log("weak_supervision.unjudged_queries: the collection holds no query that no split judges; "
                            "distilling on the pseudo-queries")
            return
        train, dev = weak.split_unjudged(unjudged)
        if not dev:
            # A handful of queries (cacm: 12 beside its 52 judged ones) is no distillation set and no dev.
            ctx.console.log(f"weak_supervision.unjudged_queries: only {len(train.queries)} unjudged queries (fewer than "
                            f"2 x dev_queries = {2 * weak.dev_queries}); distilling on the pseudo-queries")
            return
        ctx.query_sets = {"unjudged": (train, ctx.bm25_train.search(train.queries, depth))}
        ev, top = ctx.dev_evaluator, unjudged_pairs(instantiate(ctx.cfg.pairs)).top
        bm25_dev = ctx.bm25_train.search({q: unjudged.queries[q] for q in dev}, depth)
        run = ev.retrieve(ctx.student.encoder, dev, ctx.corpus_emb)
        lists = reciprocal_rank_fusion(bm25_dev, run, ev.rerank_depth)
        scores, _ = ev.reranking.scores([(q, c.docid) for q in dev for c in lists.get(q, [])],
                                        StudentPairs(ctx.student.encoder, ev.embeddings, run, ctx.corpus_emb),
                                        ensemble=ctx.teacher)
        judged = teacher_judgments(scores, top)
        # In place: both evaluators hold these mappings.
        ctx.data.qrels["dev"].clear()
        ctx.data.qrels["dev"].update(judged)
        ctx.bm25_runs["dev"] = {q: bm25_dev.get(q, []) for q in judged}
        how = (f"held-out unjudged queries, their relevant documents the teacher's top {top} of BM25's and the "
               f"zero-shot student's fused top {ev.rerank_depth}")
        ctx.data = dataclasses.replace(ctx.data, dev_qids=sorted(judged), dev_judgments=how)
        ctx.console.log(f"distillation: {len(train.queries)} unjudged queries of the collection (no split judges them; "
                        f"pairs: the teacher's top {top} vs the rest); dev: {len(judged)} {how}")
