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


def title_query_sources(titles: Sequence[str], bodies: Sequence[str], n: int, rng: random.Random) -> list[int]:
    """Indices of the ``n`` documents whose titles ``title_pseudo_groups`` turns into queries (titles of >= 4
    words, non-empty bodies); with ``random.Random(seed)`` it names the same documents as that call."""
    candidates = [i for i, (t, b) in enumerate(zip(titles, bodies)) if len(t.split()) >= 4 and b.strip()]
    return rng.sample(candidates, min(n, len(candidates)))


def title_pseudo_groups(doc_ids: Sequence[str], titles: Sequence[str], bodies: Sequence[str], search, n: int,
                        negatives: int, depth: int, seed: int) -> list[dict]:
    """Weak supervision from the corpus itself: a document's title as a query for its own body.

    Useful when judged queries are few (or absent). Every document in a group is shown without its title, so
    the title's verbatim presence cannot become the signal. Negatives are the BM25 top ``depth`` for the title,
    the source document excluded. ``search`` is a ``BM25Retriever.search``-like callable.
    """
    rng = random.Random(seed)
    chosen = title_query_sources(titles, bodies, n, rng)
    body = dict(zip(doc_ids, bodies))
    hits = search({doc_ids[i]: titles[i] for i in chosen}, depth + 1)
    groups = []
    for i in chosen:
        pool = [d for d, _ in hits.get(doc_ids[i], []) if d != doc_ids[i] and body[d].strip()][:depth]
        if len(pool) >= negatives:
            negs = rng.sample(pool, negatives)
            groups.append({"queries": titles[i], "docs": [bodies[i]] + [body[d] for d in negs]})
    return groups
