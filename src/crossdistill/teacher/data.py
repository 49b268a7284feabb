"""Training and validation groups for the teacher, built from qrels and BM25 shortlists."""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from torch.utils.data import Dataset

Run = Mapping[str, Sequence[tuple[str, float]]]


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


def training_groups(qids: Sequence[str], queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                    bm25: Run, doc_text: Mapping[str, str], negatives: int, depth: int, seed: int) -> list[dict]:
    """One group per judged (query, positive): the positive first, then ``negatives`` BM25 hard negatives.

    Negatives are sampled from the BM25 top ``depth`` and never include a document judged relevant for the query:
    a judged positive used as a negative would teach the teacher the opposite of the labels.
    """
    rng = random.Random(seed)
    groups = []
    for qid in qids:
        judged = qrels.get(qid, {})
        pool = [d for d, _ in bm25.get(qid, [])[:depth] if judged.get(d, 0) <= 0]
        if len(pool) < negatives:
            continue
        for pos, grade in judged.items():
            if grade > 0:
                negs = rng.sample(pool, negatives)
                groups.append({"queries": queries[qid], "docs": [doc_text[pos]] + [doc_text[d] for d in negs]})
    return groups


def validation_groups(qids: Sequence[str], queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                      bm25: Run, doc_text: Mapping[str, str], depth: int) -> list[dict]:
    """Each dev query with its BM25 top ``depth``: the teacher is judged by how well it reorders a real shortlist."""
    groups = []
    for qid in qids:
        docids = [d for d, _ in bm25.get(qid, [])[:depth]]
        if docids:
            groups.append({"queries": queries[qid], "docids": docids, "docs": [doc_text[d] for d in docids],
                           "judgments": dict(qrels.get(qid, {}))})
    return groups
