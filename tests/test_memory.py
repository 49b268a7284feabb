"""Freed-memory release during long inference loops."""
from __future__ import annotations

import sys

import pytest

from crossdistill.common import memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_freed_memory_calls_glibc_malloc_trim():
    assert memory.release_freed_memory() is True


def test_callback_releases_every_n_batches(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: calls.append(1) or True)
    callback = memory.ReleaseFreedMemory(every=3)
    for batch_idx in range(10):
        callback.on_predict_batch_end(None, None, None, None, batch_idx)
    assert len(calls) == 3  # after batches 3, 6 and 9
