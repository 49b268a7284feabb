"""Teacher ensembles: the score pairs are built from can mix the cross-encoder with BM25 and the zero-shot
student, each z-normalised within the query's candidates so that logits, BM25 scores and cosines can be added."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SIGNALS = {"cross_encoder": "ce_score", "bm25": "bm25_score", "dense": "dense_score"}


@dataclass
class ScoreEnsemble:
    """``teacher_score = sum_s w_s * z_s``, z per query over its scored candidates. Weights (1, 0, 0) keep the
    raw cross-encoder logits untouched, so margins stay in logit units."""

    cross_encoder: float = 1.0
    bm25: float = 0.0
    dense: float = 0.0

    @property
    def is_plain_teacher(self) -> bool:
        return self.bm25 == 0 and self.dense == 0 and self.cross_encoder == 1

    def combine(self, artifact: pd.DataFrame) -> pd.Series:
        if self.is_plain_teacher:
            return artifact["ce_score"]
        total = pd.Series(0.0, index=artifact.index)
        for name, column in SIGNALS.items():
            weight = getattr(self, name)
            if weight:
                g = artifact.groupby("qid")[column]
                z = (artifact[column] - g.transform("mean")) / g.transform("std", ddof=0).replace(0.0, 1.0)
                total += weight * z.fillna(0.0)
        return total
