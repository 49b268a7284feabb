"""The keep-the-start guard: a teacher no better than the start on dev skips distillation; otherwise dev decides
between the start and the distilled epochs. Either way results.json, the console, the report and the card say why."""
from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer

from conftest import compose, console_text, tiny_overrides
from crossdistill.pipeline.train import run


def _run(tiny_bert, tiny_beir, folder, cache, *extra):
    run(compose([*tiny_overrides(tiny_bert, tiny_beir, folder, cache), "export.onnx=false", *extra]))
    return json.loads((folder / "results.json").read_text())


def test_a_saturated_dev_skips_distillation(tiny_bert, tiny_beir, tmp_path):
    results = _run(tiny_bert, tiny_beir, tmp_path / "run", tmp_path / "cache", "rounds.teacher_must_beat_start=true",
                   "ensemble.saturated=1e-6")   # any start is "saturated" on this dev
    guard, start = results["guard"], results["dev"]["student_init"]["ndcg@10"]
    assert guard["kept"] == "start" and guard["distilled"] is False and results["rounds"] == []
    assert guard["start_dev"] == pytest.approx(start) and f"already scores {start:.4f} on dev" in guard["reason"]
    assert "cannot confirm a gain" in guard["reason"]


def test_a_teacher_no_better_than_the_start_skips_distillation_and_keeps_the_start(tiny_bert, tiny_beir, tmp_path, capsys):
    folder = tmp_path / "run"
    # The teacher is the start's own cosine: on the start's dev shortlists it ranks exactly as the start does.
    results = _run(tiny_bert, tiny_beir, folder, tmp_path / "cache", "rounds.teacher_must_beat_start=true",
                   "ensemble.weights={cross_encoder: 0.0, bm25: 0.0, zero_shot: 1.0}")
    guard = results["guard"]
    assert guard["kept"] == "start" and guard["distilled"] is False
    assert guard["teacher_dev"] == pytest.approx(guard["start_dev_shortlists"], abs=1e-9)
    assert "no better than the start" in guard["reason"] and "rounds.teacher_must_beat_start" in guard["reason"]
    assert guard["distilled_dev"] is None and results["rounds"] == [] and results["best_epoch"] == -1
    assert not any(s.startswith(("mining", "student")) and s != "student_init" for s in results["stages"])
    said = console_text(capsys.readouterr().out)
    assert f"guard: kept the zero-shot start: {guard['reason']}" in said
    # what the run reports and exports is the start
    assert results["systems"]["student"]["ndcg@10"] == pytest.approx(results["systems"]["student_init"]["ndcg@10"])
    start = SentenceTransformer(str(tiny_bert), device="cpu").state_dict()
    exported = SentenceTransformer(str(folder / "student"), device="cpu").state_dict()
    assert all(torch.allclose(exported[k].float(), v.float(), atol=1e-6) for k, v in start.items())
    assert "Guard: kept **the zero-shot start**" in (folder / "report" / "report.md").read_text()
    assert guard["reason"] in (folder / "student" / "README.md").read_text()


def test_the_verdict_names_what_dev_kept(tiny_bert, tiny_beir, tmp_path):
    results = _run(tiny_bert, tiny_beir, tmp_path / "run", tmp_path / "cache")
    guard, dev = results["guard"], results["dev"]
    assert guard["start_dev"] == pytest.approx(dev["student_init"]["ndcg@10"], abs=1e-12)
    assert guard["distilled_dev"] == pytest.approx(max(r["dev"] for r in results["rounds"]), abs=1e-12)
    if results["best_epoch"] < 0:
        assert guard["kept"] == "start" and guard["distilled_dev"] <= guard["start_dev"]
        assert guard["reason"].startswith("no distilled epoch beat the zero-shot start on dev")
    else:
        assert guard["kept"] == "distilled" and guard["distilled_dev"] > guard["start_dev"]
        assert guard["reason"].startswith(f"epoch {results['best_epoch']} beat the zero-shot start on dev")
    assert "teacher_dev" not in guard   # the gate was off (tiny models)
