"""Mining: each round's shortlists for every query set, scored by the teacher (a content-keyed artifact per query
set, reused when its key matches), combined into teacher scores and turned into distillation pairs."""
from __future__ import annotations

import gc

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from torch.utils.data import ConcatDataset

from crossdistill.common.codes import positions_in
from crossdistill.common.fingerprint import cache_key, state_dict_fingerprint
from crossdistill.common.instantiate import make_trainer
from crossdistill.common.io import write_parquet_atomic
from crossdistill.common.layout import round_suffix
from crossdistill.data.beir import DataError
from crossdistill.data.weak import QuerySet
from crossdistill.mining.artifact import ARTIFACT_COLUMNS, load_or_build
from crossdistill.mining.pairs import margin_scale, student_agreement, student_margins, unjudged_pairs
from crossdistill.mining.scoring import earlier_scores, shortlist_frame, teacher_scores
from crossdistill.pipeline.context import MinedRound, RunContext, bm25_depth
from crossdistill.pipeline.encoding import encode_corpus
from crossdistill.pipeline.ensemble_choice import choose_ensemble_weights
from crossdistill.pipeline.stages.base import Stage
from crossdistill.retrieval.dense import pair_scores
from crossdistill.retrieval.first_stages import SearchScope
from crossdistill.retrieval.fusion import ShortlistTable
from crossdistill.student.data import pair_examples


def distillation_query_sets(ctx: RunContext) -> dict:
    """The labelled train queries, plus title pseudo-queries when ``weak_supervision.distill_queries`` asks (never
    from the documents whose titles the teacher learned as queries). (Label-free mode on unjudged queries sets its
    own: stages/unjudged.py.)"""
    data, cfg = ctx.data, ctx.cfg
    sets = {"train": (QuerySet({q: data.dataset.queries[q] for q in data.train_qids}, data.qrels["train"],
                               data.train_doc_text), ctx.bm25_runs["train"])}
    pseudo = instantiate(cfg.weak_supervision).distillation_queries(data, exclude_docs=ctx.teacher_data.title_docs())
    if pseudo is not None:
        sets["pseudo"] = (pseudo, ctx.bm25_train.search(pseudo.queries, bm25_depth(cfg)))
        ctx.console.log(f"distillation: {len(pseudo.queries)} title pseudo-queries beside {len(data.train_qids)} "
                        "labelled ones (none from dev/test-judged documents or the teacher's title queries)")
    return sets


def check_shortlists(shortlists, doc_index, miner) -> None:
    if isinstance(shortlists, ShortlistTable):   # columns from a run held as arrays: its ids are the corpus' own
        return
    for qid, cands in shortlists.items():
        unknown = next((c.docid for c in cands if c.docid not in doc_index), None)
        if unknown is not None:
            raise DataError(getattr(miner.first_stage, "path", miner.name),
                            f"the shortlist of query {qid!r} names document {unknown!r}, which is not in the corpus")


def mine_query_set(ctx: RunContext, name: str, query_set: QuerySet, bm25_run, miner) -> dict:
    """One query set's shortlists, scored by the teacher (a cached artifact): {"scored": frame, "info": ...}."""
    cfg, data, teacher, student, evaluator = ctx.cfg, ctx.data, ctx.cross_encoder, ctx.student, ctx.dev_evaluator
    qids = list(query_set.queries)
    # Encoded once per round: for dense shortlists and the student cosine of every mined pair.
    q_emb = evaluator.embeddings.queries(student.encoder, [query_set.queries[q] for q in qids])
    scope = SearchScope(query_set.queries, bm25_run, bm25=ctx.bm25_train, dense=lambda: evaluator.settings.index.search(
        q_emb, ctx.corpus_emb, qids, data.doc_ids, evaluator.retrieval_depth))
    shortlists = miner.shortlists(scope)
    check_shortlists(shortlists, data.dataset.doc_index, miner)
    key = cache_key(teacher=ctx.teacher_fingerprint(), data=data.fingerprint, qids=qids, miner=miner.identity(),
                    student=state_dict_fingerprint(student), max_length=teacher.hparams.max_length, precision=cfg.inference_precision,
                    schema=ARTIFACT_COLUMNS,
                    **({"backend": cfg.inference_backend} if cfg.inference_backend != "torch" else {}), **data.training_view,
                    # The labelled set's key predates query sets: left as it was, its cached artifacts stay valid.
                    **({} if name == "train" else {"query_set": name}))
    path = ctx.layout.cached_artifact(key)
    # The shortlists as columns; their candidate objects are freed before the teacher scores millions of pairs.
    df = shortlist_frame(shortlists, query_set.qrels)
    del shortlists, scope

    earlier = [p for p in ctx.scored_artifacts.get(name, ()) if p.exists()]
    counts = {}

    def score():
        # Pairs an earlier round of this run already had scored keep that logit (the same frozen teacher and texts):
        # round 2 re-mines about half of round 1's pairs. Only the rest reach the teacher.
        ce = earlier_scores(df, [pd.read_parquet(p, columns=["qid", "docid", "ce_score"]) for p in earlier])
        todo = np.flatnonzero(np.isnan(ce))
        counts.update(teacher_scored=len(todo), earlier_round_scores=len(df) - len(todo))
        if len(todo):
            predictor = make_trainer(cfg, "mining", ctx.layout.root, logged=False, precision=cfg.inference_precision,
                                     callbacks=[], max_epochs=1)   # made here: freed with what its loops hold
            # (round 1 passes the frame itself: no copy of millions of rows)
            pending = df if len(todo) == len(df) else df[["qid", "docid"]].iloc[todo]
            teacher.predict_backend = cfg.inference_backend
            ce[todo] = teacher_scores(predictor, teacher, pending, query_set.queries, query_set.doc_text,
                                      teacher.hparams.inference_batch_size, exchange=ctx.layout.exchange)
            # Lightning's prediction loop keeps every batch's indices (a Python int per pair) in reference cycles
            del predictor
            gc.collect()
        df["ce_score"] = ce
        # The other signals a teacher ensemble may mix in: BM25 and the current student, for every pair.
        df["bm25_score"] = ctx.bm25_train.score_pairs(query_set.queries, df.qid, df.docid)
        df["dense_score"] = pair_scores(q_emb, ctx.corpus_emb, positions_in(pd.Index(qids), df.qid, "query set"),
                                        data.dataset.rows_of(df.docid))
        return df

    artifact, reused = load_or_build(path, score)
    ctx.scored_artifacts.setdefault(name, []).append(path)
    how = "reused: its key matched" if reused else "new" if not counts.get("earlier_round_scores") else \
        f"new; the teacher scored {counts['teacher_scored']}, {counts['earlier_round_scores']} kept an earlier " \
        "round's score"
    ctx.console.log(f"mining ({name} queries): {len(artifact)} scored pairs ({how}) -> {path}")
    return {"scored": artifact, "info": {"artifact": str(path), "reused": reused, **counts,
                                         "shortlisted": len(artifact), "queries": len(qids)}}


