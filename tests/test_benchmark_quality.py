"""scripts/benchmark_quality.py: merging variants and rendering the tables (the runs themselves are train.py)."""
from __future__ import annotations

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import benchmark_quality as bq  # noqa: E402


def _variant(command: str, student: float, rounds=None) -> dict:
    systems = {k: {"ndcg@10": 0.5, "mrr@10": 0.4, "recall@10": 0.6, "recall@100": 0.9} for k in bq.SYSTEMS}
    systems["student"] = {"ndcg@10": student, "mrr@10": 0.45, "recall@10": 0.7, "recall@100": 0.93, "lift@3": 0.02}
    return {"command": command, "systems": systems, "stages": {"teacher": {"wall_s": 400.0, "peak_rss_mb": 2000.0}},
            "total_wall_s": 1200.0, "peak_rss_mb": 3000.0, "rounds": rounds or [], "dev_best": 0.6, "dev_init": 0.57}


def test_render_shows_systems_stages_and_deltas_against_the_default():
    rounds = [{"round": 1, "miner": "bm25", "dev": 0.6, "test": {"ndcg@10": 0.64, "mrr@10": 0.6, "recall@100": 0.93,
                                                                 "lift@3": 0.02}},
              {"round": 2, "miner": "hybrid", "dev": 0.61, "test": {"ndcg@10": 0.66, "mrr@10": 0.6,
                                                                    "recall@100": 0.94, "lift@3": 0.01}}]
    bench = {"machine": {"cpu": "X", "cores": 2, "memory_gib": 24, "gpu": None, "torch": "2.13.0"},
             "variants": {"default": _variant("python train.py teacher=minilm", 0.640),
                          "rounds2": _variant("python train.py teacher=minilm rounds.count=2", 0.655, rounds)
                          | {"mining": {"student_agreement": 0.889}}}}
    md = bq.render(bench)
    assert "| distilled student | 0.640 | 0.450 | 0.700 | 0.930 | 0.020 |" in md
    assert "| teacher | 400 | 2000 |" in md
    assert "| rounds2 | `rounds.count=2` | 0.600 | 0.655 | +0.015 |" in md
    assert "| rounds2: round 2 (hybrid shortlists) | | 0.610 | 0.660 |" in md
    # teacher over BM25's and over the student's top-20, student agreement, wall minutes and peak GiB
    assert "| 0.500 | 0.500 | 0.889 | 20.0 | 2.93 |" in md
    assert "| 0.500 | 0.500 | – | 20.0 | 2.93 |" in md      # runs from before the agreement was recorded


def test_write_outputs_replaces_only_the_marked_block(tmp_path):
    (tmp_path / "README.md").write_text("# Notes\nkept above\n\n<!-- quality:start -->\nold\n<!-- quality:end -->\n"
                                        "kept below\n")
    bench = {"machine": {"cpu": "X", "cores": 2, "memory_gib": 24, "torch": "2.13.0"},
             "variants": {"default": _variant("python train.py teacher=minilm", 0.6)}}
    bq.write_outputs(bench, tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# Notes\nkept above") and text.endswith("kept below\n") and "old" not in text
    assert "| distilled student | 0.600 |" in text
    assert json.loads((tmp_path / "quality.json").read_text()) == bench
    assert (tmp_path / "quality.md").read_text().startswith("# Quality benchmark")


def test_a_variant_reruns_in_an_empty_folder_and_keeps_the_last_one_beside_it(tmp_path, monkeypatch):
    """A run folder's finished rounds (stages/) would be loaded, not trained: the rerun's wall time would be void."""
    out = tmp_path / "outputs" / "benchmark_quality" / "v"
    (out / "stages").mkdir(parents=True)
    (out / "stages" / "round1.json").write_text("{}")
    seen = {}

    def fake_run(args, cwd, stdout, stderr):
        seen["contents"] = sorted(p.name for p in out.iterdir())
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(bq, "ROOT", tmp_path)
    monkeypatch.setattr(bq.subprocess, "run", fake_run)
    monkeypatch.setattr(bq, "collect", lambda folder, command: {"folder": folder})
    assert bq.run_variant("v", [], []) == {"folder": out}
    assert seen["contents"] == ["train.log"]   # nothing of the last run where train.py writes
    assert (out.with_name("v.previous") / "stages" / "round1.json").exists()
    bq.run_variant("v", [], [])   # a second rerun replaces the older copy
    assert sorted(p.name for p in out.with_name("v.previous").iterdir()) == ["train.log"]
