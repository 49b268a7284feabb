"""write_report / explain / the two scripts on a small fake run directory."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from crossdistill.evaluation.explain import explain
from crossdistill.evaluation.report import write_report
from crossdistill.evaluation.trace import build_trace, write_trace
from crossdistill.retrieval.fusion import Candidate

ROOT = Path(__file__).resolve().parents[1]
QIDS = ["q1", "q2", "q3", "q4", "q5", "q6"]
QUERIES = {q: f"query text number {q[1]} about topic {q}" for q in QIDS}
QRELS = {q: {f"{q}_rel": 1} for q in QIDS}
QRELS["q3"]["q3_rel2"] = 2  # never retrieved by anyone: shows up as an out-of-shortlist row
# where the relevant doc sits in the student's ranking before / after distillation:
# q1 is helped most (15 -> 1), q2 hurt most (1 -> 12), q4 improves a little (5 -> 4)
INIT = {"q1": 15, "q2": 1, "q3": 2, "q4": 5, "q5": 3, "q6": 2}
FINAL = {"q1": 1, "q2": 12, "q3": 2, "q4": 4, "q5": 3, "q6": 2}


def ranking(placed: dict[str, int], depth: int = 20) -> list[tuple[str, float]]:
    docs = [None] * depth
    for d, r in placed.items():
        docs[r - 1] = d
    fill = iter(f"n{i}" for i in range(depth))
    return [(d or next(fill), float(depth - i)) for i, d in enumerate(docs)]


def trace(eval_name: str, split: str, epoch: int, ranks: dict[str, int], init: dict[str, int] | None):
    run = {q: ranking({f"{q}_rel": r}) for q, r in ranks.items()}
    init_run = {q: ranking({f"{q}_rel": r}) for q, r in init.items()} if init else None
    shortlists = {q: [Candidate(d, "dense" if i % 2 else "both", i, s, None, i)
                      for i, (d, s) in enumerate(hits[:5], start=1)] for q, hits in run.items()}
    # the teacher puts relevant docs first and otherwise keeps the shortlist order
    teacher = {(q, c.docid): (10.0 if QRELS[q].get(c.docid) else -c.rank) for q, cs in shortlists.items() for c in cs}
    return build_trace(eval_name=eval_name, split=split, epoch=epoch, queries=QUERIES, shortlists=shortlists,
                       express_lane_scores=teacher, qrels=QRELS, student_run=run, student_init_run=init_run)


def make_run_dir(root: Path, full: bool = True) -> Path:
    t = root / "traces"
    write_trace(trace("dev_epoch=000", "dev", 0, INIT, INIT), t / "dev_epoch=000.parquet")
    write_trace(trace("dev_epoch=001", "dev", 1, FINAL, INIT), t / "dev_epoch=001.parquet")
    write_trace(trace("test_init", "test", -1, INIT, None), t / "test_init.parquet")
    # the minimal run dir has no init ranks in test_final: the report must fall back to test_init
    write_trace(trace("test_final", "test", 1, FINAL, INIT if full else None), t / "test_final.parquet")
    if full:
        (root / "csv" / "student").mkdir(parents=True)
        pd.DataFrame([
            {"epoch": 0, "step": 9, "train/loss": 0.9},
            {"epoch": 0, "step": 9, "dev/ndcg@10": 0.41, "dev/mrr@10": 0.38, "dev/recall@100": 0.8, "dev/lift@3": 0.05,
             "dev/p@3_student": 0.2, "dev/p@3_reranked": 0.25},
            {"epoch": 1, "step": 19, "train/loss": 0.5},
            {"epoch": 1, "step": 19, "dev/ndcg@10": 0.47, "dev/mrr@10": 0.44, "dev/recall@100": 0.85,
             "dev/lift@3": 0.02, "dev/p@3_student": 0.24, "dev/p@3_reranked": 0.26},
        ]).to_csv(root / "csv" / "student" / "metrics.csv", index=False)
        (root / "results.json").write_text(json.dumps({
            "dataset": "scifact", "split": "test", "best_epoch": 1,
            "systems": {"bm25": {"ndcg@10": 0.66, "mrr@10": 0.62, "recall@100": 0.9},
                        "student_final": {"ndcg@10": 0.61, "mrr@10": 0.58, "recall@100": 0.88}},
            "stages": {"distill": {"wall_s": 120.5, "peak_rss_mb": 2048.0}}}))
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp("run"))


def load_script(name: str):
    return importlib.import_module(f"crossdistill.commands.{name}")


def test_write_report_full(run_dir):
    out = write_report(run_dir)
    assert out == run_dir / "report" / "report.md"
    text = out.read_text()
    for png in ("epochs.png", "taxonomy.png", "slices.png"):
        assert (out.parent / png).stat().st_size > 1000
        assert f"]({png})" in text  # relative link, report stays self-contained
    for s in ("## Results", "student_final", "scifact", "2048", "Source: metrics.csv", "dev/lift@3",
              "## Failure taxonomy", "dev_epoch=000", "test_init", "lift@3 by slice (test_final)",
              "query_len=", "origin=", "n_relevant=1"):
        assert s in text, s
    helped, hurt = text.split("### Helped most")[1].split("### Hurt most")
    assert "| q1 |" in helped and QUERIES["q1"] in helped and "| q2 |" not in helped
    assert "| q4 |" in helped  # 1/log2(6) -> 1/log2(5)
    assert "| q2 |" in hurt and QUERIES["q2"] in hurt and "| q1 |" not in hurt
    assert helped.index("| q1 |") < helped.index("| q4 |")  # largest improvement first


def test_write_report_minimal_run_dir(tmp_path):
    run = make_run_dir(tmp_path / "run", full=False)
    out = write_report(run, out=tmp_path / "elsewhere" / "r.md")
    text = out.read_text()
    assert "## Results" not in text and "Source: dev traces" in text
    assert (tmp_path / "elsewhere" / "epochs.png").exists()
    assert "| q1 |" in text.split("### Helped most")[1]  # init ranks taken from test_init


def test_report_without_traces(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no traces"):
        write_report(tmp_path)
    assert load_script("report").main([str(tmp_path)]) == 1
    assert "no traces" in capsys.readouterr().err


def test_report_script(run_dir, tmp_path, capsys):
    assert load_script("report").main([str(run_dir), "--out", str(tmp_path / "x.md")]) == 0
    assert (tmp_path / "x.md").exists() and "x.md" in capsys.readouterr().out


def record(run_dir, qid, eval_name=None) -> str:
    console = Console(record=True, width=250)
    explain(run_dir, qid, eval_name, console=console)
    return console.export_text()


def test_explain_shows_candidates(run_dir):
    text = record(run_dir, "q3")  # default eval: test_final
    assert "test_final" in text and QUERIES["q3"] in text
    # teacher order: the relevant doc first, then n0, n1, n2, n3; the unretrieved q3_rel2 last
    order = [text.index(d) for d in ("q3_rel ", "n0", "n1", "n2", "n3", "q3_rel2")]
    assert order == sorted(order)
    assert "not shortlisted" in text and "dense" in text and "both" in text
    assert "2 relevant" in text and "1 not shortlisted" in text


def test_explain_other_eval(run_dir):
    text = record(run_dir, "q1", "dev_epoch=000")
    assert "dev_epoch=000" in text and "q1_rel" in text and "not shortlisted" in text  # rank 15 > 5


def test_explain_clear_messages(run_dir, tmp_path, capsys):
    text = record(run_dir, "nope")
    assert "'nope' not in trace 'test_final'" in text and "Traceback" not in text
    assert "no trace named 'dev_epoch=009'" in record(run_dir, "q1", "dev_epoch=009")
    assert "no traces found" in record(tmp_path, "q1")
    script = load_script("explain")
    assert script.main([str(run_dir), "nope"]) == 1
    assert "not in trace" in capsys.readouterr().err
    assert script.main([str(run_dir), "q2", "--eval", "test_init"]) == 0
