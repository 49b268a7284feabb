"""The cross-encoder's logits of (query, document) pairs, each scored once: kept in memory for the run and, under a
cache folder, in a Parquet file named by the model's weights (it is frozen while the student distils), shared out
across DDP ranks when several score together."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from sentence_transformers import CrossEncoder

from crossdistill.common.distributed import shard
from crossdistill.common.fingerprint import cache_key, state_dict_fingerprint
from crossdistill.common.io import write_parquet_atomic
from crossdistill.data.corpus import Corpus
from crossdistill.models.cross_encoder import predict_logits
from crossdistill.retrieval.corpus_embeddings import read_or_discard


class CrossEncoderScores:
    """``scores(pairs)``: the cross-encoder ``model``'s logit of each (qid, docid) pair of ``queries`` x ``docs``,
    computed for the pairs not scored before (``batch_size``, ``precision``, the runtime ``backend``). ``cache_dir``:
    where the logits persist across runs, under ``scope`` (the data's identity)."""

    def __init__(self, model: CrossEncoder, queries: Mapping[str, str], docs: Corpus, *, batch_size: int = 64,
                 precision: str = "32", cache_dir: Path | None = None, scope: str = "", backend: str = "torch"):
        self.model, self.queries, self.docs = model, queries, docs
        self.batch_size, self.precision, self.backend = batch_size, precision, backend
        self.held: dict[tuple[str, str], float] = {}
        self.path = None
        if cache_dir is not None:
            key = cache_key(teacher=state_dict_fingerprint(model), scope=scope, precision=precision,
                            max_length=getattr(model, "max_length", None),
                            **({"backend": backend} if backend != "torch" else {}))
            self.path = cache_dir / "teacher_scores" / f"{key}.parquet"
            df = read_or_discard(self.path, pd.read_parquet)
            if df is not None:
                self.held = dict(zip(zip(df.qid, df.docid), df.score.astype(float)))

    def _logits(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        docs = self.docs.many(d for _, d in pairs)
        return predict_logits(self.model, [(self.queries[q], doc) for (q, _), doc in zip(pairs, docs)],
                              self.batch_size, self.precision, self.backend)

    def _remember(self, todo: Sequence[tuple[str, str]], logits: Sequence[float], write: bool = True) -> None:
        self.held.update(zip(todo, logits))
        if write and self.path is not None:
            qids, docids = zip(*self.held)
            write_parquet_atomic(pd.DataFrame({"qid": qids, "docid": docids, "score": list(self.held.values())}),
                                 self.path)

    def scores(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        todo = sorted({p for p in pairs if p not in self.held})
        if todo:
            self._remember(todo, self._logits(todo))
        return {p: self.held[p] for p in pairs}

    def share(self, pairs: Sequence[tuple[str, str]], strategy) -> None:
        """Under a multi-process ``strategy``: the pairs rank 0 has no score for, scored a share per rank and gathered
        into every rank's memory (only rank 0 writes the file); ``scores`` then finds them."""
        todo = sorted({p for p in pairs if p not in self.held}) if strategy.global_rank == 0 else None
        todo = strategy.broadcast(todo, src=0)
        if not todo:
            return
        mine = shard(todo, strategy.global_rank, strategy.world_size)
        local = torch.full((-(-len(todo) // strategy.world_size),), float("nan"))
        if mine:
            local[:len(mine)] = torch.tensor(self._logits(mine), dtype=torch.float32)
        gathered = strategy.all_gather(local).reshape(-1)[:len(todo)]   # rank order = the shards' order
        self._remember(todo, gathered.tolist(), write=strategy.global_rank == 0)
