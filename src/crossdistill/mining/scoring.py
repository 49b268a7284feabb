"""Teacher scores for every (query, candidate) pair, through ``Trainer.predict``.

Scoring runs on the same accelerator and strategy as training; under DDP each rank scores its share and a
prediction writer leaves one file per rank in an exchange folder, which every process then merges (rank 0's
return value alone would miss the others' rows, and under ``ddp_spawn`` nothing is returned to the launching
process at all). Under ``strategy=ddp`` every rank is a process of its own that runs the whole pipeline, so the
folder must be one every rank names alike: the run folder's (``RunLayout.exchange``), not a temporary one.
"""
from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from crossdistill.common.batching import by_length, longest_first
from crossdistill.common.io import atomic_path
from crossdistill.common.memory import ReleaseFreedMemory
from crossdistill.data.corpus import text_lengths, texts_of
from crossdistill.types import Shortlists


class PairDataset(Dataset):
    """(query, document) pairs; with ``doc_text`` the documents are docids whose texts the collate function fetches
    a batch at a time (a :class:`Corpus` then holds them once, however many pairs are scored)."""

    def __init__(self, queries: list[str], docs: list[str]):
        self.queries, self.docs = queries, docs

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, i: int) -> dict:
        return {"index": i, "queries": self.queries[i], "docs": self.docs[i]}


class PairCollate:
    """Batches of pairs; ``doc_text`` (docid -> text) resolves the batch's docids (a class: DDP spawn pickles it)."""

    def __init__(self, doc_text: Mapping[str, str] | None = None):
        self.doc_text = doc_text

    def __call__(self, batch: list[dict]) -> dict:
        docs = [b["docs"] for b in batch]
        return {"index": torch.tensor([b["index"] for b in batch]), "queries": [b["queries"] for b in batch],
                "docs": texts_of(self.doc_text, docs) if self.doc_text is not None else docs}


class RankFilesWriter(BasePredictionWriter):
    """Each rank saves its (index, score) tensors; indices make the merge order-independent and de-duplicate."""

    def __init__(self, folder: Path):
        super().__init__(write_interval="epoch")
        self.folder = folder

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        index = torch.cat([p["index"] for p in predictions]) if predictions else torch.empty(0, dtype=torch.long)
        score = torch.cat([p["score"] for p in predictions]) if predictions else torch.empty(0)
        with atomic_path(self.folder / f"rank{trainer.global_rank}.pt") as tmp:
            torch.save({"index": index, "score": score}, tmp)
        trainer.strategy.barrier("crossdistill-predict-written")   # no rank reads before every rank has written


_CALLS = itertools.count()   # the same sequence on every rank: they run the same stages in the same order


@contextlib.contextmanager
def _exchange_folder(exchange: Path | None):
    if exchange is None:
        with tempfile.TemporaryDirectory(prefix="crossdistill-predict-") as tmp:
            yield Path(tmp)
        return
    folder = Path(exchange) / f"predict-{next(_CALLS)}"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


def predict_pair_scores(trainer: pl.Trainer, teacher: pl.LightningModule, queries: list[str], docs: list[str],
                        batch_size: int, exchange: Path | None = None,
                        doc_text: Mapping[str, str] | None = None) -> list[float]:
    """Raw teacher logits for pairs (queries[i], docs[i]), in input order, using ``trainer``'s devices.

    ``doc_text``: when given, ``docs`` are docids, their texts fetched from it a batch at a time.
    ``exchange``: a folder every rank sees at the same path (needed under ``strategy=ddp``); by default a
    temporary folder, which only processes spawned from this one share (one device, ``ddp_spawn``)."""
    order = longest_first(docs) if doc_text is None else by_length(text_lengths(doc_text, docs))
    dataset = PairDataset([queries[i] for i in order], [docs[i] for i in order])
    with _exchange_folder(exchange) as tmp:
        added = [RankFilesWriter(Path(tmp)), ReleaseFreedMemory()]
        trainer.callbacks.extend(added)
        try:
            trainer.predict(teacher, DataLoader(dataset, batch_size=batch_size, collate_fn=PairCollate(doc_text)),
                            return_predictions=False)
        finally:
            for callback in added:
                trainer.callbacks.remove(callback)
        scores = [float("nan")] * len(order)
        for f in Path(tmp).glob("rank*.pt"):
            part = torch.load(f, weights_only=True)
            for i, s in zip(part["index"].tolist(), part["score"].tolist()):
                scores[order[i]] = s
        if exchange is not None:
            trainer.strategy.barrier("crossdistill-predict-read")   # every rank has read: rank 0 may clean up
            if trainer.is_global_zero:
                shutil.rmtree(tmp, ignore_errors=True)
    missing = sum(s != s for s in scores)
    if missing:
        raise RuntimeError(f"teacher scoring returned no score for {missing} of {len(scores)} pairs")
    return scores


def score_shortlists(trainer: pl.Trainer, teacher: pl.LightningModule, shortlists: Shortlists,
                     queries: Mapping[str, str], doc_text: Mapping[str, str],
                     qrels: Mapping[str, Mapping[str, int]], batch_size: int,
                     include_positives: bool = True, exchange: Path | None = None) -> pd.DataFrame:
    """One row per (qid, candidate): provenance, first-stage rank and score, teacher logit (``ce_score``), label.

    Judged positives the first stage missed are added with origin "qrels" (no first-stage rank): the pair
    strategies need the teacher's view of them to build positive-vs-negative pairs.
    """
    columns: dict[str, list] = {c: [] for c in ("qid", "docid", "origin", "first_stage_rank", "first_stage_score",
                                                 "bm25_rank", "dense_rank", "label")}

    def add(*values) -> None:
        for column, value in zip(columns.values(), values):
            column.append(value)

    for qid, cands in shortlists.items():   # column lists, not a dict per row: millions of pairs stay small
        judged = qrels.get(qid, {})
        for c in cands:
            add(qid, c.docid, c.origin, c.rank, c.score, c.bm25_rank, c.dense_rank, int(judged.get(c.docid, 0)))
        if include_positives:
            seen = {c.docid for c in cands}
            for docid, grade in judged.items():
                if grade > 0 and docid not in seen:
                    add(qid, docid, "qrels", None, None, None, None, int(grade))
    df = pd.DataFrame(columns)
    columns.clear()   # the lists are copied into the frame: free them before scoring
    for col in ("first_stage_rank", "bm25_rank", "dense_rank"):
        df[col] = df[col].astype("Int64")
    df["first_stage_score"] = df["first_stage_score"].astype("float64")
    df["ce_score"] = predict_pair_scores(trainer, teacher, [queries[q] for q in df["qid"]], list(df["docid"]),
                                         batch_size, exchange, doc_text=doc_text)
    return df
