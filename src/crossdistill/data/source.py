"""Where a run's data comes from (config group ``data/``), and the train / dev / test split it sees."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crossdistill.data.beir import BeirDataset, DataError, load_beir
from crossdistill.data.corpus import Corpus
from crossdistill.data.embedded import beir_folder, scifact_path
from crossdistill.data.splits import carve_dev
from crossdistill.types import Qrels


@dataclass
class PreparedData:
    """Everything downstream stages read. ``dev`` is carved from train for model selection; ``test`` is only
    ever reported, never used to choose anything."""

    dataset: BeirDataset
    train_qids: list[str]
    dev_qids: list[str]
    qrels: dict[str, Qrels]          # "train", "dev", "test" (train may be empty: label-free mode)
    # What training reads for a document; label-free mode hides titles there (they are the pseudo-queries).
    train_doc_text: Mapping[str, str] | None = None
    label_free: bool = False
    train_view: str = "whole documents"   # what train_doc_text shows, in words (results.json, cache keys)
    dev_judgments: str = "qrels"          # where dev's judgments come from, in words (results.json)
    pseudo_queries: str = ""              # label-free mode: their kind (and, for kind auto, why) (results.json)

    def __post_init__(self):
        if self.train_doc_text is None:
            self.train_doc_text = self.doc_text

    @property
    def doc_text(self) -> Corpus:
        """docid -> "title text", read from the (memory-mapped) Arrow corpus: held once, fetched by row."""
        return self.dataset.documents

    @property
    def doc_ids(self) -> list[str]:
        """The documents in corpus order (shared: not to be changed)."""
        return self.dataset.documents.ids

    @property
    def fingerprint(self) -> str:
        return self.dataset.fingerprint

    @property
    def training_view(self) -> dict:
        """For cache keys of what training reads: empty when that is the corpus itself (keys as before views)."""
        return {} if self.train_doc_text is self.doc_text else {"training_view": self.train_view}


class BeirSource:
    """A BEIR folder or a ``<name>.beir.tar.gz`` archive of one (``path``), or the embedded SciFact (``embedded:
    scifact``), optionally sliced for smoke runs."""

    def __init__(self, path: str | None = None, embedded: str | None = None, train_split: str = "train",
                 test_split: str = "test", dev_size: int | float = 100, seed: int = 13,
                 max_docs: int | None = None, max_queries: dict | None = None, train_labels: bool = True):
        if (path is None) == (embedded is None):
            raise ValueError("data: give exactly one of `path` (a BEIR folder) or `embedded` (e.g. scifact)")
        if embedded not in (None, "scifact"):
            raise ValueError(f"data.embedded: only 'scifact' ships with crossdistill, got {embedded!r}")
        self.path, self.embedded = path, embedded
        self.train_split, self.test_split = train_split, test_split
        self.dev_size, self.seed = dev_size, seed
        self.max_docs, self.max_queries = max_docs, dict(max_queries) if max_queries else None
        self.train_labels = train_labels  # False withholds the train qrels: label-free mode on a labelled dataset

    def load(self, data_cache: str | Path) -> PreparedData:
        """Load and validate; the embedded dataset is unpacked once into ``data_cache``."""
        folder = scifact_path(data_cache) if self.embedded else beir_folder(self.path, data_cache)
        ds = load_beir(folder, splits=None, arrow_dir=Path(data_cache) / "corpora")
        if self.test_split not in ds.qrels:
            raise DataError(folder / "qrels" / f"{self.test_split}.tsv", "the test split's qrels file is missing")
        if self.max_docs is not None or self.max_queries:
            ds = ds.subset(self.max_docs, self.max_queries, self.seed)
        train: Qrels = ds.qrels.get(self.train_split, {}) if self.train_labels else {}
        if train and self.dev_size:
            train_qids, dev_qids = carve_dev(train, self.dev_size, self.seed)
        elif train:   # dev_size 0: no dev split (evaluation only)
            train_qids, dev_qids = sorted(train), []
        else:
            train_qids, dev_qids = [], []
        return PreparedData(
            dataset=ds, train_qids=train_qids, dev_qids=dev_qids,
            qrels={"train": {q: train[q] for q in train_qids}, "dev": {q: train[q] for q in dev_qids},
                   "test": ds.qrels[self.test_split]},
        )
