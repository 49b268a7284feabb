"""Carve a dev set out of the judged train queries (BEIR datasets often ship no dev split)."""

from __future__ import annotations

import random

__all__ = ["carve_dev"]


def carve_dev(qrels_train: dict[str, dict[str, int]], dev_size: int | float, seed: int) -> tuple[list[str], list[str]]:
    """Split the judged train query ids into sorted (train_qids, dev_qids).

    ``dev_size`` is a count (int) or a fraction in (0, 1) (float; rounded, then clamped so
    both sides keep at least one query). The result depends only on the set of query ids
    and ``seed``, not on dict order, so reruns and resumed runs see the same split.
    """
    qids = sorted(qrels_train)
    n = len(qids)
    if n < 2:
        raise ValueError(f"cannot carve a dev set from {n} judged train quer{'y' if n == 1 else 'ies'}; need at least 2")
    if isinstance(dev_size, bool) or not isinstance(dev_size, (int, float)):
        raise ValueError(f"dev_size must be an int count or a float fraction in (0, 1), got {dev_size!r}")
    if isinstance(dev_size, int):
        if not 1 <= dev_size <= n - 1:
            raise ValueError(f"dev_size={dev_size} must be between 1 and {n - 1} for {n} judged train queries")
        k = dev_size
    else:
        if not 0.0 < dev_size < 1.0:
            raise ValueError(f"dev_size={dev_size} as a fraction must be strictly between 0 and 1")
        k = min(max(round(n * dev_size), 1), n - 1)
    dev = set(random.Random(seed).sample(qids, k))
    return [q for q in qids if q not in dev], [q for q in qids if q in dev]
