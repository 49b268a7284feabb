"""Every entry point's config, composed as ``@hydra.main`` composes it, with no overrides at all: the whole config,
the ``hydra`` node included (run and sweep folders), resolves. A user types ``python train.py teacher=minilm`` with
nothing else; tests that add ``hydra.run.dir=`` never see what that user meets."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, read_write

from crossdistill.configs.resolvers import user_cache


def compose_as_hydra_main(config_name: str, overrides: list[str], mode: RunMode = RunMode.RUN):
    """What ``hydra.main`` does before it calls the task: compose from the installed package's configs, make the
    config the job's HydraConfig, then read the job's output folder (the step a null ``hydra.run.dir`` failed)."""
    with initialize_config_module("crossdistill.configs", version_base="1.3"):
        cfg = GlobalHydra.instance().hydra.compose_config(config_name, overrides, run_mode=mode,
                                                          with_log_configuration=False)
    HydraConfig.instance().set_config(cfg)
    job = cfg.hydra.run.dir if mode == RunMode.RUN else f"{cfg.hydra.sweep.dir}/0"
    with read_write(cfg.hydra):
        cfg.hydra.job.num = 0
        cfg.hydra.runtime.output_dir = str(Path(job).absolute())
        cfg.hydra.runtime.cwd = str(Path.cwd())
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture(autouse=True)
def no_hydra_job_left_behind():
    """Each test here makes its config the job's HydraConfig, as hydra.main does; later tests must not see it."""
    yield
    HydraConfig.instance().cfg = None


ENTRY_POINTS = [("train", []), ("train", ["teacher=minilm"]), ("train", ["teacher=minilm", "experiment=smoke"]),
                ("eval", [])]


@pytest.mark.parametrize("config_name,overrides", ENTRY_POINTS)
@pytest.mark.parametrize("mode", [RunMode.RUN, RunMode.MULTIRUN])
def test_entry_point_config_resolves_with_no_added_overrides(config_name, overrides, mode):
    cfg = compose_as_hydra_main(config_name, overrides, mode)
    resolved = OmegaConf.to_container(cfg, resolve=True)   # every interpolation, the hydra node's included
    hydra = resolved["hydra"]
    assert isinstance(hydra["run"]["dir"], str) and hydra["run"]["dir"].startswith("outputs/")
    assert isinstance(hydra["sweep"]["dir"], str) and hydra["sweep"]["dir"].startswith("multirun/")
    assert str(hydra["sweep"]["subdir"]) == "0"
    assert resolved["paths"]["output_dir"] == hydra["runtime"]["output_dir"]
    assert resolved["paths"]["cache_dir"] == user_cache()


@pytest.mark.parametrize("mode", [RunMode.RUN, RunMode.MULTIRUN])
def test_sweep_config_resolves(mode):
    cfg = compose_as_hydra_main("train", ["hparams_search=optuna"], mode)
    resolved = OmegaConf.to_container(cfg.hydra, resolve=True)
    assert resolved["sweep"]["dir"].startswith("multirun/") and resolved["sweeper"]["direction"] == "maximize"


def test_resume_runs_into_the_named_folder(tmp_path):
    cfg = compose_as_hydra_main("train", ["teacher=minilm", f"resume={tmp_path}"])
    assert cfg.hydra.run.dir == str(tmp_path) and cfg.paths.output_dir == str(tmp_path)


def test_cache_is_the_users_wherever_the_run_starts(monkeypatch, tmp_path):
    monkeypatch.delenv("CROSSDISTILL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache() == str(tmp_path / "xdg" / "crossdistill")
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "mine"))
    assert user_cache() == str(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    assert compose_as_hydra_main("train", []).paths.cache_dir == str(tmp_path / "mine")
    monkeypatch.delenv("CROSSDISTILL_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache() == str(Path.home() / ".cache" / "crossdistill")
