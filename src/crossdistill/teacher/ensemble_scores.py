"""The express lane's (and the teacher's) scores of (query, document) pairs over one view of the corpus: each
member's raw score from its scorer, combined by the ensemble's weights, or a lone cross-encoder's logits as they
are. An evaluator holds one; the stages that choose weights, score BM25's shortlists or judge unjudged queries use
the same."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from crossdistill.teacher.cross_encoder_scores import CrossEncoderScores
from crossdistill.teacher.ensemble import TeacherEnsemble
from crossdistill.teacher.members import MemberScope, Scorer


class EnsembleScores:
    """``cross_encoder``: the logits (None: nothing reranks). ``express_lane``: the reranker's ensemble (None: the
    lone cross-encoder); ``teacher``: the teacher when it is another ensemble (its members are scored too, and
    evaluations report it beside the express lane); ``scorers``: member name -> scorer, for every member of both."""

    def __init__(self, queries: Mapping[str, str], cross_encoder: CrossEncoderScores | None = None,
                 express_lane: TeacherEnsemble | None = None, teacher: TeacherEnsemble | None = None,
                 scorers: Mapping[str, Scorer] | None = None):
        self.queries, self.cross_encoder, self.express_lane = queries, cross_encoder, express_lane
        self.teacher = teacher if teacher is not None and teacher is not express_lane else None
        self.scorers = dict(scorers or {})

    @classmethod
    def build(cls, queries: Mapping[str, str], cross_encoder: CrossEncoderScores | None, express_lane: TeacherEnsemble,
              teacher: TeacherEnsemble, scope: MemberScope) -> EnsembleScores:
        """Every member of both ensembles made a scorer over ``scope``'s documents."""
        names = dict.fromkeys([*express_lane.members, *teacher.members])
        return cls(queries, cross_encoder, express_lane, teacher,
                   {name: teacher.catalog[name].scorer(scope) for name in names})

    @property
    def members(self) -> list[str]:
        """Every member scored: the express lane's, then the teacher's others."""
        if self.express_lane is None:
            return []
        extra = self.teacher.members if self.teacher is not None else []
        return list(dict.fromkeys([*self.express_lane.members, *extra]))

    def column(self, member: str) -> str:
        return self.express_lane.column(member)

    def frame(self, pairs: Sequence[tuple[str, str]], student=None) -> pd.DataFrame:
        """One row per pair: qid, docid and each member's raw score under its column. ``student``: the ``student``
        member's scorer (:class:`~crossdistill.retrieval.student_pairs.StudentPairs`), the student whose shortlists these
        pairs are."""
        frame = pd.DataFrame(list(pairs), columns=["qid", "docid"])
        for member in self.members:
            frame[self.column(member)] = self.scorers[member](self.queries, frame.qid, frame.docid, student)
        return frame

    def scores(self, pairs: Sequence[tuple[str, str]], student=None,
               ensemble: TeacherEnsemble | None = None) -> tuple[dict, pd.DataFrame | None]:
        """The express lane's score of each pair (``ensemble``'s instead: the teacher) and the members' raw scores
        (None without an ensemble). Every member is scored even where the weights leave the cross-encoder alone: the
        trace keeps them all, and a later choice (ChooseExpressLane) reads them there."""
        pairs, ensemble = list(pairs), ensemble if ensemble is not None else self.express_lane
        if self.express_lane is None or self.members == ["cross_encoder"]:
            return self.cross_encoder.scores(pairs), None
        frame = self.frame(pairs, student)
        return dict(zip(pairs, ensemble.combine(frame).astype(float))), frame


def cross_encoder_reranking(model, queries: Mapping[str, str], docs, *, batch_size: int = 64, precision: str = "32",
                            cache_dir=None, scope: str = "", backend: str = "torch") -> EnsembleScores:
    """A lone cross-encoder as the express lane: its logits, cached under ``cache_dir`` by its weights and ``scope``."""
    return EnsembleScores(queries, CrossEncoderScores(model, queries, docs, batch_size=batch_size, precision=precision,
                                                      cache_dir=cache_dir, scope=scope, backend=backend))
