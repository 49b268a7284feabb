"""Judged queries made from the corpus itself, each with one relevant document: the document it was taken from.

Two kinds (``kind``): a document's **title** (shown to training without its title, the document cannot be matched
by copying the query: the teacher and the student must learn that the body answers the title), or one **sentence**
of its body, removed from the document training shows (the inverse cloze task of Lee et al., 2019: the rest of the
abstract must answer a statement of its own finding, closer to a claim or question than a title is). Everything
training reads (the teacher, mining, the student, dev evaluation) sees that view; the test split reads whole
documents.

Two uses: label-free mode, for datasets without train qrels (GPL's setting), where these are the only train and dev
queries; and domain adaptation of the student beside the labelled queries (``distill_queries``), where the teacher
scores their shortlists like any other and the student learns the corpus' vocabulary from its margins.

Label-free mode may also distil on the collection's own **unjudged queries** (``unjudged_queries``): the texts in
queries.jsonl that no split in use judges (a query log without labels). Never a test query, nor one whose text is a
test query's: the report stays untouched. The pseudo-queries still train the teacher and choose the ensemble's
weights; some of the unjudged queries, held out and judged by the teacher, become dev (pipeline/stages/unjudged.py).
"""
from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Collection, Mapping, Sequence

from crossdistill.data.corpus import contents
from crossdistill.data.source import PreparedData
from crossdistill.types import Qrels

