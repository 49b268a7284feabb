"""Teacher scores for every (query, candidate) pair, through ``Trainer.predict``: on the same accelerator and
strategy as training, each DDP rank scoring its share (``crossdistill.common.predict``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from crossdistill.common.batching import by_length
from crossdistill.common.codes import factorize
from crossdistill.common.memory import ReleaseFreedMemory
from crossdistill.common.predict import predict_by_index
from crossdistill.data.corpus import text_lengths, texts_of
from crossdistill.retrieval.fusion import ShortlistTable
from crossdistill.types import Shortlists


class PairDataset(Dataset):
    """(query, document) pairs as codes into lists of distinct queries and documents, served in ``order``: item i
    is pair ``order[i]`` (millions of mined pairs hold three integer arrays, not a string per pair). With
    ``doc_text`` the documents are docids whose texts the collate function fetches a batch at a time."""

    def __init__(self, queries: Sequence[str], docs: Sequence[str], query_codes: np.ndarray, doc_codes: np.ndarray,
                 order: np.ndarray):
        self.queries, self.docs = queries, docs
        self.query_codes, self.doc_codes, self.order = query_codes, doc_codes, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict:
        pair = self.order[i]
        return {"index": i, "queries": self.queries[self.query_codes[pair]], "docs": self.docs[self.doc_codes[pair]]}


class PairCollate:
    """Batches of pairs; ``doc_text`` (docid -> text) resolves the batch's docids (a class: DDP spawn pickles it)."""

    def __init__(self, doc_text: Mapping[str, str] | None = None):
        self.doc_text = doc_text

    def __call__(self, batch: list[dict]) -> dict:
        docs = [b["docs"] for b in batch]
        return {"index": torch.tensor([b["index"] for b in batch]), "queries": [b["queries"] for b in batch],
                "docs": texts_of(self.doc_text, docs) if self.doc_text is not None else docs}


def predict_pair_scores(trainer: pl.Trainer, teacher: pl.LightningModule, queries: Sequence[str], docs: Sequence[str],
                        batch_size: int, exchange: Path | None = None, doc_text: Mapping[str, str] | None = None,
                        query_codes: np.ndarray | None = None, doc_codes: np.ndarray | None = None) -> np.ndarray:
    """Raw teacher logits (float64) for pairs (queries[i], docs[i]), in input order, using ``trainer``'s devices;
    with ``query_codes``/``doc_codes`` the pairs are (queries[query_codes[i]], docs[doc_codes[i]]) and ``queries``
    and ``docs`` hold each distinct one once.

    ``doc_text``: when given, ``docs`` are docids, their texts fetched from it a batch at a time.
    ``exchange``: a folder every rank sees at the same path (needed under ``strategy=ddp``); by default a
    temporary folder, which only processes spawned from this one share (one device, ``ddp_spawn``)."""
    if query_codes is None or doc_codes is None:
        query_codes = doc_codes = np.arange(len(queries), dtype=np.int64)
    doc_lengths = np.fromiter(map(len, docs), np.int64, len(docs)) if doc_text is None else text_lengths(doc_text, docs)
    order = by_length(doc_lengths[doc_codes])   # longest documents first: batches pad little
    loader = DataLoader(PairDataset(queries, docs, query_codes, doc_codes, order), batch_size=batch_size,
                        collate_fn=PairCollate(doc_text))
    by_position = predict_by_index(trainer, teacher, loader, len(order), exchange, [ReleaseFreedMemory()])
    scores = torch.empty_like(by_position)
    scores[torch.from_numpy(order)] = by_position   # predict_by_index raises on any missing score
    return scores.double().numpy()


def shortlist_frame(shortlists: Shortlists | ShortlistTable, qrels: Mapping[str, Mapping[str, int]],
                    include_positives: bool = True) -> pd.DataFrame:
    """One row per (qid, candidate): provenance, first-stage rank and score, label (the artifact before scoring).

    Judged positives the first stage missed are added with origin "qrels" (no first-stage rank): the pair
    strategies need the teacher's view of them to build positive-vs-negative pairs. ``shortlists`` may already be
    a :class:`~crossdistill.retrieval.fusion.ShortlistTable` (columns): the same frame results, row for row.
    """
    if isinstance(shortlists, ShortlistTable):
        return _label_columns(shortlists, qrels, include_positives)
    columns: dict[str, list] = {c: [] for c in ("qid", "docid", "origin", "first_stage_rank", "first_stage_score",
                                                 "bm25_rank", "dense_rank", "label")}

    def add(*values) -> None:
        for column, value in zip(columns.values(), values):
            column.append(value)

    for qid, cands in shortlists.items():   # column lists, not a dict per row: millions of pairs stay small
        judged = qrels.get(qid, {})
        for c in cands:
            add(qid, c.docid, c.origin, c.rank, c.score, c.bm25_rank, c.dense_rank, int(judged.get(c.docid, 0)))
        if include_positives:
            seen = {c.docid for c in cands}
            for docid, grade in judged.items():
                if grade > 0 and docid not in seen:
                    add(qid, docid, "qrels", None, None, None, None, int(grade))
    df = pd.DataFrame(columns)
    columns.clear()   # the lists are copied into the frame: free them
    for col in ("first_stage_rank", "bm25_rank", "dense_rank"):
        df[col] = df[col].astype("Int64")
    df["first_stage_score"] = df["first_stage_score"].astype("float64")
    return df


