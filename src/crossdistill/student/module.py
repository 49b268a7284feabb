"""The bi-encoder student: a SentenceTransformer (mean pooling) trained with margin-MSE, as a LightningModule."""
from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch

from crossdistill.common.batching import to_device
from crossdistill.common.optim import adamw_with_warmup
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.student.losses import InBatchNegativesLoss, ListwiseKLLoss, MarginMSELoss


class BiEncoderStudent(pl.LightningModule):
    """Batches: ``{"queries": [B], "docs_a": [B], "docs_b": [N], "owner": LongTensor[N], "margins": FloatTensor[N]}``:
    the i-th worse doc pairs with query and better doc ``owner[i]``; margins are teacher logit margins. The batch
    size and the epochs are the data side's (``DistillationDataModule``, config group student_data)."""

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        normalize: bool = True,
        scale: float | str = 10.0,
        max_query_length: int = 64,
        max_doc_length: int = 160,
        eval_max_doc_length: int = 256,
        lr: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        in_batch_weight: float = 10.0,
        margin_mse_weight: float = 1.0,
        kl_weight: float = 0.0,
        kl_temperature: float = 1.0,
    ):
        super().__init__()
        if isinstance(scale, str) and scale != "auto":
            raise ValueError(f"student.scale must be a number or 'auto', got {scale!r}")
        self.save_hyperparameters()
        self.encoder = load_bi_encoder(model, normalize).train()  # loaders return eval mode: keep dropout on
        # "auto": set from the mined pairs before training (set_scale), when the teacher's margin size is known.
        self.loss_fn = MarginMSELoss(float("nan") if scale == "auto" else float(scale))
        self.in_batch = InBatchNegativesLoss()
        self.listwise = ListwiseKLLoss(temperature=kl_temperature)

    @property
    def auto_scale(self) -> bool:
        return self.hparams.scale == "auto"

    def set_scale(self, scale: float) -> None:
        self.loss_fn.scale = float(scale)

    def embed(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        self.encoder.max_seq_length = max_length
        features = to_device(self.encoder.preprocess(list(texts)), self.device)
        return self.encoder(features)["sentence_embedding"]

    def training_step(self, batch, batch_idx):
        if self.loss_fn.scale != self.loss_fn.scale:  # NaN: never resolved
            raise RuntimeError("student.scale=auto was not resolved: call set_scale() with the mined pairs' scale")
        q = self.embed(batch["queries"], self.hparams.max_query_length)
        docs = self.embed(list(batch["docs_a"]) + list(batch["docs_b"]), self.hparams.max_doc_length)
        a, b = docs[: len(batch["docs_a"])], docs[len(batch["docs_a"]):]
        owner = batch["owner"]
        loss = self.hparams.margin_mse_weight * self.loss_fn(q[owner], a[owner], b, batch["margins"])
        if self.hparams.kl_weight:
            self.listwise.scale = self.loss_fn.scale
            kl = self.listwise(q, a, b, owner, batch["margins"])
            self.log("student/kl_loss", kl, batch_size=len(owner))
            loss = loss + self.hparams.kl_weight * kl
        if self.hparams.in_batch_weight:
            self.in_batch.scale = self.loss_fn.scale   # the same score, scale * cos, as margin-MSE's
            queries, texts = batch["queries"], list(batch["docs_a"]) + list(batch["docs_b"])
            # Not a negative for query i: any text that is a better doc of a group with i's query (wherever it sits).
            better = [{a for qa, a in zip(queries, batch["docs_a"]) if qa == qi} for qi in queries]
            mask = torch.tensor([[t in better[i] for t in texts] for i in range(len(queries))], device=q.device)
            target = torch.arange(len(queries), device=q.device)
            in_batch = self.in_batch(q, docs, target, mask)
            self.log("student/in_batch_loss", in_batch, batch_size=len(owner))
            loss = loss + self.hparams.in_batch_weight * in_batch
        self.log("student/train_loss", loss, prog_bar=True, batch_size=len(owner))
        return loss

    def on_save_checkpoint(self, checkpoint):
        # The encoder's max_seq_length is switched per call; store the evaluation length so exports agree.
        self.encoder.max_seq_length = self.hparams.eval_max_doc_length

    def configure_optimizers(self):
        return adamw_with_warmup(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_ratio)
