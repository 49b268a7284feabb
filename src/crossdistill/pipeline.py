"""The stages of one run, in order: data -> BM25 -> zero-shot student -> teacher -> mining -> distillation -> test
-> export. Each stage is timed and its peak memory recorded; expensive outputs (teacher weights, the mined
artifact) are cached under a content hash so sweeps over later stages reuse them."""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only
from rich.console import Console
from torch.utils.data import ConcatDataset, DataLoader

from crossdistill.common.fingerprint import cache_key, state_dict_fingerprint
from crossdistill.common.io import write_parquet_atomic, write_text_atomic
from crossdistill.common.precision import resolve_precision
from crossdistill.common.stages import StageRecorder
from crossdistill.console import results_table
from crossdistill.data.weak import QuerySet
from crossdistill.evaluation.callback import DistillationEvalCallback
from crossdistill.evaluation.evaluator import RetrievalEvaluator
from crossdistill.evaluation.metrics import evaluate
from crossdistill.evaluation.report import write_report
from crossdistill.evaluation.runs import rerank, rerank_head, ties_as_ranks, write_trec_run
from crossdistill.export import export_student, export_teacher
from crossdistill.mining.artifact import ARTIFACT_COLUMNS, load_or_build
from crossdistill.mining.pairs import margin_scale, student_agreement
from crossdistill.mining.scoring import score_shortlists
from crossdistill.retrieval.dense import exact_search
from crossdistill.retrieval.fusion import reciprocal_rank_fusion
from crossdistill.student.data import collate_pairs, pair_examples
from crossdistill.teacher.data import (
    ListDataset,
    collate_lists,
    title_pseudo_groups,
    title_query_sources,
    training_groups,
    validation_groups,
)

console = Console()
REPORTED = ("ndcg@10", "mrr@10", "recall@10", "recall@100")


def make_trainer(cfg: DictConfig, stage: str, out: Path, **overrides) -> pl.Trainer:
    logger = False
    if cfg.get("logger") and "_target_" in cfg.logger:
        # One logger run per stage: CSV files side by side, or one wandb run per stage grouped by run directory.
        target = cfg.logger._target_
        per_stage = {"version": stage} if target.endswith("CSVLogger") else (
            {"name": f"{out.name}-{stage}", "group": out.name} if target.endswith("WandbLogger") else {})
        logger = instantiate(cfg.logger, **per_stage)
    return instantiate(cfg.trainer, logger=overrides.pop("logger", logger), default_root_dir=str(out), **overrides)


def load_best(module: pl.LightningModule, checkpoint: ModelCheckpoint) -> int:
    """Load the best checkpoint's weights into ``module``; returns its epoch (the last one if none was saved)."""
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
        return int(state["epoch"])
    return -1


def resolve_precisions(cfg: DictConfig) -> None:
    """'auto' training and inference precisions -> this machine's, before any cache key is computed from them (a
    teacher trained in bf16 is not the one trained in fp32)."""
    cfg.inference_precision = resolve_precision(cfg.inference_precision)
    cfg.trainer.precision = resolve_precision(cfg.trainer.get("precision", "32-true"))
    console.log(f"precision: training {cfg.trainer.precision}, inference {cfg.inference_precision}")


