"""Atomic writes: a temp file beside the target, then ``os.replace``. A run killed mid-write leaves the previous
file (or none), never a truncated one that a later run or report would trust.

Temporary names carry the writing process's id (``.<name>.<pid>.<random>.tmp``), so the orphans of a killed run
can be told from the files a live process is still writing and removed (:func:`remove_orphans`). A cached file
that cannot be read (truncated by a crash outside this code, a full disk) is moved aside (:func:`quarantine`)
and rebuilt, never trusted and never left to fail every later run.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

_TMP = re.compile(r"^\..+\.(\d+)\.[^.]*\.tmp$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(folder: bool = False) -> int:
    """The mode ``open()`` / ``mkdir()`` would give a new file or folder (mkstemp and mkdtemp make theirs private:
    a results.json or an exported model must be as readable as any file the user writes)."""
    return (0o777 if folder else 0o666) & ~_umask()


def temp_name(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_name(path), suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder to fill; it replaces the folder ``path`` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=temp_name(path), suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, default_mode(folder=True))
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)   # appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def remove_orphans(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders below ``folder`` whose writing process is gone; returns them."""
    removed = []
    for p in Path(folder).rglob(".*.tmp") if Path(folder).is_dir() else ():
        match = _TMP.match(p.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def quarantine(path: str | os.PathLike) -> Path:
    """Move an unreadable cached file or folder aside (``<name>.corrupt-<UTC time>``) so it is rebuilt."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.corrupt-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}")
    os.replace(path, aside)
    return aside


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
