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
from crossdistill.data.corpus import texts_by_id


def pair_examples(pairs: pd.DataFrame, queries: Mapping[str, str], doc_text: Mapping[str, str]) -> ListDataset:
    """One group per (query, better doc), in first-seen order, its worse docs in pair order. Each distinct
    document's text is fetched once and shared by its groups (positions into arrays, not a grouped frame per group:
    hundreds of thousands of groups at scale)."""
    if pairs.empty:
        return ListDataset([])
    text = texts_by_id(doc_text, pd.concat([pairs.docid_a, pairs.docid_b]).unique())
    codes, keys = pd.MultiIndex.from_arrays([pairs.qid, pairs.docid_a]).factorize()
    by_group = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_group], np.arange(len(keys) + 1))
    worse, margins = pairs.docid_b.tolist(), pairs.margin.tolist()
    groups = []
    for (qid, docid_a), start, stop in zip(keys, bounds[:-1], bounds[1:]):
        rows = by_group[start:stop].tolist()
        groups.append({"queries": queries[qid], "docs_a": text[docid_a], "docs_b": [text[worse[r]] for r in rows],
                       "margins": [float(margins[r]) for r in rows]})
    return ListDataset(groups)


def collate_pairs(batch: list[dict]) -> dict:
    """Flatten the worse docs; ``owner[i]`` says which query / better doc the i-th worse doc belongs to."""
    return {
        "queries": [item["queries"] for item in batch],
        "docs_a": [item["docs_a"] for item in batch],
        "docs_b": [d for item in batch for d in item["docs_b"]],
        "owner": torch.tensor([i for i, item in enumerate(batch) for _ in item["docs_b"]], dtype=torch.long),
        "margins": torch.tensor([m for item in batch for m in item["margins"]], dtype=torch.float32),
    }


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
