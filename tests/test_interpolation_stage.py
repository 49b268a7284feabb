"""The forgetting guard (``interpolation``): the kept student averaged with its zero-shot start, alpha chosen on dev."""
from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer

from conftest import compose, tiny_overrides
from crossdistill.pipeline.train import run
from crossdistill.student.interpolation import choose_alpha, interpolate


def test_the_rule_keeps_the_smallest_alpha_within_the_tolerance_of_the_best():
    dev = {0.0: 0.60, 0.5: 0.695, 0.75: 0.702, 1.0: 0.70}
    assert choose_alpha(dev, 0.005) == 0.75      # 0.5 is 0.007 below the best (0.702): too far
    assert choose_alpha(dev, 0.01) == 0.5
    assert choose_alpha(dev, 0.0) == 0.75
    assert choose_alpha(dev, 1.0) == 0.0
    assert choose_alpha({0.5: 0.7, 1.0: 0.7}, 0.0) == 0.5   # a tie goes to the start's side


def test_interpolate_is_the_weighted_average_of_floating_weights():
    start = {"w": torch.tensor([0.0, 2.0]), "ids": torch.tensor([1, 2])}
    tuned = {"w": torch.tensor([4.0, 6.0]), "ids": torch.tensor([3, 4])}
    merged = interpolate(start, tuned, 0.25)
    assert torch.equal(merged["w"], torch.tensor([1.0, 3.0])) and torch.equal(merged["ids"], tuned["ids"])


@pytest.fixture(scope="module")
def runs(tiny_bert, tiny_beir, tmp_path_factory):
    out = {}
    for name, extra in (("to_start", ["interpolation.alphas=[0,0.5,1]", "interpolation.tolerance=1.0"]),
                        ("off", [])):
        folder = tmp_path_factory.mktemp(name)
        run(compose([*tiny_overrides(tiny_bert, tiny_beir, folder, tmp_path_factory.mktemp("cache")),
                     "export.onnx=false", "rounds.keep_zero_shot=false", *extra]))
        out[name] = (folder, json.loads((folder / "results.json").read_text()))
    return out


def test_a_tolerance_that_admits_alpha_0_keeps_the_start_itself(runs, tiny_bert):
    folder, results = runs["to_start"]
    record = results["interpolation"]
    assert set(record["alphas"]) == {"0", "0.5", "1"} and record["chosen"] == 0.0
    assert record["dev_trace"] == "dev_alpha0" and "smallest within 1" in record["reason"]
    # alpha 0's dev is the start's dev; alpha 1's is the kept epoch's
    assert record["alphas"]["0"] == pytest.approx(results["dev"]["student_init"]["ndcg@10"], abs=1e-9)
    assert results["dev"]["best"] == record["alphas"]["0"]   # what the run kept
    # the express lane for the test was chosen on the kept student's dev shortlists, not the epoch's
    assert results["teacher"]["express_lane"]["shortlists"] == "dev_alpha0"
    assert (folder / "traces" / "dev_alpha0.parquet").exists() and (folder / "traces" / "dev_alpha0.5.parquet").exists()
    # the test, the export: the start's weights and figures
    start = SentenceTransformer(str(tiny_bert), device="cpu").state_dict()
    exported = SentenceTransformer(str(folder / "student"), device="cpu").state_dict()
    for k, v in start.items():
        assert torch.allclose(exported[k].float(), v.float(), atol=1e-6), k
    assert results["systems"]["student"]["ndcg@10"] == pytest.approx(results["systems"]["student_init"]["ndcg@10"])


def test_off_by_default_the_run_keeps_its_distilled_epoch(runs):
    _, results = runs["off"]
    assert "interpolation" not in results and "interpolation" not in results["stages"]


def test_the_report_and_the_model_card_state_the_choice(runs):
    folder, _ = runs["to_start"]
    line = "kept alpha **0**: alpha 0 is the smallest within 1 of the best dev ndcg@10"
    assert line in (folder / "report" / "report.md").read_text()
    assert line in (folder / "student" / "README.md").read_text()
