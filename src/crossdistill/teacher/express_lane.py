"""The express lane as an artifact: what reranks an exported student's top k, saved beside the student and the
cross-encoder as ``<run>/express_lane.json``: its members (the catalog entries, with ``_target_``), the weights the
run chose on dev, how deep it reranks, the folders of the models it reads (relative to the file), the BM25 settings
and text lengths it scored with, and the test figure it reproduced in the run. ``eval.py express_lane=<file>`` and
the serving path (crossdistill.serving) rebuild the same reranker from it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hydra.utils import instantiate

from crossdistill.common.io import write_text_atomic
from crossdistill.teacher.ensemble import TeacherEnsemble

FILE = "express_lane.json"


@dataclass
class ExpressLaneSpec:
    members: dict[str, dict]     # name -> its catalog entry ({_target_, ...})
    weights: dict[str, float]    # a lone cross-encoder with weight 1 keeps its raw logits
    rerank_depth: int
    retrieval_depth: int = 100
    cross_encoder: str = "teacher"   # the CrossEncoder folder, relative to the file
    student: str = "student"         # the SentenceTransformer folder whose top k is reranked
    cross_encoder_max_length: int | None = None
    bm25: dict = field(default_factory=dict)      # the bm25 config group, for a bm25 member
    zero_shot: str | None = None     # the student's starting weights, for a zero_shot member
    normalize: bool = True
    precision: str = "32"
    test: dict = field(default_factory=dict)      # the run's test figures of the express lane

    def ensemble(self) -> TeacherEnsemble:
        """The members with their fixed weights (nothing is chosen again)."""
        catalog = {name: instantiate(entry) for name, entry in self.members.items()}
        return TeacherEnsemble(members=list(self.members), weights=dict(self.weights), catalog=catalog)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / FILE
        write_text_atomic(json.dumps(asdict(self), indent=1), path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ExpressLaneSpec:
        """From the file, or from an exported run folder that holds one."""
        path = Path(path)
        path = path / FILE if path.is_dir() else path
        return cls(**json.loads(path.read_text()))

    def folder(self, path: str | Path, which: str) -> Path:
        """``which`` model's folder (``cross_encoder`` or ``student``) for the spec read from ``path``."""
        path = Path(path)
        return (path if path.is_dir() else path.parent) / getattr(self, which)
