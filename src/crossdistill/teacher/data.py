"""The teacher's data: training groups (query, judged positive, BM25 hard negatives; title pseudo-queries beside
them) and validation shortlists, built from qrels and BM25 runs, served by a LightningDataModule."""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from crossdistill.common.batching import ListDataset, collate_lists
from crossdistill.data.corpus import texts_by_id
from crossdistill.data.weak import usable_title_rows
from crossdistill.types import Run


def training_groups(qids: Sequence[str], queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                    bm25: Run, doc_text: Mapping[str, str], negatives: int, depth: int, seed: int) -> list[dict]:
    """One group per judged (query, positive): the positive first, then ``negatives`` BM25 hard negatives.

    Negatives are sampled from the BM25 top ``depth`` and never include a document judged relevant for the query:
    a judged positive used as a negative would teach the teacher the opposite of the labels.
    """
    rng = random.Random(seed)
    chosen = []
    for qid in qids:
        judged = qrels.get(qid, {})
        pool = [d for d, _ in bm25.get(qid, [])[:depth] if judged.get(d, 0) <= 0]
        if len(pool) < negatives:
            continue
        for pos, grade in judged.items():
            if grade > 0:
                chosen.append((qid, [pos, *rng.sample(pool, negatives)]))
    text = texts_by_id(doc_text, [d for _, docids in chosen for d in docids])
    return [{"queries": queries[qid], "docs": [text[d] for d in docids]} for qid, docids in chosen]



def validation_groups(qids: Sequence[str], queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                      bm25: Run, doc_text: Mapping[str, str], depth: int) -> list[dict]:
    """Each dev query with its BM25 top ``depth``: the teacher is judged by how well it reorders a real shortlist."""
    shortlists = {qid: [d for d, _ in bm25.get(qid, [])[:depth]] for qid in qids}
    text = texts_by_id(doc_text, [d for docids in shortlists.values() for d in docids])
    return [{"queries": queries[qid], "docids": docids, "docs": [text[d] for d in docids],
             "judgments": dict(qrels.get(qid, {}))} for qid, docids in shortlists.items() if docids]


def title_query_sources(titles: Sequence[str], bodies: Sequence[str], n: int, rng: random.Random,
                        min_words: int = 4) -> list[int]:
    """Rows of the ``n`` documents whose titles become queries: a sample of the usable titles."""
    candidates = usable_title_rows(titles, bodies, min_words)
    return rng.sample(candidates, min(n, len(candidates)))


def title_pseudo_groups(doc_ids: Sequence[str], titles: Sequence[str], bodies: Sequence[str], search, n: int,
                        negatives: int, depth: int, seed: int, min_words: int = 4) -> list[dict]:
    """Weak supervision from the corpus itself: a document's title as a query for its own body.

    Useful when judged queries are few (or absent). Every document in a group is shown without its title, so
    the title's verbatim presence cannot become the signal. Negatives are the BM25 top ``depth`` for the title,
    the source document excluded. ``search`` is a ``BM25Retriever.search``-like callable.
    """
    rng = random.Random(seed)
    chosen = title_query_sources(titles, bodies, n, rng, min_words)
    body = dict(zip(doc_ids, bodies))
    hits = search({doc_ids[i]: titles[i] for i in chosen}, depth + 1)
    groups = []
    for i in chosen:
        pool = [d for d, _ in hits.get(doc_ids[i], []) if d != doc_ids[i] and body[d].strip()][:depth]
        if len(pool) >= negatives:
            negs = rng.sample(pool, negatives)
            groups.append({"queries": titles[i], "docs": [bodies[i]] + [body[d] for d in negs]})
    return groups


class TeacherDataModule(pl.LightningDataModule):
    """Groups of ``1 + negatives`` documents per judged (query, positive), ``pseudo_queries`` title groups beside
    them, and the dev queries' BM25 top ``val_depth`` for validation; ``epochs`` passes over them.

    Constructed from the config group ``teacher_data``; the corpus-sized inputs are bound afterwards with
    :meth:`bind` (Hydra would copy them through OmegaConf). Groups are built once, in the launching process.
    """

    def __init__(self, negatives: int = 3, negative_depth: int = 30, val_depth: int = 20, pseudo_queries: int = 800,
                 title_min_words: int = 4, batch_size: int = 4, val_batch_size: int = 8, epochs: int = 1,
                 seed: int = 13):
        super().__init__()
        self.save_hyperparameters()
        self.data = self.bm25 = self.bm25_runs = None
        self.train_groups: list[dict] | None = None
        self.val_groups: list[dict] | None = None

    def bind(self, data, bm25, bm25_runs: Mapping[str, Run]) -> TeacherDataModule:
        """The prepared data (``PreparedData``), its BM25 index and the train/dev BM25 runs."""
        self.data, self.bm25, self.bm25_runs = data, bm25, bm25_runs
        return self

    @property
    def uses_title_queries(self) -> bool:
        # Label-free: the train queries are title pseudo-queries already.
        return bool(self.hparams.pseudo_queries) and not self.data.label_free

    def title_docs(self) -> list[str]:
        """The documents whose titles the teacher learns as queries (mining keeps them out of its own pseudo-queries:
        the teacher's margins on them would be its memory, not its judgment)."""
        if not self.uses_title_queries:
            return []
        corpus, hp = self.data.dataset.corpus, self.hparams
        rows = title_query_sources(corpus["title"], corpus["text"], hp.pseudo_queries, random.Random(hp.seed),
                                   hp.title_min_words)
        return [self.data.doc_ids[i] for i in rows]

    def setup(self, stage: str | None = None) -> None:
        if self.train_groups is not None:
            return
        data, hp, queries = self.data, self.hparams, self.data.dataset.queries
        groups = training_groups(data.train_qids, queries, data.qrels["train"], self.bm25_runs["train"],
                                 data.train_doc_text, hp.negatives, hp.negative_depth, hp.seed)
        if self.uses_title_queries:
            corpus = data.dataset.corpus
            groups += title_pseudo_groups(data.doc_ids, corpus["title"], corpus["text"], self.bm25.search,
                                          hp.pseudo_queries, hp.negatives, hp.negative_depth, hp.seed,
                                          hp.title_min_words)
        self.train_groups = groups
        self.val_groups = validation_groups(data.dev_qids, queries, data.qrels["dev"], self.bm25_runs["dev"],
                                            data.train_doc_text, hp.val_depth)

    def __getstate__(self) -> dict:
        # Spawned DDP workers receive the built groups, not the corpus and the BM25 index (which does not pickle).
        return {**self.__dict__, "data": None, "bm25": None, "bm25_runs": None}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(ListDataset(self.train_groups), batch_size=self.hparams.batch_size, shuffle=True,
                          collate_fn=collate_lists)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(ListDataset(self.val_groups), batch_size=self.hparams.val_batch_size,
                          collate_fn=collate_lists)
