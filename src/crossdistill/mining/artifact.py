"""The teacher-scored shortlist artifact: content-addressed, written atomically, reused when inputs match."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import datasets
import pandas as pd
import torch

ARTIFACT_COLUMNS = ("qid", "docid", "origin", "first_stage_rank", "first_stage_score", "bm25_rank", "dense_rank",
                    "teacher_score", "label")


def state_dict_fingerprint(module: torch.nn.Module) -> str:
    """sha256 over parameter names and bytes: two teachers with equal weights share mined artifacts."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write to a temp file beside the target, then rename: a killed run leaves no half file a later run trusts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
