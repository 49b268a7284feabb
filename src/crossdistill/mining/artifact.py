"""The teacher-scored shortlist artifact: content-addressed, written atomically, reused when inputs match."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import datasets
import pandas as pd

from crossdistill.common.io import write_parquet_atomic

ARTIFACT_COLUMNS = ("qid", "docid", "origin", "first_stage_rank", "first_stage_score", "bm25_rank", "dense_rank",
                    "ce_score", "bm25_score", "dense_score", "label")


def load_or_build(path: Path, build: Callable[[], pd.DataFrame]) -> tuple[datasets.Dataset, bool]:
    """Return (artifact, reused). ``build`` runs only when no complete artifact exists at ``path``."""
    if path.exists():
        return datasets.Dataset.from_parquet(str(path), keep_in_memory=True), True
    df = build()
    missing = set(ARTIFACT_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"mining artifact lacks columns {sorted(missing)}")
    write_parquet_atomic(df[list(ARTIFACT_COLUMNS)], path)
    return datasets.Dataset.from_pandas(df[list(ARTIFACT_COLUMNS)], preserve_index=False), False
