"""kill -9 during the teacher, mining and distillation; resume=<run dir> finishes with an uninterrupted run's results."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, SUBPROCESS_TIMEOUT, tiny_overrides


def train(overrides: list[str], out, kill_when=None, timeout: float = SUBPROCESS_TIMEOUT) -> int | None:
    """train.py in a process of its own; with ``kill_when`` (a predicate over (run dir, output so far)), SIGKILL it
    as soon as the predicate holds. Returns the exit code (None when killed)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *overrides, f"resume={out}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if kill_when is not None and kill_when(out, "".join(lines)):
            proc.kill()
            proc.wait()
            return None
        time.sleep(0.02)
    proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    reader.join(timeout=5)
    assert kill_when is None, f"the run ended (exit {proc.returncode}) before the kill point:\n{''.join(lines)[-3000:]}"
    assert proc.returncode == 0, "".join(lines)[-3000:]
    return proc.returncode


KILL_POINTS = {
    # after the teacher's first epoch (its last.ckpt exists), while the second runs
    "teacher": lambda out, log: (out / "checkpoints" / "teacher" / "last.ckpt").exists(),
    # as soon as mining starts
    "mining": lambda out, log: "─ mining ─" in log,
    # after the student's first epoch (last.ckpt and the epoch's dev metrics exist), while the second runs
    "student": lambda out, log: (out / "traces" / "dev_epoch=000.metrics.json").exists()
    and (out / "checkpoints" / "student" / "last.ckpt").exists(),
}


@pytest.fixture(scope="module")
def uninterrupted(tiny_bert, tiny_beir, tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    train(settings(tiny_bert, tiny_beir, root), root / "out")
    return json.loads((root / "out" / "results.json").read_text())


def settings(tiny_bert, tiny_beir, root) -> list[str]:
    base = [o for o in tiny_overrides(tiny_bert, tiny_beir, root / "out", root / "cache") if not o.startswith("paths.o")]
    return base + ["teacher_data.epochs=2", "student_data.epochs=2", "logger=none"]


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_killed_run_resumes_to_the_uninterrupted_result(stage, uninterrupted, tiny_bert, tiny_beir, tmp_path):
    out = tmp_path / "out"
    assert train(settings(tiny_bert, tiny_beir, tmp_path), out, kill_when=KILL_POINTS[stage]) is None
    assert not (out / "results.json").exists()
    train(settings(tiny_bert, tiny_beir, tmp_path), out)
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["systems"] == uninterrupted["systems"]
    assert resumed["dev"] == uninterrupted["dev"] and resumed["best_epoch"] == uninterrupted["best_epoch"]
