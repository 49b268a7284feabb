"""Per-epoch evaluation under DDP: every rank encodes and searches its share of the corpus and scores its share of the
teacher pairs; the merged result equals one process evaluating alone."""
from __future__ import annotations

import json
import os
import random

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from crossdistill.common.distributed import shard
from crossdistill.common.layout import RunLayout, dev_epoch_name
from crossdistill.data.corpus import Corpus
from crossdistill.evaluation.callback import DistillationEvalCallback
from crossdistill.evaluation.evaluator import EvaluationSettings, RetrievalEvaluator
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.models.cross_encoder import load_cross_encoder
from crossdistill.teacher.cross_encoder_scores import CrossEncoderScores
from crossdistill.teacher.ensemble_scores import EnsembleScores

WORDS = "cell gene mice fox brown protein tumour cancer virus dna rna blood heart brain liver lung drug dose".split()


@pytest.mark.parametrize("n", range(8))
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_concatenate_to_the_items_in_rank_order(n, world):
    items = list(range(n))
    parts = [shard(items, rank, world) for rank in range(world)]
    assert sum(parts, []) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= -(-n // world)   # ceil-sized shares, last ones shorter


def _log(log_dir, key: str, n: int) -> None:
    path = log_dir / f"{os.getpid()}.json"
    seen = json.loads(path.read_text()) if path.exists() else {}
    seen[key] = seen.get(key, 0) + n
    path.write_text(json.dumps(seen))


class CountingEvaluator(RetrievalEvaluator):
    """Records, per process, how many corpus rows it encoded."""

    def __init__(self, *args, log_dir=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_dir = log_dir

    def _search_rows(self, encoder, qids, rows):
        _log(self.log_dir, "rows", len(rows))
        return super()._search_rows(encoder, qids, rows)


class CountingLogits(CrossEncoderScores):
    """Records, per process, how many cross-encoder pairs it scored."""

    def __init__(self, *args, log_dir=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_dir = log_dir

    def _logits(self, pairs):
        _log(self.log_dir, "pairs", len(pairs))
        return super()._logits(pairs)


class FrozenStudent(pl.LightningModule):
    """One trainable scalar beside a frozen encoder: the epoch ends with the encoder's weights as they started."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w * batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD([self.w], lr=0.1)

    def train_dataloader(self):
        return DataLoader(torch.ones(4, 1), batch_size=2)


def _evaluator(teacher, folder, epoch_corpus):
    rng = random.Random(0)
    docs = {f"d{i}": " ".join(rng.choices(WORDS, k=12)) for i in range(41)}   # odd: the ranks' shares differ
    queries = {f"q{i}": " ".join(docs[f"d{3 * i}"].split()[:3]) for i in range(9)}
    qrels = {"dev": {f"q{i}": {f"d{3 * i}": 1} for i in range(9)}}
    settings = EvaluationSettings(precision="32", show_progress=False, retrieval_depth=10, rerank_depth=5,
                                  epoch_corpus=epoch_corpus, epoch_sample=12)
    folder.mkdir(parents=True)
    logits = CountingLogits(teacher, queries, Corpus.from_mapping(docs), precision="32", log_dir=folder)
    return CountingEvaluator(settings, docs, queries, qrels, {"dev": {}}, reranking=EnsembleScores(queries, logits),
                             layout=RunLayout(folder / "run"), log_dir=folder)


@pytest.mark.parametrize("epoch_corpus", ["full", "sample"])
def test_per_epoch_evaluation_shared_by_two_ddp_ranks_equals_one_process(tiny_bert, tmp_path, epoch_corpus):
    encoder = load_bi_encoder(str(tiny_bert), normalize=True)
    teacher = load_cross_encoder(str(tiny_bert), 32)   # its new head is random: one teacher for both evaluations
    evaluator = _evaluator(teacher, tmp_path / "ddp", epoch_corpus)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=1, logger=False,
                         enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                         callbacks=[DistillationEvalCallback(evaluator, "dev")])
    trainer.fit(FrozenStudent(encoder))

    alone = _evaluator(teacher, tmp_path / "one", epoch_corpus)
    name = dev_epoch_name(0)
    expected = alone.evaluate(encoder, "dev", name, 0, per_epoch=True)
    shared = json.loads(evaluator.layout.trace_metrics(name).read_text())
    for metric, value in expected.metrics.items():
        assert shared[metric] == pytest.approx(value, abs=1e-6), metric
    columns = ["qid", "docid", "student_rank", "express_lane_rank"]
    got = pd.read_parquet(evaluator.layout.trace(name)).sort_values(["qid", "docid"]).reset_index(drop=True)
    want = expected.trace.sort_values(["qid", "docid"]).reset_index(drop=True)
    assert got[columns].equals(want[columns])
    assert got.express_lane_score.to_numpy() == pytest.approx(want.express_lane_score.to_numpy(), abs=1e-5, nan_ok=True)

    # Each rank encoded its own share of the searched rows and scored its own share of the teacher pairs.
    counts = [json.loads(p.read_text()) for p in (tmp_path / "ddp").glob("*.json")]
    searched = len(alone.epoch_rows("dev")) if epoch_corpus == "sample" else 41
    assert sorted(c["rows"] for c in counts) == sorted(len(shard(range(searched), r, 2)) for r in range(2))
    scored = json.loads(next((tmp_path / "one").glob("*.json")).read_text())["pairs"]
    assert sorted(c["pairs"] for c in counts) == sorted(len(shard(range(scored), r, 2)) for r in range(2))
