"""Turn expected failures (bad data, missing models) into one clear message instead of a traceback wall."""
from __future__ import annotations

import sys

from omegaconf import DictConfig
from rich.console import Console

from crossdistill.data.beir import DataError
from crossdistill.models import ModelNotFound


def guarded_run(cfg: DictConfig) -> float:
    from crossdistill.pipeline import run

    try:
        return run(cfg)
    except (DataError, ModelNotFound) as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
