"""The teacher as an ensemble of frozen scorers.

Vocabulary: the ``cross_encoder`` is the model trained here (teacher=...); the ``teacher`` is what scores the mined
pairs (this ensemble: the cross-encoder alone, or combined with other members); the ``express_lane`` is evaluation's
reranker over the student's top k (the teacher itself, or another ensemble of the same catalog).

Members come from ``catalog``: every kind a teacher may combine, each a class with ``_target_``
(teacher/members.py): ``cross_encoder``, ``bm25``, ``zero_shot`` (the student's starting weights, frozen),
``student`` (the student whose shortlists are scored, frozen while they are: the one that mined the round - the
zero-shot start in round 1, the best of the earlier rounds after - or the one evaluated) and frozen bi-encoders
(e.g. all-mpnet-base-v2). Each member's scores are z-normalised within a query's candidates, so that logits, BM25
scores and cosines can be added: ``teacher_score = sum_m w_m * z_m``. The weights are fixed in the config or chosen
on dev (never test): every combination of ``grid`` values is tried as a reranker of the zero-shot student's dev
shortlists, and the best by nDCG@10 is kept; with a ``student`` member they are chosen again before each later
round, on the dev shortlists of the student that mines it. A lone cross-encoder (``ensemble=cross_encoder``) keeps
its raw logits, so margins stay in logit units. The weights being trained are never a member: a round's targets are
scored before it trains, from the frozen student that mined it.

The express lane may be another ensemble (``express_lane``: its members, e.g. the teacher's with the evaluated
student's own score), its weights chosen on dev shortlists of the student it reranks: the teacher stays what
``members`` says.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import pandas as pd
from hydra.utils import instantiate
from omegaconf import OmegaConf

from crossdistill.evaluation.runs import reranked_ndcg
from crossdistill.teacher.members import BiEncoderMember, Member
from crossdistill.types import Qrels


@cache
def packaged_catalog() -> dict[str, Member]:
    """The member kinds of the packaged config (configs/ensemble/default.yaml), for ensembles built outside Hydra."""
    text = resources.files("crossdistill.configs").joinpath("ensemble/default.yaml").read_text()
    return dict(instantiate(OmegaConf.create(text).catalog))


def zscore(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` standardised within each qid's rows (a query whose scores are all equal gets 0)."""
    g = frame.groupby("qid", sort=False)[column]
    return ((frame[column] - g.transform("mean")) / g.transform("std", ddof=0).replace(0.0, 1.0)).fillna(0.0)


