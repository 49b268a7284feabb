"""Load and validate a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

Files are parsed line by line by hand (not via ``datasets.load_dataset``) so that every
problem can be reported with the exact file, 1-based line number and field; a bad input
should stop a run before any expensive training starts, with a message a user can act on.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from crossdistill.common.codes import positions_in
from crossdistill.data.corpus import Corpus, CorpusWriter

__all__ = ["DataError", "BeirDataset", "load_beir"]

QRELS_HEADER = ("query-id", "corpus-id", "score")
HEADER_TEXT = "\t".join(QRELS_HEADER)


class DataError(ValueError):
    """One clear message naming file, line (when there is one), field and problem."""

    def __init__(self, path, problem: str, line: int | None = None, field: str | None = None):
        self.path = path
        self.problem = problem
        self.line = line
        self.field = field
        where = str(path)
        if line is not None:
            where += f" line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        # Keep the error picklable (e.g. raised inside a DataLoader worker).
        return (type(self), (self.path, self.problem, self.line, self.field))


@dataclass
class BeirDataset:
    """A loaded BEIR dataset; ``fingerprint`` identifies its exact content for caching."""

    name: str
    path: Path
    corpus: datasets.Dataset
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]
    fingerprint: str

    @cached_property
    def _doc_ids(self) -> list[str]:
        return self.corpus.with_format("arrow")["docid"].to_pylist()

    @property
    def doc_ids(self) -> list[str]:
        """Document ids in corpus order (a fresh list, so callers may mutate it)."""
        return list(self._doc_ids)

    @cached_property
    def doc_index(self) -> dict[str, int]:
        """docid -> row in ``corpus``."""
        return {d: i for i, d in enumerate(self._doc_ids)}

    @cached_property
    def _row_index(self) -> pd.Index:
        return pd.Index(self._doc_ids)

    def rows_of(self, docids: Sequence[str]) -> np.ndarray:
        """The corpus rows of ``docids`` as one int64 array (millions of mined pairs make no Python ints or strings);
        a KeyError names the first docid the corpus lacks."""
        return positions_in(self._row_index, docids, "corpus")

    @cached_property
    def documents(self) -> Corpus:
        """docid -> the text each document is encoded and scored as ("title text"), read from the Arrow corpus."""
        return Corpus(self.corpus, ids=self._doc_ids, rows=self.doc_index)

    def split_queries(self, split: str) -> dict[str, str]:
        """qid -> text for the queries judged in ``split``, in qrels file order."""
        if split not in self.qrels:
            raise KeyError(f"split {split!r} not loaded for dataset {self.name!r}; loaded: {sorted(self.qrels)}")
        return {qid: self.queries[qid] for qid in self.qrels[split]}

    def subset(
        self, max_docs: int | None, max_queries: dict[str, int] | None, seed: int
    ) -> BeirDataset:
        """A smaller, still self-consistent slice for smoke runs.

        Per split, keep a seeded sample of ``max_queries[split]`` judged queries (all of
        them when the split is not in ``max_queries``). Every document judged for a kept
        query is kept so no relevance label is lost; the corpus is then filled with a
        seeded sample of other documents up to ``max_docs`` (never below the judged
        documents; ``None`` keeps every document). Corpus order is preserved; ``queries``
        holds only the kept queries.
        """
        max_queries = dict(max_queries or {})
        unknown = set(max_queries) - set(self.qrels)
        if unknown:
            raise ValueError(f"max_queries names splits not loaded: {sorted(unknown)}; loaded: {sorted(self.qrels)}")
        if max_docs is not None and max_docs < 1:
            raise ValueError(f"max_docs must be >= 1 or None, got {max_docs}")

        qrels: dict[str, dict[str, dict[str, int]]] = {}
        for split, judged in self.qrels.items():
            limit = max_queries.get(split)
            if limit is None or limit >= len(judged):
                keep = set(judged)
            elif limit < 1:
                raise ValueError(f"max_queries[{split!r}] must be >= 1, got {limit}")
            else:
                keep = set(random.Random(f"{seed}:{split}").sample(sorted(judged), limit))
            qrels[split] = {q: dict(docs) for q, docs in judged.items() if q in keep}

        judged_docs = {d for split in qrels.values() for docs in split.values() for d in docs}
        if max_docs is None:
            rows = list(range(len(self._doc_ids)))
        else:
            others = [i for i, d in enumerate(self._doc_ids) if d not in judged_docs]
            n_fill = max(0, min(max_docs - len(judged_docs), len(others)))
            fill = random.Random(f"{seed}:docs").sample(others, n_fill)
            rows = sorted([self.doc_index[d] for d in judged_docs] + fill)

        kept_qids = {q for split in qrels.values() for q in split}
        queries = {q: t for q, t in self.queries.items() if q in kept_qids}
        args = json.dumps([max_docs, sorted(max_queries.items()), seed])
        fingerprint = hashlib.sha256(f"{self.fingerprint}|subset|{args}".encode()).hexdigest()
        return replace(
            self,
            corpus=self.corpus.select(rows),
            queries=queries,
            qrels=qrels,
            fingerprint=fingerprint,
        )


def _lines(path: Path, hasher) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded line) for non-blank lines; feed raw bytes to hasher."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            hasher.update(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(path, f"not valid UTF-8 ({e.reason} at byte {e.start})", lineno) from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")
            line = line.rstrip("\r\n")
            if line.strip():
                yield lineno, line


def _read_jsonl(path: Path, hasher, with_title: bool) -> Iterator[tuple[int, str, str, str]]:
    """Yield (line, _id, title, text) from a BEIR jsonl file, validating each record."""
    seen: dict[str, int] = {}
    for lineno, line in _lines(path, hasher):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, f"not valid JSON ({e.msg} at column {e.colno})", lineno) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", lineno)
        if "_id" not in obj:
            raise DataError(path, "missing", lineno, "_id")
        _id = obj["_id"]
        if not isinstance(_id, str) or not _id:
            raise DataError(path, f"must be a non-empty string, got {_id!r}", lineno, "_id")
        if _id in seen:
            raise DataError(path, f"duplicate id {_id!r} (first seen on line {seen[_id]})", lineno, "_id")
        seen[_id] = lineno
        if "text" not in obj:
            raise DataError(path, "missing", lineno, "text")
        if not isinstance(obj["text"], str):
            raise DataError(path, f"must be a string, got {type(obj['text']).__name__}", lineno, "text")
        title = ""
        if with_title:
            # A null title is common in exported BEIR corpora and means "no title".
            title = obj.get("title") or ""
            if not isinstance(title, str):
                raise DataError(path, f"must be a string, got {type(title).__name__}", lineno, "title")
        yield lineno, _id, title, obj["text"]


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False


def _read_qrels(path: Path, hasher, queries: dict[str, str], doc_set: set[str]) -> dict[str, dict[str, int]]:
    """Parse one qrels TSV into qid -> docid -> grade, checking ids against queries and corpus."""
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    first = True
    for lineno, line in _lines(path, hasher):
        cols = line.split("\t")
        if first:
            first = False
            # The first line is a header unless it already looks like a data row.
            if not (len(cols) == 3 and _is_int(cols[2].strip())):
                if tuple(c.strip() for c in cols) != QRELS_HEADER:
                    raise DataError(path, f"header must be {HEADER_TEXT!r}, got {line!r}", lineno)
                continue
        if len(cols) != 3:
            raise DataError(path, f"expected 3 tab-separated columns, got {len(cols)}", lineno)
        qid, docid, score = (c.strip() for c in cols)
        if not _is_int(score):
            raise DataError(path, f"must be an integer, got {score!r}", lineno, "score")
        if qid not in queries:
            raise DataError(path, f"query id {qid!r} is not in queries.jsonl", lineno, "query-id")
        if docid not in doc_set:
            raise DataError(path, f"doc id {docid!r} is not in corpus.jsonl", lineno, "corpus-id")
        if (qid, docid) in seen:
            raise DataError(
                path, f"duplicate pair ({qid!r}, {docid!r}) (first seen on line {seen[qid, docid]})", lineno, "corpus-id"
            )
        seen[qid, docid] = lineno
        qrels.setdefault(qid, {})[docid] = int(score)
    if not qrels:
        raise DataError(path, "no judgement rows")
    if not any(g > 0 for docs in qrels.values() for g in docs.values()):
        raise DataError(path, "no row with a positive grade (score > 0)")
    return qrels


def _requested_splits(root: Path, splits: Sequence[str] | str | None) -> list[str]:
    """The qrels splits to load, each checked to exist, with the folder's required files."""
    if not root.is_dir():
        raise DataError(root, "is a file, not a BEIR dataset folder" if root.exists() else
                        "dataset folder does not exist")
    corpus_path, queries_path, qrels_dir = root / "corpus.jsonl", root / "queries.jsonl", root / "qrels"
    for p in (corpus_path, queries_path):
        if not p.is_file():
            raise DataError(p, "file does not exist")
    if splits is None:
        splits = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
        if not splits:
            raise DataError(qrels_dir, "no qrels/<split>.tsv files found")
    elif isinstance(splits, str):
        splits = [splits]
    splits = list(dict.fromkeys(splits))
    for split in splits:
        if not (qrels_dir / f"{split}.tsv").is_file():
            raise DataError(qrels_dir / f"{split}.tsv", f"qrels file for requested split {split!r} does not exist")
    return splits


