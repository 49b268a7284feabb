"""The teacher-scored shortlist artifact: content-addressed, written atomically, reused when inputs match."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from crossdistill.common.io import quarantine, write_parquet_atomic

ARTIFACT_COLUMNS = ("qid", "docid", "origin", "first_stage_rank", "first_stage_score", "bm25_rank", "dense_rank",
                    "ce_score", "bm25_score", "dense_score", "label")


def load_or_build(path: Path, build: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, bool]:
    """Return (artifact, reused). ``build`` runs only when no readable artifact exists at ``path``; one that
    cannot be read is reported, moved aside and rebuilt. One frame is held (millions of pairs at scale)."""
    if path.exists():
        try:
            artifact = pd.read_parquet(path)
            if set(ARTIFACT_COLUMNS) <= set(artifact.columns):
                return artifact, True
            problem = "lacks columns"
        except Exception as err:  # noqa: BLE001 - any unreadable file: arrow, parquet, OS errors alike
            problem = f"{type(err).__name__}: {err}"
        aside = quarantine(path)
        warnings.warn(f"mining artifact {path} cannot be read ({problem}); moved aside to {aside.name}, rebuilding",
                      stacklevel=2)
    df = build()
    missing = set(ARTIFACT_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"mining artifact lacks columns {sorted(missing)}")
    df = df[list(ARTIFACT_COLUMNS)]
    write_parquet_atomic(df, path)
    return df, False
