"""Train (or fetch from the cache) only the teacher, print its dev reranking nDCG@10, and export it.

    python scripts/train_teacher.py teacher_data.pseudo_queries=1500 teacher.max_length=128
Takes the same Hydra overrides as train.py; used to measure teacher settings without the later stages.
"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from crossdistill.cli import CONFIGS  # noqa: E402


@hydra.main(version_base="1.3", config_path=f"pkg://crossdistill/{CONFIGS}", config_name="train")
def main(cfg: DictConfig) -> float:
    from crossdistill.export import export_teacher
    from crossdistill.pipeline.context import RunContext
    from crossdistill.pipeline.stages.data import IndexBM25, PrepareData
    from crossdistill.pipeline.stages.teacher import TrainCrossEncoder
    from crossdistill.pipeline.train import run_stages

    start = time.perf_counter()
    ctx = run_stages(RunContext.start(cfg), [PrepareData(), IndexBM25(), TrainCrossEncoder()])
    export_teacher(ctx.teacher, ctx.layout.teacher)
    info = ctx.teacher_info | {"wall_s": round(time.perf_counter() - start, 1), "overrides": sys.argv[1:]}
    (ctx.layout.root / "teacher.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return info.get("best_val_ndcg@10", float("nan"))


if __name__ == "__main__":
    main()
