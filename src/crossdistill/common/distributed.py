"""Process-group hygiene for Lightning's spawned DDP workers (``strategy=ddp_spawn`` / ``ddp_fork``), and each rank's
share of a list."""
from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch.distributed as dist
from pytorch_lightning.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from pytorch_lightning.trainer.states import TrainerStatus


class EndSpawnedProcessGroup(pl.Callback):
    """A spawned worker ends its process group before it exits, all ranks together.

    Lightning destroys an NCCL group at exit but leaves a gloo group to the interpreter's shutdown; rank 0's
    process hosts the rendezvous store, and a rank still holding gloo's threads when it is gone was seen to abort
    (``terminate called without an active exception``, SIGABRT) after a finished fit. Only workers of a
    multiprocessing launcher: under ``strategy=ddp`` the same processes run every stage on one group.
    """

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not isinstance(trainer.strategy.launcher, _MultiProcessingLauncher) or not dist.is_initialized():
            return
        if trainer.state.status == TrainerStatus.FINISHED:   # after a failure a rank may be gone: no barrier
            dist.barrier()
        dist.destroy_process_group()


def shard(items: Sequence, rank: int, world_size: int) -> list:
    """Rank ``rank``'s contiguous share of ``items`` (ceil(n / world_size) each; the last ones may be short or
    empty): concatenated in rank order, the shares are ``items``."""
    size = -(-len(items) // world_size)
    return list(items[rank * size:(rank + 1) * size])
