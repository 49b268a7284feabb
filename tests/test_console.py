"""What a run shows: the composed config once, one line per stage, the results table; no library banner, tip, load
report or deprecation notice a user cannot act on (verbose=true brings them back; the log file keeps them)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

from conftest import ROOT, SUBPROCESS_TIMEOUT, tiny_overrides
from crossdistill.console import quiet_third_party

NOISE = ("GPU available", "TPU available", "Tip:", "LOAD REPORT", "Seed set", "LeafSpec", "DeprecationWarning",
         "[bm25s]", "fontManager", "Building index", "litlogger")


def test_a_run_console_shows_the_config_and_its_stages_and_no_library_noise(tiny_bert, tiny_beir, tmp_path):
    out = tmp_path / "run"
    overrides = [o for o in tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") if "epochs" not in o]
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides, "student_data.epochs=1", "logger=none",
                           f"hydra.run.dir={out}"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-3000:]
    console = done.stdout + done.stderr
    assert [n for n in NOISE if n in console] == []
    assert console.count("config") >= 1 and "keep_checkpoints: false" in console   # the config tree, once
    for stage in ("data", "teacher", "mining", "student", "test", "export", "report"):
        assert f"{stage}: " in console and "peak RSS" in console
    assert (out / "config.yaml").read_text().startswith("data:")
    assert "Seed set" in (out / "train.log").read_text()   # the log file keeps the library's INFO lines


def test_quiet_keeps_warnings_of_the_run_and_verbose_changes_nothing():
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        quiet_third_party(verbose=True)
        assert handler.level == logging.INFO
        with warnings.catch_warnings():
            quiet_third_party(verbose=False)
            assert handler.level == logging.WARNING
            banner = logging.LogRecord("pytorch_lightning.utilities.rank_zero", logging.INFO, "", 0, "GPU", None, None)
            ours = logging.LogRecord("crossdistill.pipeline", logging.WARNING, "", 0, "a warning", None, None)
            failure = logging.LogRecord("sentence_transformers", logging.ERROR, "", 0, "an error", None, None)
            assert [handler.filter(r) for r in (banner, ours, failure)] == [False, True, True]
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("default", UserWarning)   # a warning of the run's own stays visible
                warnings.warn("deprecated inside a library", DeprecationWarning)
                warnings.warn("the run's own warning", UserWarning)
            assert [str(w.message) for w in seen] == ["the run's own warning"]
    finally:
        root.removeHandler(handler)
