"""The corpus encoded by every rank of a Trainer: each DDP rank (each GPU) encodes its share of the rows through
``Trainer.predict`` and every process gets the whole matrix back (``crossdistill.common.predict``)."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from crossdistill.common.batching import by_length
from crossdistill.common.predict import predict_by_index
from crossdistill.data.corpus import Corpus
from crossdistill.retrieval.dense import encode


class _Rows(Dataset):
    def __init__(self, rows: list[int]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, int]:
        return i, self.rows[i]


class _FetchTexts:
    """A batch's texts, fetched from the corpus together (a class: DDP spawn pickles it)."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus

    def __call__(self, batch: list[tuple[int, int]]) -> dict:
        return {"index": torch.tensor([i for i, _ in batch]), "texts": self.corpus.texts(r for _, r in batch)}


class CorpusEncoder(pl.LightningModule):
    """``predict_step``: a batch of documents' embeddings, encoded as evaluation encodes (precision, length)."""

    def __init__(self, encoder, precision: str, max_length: int, backend: str = "torch"):
        super().__init__()
        self.encoder, self.encode_precision, self.max_length, self.backend = encoder, precision, max_length, backend

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        emb = encode(self.encoder, batch["texts"], len(batch["texts"]), self.encode_precision, False, self.max_length,
                     self.backend)
        return {"index": batch["index"], "score": emb}


def encode_corpus_by_rank(trainer: pl.Trainer, encoder, corpus: Corpus, batch_size: int, precision: str,
                          max_length: int, exchange: Path | None = None, backend: str = "torch") -> torch.Tensor:
    """``[len(corpus), dim]`` float32 embeddings in corpus order, each of ``trainer``'s ranks encoding a share (longest
    documents first, so batches pad little)."""
    order = by_length(corpus.lengths(range(len(corpus))))
    loader = DataLoader(_Rows(order), batch_size=batch_size, collate_fn=_FetchTexts(corpus))
    by_position = predict_by_index(trainer, CorpusEncoder(encoder, precision, max_length, backend), loader, len(order), exchange)
    out = torch.empty_like(by_position)
    out[torch.tensor(order)] = by_position
    return out
