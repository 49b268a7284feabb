"""A tiny DDP job: 2 CPU processes with ddp_spawn, distributed teacher scoring included."""
from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch

from conftest import SUBPROCESS_TIMEOUT, compose, tiny_overrides
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


def test_corpus_encoded_by_two_ranks_equals_one_process(tiny_bert):
    """Each rank encodes a share of the corpus through Trainer.predict; every process gets the whole matrix back in
    corpus order, equal to encoding it here."""
    from crossdistill.data.corpus import Corpus
    from crossdistill.models.bi_encoder import load_bi_encoder
    from crossdistill.retrieval.corpus_embeddings import CorpusEmbeddings
    from crossdistill.retrieval.corpus_encoding import encode_corpus_by_rank

    corpus = Corpus.from_mapping({f"d{i}": "gene cell " * (i % 5 + 1) + f"doc {i}" for i in range(13)})
    encoder = load_bi_encoder(str(tiny_bert), normalize=True)
    direct = CorpusEmbeddings(corpus, precision="32", max_doc_length=32).rows(encoder)
    for devices, strategy in ((1, "auto"), (2, "ddp_spawn")):
        trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy=strategy, logger=False,
                             enable_progress_bar=False)
        shared = encode_corpus_by_rank(trainer, encoder, corpus, batch_size=3, precision="32", max_length=32)
        assert shared.shape == direct.shape
        assert torch.allclose(shared, direct, atol=1e-5), devices


def test_pipeline_runs_under_ddp_spawn(tiny_bert, tiny_beir, tmp_path, monkeypatch):
    """... and the corpus is never encoded by this (rank 0's) process alone: mining's encodings, the per-epoch dev
    and the final test's are each a share per spawned rank."""
    from crossdistill.retrieval.corpus_embeddings import CorpusEmbeddings

    alone = []
    encode_rows = CorpusEmbeddings.rows
    monkeypatch.setattr(CorpusEmbeddings, "rows",
                        lambda self, *a, **kw: alone.append(len(self.docs)) or encode_rows(self, *a, **kw))
    # The distilled epoch is what dev returns here (the zero-shot start does not compete: keep_zero_shot=false).
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path, tmp_path / "cache") + DDP + [
        "student_data.epochs=1", "rounds.keep_zero_shot=false"])
    value = run(cfg)
    results = json.loads((tmp_path / "results.json").read_text())
    assert alone == []
    assert "test_encoding" in results["stages"] and results["systems"]["student"]["ndcg@10"] > 0
    assert results["mining"]["reused"] is False and results["mining"]["pairs"] > 0
    assert value == pytest.approx(results["dev"]["history"][0]["ndcg@10"])
    assert (tmp_path / "student" / "modules.json").exists()


def test_subprocess_ddp_mines_the_artifact_one_process_mines(tiny_bert, tiny_beir, tmp_path):
    """strategy=ddp, as on GPUs: each rank is its own process running the whole script (Lightning relaunches it).
    With the same teacher (cached by the 1-process run), both ranks' teacher scores reach every rank and the mined
    artifact equals the 1-process one; distillation and evaluation finish with results."""
    import shutil
    import subprocess
    import sys

    import pandas as pd

    from conftest import ROOT

    one = tiny_overrides(tiny_bert, tiny_beir, tmp_path / "one", tmp_path / "cache1") + ["student_data.epochs=1"]
    run(compose(one))
    shutil.copytree(tmp_path / "cache1" / "teachers", tmp_path / "cache2" / "teachers")
    out = tmp_path / "two"
    overrides = [o for o in tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache2") if "paths" not in o]
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides, "student_data.epochs=1", "trainer=ddp",
         "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=auto",
         f"paths.cache_dir={tmp_path / 'cache2'}",
         f"hydra.run.dir={out}", "logger=none"],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["teacher"].get("cached") and results["mining"]["reused"] is False
    single, double = (pd.read_parquet(d / "mining" / "artifact.parquet").sort_values(["qid", "docid"])
                      .reset_index(drop=True) for d in (tmp_path / "one", out))
    assert single[["qid", "docid", "origin", "label"]].equals(double[["qid", "docid", "origin", "label"]])
    assert double.ce_score.to_numpy() == pytest.approx(single.ce_score.to_numpy(), abs=1e-4)
    assert (out / "student" / "modules.json").exists() and "student" in results["systems"]
    assert not (out / ".exchange").exists() or not any((out / ".exchange").iterdir())


def test_subprocess_ddp_round_two_sends_only_new_pairs_to_the_teacher(tiny_bert, tiny_beir, tmp_path):
    """Under strategy=ddp every rank decides alike which round-2 pairs already hold round 1's logit (both read the
    same artifact), so they predict the same remainder together; the kept logits are round 1's."""
    import subprocess
    import sys

    import pandas as pd

    from conftest import ROOT

    out = tmp_path / "two"
    overrides = [o for o in tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache")
                 if "paths" not in o and not o.startswith("rounds.count")]
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides, "student_data.epochs=1", "rounds.count=2",
         "rounds.miner.depth=6", "trainer=ddp", "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
         "trainer.precision=auto", f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={out}", "logger=none"],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    second = json.loads((out / "results.json").read_text())["rounds"][1]
    earlier = pd.read_parquet(out / "mining" / "artifact.parquet").set_index(["qid", "docid"]).ce_score
    artifact = pd.read_parquet(out / "mining_round2" / "artifact.parquet")
    shared = artifact.join(earlier.rename("round1"), on=["qid", "docid"], how="inner")
    assert 0 < len(shared) < len(artifact) and (shared.ce_score == shared.round1).all()
    assert (second["teacher_scored"], second["earlier_round_scores"]) == (len(artifact) - len(shared), len(shared))
