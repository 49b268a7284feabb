"""Per-epoch full-corpus evaluation of the student inside ``Trainer.fit``."""
from __future__ import annotations

import pytorch_lightning as pl

from crossdistill.common.layout import dev_epoch_name
from crossdistill.evaluation.evaluator import RetrievalEvaluator


class DistillationEvalCallback(pl.Callback):
    """At every training epoch end the student is evaluated on ``split`` and every rank logs the result.

    Under DDP every rank encodes and searches its share of the corpus (or of the evaluator's per-epoch sample,
    ``evaluation.epoch_corpus=sample``) and scores its share of the new teacher pairs; rank 0 merges them, writes the
    trace and broadcasts the metrics, so that ModelCheckpoint and early stopping see the same numbers on all ranks.
    """

    def __init__(self, evaluator: RetrievalEvaluator, split: str = "dev", epoch_offset: int = 0):
        # epoch_offset: epochs of earlier distillation rounds, so each round's traces get their own names.
        self.evaluator, self.split, self.epoch_offset = evaluator, split, epoch_offset

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = self.epoch_offset + trainer.current_epoch
        result = self.evaluator.evaluate(pl_module.encoder, self.split, dev_epoch_name(epoch, self.split), epoch,
                                         per_epoch=True, strategy=trainer.strategy)
        metrics = {f"{self.split}/{k}": float(v) for k, v in result.metrics.items()} if trainer.is_global_zero else None
        metrics = trainer.strategy.broadcast(metrics, src=0)
        pl_module.log_dict(metrics, on_epoch=True, prog_bar=False, logger=True)
