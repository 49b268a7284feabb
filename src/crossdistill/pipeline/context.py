"""What the stages of one run share: the config, the run folder's layout, and every product an earlier stage made."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only
from rich.console import Console

from crossdistill.common.fingerprint import state_dict_fingerprint
from crossdistill.common.io import remove_orphans
from crossdistill.common.layout import RunLayout
from crossdistill.common.precision import resolve_precision
from crossdistill.common.timing import StageRecorder
from crossdistill.console import announce_config, quiet_third_party
from crossdistill.pipeline.validation import validate

if TYPE_CHECKING:   # annotations only: the packages import nothing from the pipeline
    import pandas as pd
    import torch
    from torch.utils.data import Dataset

    from crossdistill.data.source import PreparedData
    from crossdistill.data.weak import QuerySet
    from crossdistill.evaluation.evaluator import EvalResult, RetrievalEvaluator
    from crossdistill.retrieval.bm25 import BM25Retriever
    from crossdistill.student.module import BiEncoderStudent
    from crossdistill.teacher.data import TeacherDataModule
    from crossdistill.teacher.ensemble import TeacherEnsemble
    from crossdistill.teacher.module import CrossEncoderTeacher
    from crossdistill.types import Run

console = Console()


def resolve_precisions(cfg: DictConfig) -> None:
    """'auto' training and inference precisions -> this machine's, before any cache key is computed from them (a
    teacher trained in bf16 is not the one trained in fp32)."""
    cfg.inference_precision = resolve_precision(cfg.inference_precision)
    if "trainer" in cfg:
        cfg.trainer.precision = resolve_precision(cfg.trainer.get("precision", "32-true"))
        console.log(f"precision: training {cfg.trainer.precision}, inference {cfg.inference_precision}")


def bm25_depth(cfg: DictConfig) -> int:
    """How deep BM25 runs: deep enough for the teacher's negatives, the miner's shortlists and evaluation."""
    return max(cfg.evaluation.retrieval_depth, cfg.get("miner", {}).get("depth", 0),
               cfg.get("teacher_data", {}).get("negative_depth", 0))


@dataclass
class BestStudent:
    """The best student so far across rounds, chosen by dev only (a round that does not help is discarded)."""

    dev: float = float("-inf")
    epoch: int = -1
    state: dict | None = None
    dev_trace: str | None = None   # its dev trace, when not its epoch's (a student interpolated with its start)


@dataclass
class MinedRound:
    """A round's mining: the distillation pairs (qid, docid_a, docid_b, margin), their text examples for the student's
    data module, and the record results.json keeps (artifact, counts, miner, agreement, margin scale)."""

    pairs: pd.DataFrame
    dataset: Dataset
    info: dict


@dataclass
class RunContext:
    """Filled stage by stage: each stage names the fields it needs and the ones it provides."""

    cfg: DictConfig
    layout: RunLayout
    recorder: StageRecorder
    console: Console = console
    data: PreparedData | None = None
    bm25: BM25Retriever | None = None   # over the corpus
    # BM25 over what training reads (label-free: documents without their titles); ``bm25`` itself otherwise
    bm25_train: BM25Retriever | None = None
    bm25_runs: dict[str, Run] | None = None   # split -> BM25 run (train, dev: the training view; test: the corpus)
    teacher_data: TeacherDataModule | None = None   # also names the cross-encoder's title-query documents
    cross_encoder: CrossEncoderTeacher | None = None   # the model trained here (teacher=...)
    teacher_info: dict | None = None    # the cross-encoder's training, the teacher's and express lane's choices
    teacher: TeacherEnsemble | None = None   # what scores the mined pairs (members, weights chosen on dev)
    express_lane: TeacherEnsemble | None = None   # evaluation's reranker over the student's top k, or the teacher
    student: BiEncoderStudent | None = None
    evaluator: RetrievalEvaluator | None = None   # over the corpus (test)
    # The evaluator over what training reads (dev, mining's encodings and member scores); ``evaluator`` unless the
    # training view differs (label-free: the dev pseudo-queries are titles, so dev documents are shown without them)
    dev_evaluator: RetrievalEvaluator | None = None
    init: dict[str, EvalResult] | None = None   # split -> the zero-shot student's evaluation
    corpus_emb: torch.Tensor | None = None   # the mining student's corpus embeddings (training view)
    teacher_over_bm25: Run | None = None   # the teacher reranking BM25's test top-k
    query_sets: dict[str, tuple[QuerySet, Run]] | None = None   # name -> (queries, BM25 run): what a round mines
    mined: MinedRound | None = None     # this round's pairs, examples and record
    # query set name -> the scored artifacts of earlier rounds: a later round's teacher scores only pairs they lack
    scored_artifacts: dict[str, list] = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)
    best: BestStudent = field(default_factory=BestStudent)
    epochs_done: int = 0                # distillation epochs of earlier rounds
    final: EvalResult | None = None     # the kept student on test
    onnx: dict | None = None            # the ONNX files of the exported models, and their checks
    interpolation: dict | None = None   # the kept student averaged with its start: each alpha's dev, the choice
    guard: dict | None = None           # the keep-the-start guard: the start or a distilled student kept, and why
    transfer: dict | None = None        # collection -> the students' test metrics there (evaluation.transfer)
    results: dict | None = None         # what results.json holds (eval.py returns its systems)
    _teacher_fingerprint: str | None = field(default=None, repr=False)

    @classmethod
    def start(cls, cfg: DictConfig) -> RunContext:
        """The config checked before anything runs, the seed, the machine's precisions and the run folder."""
        quiet_third_party(bool(cfg.get("verbose", False)))
        validate(cfg)
        layout = RunLayout(Path(cfg.paths.output_dir), Path(cfg.paths.cache_dir))
        layout.root.mkdir(parents=True, exist_ok=True)
        # Before any DDP rank joins (each runs this at its start, before the first fit): no stale score files.
        shutil.rmtree(layout.exchange, ignore_errors=True)
        for orphan in remove_orphans(layout.cache) + remove_orphans(layout.root):
            console.log(f"removed {orphan}: a temporary file of a run that was killed while writing it")
        pl.seed_everything(cfg.seed, workers=True)
        resolve_precisions(cfg)
        if rank_zero_only.rank == 0:
            announce_config(cfg, console, layout.root)
        return cls(cfg=cfg, layout=layout, recorder=StageRecorder(console))

    def teacher_fingerprint(self) -> str:
        """The frozen cross-encoder's weight hash, computed once (mining keys and round keys all name it)."""
        if self._teacher_fingerprint is None:
            self._teacher_fingerprint = state_dict_fingerprint(self.cross_encoder)
        return self._teacher_fingerprint

    @property
    def distilling(self) -> bool:
        """False once the guard has skipped distillation (dev saturated, or a teacher no better than the start on dev)."""
        return not (self.guard and self.guard.get("distilled") is False)

    @property
    def is_global_zero(self) -> bool:
        return rank_zero_only.rank == 0
