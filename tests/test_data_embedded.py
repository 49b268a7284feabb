"""The embedded SciFact archive unpacks once, atomically, and loads with the expected counts."""

from __future__ import annotations

import tarfile

import pytest

import crossdistill.data.embedded as embedded
from crossdistill.data import EMBEDDED_ARCHIVE, load_beir, scifact_path


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_archive_shipped():
    assert EMBEDDED_ARCHIVE.is_file()
    assert (EMBEDDED_ARCHIVE.parent / "README.md").is_file()


def test_extract_and_load_counts(cache):
    path = scifact_path(cache)
    assert path == cache / "scifact" and (path / "corpus.jsonl").is_file()
    assert [p.name for p in cache.iterdir()] == ["scifact"]  # no temp folder left behind
    ds = load_beir(path)
    assert ds.name == "scifact"
    assert len(ds.corpus) == 5183 and len(ds.queries) == 1109
    assert len(ds.split_queries("train")) == 809 and len(ds.split_queries("test")) == 300


def test_second_call_reuses(cache, monkeypatch):
    first = scifact_path(cache)
    marker = first / "marker"
    marker.write_text("kept")
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: pytest.fail("re-extracted"))
    assert scifact_path(cache) == first and marker.read_text() == "kept"


def test_untrusted_folder_is_replaced(tmp_path):
    (tmp_path / "scifact").mkdir()
    (tmp_path / "scifact" / "partial.jsonl").write_text("x")
    path = scifact_path(tmp_path)
    assert (path / "corpus.jsonl").is_file() and not (path / "partial.jsonl").exists()


def test_interrupted_extraction_leaves_nothing_trusted(tmp_path, monkeypatch):
    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tarfile.TarFile, "extractall", boom)
    with pytest.raises(KeyboardInterrupt):
        scifact_path(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_path_traversal_rejected(tmp_path, monkeypatch):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../../escaped.txt")
    monkeypatch.setattr(embedded, "EMBEDDED_ARCHIVE", evil)
    cache = tmp_path / "cache"
    with pytest.raises(tarfile.TarError):
        scifact_path(cache)
    assert not (tmp_path / "escaped.txt").exists() and not (cache / "escaped.txt").exists()
    assert not (cache / "scifact").exists()
