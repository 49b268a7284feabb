"""Random-number state carried inside checkpoints, so a fit resumed from ``last.ckpt`` draws the same shuffles and
dropout masks as the run that was never interrupted (Lightning restores weights, optimizer and loops, not these)."""
from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


def rng_state() -> dict:
    """Python, numpy and torch generator states in types a ``weights_only`` load accepts (lists, ints, tensors)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                       gauss],
            "python": [version, list(internal), gauss_next]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


class RngStateInCheckpoint(pl.Callback):
    """Saves the generators' state with every checkpoint and restores it when a fit resumes from one."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        checkpoint["crossdistill_rng"] = rng_state()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if "crossdistill_rng" in checkpoint:
            set_rng_state(checkpoint["crossdistill_rng"])
