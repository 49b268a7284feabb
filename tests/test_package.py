"""The package runs outside the repository: a non-editable wheel in a fresh venv, its console scripts started
from an empty directory with the same overrides as train.py / eval.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, tiny_overrides


def sh(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


def test_wheel_console_scripts_train_and_evaluate_from_an_empty_directory(tiny_bert, tiny_beir, tmp_path):
    source = tmp_path / "source"   # a copy: building in the checkout would leave build/ behind
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist",
       source)
    wheel = next((tmp_path / "dist").glob("crossdistill-*.whl"))
    # The dependencies come from this interpreter's site-packages; crossdistill itself only from the wheel.
    sh(sys.executable, "-m", "venv", "--system-site-packages", tmp_path / "venv")
    bin_dir = tmp_path / "venv" / "bin"
    sh(bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    empty = tmp_path / "empty"
    empty.mkdir()
    where = sh(bin_dir / "python", "-c", "import crossdistill; print(crossdistill.__file__)", cwd=empty).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "venv")

    out = tmp_path / "train_out"
    overrides = [o for o in tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") if "epochs" not in o]
    sh(bin_dir / "crossdistill-train", *overrides, "student_data.epochs=1", "logger=none", f"hydra.run.dir={out}",
       cwd=empty)
    assert json.loads((out / "results.json").read_text())["systems"]["student"]["ndcg@10"] >= 0
    evaluated = tmp_path / "eval_out"
    sh(bin_dir / "crossdistill-eval", "data=beir", f"data.path={tiny_beir}", "data.dev_size=6",
       f"model={out / 'student'}", f"reranker={out / 'teacher'}", "evaluation.retrieval_depth=20",
       "evaluation.show_progress=false", f"hydra.run.dir={evaluated}", f"paths.cache_dir={tmp_path / 'cache'}",
       cwd=empty)
    systems = json.loads((evaluated / "results.json").read_text())["systems"]
    assert {"bm25", "model", "hybrid", "rerank_model"} <= set(systems)
    assert list(empty.iterdir()) == []   # nothing written where it was started: outputs went where they were told
