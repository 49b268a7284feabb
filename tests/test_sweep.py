"""Sweeps at scale: Optuna trials of the pipeline (hparams_search=optuna) and Slurm jobs sized from the trainer."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import CONFIGS, ROOT, SUBPROCESS_TIMEOUT, tiny_overrides


def _tiny(tiny_bert, tiny_beir, cache):
    # paths.output_dir stays Hydra's: each trial writes to its own subfolder of the sweep folder
    return [o for o in tiny_overrides(tiny_bert, tiny_beir, cache, cache) if not o.startswith("paths.")] + [
        f"paths.cache_dir={cache}", "student_data.epochs=1", "logger=none"]


def test_two_optuna_trials_maximise_the_dev_metric(tiny_bert, tiny_beir, tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "hparams_search=optuna", "hydra.sweeper.n_trials=2",
         "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={sweep}",
         *_tiny(tiny_bert, tiny_beir, tmp_path / "cache")],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    trials = [json.loads((sweep / str(i) / "results.json").read_text()) for i in range(2)]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    # The value Optuna saw is what train.py returns: each trial's best dev nDCG@10 (never test).
    assert best["best_value"] == pytest.approx(max(t["dev"]["best"] for t in trials))
    assert set(best["best_params"]) == {"student.lr", "student.losses.in_batch.weight", "student.losses.kl.weight",
                                         "student.scale"}
    chosen = trials[[t["dev"]["best"] for t in trials].index(max(t["dev"]["best"] for t in trials))]["config"]
    def value(key: str):   # a dotted key's value in the trial's resolved config
        node = chosen
        for part in key.split("."):
            node = node[part]
        return node

    assert {k: value(k) for k in best["best_params"]} == pytest.approx(best["best_params"])
    # The second trial trained no teacher: it found the first one's in the shared cache.
    assert trials[1]["teacher"].get("cached")


def test_slurm_launcher_sizes_jobs_from_the_trainer():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                                 "hydra.launcher.partition=gpu"])
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    # one task per device, as Lightning's SLURMEnvironment expects for DDP over nodes
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    assert launcher["partition"] == "gpu"


def test_a_submitit_job_runs_the_pipeline(tiny_bert, tiny_beir, tmp_path):
    """The launcher path end to end with submitit's local executor (Slurm's, without a cluster)."""
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
         f"hydra.sweep.dir={sweep}", *_tiny(tiny_bert, tiny_beir, tmp_path / "cache")],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((sweep / "0" / "results.json").read_text())
    assert "student" in results["systems"] and (sweep / "0" / "student" / "modules.json").exists()
