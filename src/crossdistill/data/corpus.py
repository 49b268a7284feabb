"""The corpus as a memory-mapped Arrow table: written once while the BEIR file is read and validated, then read by
row. The texts live in the OS page cache, not as Python strings; every stage fetches the rows it needs, a block at
a time (``datasets.Dataset.from_file`` maps the file; pyarrow gathers the rows).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ("docid", "title", "text", "contents", "body")
SCHEMA = pa.schema([(c, pa.string()) for c in COLUMNS])
FEATURES = datasets.Features({c: datasets.Value("string") for c in COLUMNS})
BLOCK = 65_536   # rows per Arrow record batch, and per block a stage fetches at once


def contents(title: str, text: str) -> str:
    """What a document is encoded and scored as: "title text" (just one of them when the other is empty)."""
    title, text = title.strip(), text.strip()
    return f"{title} {text}" if title and text else title or text


class CorpusWriter:
    """Rows appended one by one, written as Arrow record batches: into ``folder`` (an Arrow stream file, what
    ``datasets`` memory-maps) or, without one, kept in memory. ``finish`` returns the ``datasets.Dataset``."""

    def __init__(self, folder: Path | None = None):
        self.batches, self.buffer = [], {c: [] for c in COLUMNS}
        self._sink = self._tmp = None
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self._tmp = Path(folder) / f".corpus.{os.getpid()}.arrow.tmp"
            self._sink = pa.ipc.new_stream(str(self._tmp), SCHEMA)

    def add(self, docid: str, title: str, text: str) -> None:
        for column, value in zip(COLUMNS, (docid, title, text, contents(title, text), text.strip())):
            self.buffer[column].append(value)
        if len(self.buffer["docid"]) >= BLOCK:
            self._flush()

    def _flush(self) -> None:
        if self.buffer["docid"]:
            batch = pa.record_batch([pa.array(self.buffer[c], pa.string()) for c in COLUMNS], schema=SCHEMA)
            if self._sink is not None:
                self._sink.write_batch(batch)
            else:
                self.batches.append(batch)
            self.buffer = {c: [] for c in COLUMNS}

    def abort(self) -> None:
        """A load that failed validation leaves nothing behind."""
        if self._sink is not None:
            self._sink.close()
            self._tmp.unlink(missing_ok=True)

    def finish(self, name: str = "corpus.arrow") -> datasets.Dataset:
        """The written corpus; in a folder, renamed to ``name`` only now (whole or absent: a load killed half-way
        leaves no corpus file that a later run could trust)."""
        self._flush()
        if self._sink is None:
            table = pa.Table.from_batches(self.batches, SCHEMA)
            return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=FEATURES))
        self._sink.close()
        path = self._tmp.with_name(name)
        os.replace(self._tmp, path)
        return datasets.Dataset.from_file(str(path))


class Corpus(Mapping[str, str]):
    """docid -> text of a corpus held once, in Arrow (memory-mapped when it was written to a file).

    ``column`` is what a document reads as: ``contents`` ("title text", what evaluation encodes and the teacher
    scores) or ``body`` (the text without its title: what label-free training shows). ``ids`` are the documents in
    corpus order, ``rows`` maps docid -> row. Fetch many at once (``texts``, ``many``, ``blocks``): one row at a time
    (``corpus[docid]``) works but pays pyarrow's per-call cost.
    """

    def __init__(self, dataset: datasets.Dataset, column: str = "contents", ids: list[str] | None = None,
                 rows: dict[str, int] | None = None, overrides: dict[int, str] | None = None):
        self.dataset, self.column = dataset, column
        self._arrow = dataset.with_format("arrow")
        self.ids = ids if ids is not None else self._arrow["docid"].to_pylist()
        self.rows = rows if rows is not None else {d: i for i, d in enumerate(self.ids)}
        self.overrides = overrides or {}   # row -> the text this view shows instead of the column's

    @classmethod
    def from_mapping(cls, docs: Mapping[str, str]) -> Corpus:
        """An in-memory corpus of docid -> text as given (both columns the same text)."""
        ids, texts = list(docs), [docs[d] for d in docs]
        table = pa.table({"docid": ids, "contents": texts, "body": texts}, schema=pa.schema(
            [(c, pa.string()) for c in ("docid", "contents", "body")]))
        return cls(datasets.Dataset(datasets.table.InMemoryTable(table)), ids=ids)

    def view(self, column: str) -> Corpus:
        """The same documents read through another column (ids and rows shared, nothing copied; no overrides)."""
        return Corpus(self.dataset, column, self.ids, self.rows)

    def with_texts(self, texts: Mapping[str, str]) -> Corpus:
        """This view with some documents (docid -> text) read differently, the rest as they are (nothing copied)."""
        unknown = next((d for d in texts if d not in self.rows), None)
        if unknown is not None:
            raise KeyError(f"document {unknown!r} is not in the corpus")
        return Corpus(self.dataset, self.column, self.ids, self.rows,
                      self.overrides | {self.rows[d]: t for d, t in texts.items()})

    def texts(self, rows: Iterable[int]) -> list[str]:
        rows = list(rows)
        if not rows:
            return []
        out = self._arrow[rows][self.column].to_pylist()
        if self.overrides:
            out = [self.overrides.get(r, t) for r, t in zip(rows, out)]
        return out

    def many(self, docids: Iterable[str]) -> list[str]:
        return self.texts(self.rows[d] for d in docids)

    def blocks(self, rows: Sequence[int] | None = None, size: int = BLOCK) -> Iterator[list[str]]:
        """The texts of ``rows`` (default: every row, in order), ``size`` at a time."""
        rows = range(len(self.ids)) if rows is None else rows
        for start in range(0, len(rows), size):
            yield self.texts(rows[start:start + size])

    def lengths(self, rows: Sequence[int]) -> np.ndarray:
        """Character lengths of the rows' texts as an int64 array, computed in Arrow a block at a time (no Python
        strings or ints made)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.int64)
        for start in range(0, len(rows), BLOCK):
            block = rows[start:start + BLOCK]
            if len(block):
                out[start:start + len(block)] = pc.utf8_length(self._arrow[block.tolist()][self.column]).to_numpy(
                    zero_copy_only=False)
        if self.overrides:
            changed = np.fromiter(self.overrides, np.int64, len(self.overrides))
            order = np.argsort(changed)
            changed, new_lengths = changed[order], np.fromiter(map(len, self.overrides.values()), np.int64)[order]
            hit = np.isin(rows, changed)
            out[hit] = new_lengths[np.searchsorted(changed, rows[hit])]
        return out

    def count_empty(self) -> int:
        """Documents with no text in this column (whitespace only)."""
        return sum(not t for block in self.blocks() for t in block)

    def __getitem__(self, docid: str) -> str:
        return self.texts([self.rows[docid]])[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, docid: object) -> bool:
        return docid in self.rows

    def __getstate__(self) -> dict:
        # DDP spawn pickles the evaluator: a memory-mapped dataset pickles as its file path (datasets does this).
        return {k: v for k, v in self.__dict__.items() if k != "_arrow"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._arrow = self.dataset.with_format("arrow")


def texts_of(doc_text: Mapping[str, str], docids: Iterable[str]) -> list[str]:
    """The texts of ``docids``: fetched together from a :class:`Corpus`, one by one from any other mapping."""
    return doc_text.many(docids) if isinstance(doc_text, Corpus) else [doc_text[d] for d in docids]


def texts_by_id(doc_text: Mapping[str, str], docids: Iterable[str]) -> dict[str, str]:
    """docid -> text for each distinct docid, fetched together (one text object per document, shared by its uses)."""
    unique = list(dict.fromkeys(docids))
    return dict(zip(unique, texts_of(doc_text, unique)))


def text_lengths(doc_text: Mapping[str, str], docids: Sequence[str]) -> np.ndarray:
    """Character lengths of the texts of ``docids`` (in Arrow for a :class:`Corpus`)."""
    if isinstance(doc_text, Corpus):
        return doc_text.lengths(np.fromiter((doc_text.rows[d] for d in docids), np.int64, len(docids)))
    return np.fromiter((len(doc_text[d]) for d in docids), np.int64, len(docids))
