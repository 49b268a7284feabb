"""The corpus encoded under a student's weights, for mining and evaluation: in this process, or shared out across
the DDP ranks (``trainer=ddp``) through ``Trainer.predict``. Used by the zero-shot, mining and test stages."""
from __future__ import annotations

import pytorch_lightning as pl
import torch

from crossdistill.common.instantiate import make_trainer
from crossdistill.evaluation.evaluator import RetrievalEvaluator
from crossdistill.pipeline.context import RunContext
from crossdistill.retrieval.corpus_encoding import encode_corpus_by_rank


def encoding_trainer(ctx: RunContext) -> pl.Trainer:
    """The Trainer whose ranks encode the corpus (``trainer=ddp``: one per device and node)."""
    return make_trainer(ctx.cfg, "encode", ctx.layout.root, logged=False, precision=ctx.cfg.inference_precision,
                        callbacks=[], max_epochs=1)


def encode_corpus(ctx: RunContext, encoder, evaluator: RetrievalEvaluator | None = None, persist: bool = True,
                  trainer: pl.Trainer | None = None) -> torch.Tensor:
    """The corpus of ``evaluator`` (default: as training reads it, what mining searches) under ``encoder``'s weights,
    cached by them in the evaluator (and on disk with ``persist``). With several ranks configured (``trainer=ddp``)
    every rank encodes a share through ``Trainer.predict`` on its device, and every rank receives the whole matrix."""
    ev = evaluator if evaluator is not None else ctx.dev_evaluator
    trainer = trainer if trainer is not None else encoding_trainer(ctx)
    if trainer.world_size == 1:
        return ev.embeddings.corpus(encoder, persist=persist)
    emb = ev.embeddings
    return emb.corpus(encoder, persist=persist, compute=lambda: encode_corpus_by_rank(
        trainer, encoder, emb.docs, emb.batch_size, emb.precision, emb.max_doc_length, ctx.layout.exchange,
        emb.backend))
