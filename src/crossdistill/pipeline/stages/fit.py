"""Fits that a killed run continues: a stage's fit records its key when it starts; rerun into the same folder
with the same key (``resume=<run dir>``), it continues from the stage's ``last.ckpt``, generators included."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import ModelCheckpoint

from crossdistill.common.io import write_text_atomic
from crossdistill.pipeline.context import RunContext


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def readable(checkpoint: Path) -> bool:
    """A checkpoint that loads (a kill while Lightning wrote it leaves a truncated file: never trusted)."""
    if not checkpoint.exists():
        return False
    try:
        torch.load(checkpoint, map_location="cpu", weights_only=True)
        return True
    except Exception:  # noqa: BLE001 - truncated, corrupt or not a checkpoint: start the fit afresh
        return False


def resumable_fit(ctx: RunContext, stage: str, key: str | None, trainer: pl.Trainer, module: pl.LightningModule,
                  datamodule: pl.LightningDataModule, checkpoints: Path) -> None:
    marker, last = ctx.layout.stage_file(f"{stage}.started"), Path(checkpoints) / "last.ckpt"
    resume = key is not None and marker.exists() and marker.read_text() == key and readable(last)
    _barrier()   # every rank has decided before rank 0 changes what they looked at
    if ctx.is_global_zero and not resume:
        for stale in Path(checkpoints).glob("*.ckpt"):   # another key's (or an unfinished first epoch's) checkpoints
            stale.unlink()
        if key is not None:
            write_text_atomic(key, marker)
    _barrier()
    if resume:
        ctx.console.log(f"{stage}: continuing the interrupted fit from {last}")
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)


def load_best(module: pl.LightningModule, checkpoint: ModelCheckpoint | None) -> int:
    """Load the best checkpoint's weights into ``module``; returns its epoch (-1 if none was saved)."""
    if checkpoint is not None and checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state["state_dict"])
        return int(state["epoch"])
    return -1