def _read_corpus(path: Path, hasher, arrow_dir: Path | None) -> tuple[set[str], datasets.Dataset]:
    """The corpus' ids and its Arrow table, streamed row by row (its texts never held as Python lists)."""
    writer, docids = CorpusWriter(arrow_dir), set()
    try:
        for _, _id, title, text in _read_jsonl(path, hasher, with_title=True):
            docids.add(_id)
            writer.add(_id, title, text)
        if not docids:
            raise DataError(path, "no documents")
    except BaseException:
        writer.abort()
        raise
    return docids, writer.finish(f"corpus-{hasher.hexdigest()[:32]}.arrow")


def load_beir(path: str | Path, splits: Sequence[str] | None = ("train", "test"),
              arrow_dir: str | Path | None = None) -> BeirDataset:
    """Load and fully validate a BEIR folder.

    ``splits`` lists the qrels splits to load; each must exist (the default included).
    ``splits=None`` loads whatever ``qrels/*.tsv`` files exist (at least one).
    ``arrow_dir``: where the corpus is written as an Arrow file (named by its content hash) and memory-mapped from;
    without it the corpus is held in memory and nothing is written anywhere.
    """
    root = Path(path)
    splits = _requested_splits(root, splits)
    queries_path, qrels_dir = root / "queries.jsonl", root / "qrels"
    # Each file is hashed on its own and combined with its relative path in a fixed
    # order, so the cache key changes with any byte of any loaded file.
    fingerprint = hashlib.sha256()

    def record(p: Path, h) -> None:
        fingerprint.update(f"{p.relative_to(root).as_posix()}:{h.hexdigest()}\n".encode())

    h = hashlib.sha256()
    doc_set, corpus = _read_corpus(root / "corpus.jsonl", h, Path(arrow_dir) if arrow_dir is not None else None)
    record(root / "corpus.jsonl", h)

    h = hashlib.sha256()
    queries = {_id: text for _, _id, _, text in _read_jsonl(queries_path, h, with_title=False)}
    if not queries:
        raise DataError(queries_path, "no queries")
    record(queries_path, h)

    qrels, qrels_hashes = {}, {}
    for split in splits:
        qrels_hashes[split] = h = hashlib.sha256()
        qrels[split] = _read_qrels(qrels_dir / f"{split}.tsv", h, queries, doc_set)
    for split in sorted(qrels_hashes):  # the order splits were requested in must not matter
        record(qrels_dir / f"{split}.tsv", qrels_hashes[split])

    return BeirDataset(
        name=root.resolve().name,
        path=root,
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        fingerprint=fingerprint.hexdigest(),
    )