def _label_columns(table: ShortlistTable, qrels: Mapping[str, Mapping[str, int]],
                   include_positives: bool) -> pd.DataFrame:
    """Shortlist columns + each row's label, and the judged positives they miss after each query's candidates."""
    cands, queries = table.frame, table.queries
    judged_q, judged_d, grades = [], [], []
    for qid in queries:
        for docid, grade in qrels.get(qid, {}).items():
            judged_q.append(qid)
            judged_d.append(docid)
            grades.append(int(grade))
    judged = pd.MultiIndex.from_arrays([pd.Series(judged_q, dtype="str"), pd.Series(judged_d, dtype="str")])
    keys = pd.MultiIndex.from_arrays([cands["qid"], cands["docid"]])
    grades = np.asarray(grades, dtype=np.int64)
    at = judged.get_indexer(keys)   # (qid, docid) pairs of a qrels mapping are unique
    # (position -1, not judged: label 0; appended so that a query set with no judgment at all indexes something)
    out = cands.assign(label=np.append(grades, 0)[at])
    if not include_positives:
        return out
    shortlisted = np.zeros(len(grades), dtype=bool)
    shortlisted[at[at >= 0]] = True
    missed = np.flatnonzero((grades > 0) & ~shortlisted)
    if not len(missed):
        return out
    added = pd.DataFrame({"qid": pd.Series(judged_q, dtype="str").take(missed).reset_index(drop=True),
                          "docid": pd.Series(judged_d, dtype="str").take(missed).reset_index(drop=True),
                          "origin": pd.Series(["qrels"] * len(missed), dtype="str"),
                          "first_stage_rank": pd.array([pd.NA] * len(missed), dtype="Int64"),
                          "first_stage_score": np.full(len(missed), np.nan),
                          "bm25_rank": pd.array([pd.NA] * len(missed), dtype="Int64"),
                          "dense_rank": pd.array([pd.NA] * len(missed), dtype="Int64"),
                          "label": grades[missed]})
    position = pd.Index(queries)
    order = np.argsort(np.concatenate([position.get_indexer(out["qid"]), position.get_indexer(added["qid"])]),
                       kind="stable")   # each query's candidates, then the positives they miss (qrels order)
    # column by column: one extra column at a time, not two whole copies of millions of rows
    return pd.DataFrame({c: pd.concat([out[c], added[c]], ignore_index=True).take(order).reset_index(drop=True)
                         for c in out.columns})


def earlier_scores(frame: pd.DataFrame, earlier: Sequence[pd.DataFrame]) -> np.ndarray:
    """The teacher logit an earlier round's artifact holds for each (qid, docid) row of ``frame``, NaN where none
    does: a later round re-mines largely the same pairs with the same frozen teacher, so only the new ones need it.
    ``earlier``: frames with qid, docid and ce_score (the later one wins where both hold a pair)."""
    found = np.full(len(frame), np.nan)
    if not earlier:   # round 1: no index over millions of keys
        return found
    keys = pd.MultiIndex.from_arrays([frame["qid"], frame["docid"]])
    for scored in earlier:
        scored = scored.drop_duplicates(["qid", "docid"], keep="last")
        at = pd.MultiIndex.from_arrays([scored["qid"], scored["docid"]]).get_indexer(keys)
        hit = at >= 0
        found[hit] = scored["ce_score"].to_numpy(dtype=np.float64)[at[hit]]
    return found


def teacher_scores(trainer: pl.Trainer, teacher: pl.LightningModule, frame: pd.DataFrame,
                   queries: Mapping[str, str], doc_text: Mapping[str, str], batch_size: int,
                   exchange: Path | None = None) -> np.ndarray:
    """The teacher's logit for each (qid, docid) row of ``frame``: each distinct query text and docid is held once,
    the rows as integer codes (reading a string column row by row would make a Python string per row)."""
    query_codes, qids = factorize(frame["qid"])
    doc_codes, docids = factorize(frame["docid"])
    return predict_pair_scores(trainer, teacher, [queries[q] for q in qids], list(docids), batch_size, exchange,
                               doc_text=doc_text, query_codes=query_codes, doc_codes=doc_codes)
