"""``Trainer.predict`` over every rank, the outputs gathered back in dataset order on every process.

Under DDP each rank predicts its share (Lightning's distributed sampler) and a prediction writer leaves one file per
rank in an exchange folder, which every process then merges: rank 0's return value alone would miss the others'
rows, and under ``ddp_spawn`` nothing is returned to the launching process at all. Under ``strategy=ddp`` every rank
is a process of its own that runs the whole pipeline, so the folder must be one every rank names alike: the run
folder's (``RunLayout.exchange``), not a temporary one.
"""
from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader

from crossdistill.common.io import atomic_path


class RankFilesWriter(BasePredictionWriter):
    """Each rank saves its (index, score) tensors (``predict_step`` returns both; a score may be a row of values);
    indices make the merge order-independent and de-duplicate."""

    def __init__(self, folder: Path):
        super().__init__(write_interval="epoch")
        self.folder = folder

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        index = torch.cat([p["index"] for p in predictions]) if predictions else torch.empty(0, dtype=torch.long)
        score = torch.cat([p["score"] for p in predictions]) if predictions else torch.empty(0)
        with atomic_path(self.folder / f"rank{trainer.global_rank}.pt") as tmp:
            torch.save({"index": index, "score": score}, tmp)
        trainer.strategy.barrier("crossdistill-predict-written")   # no rank reads before every rank has written


_CALLS = itertools.count()   # the same sequence on every rank: they run the same stages in the same order


@contextlib.contextmanager
def _exchange_folder(exchange: Path | None):
    if exchange is None:
        with tempfile.TemporaryDirectory(prefix="crossdistill-predict-") as tmp:
            yield Path(tmp)
        return
    folder = Path(exchange) / f"predict-{next(_CALLS)}"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


def predict_by_index(trainer: pl.Trainer, module: pl.LightningModule, loader: DataLoader, n: int,
                     exchange: Path | None = None, callbacks: list | None = None) -> torch.Tensor:
    """``module.predict_step``'s "score" for each of the ``n`` dataset items (its "index"), in index order, on every
    process. ``exchange``: a folder every rank sees at the same path (needed under ``strategy=ddp``); by default a
    temporary folder, which only processes spawned from this one share (one device, ``ddp_spawn``)."""
    with _exchange_folder(exchange) as tmp:
        added = [RankFilesWriter(Path(tmp)), *(callbacks or [])]
        trainer.callbacks.extend(added)
        try:
            trainer.predict(module, loader, return_predictions=False)
        finally:
            for callback in added:
                trainer.callbacks.remove(callback)
        out, seen = None, torch.zeros(n, dtype=torch.bool)
        for f in sorted(Path(tmp).glob("rank*.pt")):
            part = torch.load(f, weights_only=True)
            if out is None:
                out = torch.full((n, *part["score"].shape[1:]), float("nan"), dtype=part["score"].dtype)
            out[part["index"]] = part["score"]
            seen[part["index"]] = True
        if exchange is not None:
            trainer.strategy.barrier("crossdistill-predict-read")   # every rank has read: rank 0 may clean up
            if trainer.is_global_zero:
                shutil.rmtree(tmp, ignore_errors=True)
    if n and (out is None or not bool(seen.all())):
        raise RuntimeError(f"prediction returned nothing for {n - int(seen.sum())} of {n} items")
    return out if out is not None else torch.empty(0)
