"""Save trained modules in the formats users load: ``SentenceTransformer(path)`` and ``CrossEncoder(path)``.

Saving goes through sentence-transformers' own ``save`` so the folder layout and configs are exactly what its
loaders expect; nothing here writes those JSON files by hand.
"""
from __future__ import annotations

from pathlib import Path

import torch

from crossdistill.common.io import write_text_atomic
from crossdistill.model_card import export_card
from crossdistill.student.module import BiEncoderStudent
from crossdistill.teacher.module import CrossEncoderTeacher


def export_student(student: BiEncoderStudent, path: str | Path) -> Path:
    student.encoder.max_seq_length = student.hparams.eval_max_doc_length
    student.encoder.save(str(path), create_model_card=False)
    return _own_card(path, "student", student.hparams.model)


def export_teacher(teacher: CrossEncoderTeacher, path: str | Path) -> Path:
    teacher.model.save(str(path), create_model_card=False)
    return _own_card(path, "teacher", teacher.hparams.model)


def _own_card(path: str | Path, kind: str, base_model: str) -> Path:
    """Our interim card in place of the base model's, which sentence-transformers would copy (and which a folder
    exported into before may still hold); a finished run's report replaces it (crossdistill.model_card)."""
    write_text_atomic(export_card(kind, base_model), Path(path) / "README.md")
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
