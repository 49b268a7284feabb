"""Trainers, loggers and callbacks from their config groups, instantiated generically.

A group holds named entries, each with a ``_target_`` (lightning-hydra-template's ``instantiators.py``). Keys an
entry leaves ``null`` are the ones only a run can fill (a stage's checkpoint folder, the evaluator, the stage's
name in a logger): they are filled from the keyword arguments of the same name, and only those.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from crossdistill.common.distributed import EndSpawnedProcessGroup


def instantiate_group(group: DictConfig | None, /, **runtime: Any) -> list[Any]:
    """Every ``_target_`` entry of ``group``, its null keys filled from ``runtime``."""
    objects = []
    for node in (group or {}).values():
        if isinstance(node, DictConfig) and "_target_" in node:
            objects.append(instantiate(node, **{k: v for k, v in runtime.items() if k in node and node[k] is None}))
    return objects


def stage_loggers(cfg: DictConfig, stage: str, run_name: str) -> list[pl.loggers.Logger]:
    """One logger run per stage: CSV files side by side (``version`` = the stage), or one wandb run per stage
    (``name`` = run-stage) grouped by run folder (``group``)."""
    return instantiate_group(cfg.get("logger"), version=stage, name=f"{run_name}-{stage}", group=run_name)


def make_trainer(cfg: DictConfig, stage: str, root: Path, logged: bool = True, **overrides: Any) -> pl.Trainer:
    """A Trainer from ``cfg.trainer`` for one stage; ``overrides`` (epochs, callbacks, precision) win."""
    loggers = stage_loggers(cfg, stage, Path(root).name) if logged else []
    for logger in loggers:   # the full config, beside the hyperparameters Lightning logs of the modules
        logger.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True)})
    # Every trainer's spawned DDP workers end their process group before exiting (see EndSpawnedProcessGroup).
    overrides["callbacks"] = [*(overrides.get("callbacks") or []), EndSpawnedProcessGroup()]
    return instantiate(cfg.trainer, logger=loggers or False, default_root_dir=str(root), **overrides)


def finish_loggers(loggers) -> None:
    """End each logger's run when its stage ends (a wandb run per stage: the next stage must not log into it)."""
    for logger in loggers or ():
        logger.save()
        finish = getattr(getattr(logger, "_experiment", None), "finish", None)  # only a started wandb run has one
        if callable(finish):
            finish()


def log_artifacts(loggers, run_name: str, artifacts: Mapping[str, Sequence[Path]]) -> None:
    """Loggers that keep files (wandb) get the run's as artifacts, one per kind (e.g. ``results``: results.json and the
    report with its plots; ``model``: the exported student); the others have them in the run folder already."""
    for logger in loggers:
        experiment = logger.experiment
        if not callable(getattr(experiment, "log_artifact", None)):
            continue
        import wandb

        for kind, paths in artifacts.items():
            artifact = wandb.Artifact(f"{run_name}-{kind}", type=kind)
            for path in map(Path, paths):
                if path.is_dir():
                    artifact.add_dir(str(path), name=path.name)
                elif path.is_file():
                    artifact.add_file(str(path))
            experiment.log_artifact(artifact)


def log_final(cfg: DictConfig, run_name: str, config: dict, metrics: dict[str, float],
              artifacts: Mapping[str, Sequence[Path]] | None = None) -> None:
    """The full config and the final results as one more logger run ("results"), with the run's files as artifacts
    where the logger keeps files, finished at once."""
    loggers = stage_loggers(cfg, "results", run_name)
    for logger in loggers:
        logger.log_hyperparams(config)
        logger.log_metrics(metrics)
    log_artifacts(loggers, run_name, artifacts or {})
    finish_loggers(loggers)
