"""train.py on bad input: one clear message naming file, line and field; exit code 2; nothing half-written."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, SUBPROCESS_TIMEOUT, write_tiny_beir


def run_train(*overrides: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def test_malformed_corpus_line_stops_with_file_line_and_field(tmp_path):
    folder = write_tiny_beir(tmp_path / "bad")
    lines = (folder / "corpus.jsonl").read_text().splitlines()
    lines[6] = json.dumps({"title": "no id here", "text": "x"})
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    result = run_train("data=beir", f"data.path={folder}", "logger=none", f"paths.cache_dir={tmp_path / 'cache'}",
                       f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "corpus.jsonl line 7" in result.stderr and "_id" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_qrels_naming_a_missing_doc_is_reported(tmp_path):
    folder = write_tiny_beir(tmp_path / "bad")
    with open(folder / "qrels" / "test.tsv", "a") as f:
        f.write("q24\tno-such-doc\t1\n")
    result = run_train("data=beir", f"data.path={folder}", "logger=none", f"paths.cache_dir={tmp_path / 'cache'}",
                       f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "test.tsv line 10" in result.stderr and "no-such-doc" in result.stderr
