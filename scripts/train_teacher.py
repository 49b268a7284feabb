"""Train (or fetch from the cache) only the teacher, print its dev reranking nDCG@10, and export it.

    python scripts/train_teacher.py teacher.pseudo_queries=1500 teacher.max_length=128
Takes the same Hydra overrides as train.py; used to measure teacher settings without the later stages.
"""
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def main(cfg: DictConfig) -> float:
    from crossdistill.export import export_teacher
    from crossdistill.pipeline import resolve_precisions, train_teacher

    out = Path(cfg.paths.output_dir)
    resolve_precisions(cfg)
    pl.seed_everything(cfg.seed)
    data = instantiate(cfg.data).load(cfg.paths.cache_dir)
    queries = data.dataset.queries
    bm25 = instantiate(cfg.bm25).index(data.doc_ids, data.doc_texts)
    runs = {s: bm25.search({q: queries[q] for q in data.qrels[s]}, cfg.teacher.negative_depth)
            for s in ("train", "dev")}
    start = time.perf_counter()
    teacher, info = train_teacher(cfg, data, bm25, runs, out)
    export_teacher(teacher, out / "teacher")
    info |= {"wall_s": round(time.perf_counter() - start, 1), "overrides": sys.argv[1:]}
    (out / "teacher.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return info.get("best_val_ndcg@10", float("nan"))


if __name__ == "__main__":
    main()
