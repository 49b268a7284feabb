"""Shared fixtures: a tiny BERT on disk, a tiny BEIR folder, and the real Hydra configs composed for them."""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "offline")
sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import _WORDS, save_tiny_bert  # noqa: E402


def _absl_writes_to_the_real_stderr() -> None:
    """OpenVINO's import pulls in absl.logging (where absl-py is installed: tensorboard brings it), whose handler
    keeps the ``sys.stderr`` of that moment, here pytest's capture file, and closes it when Hydra's job logging
    resets the handlers: every later test then fails on a closed file. Outside pytest that stream is the real
    stderr, which absl never closes; here it is pointed there too."""
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.get_absl_handler().python_handler.setStream(sys.__stderr__)


_absl_writes_to_the_real_stderr()

ROOT = Path(__file__).resolve().parents[1]
# How long a test waits on a subprocess (train.py, eval.py, a benchmark script) before calling it hung. A guard
# against hangs, never a speed limit: a test must not fail because the machine is slow or loaded.
SUBPROCESS_TIMEOUT = 3600
CONFIGS = ROOT / "src" / "crossdistill" / "configs"


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def write_tiny_beir(folder: Path, n_docs: int = 60, n_train: int = 24, n_test: int = 8, seed: int = 0) -> Path:
    """Docs of random vocabulary words; each query is four words of one doc, which is its judged positive."""
    rng = random.Random(seed)
    words = sorted(set(_WORDS))
    folder.mkdir(parents=True, exist_ok=True)
    docs = {f"d{i}": (" ".join(rng.sample(words, 3)), " ".join(rng.choices(words, k=30))) for i in range(n_docs)}
    with open(folder / "corpus.jsonl", "w") as f:
        for docid, (title, text) in docs.items():
            f.write(json.dumps({"_id": docid, "title": title, "text": text}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    with open(folder / "queries.jsonl", "w") as fq:
        for split, n, offset in (("train", n_train, 0), ("test", n_test, n_train)):
            with open(folder / "qrels" / f"{split}.tsv", "w") as fr:
                fr.write("query-id\tcorpus-id\tscore\n")
                for i in range(n):
                    qid, docid = f"q{offset + i}", f"d{(offset + i) % n_docs}"
                    fq.write(json.dumps({"_id": qid, "text": " ".join(rng.sample(docs[docid][1].split(), 4))}) + "\n")
                    fr.write(f"{qid}\t{docid}\t1\n")
    return folder


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory) -> Path:
    return write_tiny_beir(tmp_path_factory.mktemp("beir") / "tiny")


def tiny_overrides(tiny_bert: Path, tiny_beir: Path, out: Path, cache: Path) -> list[str]:
    """The real configs, pointed at tiny models and data: every stage runs, in seconds."""
    return [
        "data=beir", f"data.path={tiny_beir}", "data.dev_size=6",
        f"teacher.model={tiny_bert}", "teacher.max_length=64", "teacher_data.negatives=2", "teacher_data.batch_size=4",
        f"student.model={tiny_bert}", "student.max_doc_length=64", "student.eval_max_doc_length=64",
        "student_data.batch_size=4", "student_data.epochs=2",
        "miner.depth=6", "evaluation.rerank_depth=5", "rounds.count=1", "evaluation.retrieval_depth=20",
        # random tiny models: whether their teacher beats their start on dev is chance; the gate's own tests turn it on
        "rounds.teacher_must_beat_start=false",
        "evaluation.show_progress=false", "+trainer.enable_progress_bar=false",
        f"paths.root_dir={out}", f"paths.output_dir={out}", f"paths.cache_dir={cache}",
    ]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def console_text(out: str) -> str:
    """What the console said, as one line of words: Rich's wrapping and its file:line column taken out."""
    import re

    return " ".join(re.sub(r"\S+\.py:\d+", " ", out).split())
