"""Full-corpus evaluation of a student, with the teacher reranking its shortlist (lift@3) and a score trace."""
from __future__ import annotations

import dataclasses
import json
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sentence_transformers import CrossEncoder, SentenceTransformer

from crossdistill.common.fingerprint import cache_key, state_dict_fingerprint
from crossdistill.common.io import atomic_path, quarantine, write_parquet_atomic, write_text_atomic
from crossdistill.common.layout import RunLayout
from crossdistill.data.corpus import Corpus
from crossdistill.evaluation.metrics import evaluate, lift_at_k
from crossdistill.evaluation.runs import rerank, reranked_ndcg
from crossdistill.evaluation.student_pairs import StudentPairs
from crossdistill.evaluation.taxonomy import classify_queries, lift_by_slice, taxonomy_counts
from crossdistill.evaluation.trace import build_trace, write_trace
from crossdistill.models.cross_encoder import predict_logits
from crossdistill.retrieval.dense import encode, exact_search
from crossdistill.retrieval.fusion import reciprocal_rank_fusion, shortlist_from_run
from crossdistill.retrieval.index import ExactSearch, recall_against_exact
from crossdistill.types import Qrels, Run, Shortlists

RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "ndcg@3", "p@3")
HEADLINE = ("ndcg@10", "mrr@10", "recall@10", "recall@100")


