"""Caches that heal, loggers that finish, runs that repeat: the tiny pipeline under faults a real run meets."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import compose, tiny_overrides
from crossdistill.common.io import atomic_path, remove_orphans
from crossdistill.pipeline.train import run


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_orphans_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    orphan = tmp_path / "mining" / f".abc.parquet.{dead_pid}.x1y2z3.tmp"
    orphan.parent.mkdir()
    orphan.write_text("half")
    orphan_dir = tmp_path / f".teacher.{dead_pid}.q9.tmp"
    orphan_dir.mkdir()
    live = tmp_path / f".other.parquet.{os.getppid()}.k7.tmp"   # a live process is still writing this one
    live.write_text("busy")
    keep = tmp_path / "abc.parquet"
    keep.write_text("whole")
    assert sorted(remove_orphans(tmp_path)) == sorted([orphan, orphan_dir])
    assert live.exists() and keep.exists() and not orphan.exists() and not orphan_dir.exists()
    with atomic_path(tmp_path / "new.txt") as tmp:   # what atomic writes name their temporaries
        assert f".new.txt.{os.getpid()}." in tmp.name and tmp.name.endswith(".tmp")
        tmp.write_text("x")


def test_a_truncated_artifact_is_moved_aside_and_rebuilt_and_runs_repeat_exactly(tiny_bert, tiny_beir, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    run(compose(tiny_overrides(tiny_bert, tiny_beir, first, tmp_path / "cache") + ["student_data.epochs=1"]))
    artifact = next((tmp_path / "cache" / "mining").glob("*.parquet"))
    digest = sha256(artifact)
    artifact.write_bytes(artifact.read_bytes()[:100])   # truncated under its final name (a crash outside our writes)
    with pytest.warns(UserWarning, match="cannot be read"):
        run(compose(tiny_overrides(tiny_bert, tiny_beir, second, tmp_path / "cache") + ["student_data.epochs=1"]))
    results = [json.loads((d / "results.json").read_text()) for d in (first, second)]
    assert results[1]["mining"]["reused"] is False and list(artifact.parent.glob("*.corrupt-*"))
    # Same seed, same machine: the rebuilt artifact is byte-identical, and so is every metric.
    assert sha256(artifact) == digest
    assert results[0]["systems"] == results[1]["systems"] and results[0]["dev"] == results[1]["dev"]


def test_a_corrupt_cached_teacher_is_retrained(tiny_bert, tiny_beir, tmp_path):
    overrides = ["student_data.epochs=1"]
    run(compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path / "a", tmp_path / "cache") + overrides))
    cached = next((tmp_path / "cache" / "teachers").iterdir())
    weights = next(cached.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:64])
    run(compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path / "b", tmp_path / "cache") + overrides))
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert "cached" not in again["teacher"]   # trained again, not trusted
    assert list((tmp_path / "cache" / "teachers").glob("*.corrupt-*")) and (cached / "config.json").exists()


def test_wandb_logs_one_finished_run_per_stage_and_the_results(tiny_bert, tiny_beir, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    run(compose(tiny_overrides(tiny_bert, tiny_beir, tmp_path, tmp_path / "cache") + [
        "logger=wandb", "student_data.epochs=1"]))
    assert wandb.run is None   # nothing left open for the next stage (or the next run) to log into
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 3   # teacher, student, results


def test_atomic_writes_give_files_and_folders_the_users_usual_mode(tmp_path):
    """mkstemp / mkdtemp make private temporaries; what they become (results.json, a model card, a cached teacher)
    gets the mode a plain write would give it under the user's umask."""
    import os

    from crossdistill.common.io import atomic_dir, write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic("{}", tmp_path / "results.json")
        with atomic_dir(tmp_path / "teacher") as folder:
            (folder / "config.json").write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "teacher").stat().st_mode & 0o777 == 0o755
