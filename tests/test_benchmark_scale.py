"""The scale benchmark's script, at a toy size: synthetic BEIR data with planted relevant passages, runs, tables."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SUBPROCESS_TIMEOUT

sys.path.insert(0, str(ROOT / "scripts"))
import benchmark_scale  # noqa: E402


def test_synthetic_corpus_plants_each_query_in_its_relevant_passage(tmp_path):
    folder = benchmark_scale.write_corpus(tmp_path / "beir", n_docs=200, n_train=30, n_test=10)
    docs = {d["_id"]: d for d in map(json.loads, (folder / "corpus.jsonl").read_text().splitlines())}
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").read_text().splitlines())}
    assert len(docs) == 200 and len(queries) == 40
    for split, n in (("train", 30), ("test", 10)):
        rows = (folder / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]
        assert len(rows) == n
        for row in rows:
            qid, docid, grade = row.split("\t")
            body = docs[docid]["text"].split()
            assert grade == "1" and sum(w in body for w in queries[qid].split()[:4]) == 4   # 4 words from the body
            assert benchmark_scale.PASSAGE_WORDS[0] <= len(body) < benchmark_scale.PASSAGE_WORDS[1]


def test_growth_exponent_is_the_log_ratio_of_times_over_the_log_ratio_of_sizes():
    small = {"docs": 10_000, "stages": {"bm25": {"wall_s": 2.0}, "mining": {"wall_s": 5.0}}}
    large = {"docs": 100_000, "stages": {"bm25": {"wall_s": 20.0}, "mining": {"wall_s": 500.0}}}
    assert benchmark_scale.exponents(small, large) == pytest.approx({"bm25": 1.0, "mining": 2.0})


def test_two_sizes_run_end_to_end_and_give_growth_exponents(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark_scale.py"), "--sizes", "150,300",
                           "--train-queries", "40", "--test-queries", "10", "--work", str(tmp_path / "work"),
                           "--bench-dir", str(bench), "teacher_data.pseudo_queries=10"],
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((bench / "scale.json").read_text())
    assert set(result["sizes"]) == {"150", "300"}
    small, large = result["sizes"]["150"], result["sizes"]["300"]
    assert {"data", "bm25", "teacher", "mining", "student", "test"} <= set(small["stages"])
    assert small["docs"] == 150 and large["evaluation"]["epoch_corpus"] == "sample"
    assert 0.0 <= large["student_ndcg@10"] <= 1.0 and large["mined_pairs"] > 0
    table = (bench / "scale.md").read_text()
    assert "| bm25 |" in table and "300 docs" in table


def test_msmarco_on_paper_counts_only_the_pairs_round_two_sends_to_the_teacher():
    from benchmark_scale import MSMARCO, msmarco_on_paper

    stages = {s: {"wall_s": 10.0, "peak_rss_mb": 100.0} for s in ("data", "bm25", "zero_shot", "student")}
    bench = {"sizes": {"1000": {"docs": 1000, "stages": stages, "peak_rss_mb": 100.0}}, "mining": {}}
    teachers = {"bodies": {"minilm@128": {"inference_pairs_per_s": 100.0, "train_pairs_per_s": 20.0}}}
    mined = {"shortlisted": 2000, "queries": 100, "pairs": 400}
    run = {"stages": stages, "mining": mined,
           "rounds": [{"round": 1}, {"round": 2, "shortlisted": 2000, "teacher_scored": 500}]}

    def mining_row(default_run):
        return next(line for line in msmarco_on_paper(bench, teachers, default_run) if line.startswith("| mining"))

    pairs = 20 * MSMARCO["train_queries"]   # 20 pairs a query in round 1
    assert f"{1.25 * pairs:,.0f} pairs" in mining_row(run) and "25% of its shortlists" in mining_row(run)
    assert f"| {1.25 * pairs / 100 / 3600:,.1f} |" in mining_row(run)
    # a run recorded before round 2 kept round 1's scores: both rounds scored in full
    assert f"{2 * pairs:,.0f} pairs" in mining_row({"stages": stages, "mining": mined})
