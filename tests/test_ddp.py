"""A tiny DDP job: 2 CPU processes with ddp_spawn, distributed teacher scoring included."""
from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch

from conftest import compose, tiny_overrides
from crossdistill.mining.scoring import predict_pair_scores
from crossdistill.pipeline.train import run
from crossdistill.teacher.module import CrossEncoderTeacher

DDP = ["trainer=ddp", "trainer.strategy=ddp_spawn", "trainer.accelerator=cpu", "trainer.devices=2"]


def test_distributed_teacher_scoring_matches_single_process(tiny_bert):
    teacher = CrossEncoderTeacher(model=str(tiny_bert), max_length=32).eval()
    queries = [f"cell gene {i}" for i in range(11)]  # odd count: ranks get unequal shares
    docs = [("the quick brown fox " * (i % 4 + 1)).strip() for i in range(11)]
    single = predict_pair_scores(pl.Trainer(accelerator="cpu", devices=1, logger=False,
                                            enable_progress_bar=False), teacher, queries, docs, batch_size=3)
    spawned = predict_pair_scores(pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
                                             enable_progress_bar=False), teacher, queries, docs, batch_size=3)
    with torch.inference_mode():
        direct = teacher.score(queries, docs).tolist()
    assert single == pytest.approx(direct, abs=1e-5)
    assert spawned == pytest.approx(direct, abs=1e-5)


def test_pipeline_runs_under_ddp_spawn(tiny_bert, tiny_beir, tmp_path):
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path, tmp_path / "cache") + DDP + ["student_data.epochs=1"])
    value = run(cfg)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mining"]["reused"] is False and results["mining"]["pairs"] > 0
    assert value == pytest.approx(results["dev"]["history"][0]["ndcg@10"])
    assert (tmp_path / "student" / "modules.json").exists()
