"""results.json's names, one per concept: ``express_lane`` (evaluation's reranker over the student's top k),
``teacher_over_student`` / ``teacher_over_bm25`` (the teacher, what scored the mined pairs, over the same top k /
BM25's) and ``teacher.express_lane`` (its choice). Files written before 2026-12-06 used other names: a new file keeps
them as aliases for one release (listed under ``renamed``, so tables skip them), and readers map an old file's to the
new ones."""
from __future__ import annotations

SYSTEMS = {"teacher_rerank": "teacher_over_bm25", "teacher_rerank_student": "express_lane",
           "distill_teacher_rerank_student": "teacher_over_student"}
METRICS = {"taxonomy/fixed_by_teacher": "taxonomy/fixed_by_express_lane",
           "taxonomy/broken_by_teacher": "taxonomy/broken_by_express_lane"}
TEACHER = {"reranker": "express_lane"}


def with_aliases(results: dict) -> dict:
    """``results`` (new names) with each renamed key also under its old name, and ``renamed``: old -> new."""
    out = dict(results)
    for key, renamed in (("systems", SYSTEMS), ("test_final", METRICS), ("teacher", TEACHER)):
        section = out.get(key)
        if isinstance(section, dict):
            out[key] = {**section, **{old: section[new] for old, new in renamed.items() if new in section}}
    out["renamed"] = {f"{key}.{old}": f"{key}.{new}" for key, renamed in
                      (("systems", SYSTEMS), ("test_final", METRICS), ("teacher", TEACHER)) for old, new in renamed.items()
                      if isinstance(out.get(key), dict) and new in out[key]}
    return out


def current_names(results: dict) -> dict:
    """A results.json record as the new names say: an old file's keys renamed, a new file's aliases dropped."""
    out = dict(results)
    for key, renamed in (("systems", SYSTEMS), ("test_final", METRICS), ("teacher", TEACHER)):
        section = out.get(key)
        if isinstance(section, dict):
            out[key] = {renamed.get(k, k): v for k, v in section.items() if not (k in renamed and renamed[k] in section)}
    out.pop("renamed", None)
    return out
