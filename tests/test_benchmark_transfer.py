"""scripts/benchmark_transfer.py: a run's transfer record and label-free runs rendered, each target judged."""
from __future__ import annotations

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import benchmark_transfer as bt  # noqa: E402


def _m(ndcg: float) -> dict:
    return {"ndcg@10": ndcg, "mrr@10": ndcg, "recall@10": 0.5, "recall@100": 0.9}


def test_the_transfer_table_judges_forgetting_per_collection(tmp_path):
    run, free = tmp_path / "run", tmp_path / "free"
    run.mkdir()
    free.mkdir()
    (run / "results.json").write_text(json.dumps({
        "dataset": "scifact", "systems": {"bm25": _m(0.68), "student_init": _m(0.65), "student": _m(0.74),
                                          "teacher_rerank_student": _m(0.77)},   # an old file's names are read too
        "transfer": {"cacm": {"systems": {"bm25": _m(0.49), "student_init": _m(0.41), "student": _m(0.43)}},
                     "med": {"systems": {"bm25": _m(0.70), "student_init": _m(0.79), "student": _m(0.75)}}}}))
    (free / "results.json").write_text(json.dumps({
        "dataset": "cacm", "best_epoch": -1, "total_wall_s": 600, "peak_rss_mb": 2048, "pseudo_queries": "auto -> title",
        "guard": {"kept": "start", "reason": "the zero-shot start already scores 0.9800 on dev"},
        "systems": {"bm25": _m(0.49), "student_init": _m(0.41), "student": _m(0.41), "hybrid_zero_shot": _m(0.45)}}))
    assert bt.main([str(run), "--label-free", f"cacm={free}", "--out", str(tmp_path / "bench")]) == 0
    md = (tmp_path / "bench" / "transfer.md").read_text()
    assert "| cacm | 0.490 / 0.900 | 0.410 / 0.900 | 0.430 / 0.900 | +0.020 | met |" in md
    assert "| med | 0.700 / 0.900 | 0.790 / 0.900 | 0.750 / 0.900 | -0.040 | not met |" in md
    assert "| cacm | 0.490 | 0.410 | 0.450 | 0.410 | +0.000 | met | start | 10.0 / 2.00 |" in md
    assert "Mean Δ +0.000 (target >= +0.020: not met); every collection >= zero-shot: met" in md
    assert "- cacm (auto -> title): the zero-shot start already scores 0.9800 on dev." in md
    bench = json.loads((tmp_path / "bench" / "transfer.json").read_text())
    assert bench["collections"]["scifact"]["express_lane"]["ndcg@10"] == 0.77


def test_the_interpolation_table_marks_the_rules_alpha_and_forgetting():
    rows = {a: {"scifact_dev": _m(dev), "scifact_test": _m(test), "cacm": _m(c), "med": _m(m)}
            for a, dev, test, c, m in (("0", 0.60, 0.65, 0.41, 0.79), ("0.5", 0.69, 0.72, 0.42, 0.79),
                                       ("1", 0.70, 0.74, 0.43, 0.75))}
    bench = {"machine": {"cpu": "X", "cores": 2, "memory_gib": 24, "gpu": None}, "run": "r", "collections": {},
             "label_free": {}, "interpolation": {"alphas": rows, "tolerance": 0.01, "rule_keeps": 0.5,
                                                 "collections": ["cacm", "med"]}}
    md = bt.render(bench)
    assert "keeps alpha **0.5**" in md
    assert "| 0.5 | 0.690 | 0.720 | 0.420 | 0.790 | met |" in md
    assert "| 1 | 0.700 | 0.740 | 0.430 | 0.750 | not met |" in md


def test_variants_sit_beside_the_run_with_their_overrides_deltas_and_cost(tmp_path):
    def write_run(folder, student, cacm, wall_s, overrides=None):
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({
            "dataset": "scifact", "dev": {"best": student - 0.05}, "total_wall_s": wall_s, "peak_rss_mb": 3072,
            "stages": {"student_init": {"wall_s": 60}, "student": {"wall_s": 600}, "student_round2": {"wall_s": 300}},
            "systems": {"bm25": _m(0.68), "student_init": _m(0.65), "student": _m(student)},
            "transfer": {"cacm": {"systems": {"bm25": _m(0.49), "student_init": _m(0.41), "student": _m(cacm)}}}}))
        if overrides:
            (folder / ".hydra").mkdir()
            (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        return folder

    run = write_run(tmp_path / "run", 0.74, 0.40, 1800)
    frozen = write_run(tmp_path / "frozen", 0.73, 0.42, 1500, ["teacher=minilm", "student.frozen_layers=2",
                                                              "evaluation.transfer=[a,b]"])
    out = tmp_path / "bench"
    assert bt.main([str(run), "--variant", f"frozen={frozen}", "--out", str(out)]) == 0
    md = (out / "transfer.md").read_text()
    assert "| default | - | 0.690 | 0.740 / 0.900 | 0.400 (-0.010) | not met | 15.0 / 30.0 / 3.00 |" in md
    assert "| frozen | `student.frozen_layers=2` | 0.680 | 0.730 / 0.900 | 0.420 (+0.010) | met | 15.0 / 25.0 / 3.00 |" in md
    # rendering the run again without --variant keeps the variants measured beside it
    assert bt.main([str(run), "--out", str(out)]) == 0
    assert "| frozen |" in (out / "transfer.md").read_text()
