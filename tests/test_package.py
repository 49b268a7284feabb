"""The package runs outside the repository: a non-editable wheel in a fresh venv, its console scripts started
from an empty directory with the same overrides as train.py / eval.py."""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SUBPROCESS_TIMEOUT, tiny_overrides


def sh(*args, cwd=None, cache_home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    if cache_home is not None:   # the user's cache home, as the console scripts find it
        env.pop("CROSSDISTILL_CACHE", None)
        env["XDG_CACHE_HOME"] = str(cache_home)
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


def fresh_venv_seeing_this_interpreters_packages(folder: Path) -> Path:
    """A new venv whose imports fall back to the packages of the interpreter running the tests.

    ``venv --system-site-packages`` would give the *base* interpreter's packages: run from inside a virtual
    environment (where most users install), that is a bare Python without hydra. A .pth file that adds this
    interpreter's site folders (their own .pth files included) works from a venv and from a bare interpreter."""
    sh(sys.executable, "-m", "venv", folder)
    target = Path(sh(folder / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                  .stdout.strip())
    ours = [p for p in (*site.getsitepackages(), site.getusersitepackages()) if Path(p).is_dir()]
    (target / "_parent_site_packages.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    return folder / "bin"


def test_wheel_console_scripts_train_and_evaluate_from_an_empty_directory(tiny_bert, tiny_beir, tmp_path):
    source = tmp_path / "source"   # a copy: building in the checkout would leave build/ behind
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist",
       source)
    wheel = next((tmp_path / "dist").glob("crossdistill-*.whl"))
    # The dependencies come from this interpreter's site-packages; crossdistill itself only from the wheel.
    bin_dir = fresh_venv_seeing_this_interpreters_packages(tmp_path / "venv")
    sh(bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    empty = tmp_path / "empty"
    empty.mkdir()
    where = sh(bin_dir / "python", "-c", "import crossdistill; print(crossdistill.__file__)", cwd=empty).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "venv")

    # As a user types them: no run folder or cache given (the cache goes where the user's environment says).
    overrides = [o for o in tiny_overrides(tiny_bert, tiny_beir, tmp_path, tmp_path)
                 if "epochs" not in o and not o.startswith("paths.")]
    sh(bin_dir / "crossdistill-train", *overrides, "student_data.epochs=1", "logger=none", cwd=empty,
       cache_home=tmp_path / "user-cache")
    (out,) = (empty / "outputs").glob("*/*")   # outputs/<date>/<time>/
    assert json.loads((out / "results.json").read_text())["systems"]["student"]["ndcg@10"] >= 0
    assert (tmp_path / "user-cache" / "crossdistill" / "teachers").is_dir()   # $XDG_CACHE_HOME/crossdistill
    sh(bin_dir / "crossdistill-eval", "data=beir", f"data.path={tiny_beir}", f"model={out / 'student'}",
       f"reranker={out / 'teacher'}", "evaluation.retrieval_depth=20", "evaluation.show_progress=false", cwd=empty,
       cache_home=tmp_path / "user-cache")
    (evaluated,) = set((empty / "outputs").glob("*/*")) - {out}
    systems = json.loads((evaluated / "results.json").read_text())["systems"]
    assert {"bm25", "model", "hybrid", "rerank_model"} <= set(systems)
    # the wheel's tools too
    shown = sh(bin_dir / "crossdistill", "explain", out, "q24", cwd=empty, cache_home=tmp_path / "user-cache").stdout
    assert "q24" in shown and "d24" in shown
    assert [p.name for p in empty.iterdir()] == ["outputs"]   # nothing else written where it was started
