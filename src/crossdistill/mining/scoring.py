"""Teacher scores for every (query, candidate) pair, through ``Trainer.predict``: on the same accelerator and
strategy as training, each DDP rank scoring its share (``crossdistill.common.predict``)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from crossdistill.common.batching import by_length, longest_first
from crossdistill.common.memory import ReleaseFreedMemory
from crossdistill.common.predict import predict_by_index
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


def predict_pair_scores(trainer: pl.Trainer, teacher: pl.LightningModule, queries: list[str], docs: list[str],
                        batch_size: int, exchange: Path | None = None,
                        doc_text: Mapping[str, str] | None = None) -> list[float]:
    """Raw teacher logits for pairs (queries[i], docs[i]), in input order, using ``trainer``'s devices.

    ``doc_text``: when given, ``docs`` are docids, their texts fetched from it a batch at a time.
    ``exchange``: a folder every rank sees at the same path (needed under ``strategy=ddp``); by default a
    temporary folder, which only processes spawned from this one share (one device, ``ddp_spawn``)."""
    order = longest_first(docs) if doc_text is None else by_length(text_lengths(doc_text, docs))
    dataset = PairDataset([queries[i] for i in order], [docs[i] for i in order])
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=PairCollate(doc_text))
    by_position = predict_by_index(trainer, teacher, loader, len(order), exchange, [ReleaseFreedMemory()])
    scores = torch.empty_like(by_position)
    scores[torch.tensor(order, dtype=torch.long)] = by_position   # predict_by_index raises on any missing score
    return scores.tolist()


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