PREFIX = "pseudo-title:"
SENTENCE_PREFIX = "pseudo-sentence:"
KINDS = ("title", "sentence")
# auto: titles when enough documents have one usable as a query, else sentences (MS MARCO passages and FiQA have no
# titles at all)
AUTO = "auto"
# A sentence ends at . ! or ? followed by space and a capital, digit or bracket ("e.g. the" does not end one), or at
# a tokenized stop standing alone ("acids . correlation": lower-cased collections such as MED write them so).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])|(?<=\s[.!?])\s+")
# A text with no capital at all (lower-cased collections) has no capital to look for: a stop after a word of four or
# more letters or digits ends a sentence ("rabbits. tissues"), one after a short word or an initial does not
# ("24 hr. following", "i.v. injection").
_LOWER_CASE_END = re.compile(r"(?<=[a-z0-9)\]]{4}[.!?])\s+|(?<=\s[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    text = text.strip()
    pattern = _SENTENCE_END if any(c.isupper() for c in text) else _LOWER_CASE_END
    return [piece.strip() for piece in pattern.split(text) if piece.strip()]


def cloze(body: str, rng: random.Random, min_words: int, max_words: int) -> tuple[str, str] | None:
    """(one sentence of ``body``, ``body`` without it), the sentence drawn among those of ``min_words`` to
    ``max_words`` words; None when the body has fewer than two sentences or no such sentence."""
    sentences = split_sentences(body)
    if len(sentences) < 2:
        return None
    eligible = [i for i, t in enumerate(sentences) if min_words <= len(t.split()) <= max_words]
    if not eligible:
        return None
    i = rng.choice(eligible)
    return sentences[i], " ".join(sentences[:i] + sentences[i + 1:])


def teacher_judgments(scores: Mapping[tuple[str, str], float], top: int) -> Qrels:
    """Each query's ``top`` documents by the teacher's score (ties: the earlier pair) as its relevant ones: the
    judgments of a dev set whose queries have none, so that dev measures how well the student retrieves what the
    teacher ranks first on queries it never trained on."""
    by_query: dict[str, list[tuple[float, int, str]]] = {}
    for i, ((qid, docid), score) in enumerate(scores.items()):
        by_query.setdefault(qid, []).append((-float(score), i, docid))
    return {q: {d: 1 for _, _, d in sorted(rows)[:top]} for q, rows in by_query.items()}


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
    """Turn ``train_queries + dev_queries`` documents into pseudo-labelled queries: their titles (at least
    ``min_words`` long) or, with ``kind: sentence``, one sentence of ``min_words`` to ``max_words`` words each.
    ``kind: auto`` takes titles when at least as many documents as asked for have one, else sentences (when they
    give more): decided on the data, and said in ``kind_choice``.

    Used by the pipeline only when the data has no train qrels. The dev queries are held out from training and
    only select checkpoints; the test split, with its real judgments, is what gets reported.
    """

    def __init__(self, train_queries: int = 1500, dev_queries: int = 100, min_words: int = 4, seed: int = 13,
                 distill_queries: int = 0, kind: str = "auto", max_words: int = 40, unjudged_queries: bool = False):
        if train_queries < 1 or dev_queries < 1:
            raise ValueError(f"weak_supervision needs >= 1 train and dev query, got {train_queries}, {dev_queries}")
        if distill_queries < 0:
            raise ValueError(f"weak_supervision.distill_queries must be >= 0, got {distill_queries}")
        if kind not in (*KINDS, AUTO):
            raise ValueError(f"weak_supervision.kind must be one of {(*KINDS, AUTO)}, got {kind!r}")
        if max_words < min_words:
            raise ValueError(f"weak_supervision.max_words ({max_words}) is below min_words ({min_words})")
        self.train_queries, self.dev_queries = train_queries, dev_queries
        self.min_words, self.seed, self.distill_queries = min_words, seed, distill_queries
        self.kind, self.max_words = kind, max_words
        self.unjudged_queries = bool(unjudged_queries)
        self.kind_choice = kind   # auto: replaced by the kind chosen and why, once the data is seen

    @property
    def prefix(self) -> str:
        return PREFIX if self.kind == "title" else SENTENCE_PREFIX

    def _resolve_kind(self, data: PreparedData, excluded: Collection[str], n: int) -> list | None:
        """``kind: auto`` -> title when ``n`` documents outside ``excluded`` have a usable title, else sentence
        (unless sentences give fewer pseudo-queries than titles do). Returns the sentence pseudo-queries it made to
        count them, if any (not made twice)."""
        if self.kind != AUTO:
            return None
        titles = len(self._usable_titles(data, excluded))
        sentences = self._sentence_queries(data, excluded, n) if titles < n else []
        self.kind = "title" if titles >= n or titles >= len(sentences) else "sentence"
        self.kind_choice = (f"auto -> {self.kind}: {titles} documents have a title of >= {self.min_words} words, "
                            f"{n} wanted")
        return sentences if self.kind == "sentence" else None

    def _usable_titles(self, data: PreparedData, excluded: Collection[str]) -> list[tuple[str, str]]:
        """(docid, title) of documents outside ``excluded`` with a title of >= ``min_words`` words and a body."""
        corpus = data.dataset.corpus
        docids, titles = list(corpus["docid"]), list(corpus["title"])
        return [(docids[i], titles[i].strip()) for i in usable_title_rows(titles, corpus["text"], self.min_words)
                if docids[i] not in excluded]

    def _sentence_queries(self, data: PreparedData, excluded: Collection[str], n: int) -> list[tuple[str, str, str]]:
        """(docid, sentence, the document without it) for ``n`` documents outside ``excluded``, visited in a seeded
        random order (only as many bodies are split as it takes)."""
        corpus = data.dataset.corpus
        order = list(range(len(corpus)))
        random.Random(self.seed).shuffle(order)
        chosen: list[tuple[str, str, str]] = []
        for start in range(0, len(order), 4096):
            block = corpus[order[start:start + 4096]]
            for docid, title, body in zip(block["docid"], block["title"], block["text"]):
                if docid in excluded:
                    continue
                pair = cloze(body, random.Random(f"{self.seed}:{docid}"), self.min_words, self.max_words)
                if pair is not None:
                    chosen.append((docid, pair[0], contents(title, pair[1])))
                    if len(chosen) == n:
                        return chosen
        return chosen

    def _chosen(self, data: PreparedData, excluded: Collection[str], n: int) -> list[tuple[str, str, str | None]]:
        """(docid, query, the document's text as training shows it, or None for the title-less body)."""
        counted = self._resolve_kind(data, excluded, n)
        if self.kind == "sentence":
            return counted if counted is not None else self._sentence_queries(data, excluded, n)
        usable = self._usable_titles(data, excluded)
        return [(d, t, None) for d, t in random.Random(self.seed).sample(usable, min(n, len(usable)))]

    def _training_view(self, data: PreparedData, chosen: Sequence[tuple[str, str, str | None]]) -> Mapping[str, str]:
        if self.kind == "title":
            return data.doc_text.view("body")   # every document without its title
        return data.doc_text.with_texts({d: shown for d, _, shown in chosen})

    def _what(self) -> str:
        return (f"a title of >= {self.min_words} words" if self.kind == "title" else
                f"a sentence of {self.min_words}-{self.max_words} words in a body of two or more")

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
        chosen = self._chosen(data, held_out | set(exclude_docs), self.distill_queries)
        if not chosen:
            raise ValueError(f"weak_supervision.distill_queries: no document has {self._what()} outside the "
                             "dev/test judgments and the teacher's title queries")
        p = self.prefix
        return QuerySet(queries={p + d: q for d, q, _ in chosen}, qrels={p + d: {d: 1} for d, _, _ in chosen},
                        doc_text=self._training_view(data, chosen))

    def unjudged(self, data: PreparedData) -> QuerySet | None:
        """Label-free mode with ``unjudged_queries``: the collection's queries that no split in use judges, shown
        the documents as training reads them, with no judgments (their pairs come from the teacher's order). None
        when off, with labels, or when the collection holds no such query (BEIR folders often ship test queries
        only); queries whose text is a test query's are left out too."""
        if not self.unjudged_queries or not data.label_free:
            return None
        judged = {q for split in data.qrels.values() for q in split}
        test_texts = {data.dataset.queries[q].strip().lower() for q in data.qrels["test"] if q in data.dataset.queries}
        queries = {q: text for q, text in data.dataset.queries.items()
                   if q not in judged and not q.startswith((PREFIX, SENTENCE_PREFIX)) and text.strip()
                   and text.strip().lower() not in test_texts}
        return QuerySet(queries=queries, qrels={}, doc_text=data.train_doc_text) if queries else None

    def split_unjudged(self, query_set: QuerySet) -> tuple[QuerySet, list[str]]:
        """(the unjudged queries to distil on, ``dev_queries`` of them held out for dev, in a seeded draw); nothing
        held out when fewer than twice ``dev_queries`` exist (dev then stays the pseudo-queries')."""
        qids = sorted(query_set.queries)
        if len(qids) < 2 * self.dev_queries:
            return query_set, []
        random.Random(f"{self.seed}:unjudged").shuffle(qids)
        dev = sorted(qids[: self.dev_queries])
        train = {q: query_set.queries[q] for q in sorted(qids[self.dev_queries:])}
        return dataclasses.replace(query_set, queries=train), dev

    def apply(self, data: PreparedData) -> PreparedData:
        test_docs = {d for judged in data.qrels["test"].values() for d in judged}
        # Documents judged for test queries are never pseudo-query sources: nothing of the test labels leaks in.
        chosen = self._chosen(data, test_docs, self.train_queries + self.dev_queries)
        if len(chosen) < self.dev_queries + 1:
            hint = "; weak_supervision.kind=auto or sentence makes them from sentences" if self.kind_choice == "title" \
                else ""
            raise ValueError(f"label-free mode: only {len(chosen)} documents have {self._what()}; need more than "
                             f"{self.dev_queries} to make pseudo-queries{hint}")
        dev, train, p = chosen[: self.dev_queries], chosen[self.dev_queries:], self.prefix
        queries = dict(data.dataset.queries) | {p + d: q for d, q, _ in chosen}
        dataset = dataclasses.replace(data.dataset, queries=queries)
        return dataclasses.replace(
            data, dataset=dataset, train_qids=sorted(p + d for d, _, _ in train),
            dev_qids=sorted(p + d for d, _, _ in dev), train_doc_text=self._training_view(data, chosen),
            train_view="without titles" if self.kind == "title" else "without the pseudo-queries' sentences",
            label_free=True, pseudo_queries=self.kind_choice,
            qrels={"train": {p + d: {d: 1} for d, _, _ in train}, "dev": {p + d: {d: 1} for d, _, _ in dev},
                   "test": data.qrels["test"]})
