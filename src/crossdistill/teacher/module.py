"""The cross-encoder teacher: ``[CLS] query [SEP] doc`` -> one relevance logit, as a LightningModule."""
from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch

from crossdistill.common.batching import to_device
from crossdistill.common.optim import adamw_with_warmup
from crossdistill.evaluation.metrics import ndcg_at_k
from crossdistill.models.cross_encoder import load_cross_encoder
from crossdistill.models.runtimes import forward
from crossdistill.teacher.losses import LOSSES


class CrossEncoderTeacher(pl.LightningModule):
    """Trained on groups (query, judged positive, BM25 hard negatives); validated by reranking dev shortlists.
    The groups, their sizes and the epochs are the data side's (``TeacherDataModule``, config group teacher_data).

    Batches: train ``{"queries": [B], "docs": [B][G]}`` with the positive first in each group; validation
    ``{"queries", "docs": [B][n_i], "docids": [B][n_i], "judgments": [B] dicts}``; predict
    ``{"index": LongTensor[B], "queries": [B], "docs": [B]}`` -> ``{"index", "score"}``.
    """

    predict_backend = "torch"   # the runtime of predict_step (mining sets it from inference_backend)

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        max_length: int = 128,
        loss: str = "listwise",
        lr: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        inference_batch_size: int = 64,
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"teacher.loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.save_hyperparameters()
        self.model = load_cross_encoder(model, max_length).train()  # loaders return eval mode: keep dropout on
        self.loss_fn = LOSSES[loss]

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> torch.Tensor:
        features = to_device(self.model.preprocess(list(zip(queries, docs))), self.device)
        return self.model(features)["scores"].squeeze(-1).float()

    def training_step(self, batch, batch_idx):
        group = len(batch["docs"][0])
        queries = [q for q in batch["queries"] for _ in range(group)]
        docs = [d for docs in batch["docs"] for d in docs]
        scores = self.score(queries, docs).view(-1, group)
        loss = self.loss_fn(scores)
        self.log("teacher/train_loss", loss, prog_bar=True, batch_size=len(batch["queries"]))
        return loss

    def validation_step(self, batch, batch_idx):
        sizes = [len(d) for d in batch["docs"]]
        queries = [q for q, n in zip(batch["queries"], sizes) for _ in range(n)]
        scores = self.score(queries, [d for docs in batch["docs"] for d in docs]).split(sizes)
        values = []
        for s, docids, judgments in zip(scores, batch["docids"], batch["judgments"]):
            order = torch.argsort(s, descending=True, stable=True).tolist()
            values.append(ndcg_at_k([docids[i] for i in order], judgments, 10))
        self.log("teacher/val_ndcg@10", sum(values) / len(values), prog_bar=True, batch_size=len(values),
                 sync_dist=True)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        if self.predict_backend == "torch":
            return {"index": batch["index"], "score": self.score(batch["queries"], batch["docs"]).cpu()}
        features = self.model.preprocess(list(zip(batch["queries"], batch["docs"])))
        scores = forward(self.model, features, self.predict_backend, str(self.trainer.precision), "scores")
        return {"index": batch["index"], "score": scores.squeeze(-1).cpu()}

    def configure_optimizers(self):
        return adamw_with_warmup(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_ratio)
