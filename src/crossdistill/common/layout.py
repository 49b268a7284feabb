"""Every path a run reads or writes, in one place: the pipeline writes through it, and the report, explain and
compare code read through it, so a run folder's layout is spelled out once.

    <run>/results.json                      every system's test metrics, stage costs, the config
    <run>/traces/<eval>.parquet             score trace of one evaluation (dev_init, dev_epoch=NNN, test_init,
    <run>/traces/<eval>.metrics.json        test_roundN, test_final), its metrics,
    <run>/traces/per_query/<eval>.parquet   and its failure taxonomy per query
    <run>/csv/<stage>/metrics.csv           Lightning CSV log of a training stage (teacher, student, student_roundN)
    <run>/mining[_roundN]/{artifact,pairs}.parquet
    <run>/runs/<system>.<split>.trec        TREC run files
    <run>/checkpoints/<stage>/              the best Lightning checkpoint of a training stage (removed when the run
                                            ends, with stages/, unless keep_checkpoints=true)
    <run>/student/, <run>/teacher/          SentenceTransformer / CrossEncoder folders
    <run>/report/report.md                  the report with its plots
    <run>/config.yaml                       the resolved config, as printed at the start
    <run>/stages/<stage>-<key>.*            a finished distillation round (weights, record) by content key, and
    <run>/stages/<stage>.started            the key of a fit in progress: what resume=<run> continues
    <run>/.exchange/                        teacher scores DDP ranks hand each other (transient)
    <cache>/teachers/<key>/                 trained teachers, by content key
    <cache>/mining/<key>.parquet            teacher-scored shortlists, by content key
    <cache>/evaluation/                     teacher logits and corpus embeddings, by content key
    <cache>/data/                           the unpacked embedded dataset
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FINAL_TEST = "test_final"


def dev_epoch_name(epoch: int, split: str = "dev") -> str:
    """The evaluation name of the per-epoch evaluation after ``epoch`` (numbered across distillation rounds)."""
    return f"{split}_epoch={epoch:03d}"


def round_suffix(round_: int) -> str:
    """Round 1 keeps the plain names (``mining``, ``student``); later rounds add ``_roundN``."""
    return "" if round_ == 1 else f"_round{round_}"


@dataclass(frozen=True)
class RunLayout:
    root: Path
    cache: Path | None = None

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        if self.cache is not None:
            object.__setattr__(self, "cache", Path(self.cache))

    # ---------------------------------------------------------------- the run folder
    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    def trace(self, eval_name: str) -> Path:
        return self.traces / f"{eval_name}.parquet"

    def trace_metrics(self, eval_name: str) -> Path:
        return self.traces / f"{eval_name}.metrics.json"

    def per_query(self, eval_name: str) -> Path:
        return self.traces / "per_query" / f"{eval_name}.parquet"

    def csv_metrics(self, stage: str) -> Path:
        return self.root / "csv" / stage / "metrics.csv"

    def mining(self, round_: int = 1) -> Path:
        return self.root / f"mining{round_suffix(round_)}"

    def trec_run(self, system: str, split: str = "test") -> Path:
        return self.root / "runs" / f"{system}.{split}.trec"

    def checkpoints(self, stage: str) -> Path:
        return self.checkpoint_root / stage

    @property
    def student(self) -> Path:
        return self.root / "student"

    @property
    def teacher(self) -> Path:
        return self.root / "teacher"

    @property
    def report(self) -> Path:
        return self.root / "report" / "report.md"

    @property
    def stages(self) -> Path:
        """What resuming a killed run reads: the stages' records of finished (or started) work."""
        return self.root / "stages"

    @property
    def checkpoint_root(self) -> Path:
        return self.root / "checkpoints"

    def stage_file(self, name: str) -> Path:
        """A stage's own record of its finished (or started) work, for resuming a killed run."""
        return self.stages / name

    @property
    def exchange(self) -> Path:
        """Where DDP ranks leave their teacher scores for each other (emptied at the start of every run)."""
        return self.root / ".exchange"

    # ---------------------------------------------------------------- the shared cache
    def _cache(self) -> Path:
        if self.cache is None:
            raise ValueError("this run layout has no cache folder")
        return self.cache

    def cached_teacher(self, key: str) -> Path:
        return self._cache() / "teachers" / key

    def cached_artifact(self, key: str) -> Path:
        return self._cache() / "mining" / f"{key}.parquet"

    @property
    def evaluation_cache(self) -> Path:
        return self._cache() / "evaluation"

    @property
    def data_cache(self) -> Path:
        return self._cache() / "data"


# What a run folder holds (readers, beside the paths above)
def trace_files(layout: RunLayout) -> dict[str, Path]:
    """Every evaluation's trace, by eval name, sorted by it."""
    return {p.stem: p for p in sorted(layout.traces.glob("*.parquet"))}


def dev_epoch_metrics(layout: RunLayout) -> list[dict]:
    """Per-epoch dev metrics, as the evaluation callback wrote them beside its traces (all rounds)."""
    return [json.loads(p.read_text()) for p in sorted(layout.traces.glob("dev_epoch=*.metrics.json"))]


def has_later_rounds(layout: RunLayout) -> bool:
    return any((layout.root / "csv").glob("student_round*"))