@dataclass
class TeacherEnsemble:
    """The config group ``ensemble``. ``weights``: a mapping member -> weight, or ``dev`` to choose them."""

    members: Sequence[str] = ("cross_encoder", "bm25", "zero_shot")
    weights: Mapping[str, float] | str = "dev"
    grid: Sequence[float] = (0.0, 0.5, 1.0)
    # Every member kind the ensemble (and its express lane) may name: name -> Member (None: the packaged catalog)
    catalog: Mapping[str, Member] | None = None
    # Shorthand for frozen bi-encoder members: name -> model (each a BiEncoderMember in the catalog)
    bi_encoders: Mapping[str, str] = field(default_factory=dict)
    # The dev shortlists the weights are chosen on: the zero-shot student's top-k (what evaluation reranks), or its
    # RRF fusion with BM25's (hybrid: neither first stage's own order is the list being reranked).
    choose_on: str = "student"
    # A dev set every member alone reranks to at least this nDCG@10 cannot tell them apart (label-free title
    # queries, whose documents hold the query verbatim, score 0.99 for every member): equal weights are kept then.
    saturated: float = 0.95
    # The members of the express lane when it is not the teacher itself (None): weights always from dev, chosen
    # again on the kept student's dev trace before each test (pipeline/stages/student.py ChooseExpressLane).
    express_lane: Sequence[str] | None = None

    def __post_init__(self):
        if self.choose_on not in ("student", "hybrid"):
            raise ValueError(f"ensemble.choose_on must be student or hybrid, got {self.choose_on!r}")
        self.members = list(self.members)
        self.bi_encoders = dict(self.bi_encoders or {})
        catalog = dict(packaged_catalog() if self.catalog is None else self.catalog)
        catalog |= {name: BiEncoderMember(model) for name, model in self.bi_encoders.items()}
        self.catalog = {name: member.named(name) for name, member in catalog.items()}
        for key, members in (("members", self.members), ("express_lane", self.express_lane)):
            unknown = [m for m in members or [] if m not in self.catalog]
            if (key == "members" and not members) or unknown:
                raise ValueError(f"ensemble.{key}: {unknown or 'none'} - each must be a member kind of "
                                 f"ensemble.catalog ({', '.join(self.catalog)})")
        self.from_dev = isinstance(self.weights, str)   # chosen on dev (again before each round, with a student)
        if isinstance(self.weights, str):
            if self.weights != "dev":
                raise ValueError(f"ensemble.weights must be 'dev' or a mapping member -> weight, got {self.weights!r}")
            if len(self.members) == 1:
                self.weights, self.from_dev = {self.members[0]: 1.0}, False
        else:
            self.weights = {m: float(self.weights.get(m, 0.0)) for m in self.members}
            if not any(self.weights.values()):
                raise ValueError("ensemble.weights: at least one member needs a non-zero weight")

    def express_lane_ensemble(self) -> TeacherEnsemble:
        """Evaluation's reranker: this ensemble, or (``express_lane``) its own, with weights to choose on dev."""
        if not self.express_lane:
            return self
        return TeacherEnsemble(members=list(self.express_lane), weights="dev", grid=self.grid, catalog=self.catalog,
                               choose_on=self.choose_on, saturated=self.saturated)

    def column(self, member: str) -> str:
        """Where member frames and mining artifacts keep ``member``'s raw score."""
        return self.catalog[member].column

    def trace_frame(self, trace: pd.DataFrame) -> pd.DataFrame:
        """An evaluation trace's shortlisted rows as a member frame: qid, docid, each member's raw score (the trace's
        ``member_<name>`` columns) under its column, the ``student`` member as the student's own cosine, and
        ``student_order`` (minus its rank) and ``express_lane_score`` (as evaluated)."""
        rows = trace[trace.in_shortlist].reset_index(drop=True)
        frame = rows[["qid", "docid"]].copy()
        for column in rows.columns:
            if column.startswith("member_"):
                name = column.removeprefix("member_")
                frame[self.column(name) if name in self.catalog else f"{name}_score"] = rows[column]
        frame[self.column("student")] = rows.student_score
        frame["student_order"] = -rows.student_rank.astype(float)
        frame["express_lane_score"] = rows.express_lane_score
        return frame

    @property
    def chosen(self) -> bool:
        return not isinstance(self.weights, str)

    @property
    def follows_student(self) -> bool:
        """Weights chosen on dev with the ``student`` member: each round's student changes what dev chooses."""
        return self.from_dev and "student" in self.members

    @property
    def is_plain_teacher(self) -> bool:
        """A lone cross-encoder: its raw logits are the teacher score."""
        return self.chosen and [m for m, w in self.weights.items() if w] == ["cross_encoder"]

    def combine(self, frame: pd.DataFrame, weights: Mapping[str, float] | None = None) -> pd.Series:
        """The teacher score of each row of ``frame`` (qid, the members' score columns)."""
        weights = weights if weights is not None else self.weights
        if isinstance(weights, str):
            raise RuntimeError("ensemble weights are chosen on dev first (ChooseTeacher)")
        active = {m: w for m, w in weights.items() if w}
        if list(active) == ["cross_encoder"] and active["cross_encoder"] == 1.0:
            return frame[self.column("cross_encoder")].astype(float)
        total = pd.Series(0.0, index=frame.index)
        for member, weight in active.items():
            total += weight * zscore(frame, self.column(member))
        return total

    def candidates(self) -> list[dict[str, float]]:
        """Every weight combination of the grid, scaled copies once ((.5, .5) is (1, 1)); fewest members first, then
        the members in their listed order (the cross-encoder first)."""
        seen, out = set(), []
        for combo in itertools.product(sorted(set(map(float, self.grid))), repeat=len(self.members)):
            top = max(combo)
            if top <= 0:
                continue
            norm = tuple(round(w / top, 6) for w in combo)
            if norm not in seen:
                seen.add(norm)
                out.append(dict(zip(self.members, norm)))
        return sorted(out, key=lambda w: (sum(1 for v in w.values() if v), [-v for v in w.values()]))

    def choose(self, frame: pd.DataFrame, qrels: Qrels) -> dict:
        """Weights by dev nDCG@10 of reranking ``frame``'s shortlists; returns the record (members alone, the
        combinations tried, the chosen one). A later combination must beat an earlier one to replace it. Weights from
        dev are searched again at each call (a later round's shortlists and student)."""
        alone = {m: reranked_ndcg(frame, frame[self.column(m)].astype(float), qrels) for m in self.members}
        if not self.from_dev:
            best = self.weights
            dev = reranked_ndcg(frame, self.combine(frame), qrels)
            return {"members": self.members, "weights": best, "dev_ndcg@10": dev, "dev_members": alone,
                    "chosen_on": "config"}
        if min(alone.values()) >= self.saturated:
            self.weights = {m: 1.0 for m in self.members}
            dev = reranked_ndcg(frame, self.combine(frame), qrels)
            return {"members": self.members, "weights": self.weights, "dev_ndcg@10": dev, "dev_members": alone,
                    "chosen_on": f"equal weights: dev saturated (every member alone >= {self.saturated})"}
        best, dev, tried = None, float("-inf"), 0
        for weights in self.candidates():
            value = reranked_ndcg(frame, self.combine(frame, weights), qrels)
            tried += 1
            if value > dev + 1e-9:
                best, dev = weights, value
        self.weights = best
        return {"members": self.members, "weights": best, "dev_ndcg@10": dev, "dev_members": alone,
                "chosen_on": "dev", "combinations": tried}
