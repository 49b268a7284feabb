"""Distillation examples: pairs that share a query and better doc are grouped, so each text is encoded once.

A row (q, a, [b_1..b_n], [m_1..m_n]) yields the same n margin-MSE terms as n separate pairs, at n + 2
encodings instead of 3n: with four negatives per positive that roughly halves the student's training time.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from crossdistill.common.batching import ListDataset
from crossdistill.data.corpus import texts_of
from crossdistill.student.batch import DistillBatch


class PairGroups(Dataset):
    """The distillation examples: one group per (query, better doc), in first-seen order, its worse docs in pair
    order. Documents are held as codes into the distinct docids and their texts fetched from ``doc_text`` when a
    group is read (a :class:`Corpus` reads them from Arrow): the examples of 100k mined queries hold no text."""

    def __init__(self, pairs: pd.DataFrame, queries: Mapping[str, str], doc_text: Mapping[str, str]):
        self.doc_text = doc_text
        codes, keys = pd.MultiIndex.from_arrays([pairs.qid, pairs.docid_a]).factorize()
        by_group = np.argsort(codes, kind="stable")
        self.bounds = np.searchsorted(codes[by_group], np.arange(len(keys) + 1))
        doc_codes, docids = pd.factorize(pd.concat([pairs.docid_a, pairs.docid_b], ignore_index=True))
        self.docids = list(docids)
        self.worse = doc_codes[len(pairs):][by_group].astype(np.int32)
        self.margins = pairs.margin.to_numpy(dtype=np.float64)[by_group]
        first = by_group[self.bounds[:-1]]   # each group's first pair: its query and better doc
        self.better = doc_codes[:len(pairs)][first].astype(np.int32)
        self.queries = [queries[q] for q in keys.get_level_values(0)]

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, i: int) -> dict:
        start, stop = self.bounds[i], self.bounds[i + 1]
        docs = texts_of(self.doc_text, [self.docids[self.better[i]], *(self.docids[c] for c in self.worse[start:stop])])
        return {"queries": self.queries[i], "docs_a": docs[0], "docs_b": docs[1:],
                "margins": self.margins[start:stop].tolist()}


def pair_examples(pairs: pd.DataFrame, queries: Mapping[str, str], doc_text: Mapping[str, str]) -> Dataset:
    """The distillation examples of ``pairs`` (:class:`PairGroups`)."""
    return PairGroups(pairs, queries, doc_text) if len(pairs) else ListDataset([])


def collate_pairs(batch: list[dict]) -> DistillBatch:
    """Flatten the worse docs; ``owner[i]`` says which query / better doc the i-th worse doc belongs to."""
    return DistillBatch(
        queries=[item["queries"] for item in batch],
        better=[item["docs_a"] for item in batch],
        worse=[d for item in batch for d in item["docs_b"]],
        owner=torch.tensor([i for i, item in enumerate(batch) for _ in item["docs_b"]], dtype=torch.long),
        margins=torch.tensor([m for item in batch for m in item["margins"]], dtype=torch.float32),
    )


class DistillationDataModule(pl.LightningDataModule):
    """The mined distillation examples of one round, ``batch_size`` (query, better doc) groups per step, for
    ``epochs`` passes. Constructed from the config group ``student_data``; each round binds its own examples."""

    def __init__(self, batch_size: int = 4, epochs: int = 1):
        super().__init__()
        self.save_hyperparameters()
        self.examples: Dataset | None = None

    def bind(self, examples: Dataset) -> DistillationDataModule:
        self.examples = examples
        return self

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.examples, batch_size=self.hparams.batch_size, shuffle=True, collate_fn=collate_pairs)