def add_member_scores(ctx: RunContext, frame: pd.DataFrame, query_set: QuerySet) -> pd.DataFrame:
    """The teacher's members' scores the cached artifact does not hold (frozen bi-encoders: cosines from cached
    embeddings), for every scored pair."""
    for member in ctx.teacher.members:
        column = ctx.teacher.column(member)
        if column not in frame:
            frame[column] = ctx.dev_evaluator.reranking.scorers[member](query_set.queries, frame.qid, frame.docid, None)
    return frame


class MineRound(Stage):
    """Round 1 mines with ``miner``; each later round re-mines with the best student so far (its own mistakes
    become the negatives), scores the new shortlists with the same teacher, and builds the round's pairs."""

    needs = ("data", "cross_encoder", "teacher_data", "student", "dev_evaluator", "bm25_train", "corpus_emb", "teacher")
    provides = ("mined",)

    def __init__(self, round_: int):
        self.round, self.name = round_, f"mining{round_suffix(round_)}"

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg, student = ctx.cfg, ctx.student
        if self.round > 1:
            student.load_state_dict(ctx.best.state)
            ctx.corpus_emb = encode_corpus(ctx, student.encoder)
            if ctx.teacher.follows_student:   # the student member is now this student: dev chooses again
                choose_ensemble_weights(ctx, f" for round {self.round}")
        if ctx.query_sets is None:
            ctx.query_sets = distillation_query_sets(ctx)
        miner = instantiate(cfg.miner if self.round == 1 else cfg.rounds.miner)
        ensemble, strategy = ctx.teacher, instantiate(cfg.pairs)
        scored, pairs, examples, info = [], [], [], {}
        main = next(iter(ctx.query_sets))
        for name, (query_set, bm25_run) in ctx.query_sets.items():
            mined = mine_query_set(ctx, name, query_set, bm25_run, miner)
            frame = add_member_scores(ctx, mined["scored"], query_set)
            frame["teacher_score"] = ensemble.combine(frame)
            set_pairs = (strategy if query_set.qrels else unjudged_pairs(strategy)).build(frame)
            scored.append(frame)
            pairs.append(set_pairs)
            examples.append(pair_examples(set_pairs, query_set.queries, query_set.doc_text))
            # The main set (labelled, or unjudged) keeps the record's top-level keys; others are under their own name.
            if name == main:
                info.update(mined["info"], **({} if name == "train" else {"query_set": name}))
            else:
                info[name] = {**mined["info"], "pairs": len(set_pairs)}
        # (one query set: its frames as they are; concatenating copies millions of rows)
        scored, pairs = (parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True) for parts in (scored, pairs))
        if ctx.is_global_zero:
            write_parquet_atomic(scored, ctx.layout.mining(self.round) / "artifact.parquet")
            write_parquet_atomic(pairs, ctx.layout.mining(self.round) / "pairs.parquet")
        # How much is left to teach: pairs the student already orders as the teacher does teach it little.
        student_margin = student_margins(scored, pairs)
        agreement, ratio = student_agreement(pairs, student_margin), margin_scale(pairs, student_margin)
        ctx.console.log(f"pairs{round_suffix(self.round)}: {len(pairs)} (query, better, worse, margin) rows, mean "
                        f"|margin| {pairs.margin.abs().mean():.2f} ({ratio:.1f} x the student's); the student "
                        f"already agrees with the teacher on {agreement:.1%}")
        info.update({"pairs": len(pairs), "miner": miner.name, "shortlisted": len(scored),
                     "student_agreement": agreement, "margin_scale": ratio})
        ctx.mined = MinedRound(pairs, ConcatDataset(examples), info)
