"""A corpus's embeddings under a bi-encoder's weights: encoded block by block, kept while the weights are unchanged,
in memory or in a memory-mapped .npy file, and (``persist``) cached on disk by the weights' content key."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from crossdistill.common.fingerprint import cache_key, state_dict_fingerprint
from crossdistill.common.io import atomic_path, quarantine
from crossdistill.data.corpus import Corpus
from crossdistill.retrieval.dense import encode


def read_or_discard(path, read):
    """``read(path)`` of a cached file; None when there is none, or when it cannot be read (then moved aside)."""
    if path is None or not path.exists():
        return None
    try:
        return read(path)
    except Exception as err:  # noqa: BLE001 - an unreadable cache entry is rebuilt, whatever broke it
        warnings.warn(f"cached {path} cannot be read ({type(err).__name__}); moved aside to {quarantine(path).name}",
                      stacklevel=2)
        return None


class CorpusEmbeddings:
    """The embeddings of ``docs`` (a :class:`Corpus`, read by row) and of queries, encoded as evaluation encodes them
    (``batch_size``, ``precision``, the text lengths; ``None`` document length: the encoder's own), on the runtime
    ``backend`` (``inference_backend``).

    ``storage="memory"`` keeps them in a tensor; ``"disk"`` writes them block by block to a .npy file and memory-maps
    it (for corpora whose embeddings do not fit: 8.8M x 384 fp32 = 13 GiB), under ``cache_dir`` when persisted, else
    under ``run_dir``. Cache entries are named by the weights, ``scope`` (the data's identity), precision and length.
    """

    def __init__(self, docs: Corpus, *, batch_size: int = 64, precision: str = "32", max_doc_length: int | None = None,
                 max_query_length: int = 64, storage: str = "memory", show_progress: bool = False,
                 cache_dir: Path | None = None, run_dir: Path | None = None, scope: str = "", backend: str = "torch"):
        self.docs, self.batch_size, self.precision, self.backend = docs, batch_size, precision, backend
        self.max_doc_length, self.max_query_length, self.storage = max_doc_length, max_query_length, storage
        self.show_progress, self.cache_dir, self.run_dir, self.scope = show_progress, cache_dir, run_dir, scope
        self._held: tuple[str, torch.Tensor] | None = None   # (weights' key, embeddings) of the last encoder

    def corpus(self, encoder: SentenceTransformer, persist: bool = False,
               compute: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        """Every document's embedding, reused while the weights are unchanged (the final test evaluation of the last
        epoch's weights would otherwise encode the whole corpus a second time). ``persist`` also keeps them on disk
        for later runs (the zero-shot student is the same in every run of a sweep). ``compute``: how to encode them
        when neither cache has them (default: here, in this process; the pipeline passes every rank's share)."""
        key = state_dict_fingerprint(encoder)
        if self._held is None or self._held[0] != key:
            name = cache_key(encoder=key, scope=self.scope, precision=self.precision,
                             max_length=self.max_doc_length or encoder.max_seq_length, docs=len(self.docs),
                             **({"backend": self.backend} if self.backend != "torch" else {}))
            if self.storage == "disk":
                emb = self._on_disk(encoder, name, persist, compute)
            else:
                path = self.cache_dir / "corpus_embeddings" / f"{name}.pt" \
                    if persist and self.cache_dir is not None else None
                emb = read_or_discard(path, lambda p: torch.load(p, map_location="cpu", weights_only=True))
                if emb is None:
                    emb = compute() if compute is not None else self.rows(encoder)
                    if path is not None:
                        with atomic_path(path) as tmp:
                            torch.save(emb, tmp)
            self._held = (key, emb)
        return self._held[1]

    def _on_disk(self, encoder: SentenceTransformer, name: str, persist: bool,
                 compute: Callable[[], torch.Tensor] | None) -> torch.Tensor:
        """``storage="disk"``: written a block at a time under a temporary name, renamed when whole, then
        memory-mapped (copy-on-write: pages are read as search touches them, never written back)."""
        if self.run_dir is None:
            raise ValueError("evaluation.embeddings=disk needs a run folder (an evaluator with a layout)")
        folder = self.cache_dir if persist and self.cache_dir is not None else self.run_dir / "embeddings"
        path = folder / "corpus_embeddings" / f"{name}.npy"
        emb = read_or_discard(path, lambda p: np.load(p, mmap_mode="c"))
        if emb is None:
            with atomic_path(path) as tmp:
                if compute is not None:
                    with open(tmp, "wb") as f:
                        np.save(f, compute().numpy())
                else:
                    out, at = None, 0
                    for part in self._blocks(encoder):
                        if out is None:
                            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                            shape=(len(self.docs), part.shape[1]))
                        out[at:at + len(part)] = part.numpy()
                        at += len(part)
                    out.flush()
                    del out
            emb = np.load(path, mmap_mode="c")
        return torch.from_numpy(emb)

    def _blocks(self, encoder: SentenceTransformer, rows: Sequence[int] | None = None):
        """The embeddings of the corpus rows ``rows`` (default: all), one block of texts fetched and encoded at a time."""
        for block in self.docs.blocks(rows):
            yield encode(encoder, block, self.batch_size, self.precision, self.show_progress, self.max_doc_length,
                         self.backend)

    def rows(self, encoder: SentenceTransformer, rows: Sequence[int] | None = None) -> torch.Tensor:
        """Embeddings of the corpus rows ``rows`` (default: all), in one tensor, encoded now."""
        parts = list(self._blocks(encoder, rows))
        return torch.cat(parts) if parts else encode(encoder, [], precision=self.precision)

    def queries(self, encoder: SentenceTransformer, texts: Sequence[str]) -> torch.Tensor:
        """Query texts (evaluation's, mining's title pseudo-queries, a member's) as evaluation encodes them."""
        return encode(encoder, list(texts), self.batch_size, self.precision, False, self.max_query_length, self.backend)
