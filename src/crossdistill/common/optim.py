"""One optimiser recipe for both stages: AdamW with linear warm-up and linear decay, stepped every batch."""
from __future__ import annotations

import pytorch_lightning as pl
import torch
from transformers import get_linear_schedule_with_warmup


def adamw_with_warmup(module: pl.LightningModule, lr: float, weight_decay: float, warmup_ratio: float):
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    params = [
        {"params": [p for n, p in module.named_parameters() if p.requires_grad and not n.endswith(no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for n, p in module.named_parameters() if p.requires_grad and n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(params, lr=lr)
    total = max(1, int(module.trainer.estimated_stepping_batches))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
