"""Miners: which candidates each training query's shortlist holds (a first stage's top ``depth``), and why each one
entered it (its origin, from the first stage)."""
from __future__ import annotations

from dataclasses import dataclass

from crossdistill.retrieval.first_stages import FirstStage, SearchScope
from crossdistill.retrieval.fusion import ShortlistTable
from crossdistill.types import Shortlists


@dataclass
class Miner:
    """The config group ``miner`` (and ``rounds.miner``): a first stage (configs/first_stages/) and how many of its
    candidates per query the teacher scores."""

    first_stage: FirstStage
    depth: int = 10

    @property
    def name(self) -> str:
        return self.first_stage.name

    def shortlists(self, scope: SearchScope) -> Shortlists | ShortlistTable:
        return self.first_stage.shortlists(scope, self.depth)

    def identity(self) -> dict:
        """The part of a mined artifact's cache key that names this miner."""
        return {"name": self.name, "depth": self.depth, **self.first_stage.identity()}
