"""Full-corpus evaluation of a student, with the express lane reranking its shortlist (lift@3) and a score trace."""
from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import torch
from sentence_transformers import SentenceTransformer

from crossdistill.common.distributed import shard
from crossdistill.common.io import write_parquet_atomic, write_text_atomic
from crossdistill.common.layout import RunLayout
from crossdistill.data.corpus import Corpus
from crossdistill.evaluation.metrics import evaluate, lift_at_k
from crossdistill.evaluation.runs import rerank, reranked_ndcg
from crossdistill.evaluation.taxonomy import classify_queries, lift_by_slice, taxonomy_counts
from crossdistill.evaluation.trace import build_trace, write_trace
from crossdistill.models.runtimes import BACKENDS
from crossdistill.retrieval.corpus_embeddings import CorpusEmbeddings
from crossdistill.retrieval.dense import exact_search
from crossdistill.retrieval.fusion import reciprocal_rank_fusion, shortlist_from_run
from crossdistill.retrieval.index import ExactSearch, recall_against_exact
from crossdistill.retrieval.student_pairs import StudentPairs
from crossdistill.types import Qrels, Run, Shortlists

RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "ndcg@3", "p@3")
HEADLINE = ("ndcg@10", "mrr@10", "recall@10", "recall@100")


@dataclass
class EvaluationSettings:
    """The config group ``evaluation``: how deep the student retrieves (recall@100 needs 100), how many of its top
    documents the teacher reranks (fused with BM25's when ``shortlist="hybrid"``), batch sizes, precision, the text
    lengths the student encodes with, and the lift@k slices."""

    retrieval_depth: int = 100
    rerank_depth: int = 20
    shortlist: str = "student"
    batch_size: int = 64
    teacher_batch_size: int = 64
    precision: str = "bf16"
    backend: str = "torch"   # the inference runtime: torch | onnx | onnx-int8 | openvino (models/runtimes.py)
    max_doc_length: int | None = 256   # None: the encoder's own max_seq_length
    max_query_length: int = 64
    lift_k: int = 3
    slices: Mapping | None = None
    show_progress: bool = True
    index: Any = None    # a search backend (evaluation/index: exact, faiss_flat, faiss_hnsw, faiss_ivf); None = exact
    # Per-epoch dev evaluation over the whole corpus (full), or over a sample of it: every judged document of the
    # split, the BM25 top retrieval_depth of its queries, and epoch_sample others drawn at random (seeded). Test
    # evaluations always search the whole corpus.
    epoch_corpus: str = "full"
    epoch_sample: int = 10_000
    seed: int = 13
    # Whole-corpus embeddings in memory, or written block by block to a .npy file and memory-mapped (disk): for
    # corpora whose embeddings do not fit (8.8M x 384 fp32 = 13 GiB). Under the cache (persisted) or the run folder.
    embeddings: str = "memory"
    # Other collections the run's students are evaluated on after the test (pipeline/stages/transfer.py)
    transfer: Sequence[str] = ()

    def __post_init__(self):
        if self.embeddings not in ("memory", "disk"):
            raise ValueError(f"evaluation.embeddings must be 'memory' or 'disk', got {self.embeddings!r}")
        if self.epoch_corpus not in ("full", "sample"):
            raise ValueError(f"evaluation.epoch_corpus must be 'full' or 'sample', got {self.epoch_corpus!r}")
        if self.shortlist not in ("student", "hybrid"):
            raise ValueError(f"evaluation.shortlist must be 'student' or 'hybrid', got {self.shortlist!r}")
        self.precision = "bf16" if str(self.precision).startswith("bf16") else "32"
        if self.backend not in BACKENDS:
            raise ValueError(f"evaluation.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        self.index = self.index if self.index is not None else ExactSearch()
        self.slices = {name: tuple(bins) for name, bins in (self.slices or {}).items()}  # lift_by_slice bins


@dataclass
class EvalResult:
    metrics: dict[str, float]
    run: Run
    reranked: Run | None   # the express lane's; None without a cross-encoder
    trace: pd.DataFrame
    teacher_reranked: Run | None = None   # the teacher's, where the express lane is another ensemble


def add_member_columns(trace: pd.DataFrame, members: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """The trace with each ensemble member's raw score of its shortlisted rows (``member_<name>``);
    ``columns``: member -> its column in ``members``."""
    named = members[["qid", "docid", *columns.values()]].rename(columns={c: f"member_{m}" for m, c in columns.items()})
    return trace.merge(named.drop_duplicates(["qid", "docid"]), on=["qid", "docid"], how="left")


class Reranking(Protocol):
    """What reranks the student's shortlists (teacher/ensemble_scores.py ``EnsembleScores``): the express lane's score
    of each pair and its members' raw scores, the cross-encoder's logits behind it, and the teacher where it is another
    ensemble."""

    cross_encoder: Any      # CrossEncoderScores: ``scores(pairs)``, ``share(pairs, strategy)``
    teacher: Any            # a TeacherEnsemble, or None
    members: list[str]

    def column(self, member: str) -> str: ...

    def scores(self, pairs: Sequence[tuple[str, str]], student=None) -> tuple[dict, pd.DataFrame | None]: ...


class RetrievalEvaluator:
    """Scores a student over the whole corpus, never only over a shortlist, and explains the result.

    For each query: the student retrieves ``retrieval_depth`` docs from the full corpus; with a cross-encoder, the
    express lane reranks its top ``rerank_depth``, giving lift@3 = nDCG@3(reranked) - nDCG@3(student) and P@3 before
    and after. ``docs`` is docid -> text in corpus order (a :class:`Corpus`, read by row). What it encodes and scores
    it delegates: the corpus embeddings to ``embeddings`` (retrieval/corpus_embeddings.py; with a ``layout`` that has a
    cache folder they persist under ``cache_scope``, the data's identity), the reranker's scores to ``reranking``
    (None: nothing reranks; teacher/ensemble_scores.py: the cross-encoder's cached logits, or an ensemble's members).
    Traces are written under ``layout`` when one is given.
    """

    def __init__(self, settings: EvaluationSettings, docs: Mapping[str, str], queries: Mapping[str, str],
                 qrels: Mapping[str, Qrels], bm25_runs: Mapping[str, Run], layout: RunLayout | None = None,
                 cache_scope: str = "", reranking: Reranking | None = None):
        self.settings = s = settings
        # The corpus is read by row from its Arrow table; a plain mapping (tests, small corpora) is put in one.
        self.doc_text = docs if isinstance(docs, Corpus) else Corpus.from_mapping(docs)
        self.doc_ids, self.doc_index = self.doc_text.ids, self.doc_text.rows
        self.queries, self.qrels, self.bm25_runs, self.layout = queries, qrels, bm25_runs, layout
        self.retrieval_depth, self.rerank_depth, self.precision = s.retrieval_depth, s.rerank_depth, s.precision
        self.init_runs: dict[str, Run] = {}
        self._epoch_rows: dict[str, list[int]] = {}
        self.index_recall: dict[str, float] = {}   # eval name -> recall@depth of the ANN index against exact
        self.embeddings = CorpusEmbeddings(
            self.doc_text, batch_size=s.batch_size, precision=s.precision, max_doc_length=s.max_doc_length,
            max_query_length=s.max_query_length, storage=s.embeddings, backend=s.backend, show_progress=s.show_progress,
            cache_dir=layout.evaluation_cache if layout is not None and layout.cache is not None else None,
            run_dir=layout.root if layout is not None else None, scope=cache_scope)
        # The express lane: the lone cross-encoder's logits, or (ChooseTeacher sets it) an ensemble of members
        self.reranking = reranking

    def encode_queries(self, encoder: SentenceTransformer, qids: Sequence[str]) -> torch.Tensor:
        return self.embeddings.queries(encoder, [self.queries[q] for q in qids])

    def retrieve(self, encoder: SentenceTransformer, qids: Sequence[str], corpus_emb: torch.Tensor,
                 check_recall: str | None = None) -> Run:
        """The top ``retrieval_depth`` of the whole corpus through the configured index; ``check_recall``: an
        evaluation name under which an approximate index's recall against exact search is recorded."""
        q_emb = self.encode_queries(encoder, qids)
        run = self.settings.index.search(q_emb, corpus_emb, list(qids), self.doc_ids, self.retrieval_depth)
        if check_recall and self.settings.index.approximate:
            exact = exact_search(q_emb, corpus_emb, list(qids), self.doc_ids, self.retrieval_depth)
            self.index_recall[check_recall] = recall_against_exact(run, exact, self.retrieval_depth)
        return run

    def shortlists(self, split: str, run: Run) -> Shortlists:
        bm25 = self.bm25_runs.get(split, {})
        if self.settings.shortlist == "hybrid":
            return reciprocal_rank_fusion(bm25, run, self.rerank_depth)
        lists = shortlist_from_run(run, "dense", self.rerank_depth)
        in_bm25 = {q: {d for d, _ in hits[: self.rerank_depth]} for q, hits in bm25.items()}
        return {q: [dataclasses.replace(c, origin="both") if c.docid in in_bm25.get(q, ()) else c for c in cands]
                for q, cands in lists.items()}

    def epoch_rows(self, split: str) -> list[int]:
        """The corpus rows a per-epoch evaluation of ``split`` searches (``epoch_corpus=sample``): the split's judged
        documents, its queries' BM25 candidates, and ``epoch_sample`` others at random; all rows when that is
        everything."""
        if split not in self._epoch_rows:
            keep = {d for judged in self.qrels[split].values() for d in judged}
            keep |= {d for hits in self.bm25_runs.get(split, {}).values() for d, _ in hits[: self.retrieval_depth]}
            rows = {self.doc_index[d] for d in keep if d in self.doc_index}
            rest = [i for i in range(len(self.doc_ids)) if i not in rows]
            rows |= set(random.Random(self.settings.seed).sample(rest, min(self.settings.epoch_sample, len(rest))))
            self._epoch_rows[split] = sorted(rows)
        return self._epoch_rows[split]

    def corpus_record(self) -> dict:
        """What each per-epoch evaluation searched (results.json ``evaluation``)."""
        record = {"epoch_corpus": self.settings.epoch_corpus, "corpus_docs": len(self.doc_ids),
                  "index": self.settings.index.describe()}
        if self.index_recall:
            record["index"][f"recall@{self.retrieval_depth}_vs_exact"] = dict(self.index_recall)
        if self.settings.epoch_corpus == "sample":
            record |= {"epoch_sample": self.settings.epoch_sample,
                       "epoch_docs": {split: len(self.epoch_rows(split)) for split in self._epoch_rows}}
        return record

    def _search_rows(self, encoder: SentenceTransformer, qids: Sequence[str], rows: Sequence[int]) -> Run:
        """The top ``retrieval_depth`` of the corpus rows ``rows`` (encoded now) through the configured index."""
        emb = self.embeddings.rows(encoder, rows)
        return self.settings.index.search(self.encode_queries(encoder, qids), emb, list(qids),
                                          [self.doc_ids[i] for i in rows], self.retrieval_depth)

    def sharded_run(self, encoder: SentenceTransformer, qids: Sequence[str], rows: Sequence[int], strategy) -> Run:
        """``_search_rows`` across the ranks of ``strategy``: each rank encodes and searches its contiguous share of
        ``rows``; the shares' top lists are gathered (Lightning's ``all_gather``) and merged into every rank's run, so
        no rank holds the whole corpus's embeddings or idles while another encodes it."""
        qids, k = list(qids), min(self.retrieval_depth, len(rows))
        scores = torch.full((len(qids), k), float("-inf"))
        found = torch.full((len(qids), k), -1, dtype=torch.long)
        mine = shard(rows, strategy.global_rank, strategy.world_size)
        if mine:
            part = self._search_rows(encoder, qids, mine)
            for i, hits in enumerate(part.get(qid, []) for qid in qids):
                scores[i, :len(hits)] = torch.tensor([s for _, s in hits], dtype=torch.float32)
                found[i, :len(hits)] = torch.tensor([self.doc_index[d] for d, _ in hits])
        scores, found = (strategy.all_gather(t).permute(1, 0, 2).reshape(len(qids), -1) for t in (scores, found))
        top, at = torch.topk(scores, k, dim=1)
        found = found.gather(1, at)
        return {qid: [(self.doc_ids[r], s) for r, s in zip(found[i].tolist(), top[i].tolist()) if r >= 0]
                for i, qid in enumerate(qids)}

    def evaluate(self, encoder: SentenceTransformer, split: str, eval_name: str, epoch: int,
                 corpus_emb: torch.Tensor | None = None, per_epoch: bool = False, strategy=None) -> EvalResult | None:
        """``per_epoch``: an evaluation during training, over the sample when ``epoch_corpus=sample``. ``strategy``:
        a Lightning strategy whose ranks all call this together (the per-epoch callback under DDP): corpus encoding,
        search and teacher scoring are shared out across them; rank 0 builds and writes the result, the others
        return None."""
        qrels = self.qrels[split]
        sampled = per_epoch and self.settings.epoch_corpus == "sample"
        if strategy is not None and strategy.world_size > 1:
            rows = self.epoch_rows(split) if sampled else range(len(self.doc_ids))
            run = self.sharded_run(encoder, sorted(qrels), rows, strategy)
            if self.reranking is not None:
                lists = self.shortlists(split, run)
                self.reranking.cross_encoder.share([(q, c.docid) for q, cands in lists.items() for c in cands], strategy)
            if strategy.global_rank != 0:
                return None
        elif sampled:
            run = self._search_rows(encoder, sorted(qrels), self.epoch_rows(split))
        else:
            if corpus_emb is None:
                corpus_emb = self.embeddings.corpus(encoder)
            run = self.retrieve(encoder, sorted(qrels), corpus_emb, check_recall=eval_name if split == "test" else None)
        if epoch < 0:
            self.init_runs[split] = run
        lists = self.shortlists(split, run)
        scores = reranked = members = teacher_reranked = None
        first = {q: [(c.docid, c.score) for c in cands] for q, cands in lists.items()}
        if self.reranking is not None:
            scores, members = self.reranking.scores([(q, c.docid) for q, cands in lists.items() for c in cands],
                                                    StudentPairs(encoder, self.embeddings, run, corpus_emb))
            reranked = rerank(first, scores, self.rerank_depth)
        trace = build_trace(eval_name=eval_name, split=split, epoch=epoch, queries=self.queries, shortlists=lists,
                            express_lane_scores=scores, qrels=qrels, student_run=run,
                            student_init_run=self.init_runs.get(split), bm25_run=self.bm25_runs.get(split))
        metrics = self._metrics(run, reranked, qrels, trace)
        if members is not None:
            columns = {m: self.reranking.column(m) for m in self.reranking.members}
            trace = add_member_columns(trace, members, columns)
            metrics |= {f"ndcg@10_reranked/{m}": reranked_ndcg(members, members[c], qrels) for m, c in columns.items()}
            if self.reranking.teacher is not None:
                trace, teacher, teacher_reranked = self._teacher(trace, members, first, run, qrels)
                metrics |= teacher
        if self.layout is not None:
            self._write(eval_name, split, epoch, metrics, trace)
        return EvalResult(metrics=metrics, run=run, reranked=reranked, trace=trace, teacher_reranked=teacher_reranked)

    def _teacher(self, trace: pd.DataFrame, members: pd.DataFrame, first: Run, run: Run,
                 qrels: Qrels) -> tuple[pd.DataFrame, dict[str, float], Run]:
        """The teacher, where the express lane is another ensemble, over the same shortlists: the trace's
        ``teacher_score`` and its nDCG@10 and lift@k (``ndcg@10_teacher``, ``lift@k_teacher``)."""
        score = self.reranking.teacher.combine(members).astype(float)
        scores = dict(zip(zip(members.qid, members.docid), score))
        reranked, k = rerank(first, scores, self.rerank_depth), self.settings.lift_k
        column = pd.DataFrame({"qid": members.qid, "docid": members.docid, "teacher_score": score})
        trace = trace.merge(column.drop_duplicates(["qid", "docid"]), on=["qid", "docid"], how="left")
        metrics = {"ndcg@10_teacher": evaluate(reranked, qrels, ("ndcg@10",))["ndcg@10"],
                   f"lift@{k}_teacher": lift_at_k(run, reranked, qrels, k)}
        return trace, metrics, reranked

    def _metrics(self, run: Run, reranked: Run | None, qrels: Qrels, trace: pd.DataFrame) -> dict[str, float]:
        student = evaluate(run, qrels, RETRIEVAL_METRICS)
        metrics = {m: student[m] for m in HEADLINE}
        if reranked is None:
            return metrics
        after, k = evaluate(reranked, qrels, ("ndcg@3", "p@3", "ndcg@10")), self.settings.lift_k
        metrics |= {"p@3_student": student["p@3"], "p@3_reranked": after["p@3"],
                    "ndcg@10_reranked": after["ndcg@10"], f"lift@{k}": after["ndcg@3"] - student["ndcg@3"]}
        metrics |= {f"taxonomy/{name}": v for name, v in taxonomy_counts(trace, k).items()}
        slices = lift_by_slice(trace, k, **self.settings.slices)
        return metrics | {f"lift@{k}/{name}": v for name, v in slices.items() if ":n" not in name}

    def _write(self, eval_name: str, split: str, epoch: int, metrics: dict, trace: pd.DataFrame) -> None:
        layout = self.layout
        write_trace(trace, layout.trace(eval_name))
        if self.reranking is not None:  # the taxonomy per query (failure class, nDCG@k before/after reranking, slice)
            write_parquet_atomic(classify_queries(trace, self.settings.lift_k), layout.per_query(eval_name))
        # Metrics beside the trace: they survive DDP worker processes, unlike in-memory callback state.
        write_text_atomic(json.dumps({"eval": eval_name, "split": split, "epoch": epoch, **metrics}, indent=1),
                          layout.trace_metrics(eval_name))
