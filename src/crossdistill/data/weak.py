"""Judged queries made from the corpus itself: a document's title becomes a query whose one relevant document is
that document. Shown to the models *without* its title, the document cannot be matched by copying the query: the
teacher and the student must learn that the body answers the title. Evaluation still reads full documents.

Two uses: label-free mode, for datasets without train qrels (GPL's setting), where these are the only train and dev
queries; and domain adaptation of the student beside the labelled queries (``distill_queries``), where the teacher
scores their shortlists like any other and the student learns the corpus' vocabulary from its margins.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Collection, Mapping, Sequence

from crossdistill.data.source import PreparedData
from crossdistill.types import Qrels

PREFIX = "pseudo-title:"


def usable_title_rows(titles: Sequence[str], bodies: Sequence[str], min_words: int) -> list[int]:
    """Rows of the documents whose title can be a query: at least ``min_words`` words, and a non-empty body."""
    return [i for i, (t, b) in enumerate(zip(titles, bodies)) if len(t.split()) >= min_words and b.strip()]


@dataclasses.dataclass
class QuerySet:
    """Train queries mined together: their texts, judgments and the document text training shows for them."""

    queries: dict[str, str]
    qrels: Qrels
    doc_text: Mapping[str, str]


class TitlePseudoQueries:
    """Turn ``train_queries + dev_queries`` titles (at least ``min_words`` long) into pseudo-labelled queries.

    Used by the pipeline only when the data has no train qrels. The dev queries are held out from training and
    only select checkpoints; the test split, with its real judgments, is what gets reported.
    """

    def __init__(self, train_queries: int = 1500, dev_queries: int = 100, min_words: int = 4, seed: int = 13,
                 distill_queries: int = 0):
        if train_queries < 1 or dev_queries < 1:
            raise ValueError(f"weak_supervision needs >= 1 train and dev query, got {train_queries}, {dev_queries}")
        if distill_queries < 0:
            raise ValueError(f"weak_supervision.distill_queries must be >= 0, got {distill_queries}")
        self.train_queries, self.dev_queries = train_queries, dev_queries
        self.min_words, self.seed, self.distill_queries = min_words, seed, distill_queries

    def _usable_titles(self, data: PreparedData, excluded: Collection[str]) -> list[tuple[str, str]]:
        """(docid, title) of documents outside ``excluded`` with a title of >= ``min_words`` words and a body."""
        corpus = data.dataset.corpus
        docids, titles = list(corpus["docid"]), list(corpus["title"])
        return [(docids[i], titles[i].strip()) for i in usable_title_rows(titles, corpus["text"], self.min_words)
                if docids[i] not in excluded]

    def distillation_queries(self, data: PreparedData, exclude_docs: Collection[str] = ()) -> QuerySet | None:
        """``distill_queries`` title pseudo-queries to mine and distil beside the labelled train queries.

        Never from documents judged for dev or test queries (model selection and the report stay untouched by
        them), nor from ``exclude_docs`` (the teacher's own title queries: the teacher has learned those pairs, and
        its margins on them would be its memory, not its judgment). None when off or in label-free mode, where the
        train queries are title pseudo-queries already.
        """
        if not self.distill_queries or data.label_free:
            return None
        held_out = {d for split in ("dev", "test") for judged in data.qrels[split].values() for d in judged}
        usable = self._usable_titles(data, held_out | set(exclude_docs))
        if not usable:
            raise ValueError(f"weak_supervision.distill_queries: no document has a title of >= {self.min_words} "
                             "words outside the dev/test judgments and the teacher's title queries")
        chosen = random.Random(self.seed).sample(usable, min(self.distill_queries, len(usable)))
        return QuerySet(queries={PREFIX + d: t for d, t in chosen}, qrels={PREFIX + d: {d: 1} for d, _ in chosen},
                        doc_text=data.doc_text.view("body"))

    def apply(self, data: PreparedData) -> PreparedData:
        test_docs = {d for judged in data.qrels["test"].values() for d in judged}
        # Documents judged for test queries are never pseudo-query sources: nothing of the test labels leaks in.
        usable = self._usable_titles(data, test_docs)
        need = self.train_queries + self.dev_queries
        if len(usable) < self.dev_queries + 1:
            raise ValueError(f"label-free mode: only {len(usable)} documents have a title of >= {self.min_words} "
                             f"words; need more than {self.dev_queries} to make pseudo-queries")
        chosen = random.Random(self.seed).sample(usable, min(need, len(usable)))
        dev, train = chosen[: self.dev_queries], chosen[self.dev_queries:]
        queries = dict(data.dataset.queries) | {PREFIX + d: t for d, t in chosen}
        train_doc_text = data.doc_text.view("body")   # every document without its title
        dataset = dataclasses.replace(data.dataset, queries=queries)
        return dataclasses.replace(
            data, dataset=dataset, train_qids=sorted(PREFIX + d for d, _ in train),
            dev_qids=sorted(PREFIX + d for d, _ in dev), train_doc_text=train_doc_text, label_free=True,
            qrels={"train": {PREFIX + d: {d: 1} for d, _ in train}, "dev": {PREFIX + d: {d: 1} for d, _ in dev},
                   "test": data.qrels["test"]})
