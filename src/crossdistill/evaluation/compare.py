"""Two runs compared query by query: is a difference in mean nDCG@10 larger than the dev or test split's noise?

With 100 dev queries a difference of 0.02 in mean nDCG@10 is often a handful of queries changing places; a paired
randomization test (Fisher's sign-flip test, as recommended for IR by Smucker, Allan and Carterette, CIKM 2007)
says how often random sign flips of the per-query differences give a mean difference at least as large.
The per-query values are read back from the runs' score traces, so runs finished long ago can be compared.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossdistill.common.layout import FINAL_TEST, RunLayout, dev_epoch_name
from crossdistill.evaluation.metrics import ndcg_at_k


def per_query_ndcg(trace: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """nDCG@k of the student's ranking for every query of one evaluation's trace.

    Only the judged documents' ranks matter to nDCG, and the trace keeps every judged document with its rank in
    the student's full-corpus run (empty beyond the retrieval depth), whatever the shortlist was.
    """
    values = {}
    for qid, rows in trace.groupby("qid", sort=True):
        ranking: list[str | None] = [None] * k   # unjudged places: gain 0
        for docid, rank in zip(rows.docid, rows.student_rank):
            if not pd.isna(rank) and rank <= k:
                ranking[int(rank) - 1] = docid
        values[str(qid)] = ndcg_at_k(ranking, dict(zip(rows.docid, rows.label)), k)
    return values


def paired_randomization_test(a: Sequence[float], b: Sequence[float], samples: int = 20_000,
                              seed: int = 0) -> float:
    """Two-sided p-value for mean(b - a) = 0 under random sign flips of the per-query differences.

    Exact (all 2^n sign patterns) for n <= 16, else ``samples`` random patterns. 1.0 when nothing differs.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired test needs two equal-length 1-d sequences, got shapes {a.shape} and {b.shape}")
    d = b - a
    observed = abs(d.mean()) if len(d) else 0.0
    if observed == 0.0:
        return 1.0
    if len(d) <= 16:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=len(d))))
    else:
        signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(samples, len(d)))
    # A small tolerance: the flips that reproduce the observed mean must count despite float rounding.
    return float((np.abs(signs @ d) / len(d) >= observed - 1e-12).mean())


@dataclass
class Comparison:
    split: str
    queries: int
    mean_a: float
    mean_b: float
    p_value: float
    wins: int     # queries where b is better
    losses: int   # queries where b is worse

    @property
    def difference(self) -> float:
        return self.mean_b - self.mean_a


def _trace_path(run_dir: Path, split: str) -> Path:
    layout = RunLayout(run_dir)
    if split == "test":
        return layout.trace(FINAL_TEST)
    if not layout.results.exists():
        raise FileNotFoundError(f"{layout.results}: missing; is {run_dir} a finished run directory?")
    # The dev evaluation of the epoch the run kept: the one its reported student comes from.
    results = json.loads(layout.results.read_text())
    if (results.get("interpolation") or {}).get("dev_trace"):   # the kept student averaged with its start
        return layout.trace(results["interpolation"]["dev_trace"])
    best = results["best_epoch"]
    # -1: no distilled epoch beat the zero-shot start on dev, which the run kept
    return layout.trace("dev_init" if best < 0 else dev_epoch_name(best))


def compare_runs(run_a: Path, run_b: Path, splits: Sequence[str] = ("dev", "test"), k: int = 10,
                 samples: int = 20_000, seed: int = 0) -> list[Comparison]:
    """The student of ``run_b`` against that of ``run_a`` on each split, query by query (nDCG@k)."""
    out = []
    for split in splits:
        paths = [_trace_path(Path(r), split) for r in (run_a, run_b)]
        a, b = (per_query_ndcg(pd.read_parquet(p), k) for p in paths)
        if set(a) != set(b):
            raise ValueError(f"{paths[0]} and {paths[1]} cover different {split} queries "
                             f"({len(set(a) ^ set(b))} differ); compare runs on the same data")
        qids = sorted(a)
        va, vb = np.array([a[q] for q in qids]), np.array([b[q] for q in qids])
        out.append(Comparison(split, len(qids), float(va.mean()), float(vb.mean()),
                              paired_randomization_test(va, vb, samples, seed),
                              int((vb > va).sum()), int((vb < va).sum())))
    return out
