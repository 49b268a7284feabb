"""Small helpers every inference and training loop shares: batch order, device moves, list datasets."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


def longest_first(texts: Sequence[str]) -> np.ndarray:
    """Indices of ``texts`` by decreasing character length (stable): batches of similar length waste little compute
    on padding. Callers scatter results back through these indices, so the output order is the input order."""
    return by_length(np.fromiter(map(len, texts), np.int64, len(texts)))


def by_length(lengths: Sequence[int]) -> np.ndarray:
    """``longest_first`` from the lengths alone (texts not fetched yet), as an int64 array (stable: equal lengths
    keep their input order)."""
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


def to_device(features: Mapping, device: torch.device) -> dict:
    """A tokenizer's output on ``device``; non-tensor entries (sentence-transformers' "modality") pass as they are."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in features.items()}


class ListDataset(Dataset):
    """A list of dict examples; the loaders keep strings, and the modules tokenize in their steps."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def collate_lists(batch: list[dict]) -> dict:
    """Column-wise lists, so Lightning moves nothing and each step tokenizes once for the whole batch."""
    return {key: [item[key] for item in batch] for key in batch[0]}
