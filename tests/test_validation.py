"""Bad config values are caught before any stage runs: exit code 2, one line naming the key, no traceback."""
from __future__ import annotations

import sys

import pytest

from conftest import SUBPROCESS_TIMEOUT, compose, tiny_overrides
from crossdistill import cli
from crossdistill.pipeline.validation import ConfigError, validate

# One case per class of mistake: (override, key named in the message, what the message says is allowed)
CASES = [
    ("student.lr=-1", "student.lr", "> 0"),                                        # a number out of range
    ("student_data.batch_size=0", "student_data.batch_size", ">= 1"),              # a count out of range
    ("rounds.count=0", "rounds.count", ">= 1"),
    ("evaluation.retrieval_depth=0", "evaluation.retrieval_depth", ">= 1"),        # once silently all-zero metrics
    ("+trainer.max_epochs=-5", "trainer.max_epochs", "student_data.epochs"),       # once silently ignored
    ("teacher.loss=cosine", "teacher.loss", "listwise, pairwise, pointwise"),      # not one of the choices
    ("student.scale=big", "student.scale", "auto"),                                # wrong type
    ("+student.lrr=1e-5", "student.lrr", "not an argument"),                       # a typo a class would drop
    ("evaluation.rerank_depth=50", "evaluation.rerank_depth", "<= evaluation.retrieval_depth"),   # cross-field
    ("optimized_metric=test/ndcg@10", "optimized_metric", "dev/"),                 # selection on test
    ("data.dev_size=1.5", "data.dev_size", "< 1"),
    ("student.model=/no/such/model", "student.model", "not a local folder"),       # a model that is not there
    ("inference_precision=fp8", "inference_precision", "bf16-mixed"),
    ("inference_backend=tensorrt", "inference_backend", "onnx-int8"),
    ("interpolation.alphas=[0.5,1.5]", "interpolation.alphas", "in [0, 1]"),
    ("bm25.backend=rust", "bm25.backend", "numba"),
    ("ensemble.express_lane=[cross_encoder,mpnet]", "ensemble.express_lane", "ensemble.catalog"),   # a member with no scorer
    # index settings: once a FAISS error after the teacher had trained
    ("evaluation/index=faiss_ivf evaluation.index.nprobe=0", "evaluation.index.nprobe", ">= 1"),
    ("evaluation/index=faiss_hnsw evaluation.index.kind=lsh", "evaluation.index.kind", "hnsw"),
    # a missing run file: once reported only when mining started, after the teacher had trained
    ("miner=run_file miner.first_stage.path=/no/such/train.trec", "miner.first_stage.path", "existing TREC run file"),
]


@pytest.mark.parametrize("override,key,allowed", CASES, ids=[c[1] for c in CASES])
def test_bad_value_exits_2_naming_the_key_before_any_stage(override, key, allowed, tiny_bert, tiny_beir, tmp_path,
                                                           monkeypatch, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = tiny_overrides(tiny_bert, tiny_beir, out, cache) + [*override.split(), f"hydra.run.dir={out}"]   # depth 20
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    with pytest.raises(SystemExit) as exit_:
        cli.train()
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert f"{key}=" in err and allowed in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1   # one line
    # No stage ran: no stage log, no results, nothing in the cache.
    assert not (out / "results.json").exists() and not (out / "csv").exists()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_an_unwritable_cache_folder_is_named(tiny_bert, tiny_beir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path / "out", blocker / "cache"))
    with pytest.raises(ConfigError, match="paths.cache_dir=.*must be a folder this process can write"):
        validate(cfg)


@pytest.mark.parametrize("module,override,message", [
    ("numba", "bm25.backend=numba", r"bm25.backend='numba': needs numba installed"),
    ("faiss", "evaluation/index=faiss_hnsw", r"evaluation.index='faiss_hnsw': needs faiss installed"),
    ("tensorboard", "logger=tensorboard", r"logger='tensorboard': needs tensorboard installed"),
    ("wandb", "logger=wandb", r"logger='wandb': needs wandb installed"),
])
def test_an_optional_backend_that_is_not_installed_is_named(module, override, message, tiny_bert, tiny_beir, tmp_path,
                                                            monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else find_spec(name, *a))
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path / "out", tmp_path / "cache") + [override])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_the_shipped_configs_pass(tiny_bert, tiny_beir, tmp_path):
    for extra in ([], ["experiment=smoke"], ["experiment=strong_teacher"], ["logger=wandb"], ["miner=hybrid"],
                  ["pairs=teacher_top"], ["ensemble=cross_encoder"], ["ensemble=default"], ["trainer=ddp"],
                  ["bm25.backend=numba"]):
        validate(compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path / "out", tmp_path / "cache") + extra))


def test_a_write_that_fails_on_a_named_path_is_one_line(capsys):
    import errno

    def full_disk(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/mining/artifact.parquet")

    with pytest.raises(SystemExit) as exit_:
        cli.guarded(full_disk, None)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "/runs/x/mining/artifact.parquet" in err and "No space left" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_error_hydra_wraps_is_reported_by_its_cause(capsys):
    from hydra.errors import InstantiationException

    from crossdistill.models import ModelNotFound

    def wrapped(cfg):
        try:
            raise ModelNotFound("model 'x' is not a local folder nor a packaged model")
        except ModelNotFound as err:
            raise InstantiationException("Error in call to target 'CrossEncoderTeacher'") from err

    with pytest.raises(SystemExit) as exit_:
        cli.guarded(wrapped, None)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "model 'x' is not a local folder" in err and "Error in call" not in err


@pytest.mark.parametrize("override,named", [("teacher=nonexistent", "teacher/nonexistent"),
                                            ("student.lrr=1", "student.lrr")])
def test_an_unknown_option_or_key_is_one_line_and_exit_2(override, named, tmp_path):
    import os
    import subprocess

    from conftest import ROOT

    result = subprocess.run([sys.executable, str(ROOT / "train.py"), override, f"hydra.run.dir={tmp_path / 'o'}"],
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and named in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if override.startswith("teacher="):
        assert "available options: minilm, mpnet" in result.stderr
    assert not (tmp_path / "o").exists()   # refused before Hydra made a run folder


def test_a_backend_whose_runtime_is_missing_is_named_with_its_extra(tiny_bert, tiny_beir, tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else find_spec(name, *a))
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path / "out", tmp_path / "cache") + ["inference_backend=openvino"])
    with pytest.raises(ConfigError, match=r"inference_backend='openvino'.*needs openvino installed.*crossdistill\[openvino\]"):
        validate(cfg)
