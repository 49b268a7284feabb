"""The default dataset (BEIR SciFact) shipped inside the package, unpacked on first use."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from crossdistill.common.io import temp_name

__all__ = ["EMBEDDED_ARCHIVE", "beir_folder", "scifact_path", "unpacked"]

EMBEDDED_ARCHIVE: Path = Path(__file__).resolve().parent / "embedded" / "scifact.beir.tar.gz"


def scifact_path(cache_dir: str | Path) -> Path:
    """Unpack the embedded SciFact archive once into ``cache_dir/"scifact"`` and return it."""
    return unpacked(EMBEDDED_ARCHIVE, cache_dir, "scifact")


def beir_folder(path: str | Path, cache_dir: str | Path) -> Path:
    """A BEIR folder as given, or a ``<name>.beir.tar.gz`` archive (holding ``<name>/corpus.jsonl``) unpacked once
    into ``cache_dir/<name>``."""
    path = Path(path).expanduser()
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return unpacked(path, cache_dir, path.name.split(".")[0])
    return path


def unpacked(archive: Path, cache_dir: str | Path, name: str) -> Path:
    """Unpack ``archive`` (which holds ``<name>/corpus.jsonl``) once into ``cache_dir/<name>`` and return it.

    Extraction happens in a temporary folder inside ``cache_dir`` and is moved into place
    with one rename, so an interrupted run never leaves a half-written ``scifact/`` that a
    later call would trust. ``filter="data"`` rejects absolute paths, ``..`` and links
    pointing outside the target.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / name
    if (target / "corpus.jsonl").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_name(target), suffix=".tmp", dir=cache_dir))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        extracted = tmp / name
        if not (extracted / "corpus.jsonl").is_file():
            raise RuntimeError(f"{archive} does not contain {name}/corpus.jsonl")
        if target.exists():
            # Not trusted (no corpus.jsonl): a leftover from something else; replace it.
            shutil.rmtree(target)
        try:
            os.replace(extracted, target)
        except OSError:
            # Another process won the race and put a complete folder there first.
            if not (target / "corpus.jsonl").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
