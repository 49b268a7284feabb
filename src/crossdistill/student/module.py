"""The bi-encoder student: a SentenceTransformer (mean pooling) trained on the teacher's margins, as a
LightningModule. Its objective is ``student.losses``: a weighted sum of :class:`~crossdistill.student.losses.DistillLoss`
terms (default margin-MSE + in-batch negatives), each logged on its own."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from crossdistill.common.batching import to_device
from crossdistill.common.optim import adamw_with_warmup
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.student.batch import DistillBatch, ScoredBatch
from crossdistill.student.losses import DistillLoss

# The default objective, as configs/student/minilm.yaml states it (a class built outside Hydra trains the same way).
DEFAULT_LOSSES = {
    "margin_mse": {"_target_": "crossdistill.student.losses.MarginMSELoss", "weight": 1.0},
    "in_batch": {"_target_": "crossdistill.student.losses.InBatchNegativesLoss", "weight": 10.0},
    "kl": {"_target_": "crossdistill.student.losses.ListwiseKLLoss", "weight": 0.0, "temperature": 1.0},
    "start_anchor": {"_target_": "crossdistill.student.losses.StartAnchorLoss", "weight": 0.0},
}


def build_losses(specs: Mapping[str, Mapping]) -> nn.ModuleDict:
    """name -> loss from ``{_target_, weight, ...}`` entries, in config order (the order the terms are summed)."""
    losses = nn.ModuleDict()
    for name, spec in specs.items():
        loss = instantiate(dict(spec))
        if not isinstance(loss, DistillLoss):
            raise ValueError(f"student.losses.{name}: {spec.get('_target_')} is not a DistillLoss")
        losses[name] = loss
    return losses


def freeze_lower(encoder: nn.Module, embeddings: bool, layers: int) -> None:
    """Keep the token embeddings and the first ``layers`` transformer layers at their start weights (no gradient, no
    optimiser state, no backward pass below the first trained layer): what the start knew of words the training
    corpus never shows stays as it was. BERT-style models (``embeddings``, ``encoder.layer``: MiniLM, MPNet)."""
    if not embeddings and not layers:
        return
    model = encoder.transformers_model
    stack = getattr(getattr(model, "encoder", None), "layer", None)
    if not hasattr(model, "embeddings") or stack is None:
        raise ValueError(f"student.freeze_embeddings / student.frozen_layers: {type(model).__name__} has no "
                         "`embeddings` and `encoder.layer` to freeze")
    if not 0 <= layers <= len(stack):
        raise ValueError(f"student.frozen_layers must be in [0, {len(stack)}] for this model, got {layers}")
    if embeddings:
        model.embeddings.requires_grad_(False)
    for layer in stack[:layers]:
        layer.requires_grad_(False)


class BiEncoderStudent(pl.LightningModule):
    """Batches are :class:`DistillBatch` (groups of a query, its better doc and worse docs with the teacher's
    margins). The batch size and the epochs are the data side's (``DistillationDataModule``, config group
    student_data)."""

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
        losses: Mapping[str, Mapping] = DEFAULT_LOSSES,
        freeze_embeddings: bool = False,
        frozen_layers: int = 0,
    ):
        super().__init__()
        if isinstance(scale, str) and scale != "auto":
            raise ValueError(f"student.scale must be a number or 'auto', got {scale!r}")
        if isinstance(losses, DictConfig):   # plain values in the hyperparameters: checkpoints load weights-only
            losses = OmegaConf.to_container(losses, resolve=True)
        self.save_hyperparameters()
        self.encoder = load_bi_encoder(model, normalize).train()  # loaders return eval mode: keep dropout on
        freeze_lower(self.encoder, freeze_embeddings, frozen_layers)
        self.losses = build_losses(losses)
        for loss in self.losses.values():   # after freezing: a loss that reads the weights sees the trainable ones
            loss.bind(self.encoder)
        # "auto": set from the mined pairs before training (set_scale), when the teacher's margin size is known.
        self.scale = float("nan") if scale == "auto" else float(scale)

    @property
    def auto_scale(self) -> bool:
        return self.hparams.scale == "auto"

    def set_scale(self, scale: float) -> None:
        self.scale = float(scale)

    def embed(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        self.encoder.max_seq_length = max_length
        features = to_device(self.encoder.preprocess(list(texts)), self.device)
        return self.encoder(features)["sentence_embedding"]

    def encode_batch(self, batch: DistillBatch) -> ScoredBatch:
        """The step's queries and documents (better, then worse: one call, one padding) through the encoder."""
        if self.scale != self.scale:  # NaN: never resolved
            raise RuntimeError("student.scale=auto was not resolved: call set_scale() with the mined pairs' scale")
        return ScoredBatch(batch, self.embed(batch.queries, self.hparams.max_query_length),
                           self.embed(batch.texts, self.hparams.max_doc_length), self.scale)

    def training_step(self, batch: DistillBatch, batch_idx):
        scored = self.encode_batch(batch)
        total = None
        for name, loss in self.losses.items():
            if not loss.weight:
                continue
            value = loss.from_batch(scored)
            self.log(f"student/{name}_loss", value, batch_size=len(batch))
            term = loss.weight * value
            total = term if total is None else total + term
        if total is None:
            raise ValueError("student.losses: every weight is 0; give at least one loss a weight > 0")
        self.log("student/train_loss", total, prog_bar=True, batch_size=len(batch))
        return total

    def on_save_checkpoint(self, checkpoint):
        # The encoder's max_seq_length is switched per call; store the evaluation length so exports agree.
        self.encoder.max_seq_length = self.hparams.eval_max_doc_length

    def configure_optimizers(self):
        return adamw_with_warmup(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_ratio)
