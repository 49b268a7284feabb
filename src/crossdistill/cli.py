"""Console entry points: ``crossdistill-train`` and ``crossdistill-eval`` (also ``python train.py`` / ``python
eval.py`` in the repository). The configs ship inside the package, so both work from any directory, with the
same Hydra overrides. Expected failures (bad data, missing models) end in one clear line and exit code 2."""
from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

CONFIGS = "configs"   # crossdistill/configs, inside the installed package


def _offline_defaults() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the defaults use packaged weights; set 0 to allow hub ids
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def guarded(run, cfg: DictConfig):
    """``run(cfg)``, with bad input reported as one line on stderr and exit code 2 instead of a traceback."""
    from hydra.errors import InstantiationException
    from rich.console import Console

    from crossdistill.data.beir import DataError
    from crossdistill.models import ModelNotFound
    from crossdistill.pipeline.validation import ConfigError

    expected = (DataError, ModelNotFound, ConfigError)
    try:
        return run(cfg)
    except (*expected, InstantiationException, OSError) as err:
        cause = err.__cause__ if isinstance(err, InstantiationException) else err
        if isinstance(err, OSError) and not err.filename:
            raise   # only a write or read of a named path (full disk, read-only folder) is the user's to fix
        if not isinstance(cause, (*expected, OSError)):
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {cause}", highlight=False, soft_wrap=True)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def _train(cfg: DictConfig) -> float:
    from crossdistill.pipeline.train import run  # imported late so `--help` and config errors stay fast

    return guarded(run, cfg)  # the value a Hydra sweeper optimises (cfg.optimized_metric)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="eval")
def _evaluate(cfg: DictConfig) -> dict:
    from crossdistill.pipeline.evaluate import run

    return guarded(run, cfg)


def train() -> None:
    """``crossdistill-train teacher=minilm``: train the teacher, mine, distil, evaluate, export."""
    _offline_defaults()
    _train()


def evaluate() -> None:
    """``crossdistill-eval model=<folder or hub id> [reranker=...] [run_file=...] [data=beir data.path=...]``."""
    _offline_defaults()
    _evaluate()
