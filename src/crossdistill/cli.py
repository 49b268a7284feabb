"""Console entry points: ``crossdistill-train`` and ``crossdistill-eval`` (also ``python train.py`` / ``python
eval.py`` in the repository), and ``crossdistill <command>`` for everything around a run (crossdistill.commands).
The configs ship inside the package, so all work from any directory, with the same Hydra overrides. Expected
failures (bad data, missing models) end in one clear line and exit code 2."""
from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

CONFIGS = "configs"   # crossdistill/configs, inside the installed package


def _offline_defaults() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the defaults use packaged weights; set 0 to allow hub ids
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def guarded(run, cfg: DictConfig):
    """``run(cfg)``, with bad input reported as one line on stderr and exit code 2 instead of a traceback."""
    from hydra.errors import InstantiationException
    from rich.console import Console

    from crossdistill.data.beir import DataError
    from crossdistill.models import ModelNotFound
    from crossdistill.pipeline.validation import ConfigError

    expected = (DataError, ModelNotFound, ConfigError)
    try:
        return run(cfg)
    except (*expected, InstantiationException, OSError) as err:
        cause = err.__cause__ if isinstance(err, InstantiationException) else err
        # Only a read or write of a named path (a full disk, a read-only folder) is an OSError the user can fix.
        if not isinstance(cause, expected) and not (isinstance(cause, OSError) and cause.filename):
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {cause}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _quiet(cfg: DictConfig) -> None:
    """Before the pipeline's imports: matplotlib's font cache and other import-time lines stay off the console."""
    from crossdistill.console import quiet_third_party

    quiet_third_party(bool(cfg.get("verbose", False)))


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def _train(cfg: DictConfig) -> float:
    _quiet(cfg)
    from crossdistill.pipeline.train import run  # imported late so `--help` and config errors stay fast

    return guarded(run, cfg)  # the value a Hydra sweeper optimises (cfg.optimized_metric)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="eval")
def _evaluate(cfg: DictConfig) -> dict:
    _quiet(cfg)
    from crossdistill.pipeline.evaluate import run

    return guarded(run, cfg)


def _one_line(err: Exception) -> str:
    """Hydra's multi-line composition message as one line: what went wrong, and the options there are."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    noise = ("Config search path", "provider=", "full_key", "object_type")
    listed = next((i for i, line in enumerate(lines) if line.startswith("Available options")), None)
    if listed is not None:
        options = [line for line in lines[listed + 1:] if not line.startswith(noise)]
        return f"{lines[0]}; available options: {', '.join(options)}"
    return "; ".join(line for line in lines if not line.startswith(noise))


def _check_overrides(config_name: str) -> None:
    """Compose the config from the command line's overrides before Hydra runs: an unknown group option or key is
    one line and exit code 2 (Hydra alone prints several lines and exits 1). Sweeps and flags go to Hydra as they
    are."""
    args = sys.argv[1:]
    if any(a.startswith("-") for a in args):
        return
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_module(f"crossdistill.{CONFIGS}", version_base="1.3"):
            compose(config_name, overrides=args)
    except (HydraException, OmegaConfBaseException) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        sys.exit(2)


def train() -> None:
    """``crossdistill-train teacher=minilm``: train the teacher, mine, distil, evaluate, export."""
    _offline_defaults()
    _check_overrides("train")
    _train()


def evaluate() -> None:
    """``crossdistill-eval model=<folder or hub id> [reranker=...] [run_file=...] [data=beir data.path=...]``."""
    _offline_defaults()
    _check_overrides("eval")
    _evaluate()


def main() -> None:
    """``crossdistill <command> [args]``: train, eval, export, report, explain, compare, express-lane, interpolate."""
    _offline_defaults()
    from crossdistill.commands import main as dispatch

    sys.exit(dispatch())
