"""Save trained modules in the formats users load: ``SentenceTransformer(path)`` and ``CrossEncoder(path)``.

Saving goes through sentence-transformers' own ``save`` so the folder layout and configs are exactly what its
loaders expect; nothing here writes those JSON files by hand.
"""
from __future__ import annotations

from pathlib import Path

import torch

from crossdistill.student.module import BiEncoderStudent
from crossdistill.teacher.module import CrossEncoderTeacher


def export_student(student: BiEncoderStudent, path: str | Path) -> Path:
    student.encoder.max_seq_length = student.hparams.eval_max_doc_length
    student.encoder.save(str(path))
    return Path(path)


def export_teacher(teacher: CrossEncoderTeacher, path: str | Path) -> Path:
    teacher.model.save(str(path))
    return Path(path)


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> tuple[str, Path]:
    """Export any Lightning checkpoint of either stage; the kind is read from its parameter names.

    Loaded with ``weights_only=True``: a checkpoint a user is handed is never unpickled as code."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    keys = state["state_dict"].keys()
    if any(k.startswith("encoder.") for k in keys):
        module = BiEncoderStudent.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
        return "student", export_student(module, out)
    if any(k.startswith("model.") for k in keys):
        module = CrossEncoderTeacher.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
        return "teacher", export_teacher(module, out)
    raise ValueError(f"{checkpoint}: not a crossdistill student or teacher checkpoint")
