"""crossdistill interpolate: the distilled student merged in weight space with its zero-shot start."""
from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer

from conftest import compose, tiny_overrides
from crossdistill.commands import interpolate as interp
from crossdistill.pipeline.train import run


def test_interpolation_is_the_weighted_sum_of_float_tensors_and_keeps_the_rest():
    start = {"w": torch.tensor([0.0, 2.0]), "ids": torch.tensor([1, 2])}
    tuned = {"w": torch.tensor([4.0, 6.0]), "ids": torch.tensor([1, 2])}
    merged = interp.interpolate(start, tuned, 0.25)
    assert torch.equal(merged["w"], torch.tensor([1.0, 3.0])) and torch.equal(merged["ids"], tuned["ids"])
    with pytest.raises(ValueError, match="differ"):
        interp.interpolate({"w": start["w"]}, tuned, 0.5)


def test_the_ends_are_the_zero_shot_start_and_the_distilled_student(tiny_bert, tiny_beir, tmp_path):
    out = tmp_path / "run"
    run(compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + ["student_data.epochs=1"]))
    results = json.loads((out / "results.json").read_text())
    res = interp.measure(out, [0.0, 1.0], tmp_path / "merged")
    # alpha 1 is what the run exported, alpha 0 its zero-shot start: the run's own test figures, over the same corpus
    assert res["alphas"]["1"]["test"]["ndcg@10"] == pytest.approx(results["systems"]["student"]["ndcg@10"], abs=1e-6)
    assert res["alphas"]["0"]["test"]["ndcg@10"] == pytest.approx(results["systems"]["student_init"]["ndcg@10"],
                                                                   abs=1e-6)
    assert res["alphas"]["0"]["dev"]["ndcg@10"] == pytest.approx(results["dev"]["student_init"]["ndcg@10"], abs=1e-6)
    # the saved merge loads as it is and holds the start's weights at alpha 0
    saved = SentenceTransformer(str(tmp_path / "merged" / "alpha=0"), device="cpu").state_dict()
    start = SentenceTransformer(str(tiny_bert), device="cpu").state_dict()
    assert all(torch.allclose(saved[k].float(), start[k].float()) for k in start)


def test_a_folder_that_is_not_a_finished_run_is_named(tmp_path, capsys):
    assert interp.main([str(tmp_path)]) == 1
    assert "results.json" in capsys.readouterr().err