def shard(items: Sequence, rank: int, world_size: int) -> list:
    """Rank ``rank``'s contiguous share of ``items`` (ceil(n / world_size) each; the last ones may be short or
    empty): concatenated in rank order, the shares are ``items``."""
    size = -(-len(items) // world_size)
    return list(items[rank * size:(rank + 1) * size])


def read_or_discard(path, read):
    """``read(path)`` of a cached file; None when there is none, or when it cannot be read (then moved aside)."""
    if path is None or not path.exists():
        return None
    try:
        return read(path)
    except Exception as err:  # noqa: BLE001 - an unreadable cache entry is rebuilt, whatever broke it
        warnings.warn(f"cached {path} cannot be read ({type(err).__name__}); moved aside to {quarantine(path).name}",
                      stacklevel=2)
        return None


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

    def __post_init__(self):
        if self.embeddings not in ("memory", "disk"):
            raise ValueError(f"evaluation.embeddings must be 'memory' or 'disk', got {self.embeddings!r}")
        if self.epoch_corpus not in ("full", "sample"):
            raise ValueError(f"evaluation.epoch_corpus must be 'full' or 'sample', got {self.epoch_corpus!r}")
        if self.shortlist not in ("student", "hybrid"):
            raise ValueError(f"evaluation.shortlist must be 'student' or 'hybrid', got {self.shortlist!r}")
        self.precision = "bf16" if str(self.precision).startswith("bf16") else "32"
        self.index = self.index if self.index is not None else ExactSearch()
        self.slices = {name: tuple(bins) for name, bins in (self.slices or {}).items()}  # lift_by_slice bins


@dataclass
class EvalResult:
    metrics: dict[str, float]
    run: Run
    reranked: Run | None   # None without a teacher
    trace: pd.DataFrame
    teacher_reranked: Run | None = None   # the distillation teacher's, where the reranker is another ensemble


def add_member_columns(trace: pd.DataFrame, members: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """The trace with each ensemble member's raw score of its shortlisted rows (``teacher_<member>``);
    ``columns``: member -> its column in ``members``."""
    named = members[["qid", "docid", *columns.values()]].rename(columns={c: f"teacher_{m}" for m, c in columns.items()})
    return trace.merge(named.drop_duplicates(["qid", "docid"]), on=["qid", "docid"], how="left")


class RetrievalEvaluator:
    """Scores a student over the whole corpus, never only over a shortlist, and explains the result.

    For each query: the student retrieves ``retrieval_depth`` docs from the full corpus; with a teacher, its top
    ``rerank_depth`` is reranked, giving lift@3 = nDCG@3(reranked) - nDCG@3(student) and P@3 before and after.
    ``docs`` is docid -> text in corpus order (a :class:`Corpus`, read by row). Teacher logits are cached per
    (qid, docid) (the teacher is frozen during distillation), and, with a ``layout`` that has a cache folder, on disk
    under ``cache_scope`` (the data's identity) with the zero-shot corpus embeddings. Traces are written under
    ``layout`` when one is given.
    """

    def __init__(self, settings: EvaluationSettings, docs: Mapping[str, str], queries: Mapping[str, str],
                 qrels: Mapping[str, Qrels], bm25_runs: Mapping[str, Run], teacher: CrossEncoder | None = None,
                 layout: RunLayout | None = None, cache_scope: str = ""):
        self.settings = s = settings
        # The corpus is read by row from its Arrow table; a plain mapping (tests, small corpora) is put in one.
        self.doc_text = docs if isinstance(docs, Corpus) else Corpus.from_mapping(docs)
        self.doc_ids, self.doc_index = self.doc_text.ids, self.doc_text.rows
        self.queries, self.qrels, self.bm25_runs = queries, qrels, bm25_runs
        self.teacher, self.layout = teacher, layout
        # The reranker around ``teacher`` (use_ensemble), and the distillation teacher when that is another ensemble
        self.ensemble, self.teacher_ensemble, self.scorers = None, None, {}
        self.retrieval_depth, self.rerank_depth, self.precision = s.retrieval_depth, s.rerank_depth, s.precision
        self.teacher_cache: dict[tuple[str, str], float] = {}
        self.init_runs: dict[str, Run] = {}
        self._corpus_cache: tuple[str, torch.Tensor] | None = None
        self._epoch_rows: dict[str, list[int]] = {}
        self.index_recall: dict[str, float] = {}   # eval name -> recall@depth of the ANN index against exact
        self.cache_dir = layout.evaluation_cache if layout is not None and layout.cache is not None else None
        self.cache_scope = cache_scope
        self._scores_path = None
        if self.cache_dir is not None and teacher is not None:
            key = cache_key(teacher=state_dict_fingerprint(teacher), scope=cache_scope, precision=self.precision,
                            max_length=getattr(teacher, "max_length", None))
            self._scores_path = self.cache_dir / "teacher_scores" / f"{key}.parquet"
            df = read_or_discard(self._scores_path, pd.read_parquet)
            if df is not None:
                self.teacher_cache = dict(zip(zip(df.qid, df.docid), df.score.astype(float)))

    def encode_corpus(self, encoder: SentenceTransformer, persist: bool = False,
                      compute: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        """Corpus embeddings, reused while the weights are unchanged (the final test evaluation of the last
        epoch's weights would otherwise encode the whole corpus a second time). ``persist`` also keeps them on
        disk for later runs (the zero-shot student is the same in every run of a sweep). ``compute``: how to encode
        them when neither cache has them (default: here, in this process; the pipeline passes every rank's share)."""
        key = state_dict_fingerprint(encoder)
        if self._corpus_cache is None or self._corpus_cache[0] != key:
            name = cache_key(encoder=key, scope=self.cache_scope, precision=self.precision,
                             max_length=self.settings.max_doc_length or encoder.max_seq_length,
                             docs=len(self.doc_ids))
            if self.settings.embeddings == "disk":
                emb = self._encode_to_disk(encoder, name, persist, compute)
            else:
                path = self.cache_dir / "corpus_embeddings" / f"{name}.pt" \
                    if persist and self.cache_dir is not None else None
                emb = read_or_discard(path, lambda p: torch.load(p, map_location="cpu", weights_only=True))
                if emb is None:
                    emb = compute() if compute is not None else self.encode_rows(encoder)
                    if path is not None:
                        with atomic_path(path) as tmp:
                            torch.save(emb, tmp)
            self._corpus_cache = (key, emb)
        return self._corpus_cache[1]

    def _encode_to_disk(self, encoder: SentenceTransformer, name: str, persist: bool,
                        compute: Callable[[], torch.Tensor] | None) -> torch.Tensor:
        """``evaluation.embeddings=disk``: the embeddings in a .npy file (the cache's when persisted, else the run
        folder's), written a block at a time under a temporary name, renamed when whole, then memory-mapped
        (copy-on-write: pages are read as search touches them, never written back)."""
        if self.layout is None:
            raise ValueError("evaluation.embeddings=disk needs a run folder (an evaluator with a layout)")
        folder = self.cache_dir if persist and self.cache_dir is not None else self.layout.root / "embeddings"
        path = folder / "corpus_embeddings" / f"{name}.npy"
        emb = read_or_discard(path, lambda p: np.load(p, mmap_mode="c"))
        if emb is None:
            with atomic_path(path) as tmp:
                if compute is not None:
                    with open(tmp, "wb") as f:
                        np.save(f, compute().numpy())
                else:
                    out, at = None, 0
                    for part in self._encoded_blocks(encoder):
                        if out is None:
                            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                            shape=(len(self.doc_ids), part.shape[1]))
                        out[at:at + len(part)] = part.numpy()
                        at += len(part)
                    out.flush()
                    del out
            emb = np.load(path, mmap_mode="c")
        return torch.from_numpy(emb)

    def _encoded_blocks(self, encoder: SentenceTransformer, rows: Sequence[int] | None = None):
        """The embeddings of the corpus rows ``rows`` (default: all), one block of texts fetched and encoded at a time."""
        for block in self.doc_text.blocks(rows):
            yield encode(encoder, block, self.settings.batch_size, self.precision, self.settings.show_progress,
                         self.settings.max_doc_length)

    def encode_rows(self, encoder: SentenceTransformer, rows: Sequence[int] | None = None) -> torch.Tensor:
        """Embeddings of the corpus rows ``rows`` (default: all), in one tensor."""
        parts = list(self._encoded_blocks(encoder, rows))
        return torch.cat(parts) if parts else encode(encoder, [], precision=self.precision)

    def encode_queries(self, encoder: SentenceTransformer, qids: Sequence[str]) -> torch.Tensor:
        return self.encode_query_texts(encoder, [self.queries[q] for q in qids])

    def encode_query_texts(self, encoder: SentenceTransformer, texts: Sequence[str]) -> torch.Tensor:
        """Queries the evaluator does not hold (mining's title pseudo-queries), encoded as evaluation encodes."""
        return encode(encoder, list(texts), self.settings.batch_size, self.precision, False,
                      self.settings.max_query_length)

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

    def _teacher_logits(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        docs = self.doc_text.many(d for _, d in pairs)
        return predict_logits(self.teacher, [(self.queries[q], doc) for (q, _), doc in zip(pairs, docs)],
                              self.settings.teacher_batch_size, self.precision)

    def _remember(self, todo: Sequence[tuple[str, str]], logits: Sequence[float], write: bool = True) -> None:
        self.teacher_cache.update(zip(todo, logits))
        if write and self._scores_path is not None:
            qids, docids = zip(*self.teacher_cache)
            write_parquet_atomic(pd.DataFrame({"qid": qids, "docid": docids,
                                               "score": list(self.teacher_cache.values())}), self._scores_path)

    def teacher_scores(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        todo = sorted({p for p in pairs if p not in self.teacher_cache})
        if todo:
            self._remember(todo, self._teacher_logits(todo))
        return {p: self.teacher_cache[p] for p in pairs}

    def share_teacher_scores(self, pairs: Sequence[tuple[str, str]], strategy) -> None:
        """Under a multi-process ``strategy``: the pairs rank 0 has no teacher score for, scored a share per rank and
        gathered into every rank's cache (only rank 0 writes the cache file); ``teacher_scores`` then finds them."""
        todo = sorted({p for p in pairs if p not in self.teacher_cache}) if strategy.global_rank == 0 else None
        todo = strategy.broadcast(todo, src=0)
        if not todo:
            return
        mine = shard(todo, strategy.global_rank, strategy.world_size)
        local = torch.full((-(-len(todo) // strategy.world_size),), float("nan"))
        if mine:
            local[:len(mine)] = torch.tensor(self._teacher_logits(mine), dtype=torch.float32)
        gathered = strategy.all_gather(local).reshape(-1)[:len(todo)]   # rank order = the shards' order
        self._remember(todo, gathered.tolist(), write=strategy.global_rank == 0)

    def use_ensemble(self, ensemble, scorers: Mapping, teacher=None) -> None:
        """From now on the reranker is ``ensemble`` (its cross-encoder member is ``teacher``): reranking, lift@k and
        the trace's teacher columns use its combined score; the trace gains a raw-score column per member. ``teacher``:
        the distillation teacher when it is another ensemble (the express lane interpolating with the student): its
        members are scored too, and each evaluation reports it beside the reranker (``ndcg@10_teacher``)."""
        self.ensemble, self.scorers = ensemble, dict(scorers)
        self.teacher_ensemble = teacher if teacher is not None and teacher is not ensemble else None

    @property
    def members(self) -> list[str]:
        """Every member scored: the reranker's, then the distillation teacher's others."""
        if self.ensemble is None:
            return []
        extra = self.teacher_ensemble.members if self.teacher_ensemble is not None else []
        return list(dict.fromkeys([*self.ensemble.members, *extra]))

    def member_frame(self, pairs: Sequence[tuple[str, str]], student=None) -> pd.DataFrame:
        """One row per pair: qid, docid and each member's raw score (``score_column(member)``; the reranker's and the
        distillation teacher's). ``student``: the ``student`` member's scorer
        (:class:`~crossdistill.evaluation.student_pairs.StudentPairs`), the student whose shortlists these pairs are."""
        frame = pd.DataFrame(list(pairs), columns=["qid", "docid"])
        for member in self.members:
            if member == "cross_encoder":
                ce = self.teacher_scores(pairs)
                values = [ce[p] for p in pairs]
            elif member == "student":
                if student is None:
                    raise RuntimeError("the ensemble member `student` scores with the student whose shortlists are "
                                       "reranked: pass its scorer (StudentPairs)")
                values = student(self.queries, frame.qid, frame.docid)
            else:
                values = self.scorers[member](self.queries, frame.qid, frame.docid)
            frame[self.ensemble.column(member)] = values
        return frame

    def reranker_scores(self, pairs: Sequence[tuple[str, str]], student=None,
                        ensemble=None) -> tuple[dict, pd.DataFrame | None]:
        """The reranker's score of each pair (the ensemble's, z-normalised within each query's pairs, or the lone
        cross-encoder's logits) and the members' raw scores (None without an ensemble). ``student``: as for
        :meth:`member_frame`; ``ensemble``: another of the evaluator's ensembles (the distillation teacher)."""
        pairs, ensemble = list(pairs), ensemble if ensemble is not None else self.ensemble
        # Every member is scored even where the weights leave the cross-encoder alone: the trace keeps them all, and
        # a later choice (ChooseReranker) reads them there.
        if self.ensemble is None or self.members == ["cross_encoder"]:
            return self.teacher_scores(pairs), None
        frame = self.member_frame(pairs, student)
        return dict(zip(pairs, ensemble.combine(frame).astype(float))), frame

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
        emb = self.encode_rows(encoder, rows)
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
            if self.teacher is not None:
                lists = self.shortlists(split, run)
                self.share_teacher_scores([(q, c.docid) for q, cands in lists.items() for c in cands], strategy)
            if strategy.global_rank != 0:
                return None
        elif sampled:
            run = self._search_rows(encoder, sorted(qrels), self.epoch_rows(split))
        else:
            if corpus_emb is None:
                corpus_emb = self.encode_corpus(encoder)
            run = self.retrieve(encoder, sorted(qrels), corpus_emb, check_recall=eval_name if split == "test" else None)
        if epoch < 0:
            self.init_runs[split] = run
        lists = self.shortlists(split, run)
        scores = reranked = members = teacher_reranked = None
        first = {q: [(c.docid, c.score) for c in cands] for q, cands in lists.items()}
        if self.teacher is not None:
            scores, members = self.reranker_scores([(q, c.docid) for q, cands in lists.items() for c in cands],
                                                   StudentPairs(encoder, self, run, corpus_emb))
            reranked = rerank(first, scores, self.rerank_depth)
        trace = build_trace(eval_name=eval_name, split=split, epoch=epoch, queries=self.queries, shortlists=lists,
                            teacher_scores=scores, qrels=qrels, student_run=run,
                            student_init_run=self.init_runs.get(split), bm25_run=self.bm25_runs.get(split))
        metrics = self._metrics(run, reranked, qrels, trace)
        if members is not None:
            columns = {m: self.ensemble.column(m) for m in self.members}
            trace = add_member_columns(trace, members, columns)
            metrics |= {f"ndcg@10_reranked/{m}": reranked_ndcg(members, members[c], qrels) for m, c in columns.items()}
            if self.teacher_ensemble is not None:
                trace, teacher, teacher_reranked = self._distillation_teacher(trace, members, first, run, qrels)
                metrics |= teacher
        if self.layout is not None:
            self._write(eval_name, split, epoch, metrics, trace)
        return EvalResult(metrics=metrics, run=run, reranked=reranked, trace=trace, teacher_reranked=teacher_reranked)

    def _distillation_teacher(self, trace: pd.DataFrame, members: pd.DataFrame, first: Run, run: Run,
                              qrels: Qrels) -> tuple[pd.DataFrame, dict[str, float], Run]:
        """The distillation teacher, where the reranker is another ensemble, over the same shortlists: the trace's
        ``distill_teacher_score`` and its nDCG@10 and lift@k (``ndcg@10_teacher``, ``lift@k_teacher``)."""
        score = self.teacher_ensemble.combine(members).astype(float)
        scores = dict(zip(zip(members.qid, members.docid), score))
        reranked, k = rerank(first, scores, self.rerank_depth), self.settings.lift_k
        column = pd.DataFrame({"qid": members.qid, "docid": members.docid, "distill_teacher_score": score})
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
        if self.teacher is not None:  # the taxonomy per query (failure class, nDCG@k before/after reranking, slice)
            write_parquet_atomic(classify_queries(trace, self.settings.lift_k), layout.per_query(eval_name))
        # Metrics beside the trace: they survive DDP worker processes, unlike in-memory callback state.
        write_text_atomic(json.dumps({"eval": eval_name, "split": split, "epoch": epoch, **metrics}, indent=1),
                          layout.trace_metrics(eval_name))