def train_teacher(cfg, data, bm25, bm25_runs, out: Path):
    key = cache_key(data=data.fingerprint, teacher=OmegaConf.to_container(cfg.teacher, resolve=True),
                    train=data.train_qids, seed=cfg.seed, trainer_precision=str(cfg.trainer.get("precision")))
    cached = Path(cfg.paths.cache_dir) / "teachers" / key
    if cfg.cache.teacher and (cached / "config.json").exists():
        console.log(f"teacher: reusing cached weights {cached}")
        # A cross-encoder folder keeps its trained head: one load, no throwaway fresh model.
        return instantiate(cfg.teacher, model=str(cached)), {"cached": str(cached), "best_epoch": None}
    teacher = instantiate(cfg.teacher)
    hp = teacher.hparams
    groups = training_groups(data.train_qids, data.dataset.queries, data.qrels["train"], bm25_runs["train"],
                             data.train_doc_text, hp.negatives, hp.negative_depth, cfg.seed)
    if hp.pseudo_queries and not data.label_free:  # label-free: the train queries are title pseudo-queries already
        corpus = data.dataset.corpus
        groups += title_pseudo_groups(data.doc_ids, corpus["title"], corpus["text"], bm25.search,
                                      hp.pseudo_queries, hp.negatives, hp.negative_depth, cfg.seed)
    val = validation_groups(data.dev_qids, data.dataset.queries, data.qrels["dev"], bm25_runs["dev"],
                            data.train_doc_text, hp.val_depth)
    console.log(f"teacher: {len(groups)} training groups of {1 + hp.negatives}, {len(val)} dev shortlists")
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints" / "teacher", filename="teacher-{epoch:02d}",
                           monitor="teacher/val_ndcg@10", mode="max", save_top_k=1)
    trainer = make_trainer(cfg, "teacher", out, max_epochs=hp.epochs, callbacks=[ckpt])
    trainer.fit(teacher,
                DataLoader(ListDataset(groups), batch_size=hp.batch_size, shuffle=True, collate_fn=collate_lists),
                DataLoader(ListDataset(val), batch_size=8, collate_fn=collate_lists))
    best_epoch = load_best(teacher, ckpt)
    if cfg.cache.teacher and rank_zero_only.rank == 0:
        tmp = cached.with_name(cached.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        export_teacher(teacher, tmp)
        shutil.rmtree(cached, ignore_errors=True)
        os.replace(tmp, cached)
    return teacher, {"best_epoch": best_epoch, "best_val_ndcg@10": float(ckpt.best_model_score or float("nan"))}


def dev_history(out: Path) -> list[dict]:
    """Per-epoch dev metrics, as the evaluation callback wrote them beside its traces."""
    return [json.loads(p.read_text()) for p in sorted((out / "traces").glob("dev_epoch=*.metrics.json"))]


def mine(cfg, data, bm25, teacher, student, evaluator, corpus_emb, query_set: QuerySet, bm25_run, miner,
         name: str = "train") -> dict:
    """One query set's shortlists, scored by the teacher (a cached artifact): {"scored": frame, "info": ...}."""
    cache = Path(cfg.paths.cache_dir)
    qids = list(query_set.queries)
    # Encoded once per round: for dense shortlists and the student cosine of every mined pair.
    q_train = evaluator.encode_query_texts(student.encoder, [query_set.queries[q] for q in qids])
    dense = exact_search(q_train, corpus_emb, qids, data.doc_ids, evaluator.retrieval_depth) if miner.needs_dense \
        else None
    shortlists = miner.shortlists(bm25_run, dense)
    key = cache_key(teacher=state_dict_fingerprint(teacher), data=data.fingerprint, qids=qids,
                    miner={"name": miner.name, **vars(miner)}, student=state_dict_fingerprint(student),
                    max_length=teacher.hparams.max_length, precision=cfg.inference_precision,
                    schema=ARTIFACT_COLUMNS,
                    # The labelled set's key predates query sets: left as it was, its cached artifacts stay valid.
                    **({} if name == "train" else {"query_set": name}))
    path = cache / "mining" / f"{key}.parquet"
    predictor = make_trainer(cfg, "mining", Path(cfg.paths.output_dir), logger=False,
                             precision=cfg.inference_precision, callbacks=[], max_epochs=1)

    def score():
        df = score_shortlists(predictor, teacher, shortlists, query_set.queries, query_set.doc_text,
                              query_set.qrels, teacher.hparams.inference_batch_size)
        # The other signals a teacher ensemble may mix in: BM25 and the current student, for every pair.
        df["bm25_score"] = bm25.score_pairs(query_set.queries, list(zip(df.qid, df.docid)))
        q_emb = dict(zip(qids, q_train))
        rows = [data.dataset.doc_index[d] for d in df.docid]
        df["dense_score"] = (torch.stack([q_emb[q] for q in df.qid]) * corpus_emb[rows]).sum(-1).numpy()
        return df

    artifact, reused = load_or_build(path, score)
    console.log(f"mining ({name} queries): {len(artifact)} scored pairs ({'reused' if reused else 'new'}) -> {path}")
    return {"scored": artifact.to_pandas(), "info": {"artifact": str(path), "reused": reused,
                                                     "shortlisted": len(artifact), "queries": len(qids)}}


def mine_round(cfg, data, bm25, teacher, student, evaluator, corpus_emb, query_sets, miner, out: Path,
               tag: str = "") -> dict:
    """Every query set mined, the teacher's scores combined and turned into pairs; the student's dataset."""
    ensemble, strategy = instantiate(cfg.ensemble), instantiate(cfg.pairs)
    scored, pairs, examples, info = [], [], [], {}
    for name, (query_set, bm25_run) in query_sets.items():
        mined = mine(cfg, data, bm25, teacher, student, evaluator, corpus_emb, query_set, bm25_run, miner, name)
        frame = mined["scored"]
        frame["teacher_score"] = ensemble.combine(frame)
        set_pairs = strategy.build(frame)
        scored.append(frame)
        pairs.append(set_pairs)
        examples.append(pair_examples(set_pairs, query_set.queries, query_set.doc_text))
        # The labelled set keeps the record's top-level keys; others are recorded under their own name.
        if name == "train":
            info.update(mined["info"])
        else:
            info[name] = {**mined["info"], "pairs": len(set_pairs)}
    scored, pairs = pd.concat(scored, ignore_index=True), pd.concat(pairs, ignore_index=True)
    if rank_zero_only.rank == 0:
        write_parquet_atomic(scored, out / f"mining{tag}" / "artifact.parquet")
        write_parquet_atomic(pairs, out / f"mining{tag}" / "pairs.parquet")
    # How much is left to teach: pairs the student already orders as the teacher does teach it little.
    agreement, ratio = student_agreement(scored, pairs), margin_scale(scored, pairs)
    console.log(f"pairs{tag}: {len(pairs)} (query, better, worse, margin) rows, mean |margin| "
                f"{pairs.margin.abs().mean():.2f} ({ratio:.1f} x the student's); the student already agrees with "
                f"the teacher on {agreement:.1%}")
    info.update({"pairs": len(pairs), "miner": miner.name, "shortlisted": len(scored),
                 "student_agreement": agreement, "margin_scale": ratio})
    return {"pairs": pairs, "dataset": ConcatDataset(examples), "info": info}


def distillation_query_sets(cfg, data, bm25, bm25_runs, depth: int) -> dict:
    """The labelled train queries, plus title pseudo-queries when ``weak_supervision.distill_queries`` asks."""
    sets = {"train": (QuerySet({q: data.dataset.queries[q] for q in data.train_qids}, data.qrels["train"],
                               data.train_doc_text), bm25_runs["train"])}
    teacher_docs = []
    if cfg.teacher.get("pseudo_queries") and not data.label_free:
        corpus = data.dataset.corpus
        teacher_docs = [data.doc_ids[i] for i in title_query_sources(
            corpus["title"], corpus["text"], cfg.teacher.pseudo_queries, random.Random(cfg.seed))]
    pseudo = instantiate(cfg.weak_supervision).distillation_queries(data, exclude_docs=teacher_docs)
    if pseudo is not None:
        sets["pseudo"] = (pseudo, bm25.search(pseudo.queries, depth))
        console.log(f"distillation: {len(pseudo.queries)} title pseudo-queries beside {len(data.train_qids)} "
                    "labelled ones (none from dev/test-judged documents or the teacher's title queries)")
    return sets


def run(cfg: DictConfig) -> float:
    out, cache = Path(cfg.paths.output_dir), Path(cfg.paths.cache_dir)
    rounds = int(cfg.rounds.count)
    if rounds < 1:  # checked before any expensive stage
        raise ValueError(f"rounds.count must be >= 1, got {rounds}")
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    stages = StageRecorder(console)
    resolve_precisions(cfg)

    with stages("data"):
        data = instantiate(cfg.data).load(cache)
        console.log(f"{data.dataset.name}: {len(data.doc_ids)} docs; {len(data.train_qids)} train / "
                    f"{len(data.dev_qids)} dev / {len(data.qrels['test'])} test queries")
        if not data.train_qids:
            data = instantiate(cfg.weak_supervision).apply(data)
            console.log(f"label-free mode (no train qrels): {len(data.train_qids)} train / {len(data.dev_qids)} dev "
                        "title pseudo-queries; documents are shown to training without their titles")
    queries = data.dataset.queries

    with stages("bm25"):
        bm25 = instantiate(cfg.bm25).index(data.doc_ids, data.doc_texts)
        depth = max(cfg.teacher.negative_depth, cfg.miner.depth, cfg.evaluation.retrieval_depth)
        bm25_runs = {split: bm25.search({q: queries[q] for q in data.qrels[split]}, depth)
                     for split in ("train", "dev", "test")}

    student = instantiate(cfg.student)
    with stages("teacher"):
        teacher, teacher_info = train_teacher(cfg, data, bm25, bm25_runs, out)

    # _partial_: hydra would copy the corpus-sized arguments through OmegaConf (slow); bind them afterwards.
    evaluator: RetrievalEvaluator = instantiate(cfg.evaluation, _partial_=True)(
        doc_ids=data.doc_ids, doc_texts=data.doc_texts, queries=queries, qrels=data.qrels,
        bm25_runs=bm25_runs, teacher=teacher.model, trace_dir=out / "traces",
        max_doc_length=student.hparams.eval_max_doc_length, max_query_length=student.hparams.max_query_length,
        cache_dir=cache / "evaluation", cache_scope=cache_key(data=data.fingerprint, queries=sorted(queries.items())))

    with stages("student_init"):
        init_emb = evaluator.encode_corpus(student.encoder, persist=True)
        init = {split: evaluator.evaluate(student.encoder, split, f"{split}_init", -1, corpus_emb=init_emb)
                for split in ("dev", "test")}

    with stages("teacher_rerank"):
        k = cfg.evaluation.rerank_depth
        bm25_test = bm25_runs["test"]
        scores = evaluator.teacher_scores([(q, d) for q, hits in bm25_test.items() for d, _ in hits[:k]])
        teacher_run = rerank_head(bm25_test, rerank(bm25_test, scores, k), k)

    query_sets = distillation_query_sets(cfg, data, bm25, bm25_runs, depth)
    best_dev, best_epoch, best_state, epoch_offset = float("-inf"), -1, None, 0
    per_round, corpus_emb, miner_cfg = [], init_emb, cfg.miner
    for r in range(1, rounds + 1):
        tag = "" if r == 1 else f"_round{r}"
        with stages(f"mining{tag}"):
            mined = mine_round(cfg, data, bm25, teacher, student, evaluator, corpus_emb, query_sets,
                               instantiate(miner_cfg), out, tag)
        if student.auto_scale and r == 1:
            # Fixed from round 1 on: a scale that moved between rounds would move the target with it.
            if not mined["info"]["margin_scale"] > 0:
                raise ValueError("student.scale=auto: the mined pairs give no student margin to measure the scale "
                                 "from; set student.scale to a number")
            student.set_scale(mined["info"]["margin_scale"])
            console.log(f"student.scale=auto -> {student.loss_fn.scale:.2f}")
        with stages(f"student{tag}"):
            hp = student.hparams
            callback = DistillationEvalCallback(evaluator, "dev", epoch_offset=epoch_offset)
            ckpt = ModelCheckpoint(dirpath=out / "checkpoints" / f"student{tag}", filename="student-{epoch:02d}",
                                   monitor=cfg.optimized_metric, mode="max", save_top_k=1,
                                   save_on_train_epoch_end=True)
            trainer = make_trainer(cfg, f"student{tag}", out, max_epochs=hp.epochs, callbacks=[callback, ckpt],
                                   limit_val_batches=0, num_sanity_val_steps=0)
            loader = DataLoader(mined["dataset"], batch_size=hp.batch_size, shuffle=True, collate_fn=collate_pairs)
            # Re-seeded here: otherwise the shuffle and dropout streams depend on whether the teacher was trained
            # in this run or loaded from the cache (measured: dev nDCG@10 0.597 vs 0.570 for the same config).
            pl.seed_everything(cfg.seed + r - 1, workers=True)
            trainer.fit(student, loader)
            round_epoch = load_best(student, ckpt)
            round_epoch = epoch_offset + (round_epoch if round_epoch >= 0 else hp.epochs - 1)
            # From the metrics files, not the callback: under ddp_spawn the callback's state stays in the workers.
            metric = cfg.optimized_metric.split("/", 1)[1]
            round_dev = max((h[metric] for h in dev_history(out) if epoch_offset <= h["epoch"] < epoch_offset
                             + hp.epochs), default=float("nan"))
            epoch_offset += hp.epochs
            # Selection across rounds by dev only: a round that does not help is discarded, not reported as best.
            if round_dev > best_dev or best_state is None:
                best_dev, best_epoch = round_dev, round_epoch
                best_state = {k: v.detach().clone() for k, v in student.state_dict().items()}
        record = {"round": r, "dev": round_dev, "epoch": round_epoch, **mined["info"]}
        if rank_zero_only.rank == 0 and rounds > 1:
            with stages(f"test{tag}"):
                res = evaluator.evaluate(student.encoder, "test", f"test_round{r}", round_epoch)
            record["test"] = {m: res.metrics[m] for m in (*REPORTED, "lift@3")}
        per_round.append(record)
        if r < rounds:
            # The next round re-mines with the best student so far: its own mistakes become the negatives.
            student.load_state_dict(best_state)
            corpus_emb = evaluator.encode_corpus(student.encoder, persist=True)
            miner_cfg = cfg.rounds.miner
    student.load_state_dict(best_state)
    history = dev_history(out)

    if rank_zero_only.rank != 0:
        return best_dev
    with stages("test"):
        final = evaluator.evaluate(student.encoder, "test", "test_final", best_epoch)

    with stages("export"):
        export_student(student, out / "student")
        export_teacher(teacher, out / "teacher")

    qrels_test = data.qrels["test"]
    depth = evaluator.retrieval_depth
    # Zero-shot hybrid first stage: what a user gets today without any training.
    def hybrid(dense_run):  # RRF of BM25 and a dense run, as a full ranking to the retrieval depth
        return {q: [(c.docid, c.score) for c in cands]
                for q, cands in reciprocal_rank_fusion(bm25_test, dense_run, depth).items()}

    hybrid_run, hybrid_student = hybrid(init["test"].run), hybrid(final.run)
    k = evaluator.rerank_depth
    # The teacher reranking the distilled student's top-k, the student's order below it (recall@100 unchanged).
    rerank_student = rerank_head(final.run, final.reranked, k)

    def headline(metrics):
        return {m: metrics[m] for m in (*REPORTED, "lift@3")}

    systems = {
        "bm25": evaluate(bm25_test, qrels_test, REPORTED),
        "hybrid_zero_shot": evaluate(hybrid_run, qrels_test, REPORTED),
        "student_init": headline(init["test"].metrics),
        "teacher_rerank": evaluate(teacher_run, qrels_test, REPORTED),
        "teacher_rerank_student": evaluate(rerank_student, qrels_test, REPORTED),
        **{f"student_round{rec['round']}": rec["test"] for rec in per_round if "test" in rec},
        "student": headline(final.metrics),
        "hybrid_student": evaluate(hybrid_student, qrels_test, REPORTED),
    }
    runs_dir = out / "runs"
    for name, r in (("bm25", bm25_test), ("hybrid_zero_shot", hybrid_run), ("student_init", init["test"].run),
                    ("teacher_rerank", teacher_run), ("teacher_rerank_student", rerank_student),
                    ("student", final.run), ("hybrid_student", hybrid_student)):
        write_trec_run(ties_as_ranks(r), runs_dir / f"{name}.test.trec", tag=name)
    results = {
        "dataset": data.dataset.name, "split": "test", "label_free": data.label_free, "queries": len(qrels_test), "docs": len(data.doc_ids),
        "systems": systems, "best_epoch": best_epoch, "optimized_metric": cfg.optimized_metric,
        "dev": {"student_init": init["dev"].metrics, "best": best_dev, "history": history},
        "test_final": final.metrics, "teacher": teacher_info, "mining": per_round[0], "rounds": per_round,
        "student_scale": student.loss_fn.scale,
        "stages": stages.stages, "total_wall_s": stages.total_wall_s, "peak_rss_mb": stages.peak_rss_mb,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_text_atomic(json.dumps(results, indent=2, default=float), out / "results.json")
    report = write_report(out)
    console.print(results_table(results))
    console.print(f"report: {report}")
    console.print(f"run directory: {out}")
    return best_dev
