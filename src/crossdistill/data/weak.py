"""Label-free mode: judged queries made from the corpus itself, for datasets without train qrels (GPL's setting).

A document's title becomes a query whose one relevant document is that document. Shown to the models *without*
its title (``train_doc_text``), the document cannot be matched by copying the query: the teacher and the student
must learn that the body answers the title. Evaluation still reads full documents.
"""
from __future__ import annotations

import dataclasses
import random

from crossdistill.data.source import PreparedData

PREFIX = "pseudo-title:"


class TitlePseudoQueries:
    """Turn ``train_queries + dev_queries`` titles (at least ``min_words`` long) into pseudo-labelled queries.

    Used by the pipeline only when the data has no train qrels. The dev queries are held out from training and
    only select checkpoints; the test split, with its real judgments, is what gets reported.
    """

    def __init__(self, train_queries: int = 1500, dev_queries: int = 100, min_words: int = 4, seed: int = 13):
        if train_queries < 1 or dev_queries < 1:
            raise ValueError(f"weak_supervision needs >= 1 train and dev query, got {train_queries}, {dev_queries}")
        self.train_queries, self.dev_queries = train_queries, dev_queries
        self.min_words, self.seed = min_words, seed

    def apply(self, data: PreparedData) -> PreparedData:
        corpus = data.dataset.corpus
        test_docs = {d for judged in data.qrels["test"].values() for d in judged}
        # Documents judged for test queries are never pseudo-query sources: nothing of the test labels leaks in.
        usable = [(d, t.strip()) for d, t, b in zip(corpus["docid"], corpus["title"], corpus["text"])
                  if len(t.split()) >= self.min_words and b.strip() and d not in test_docs]
        need = self.train_queries + self.dev_queries
        if len(usable) < self.dev_queries + 1:
            raise ValueError(f"label-free mode: only {len(usable)} documents have a title of >= {self.min_words} "
                             f"words; need more than {self.dev_queries} to make pseudo-queries")
        chosen = random.Random(self.seed).sample(usable, min(need, len(usable)))
        dev, train = chosen[: self.dev_queries], chosen[self.dev_queries:]
        queries = dict(data.dataset.queries) | {PREFIX + d: t for d, t in chosen}
        train_doc_text = dict(data.doc_text) | {d: b.strip() for d, b in zip(corpus["docid"], corpus["text"])}
        dataset = dataclasses.replace(data.dataset, queries=queries)
        return dataclasses.replace(
            data, dataset=dataset, train_qids=sorted(PREFIX + d for d, _ in train),
            dev_qids=sorted(PREFIX + d for d, _ in dev), train_doc_text=train_doc_text, label_free=True,
            qrels={"train": {PREFIX + d: {d: 1} for d, _ in train}, "dev": {PREFIX + d: {d: 1} for d, _ in dev},
                   "test": data.qrels["test"]})
