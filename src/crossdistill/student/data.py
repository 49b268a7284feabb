"""Distillation examples: (query, doc a, doc b, teacher margin) rows as text, ready for the student."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from crossdistill.teacher.data import ListDataset


def pair_examples(pairs: pd.DataFrame, queries: Mapping[str, str], doc_text: Mapping[str, str]) -> ListDataset:
    return ListDataset([{"queries": queries[r.qid], "docs_a": doc_text[r.docid_a], "docs_b": doc_text[r.docid_b],
                         "margins": float(r.margin)} for r in pairs.itertuples()])


def collate_pairs(batch: list[dict]) -> dict:
    out = {key: [item[key] for item in batch] for key in ("queries", "docs_a", "docs_b")}
    out["margins"] = torch.tensor([item["margins"] for item in batch], dtype=torch.float32)
    return out
