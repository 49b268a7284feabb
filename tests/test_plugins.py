"""Extension points are classes and yaml, never name lists: a new teacher member kind, a new first stage and a new
student loss are each one class (here, outside the package) and one yaml entry (in a config folder of the user's,
on Hydra's search path), and a whole run uses them without any other file changed."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import compose, tiny_overrides
from crossdistill.pipeline.train import run
from crossdistill.retrieval.first_stages import FirstStage, SearchScope
from crossdistill.student.batch import ScoredBatch
from crossdistill.student.losses import DistillLoss
from crossdistill.teacher.members import Member, MemberScope


class DocLengthScores:
    """Picklable scorer: each pair's document length in words (a deliberately plain signal)."""

    def __init__(self, docs):
        self.docs = docs

    def __call__(self, queries, qids, docids, student=None) -> np.ndarray:
        return np.array([float(len(text.split())) for text in self.docs.many(docids)])


class DocLengthMember(Member):
    def scorer(self, scope: MemberScope):
        return DocLengthScores(scope.embeddings.docs)


class EveryOtherBM25(FirstStage):
    """BM25's 1st, 3rd, 5th... documents: a first stage whose shortlists are recognisably its own."""

    name, origin = "every_other", "every_other"

    def search(self, scope: SearchScope):
        return {q: hits[::2] for q, hits in scope.bm25_run.items()}


class QueryNormLoss(DistillLoss):
    def from_batch(self, batch: ScoredBatch):
        return batch.query.norm(dim=-1).mean()


@pytest.fixture
def user_configs(tmp_path):
    root = tmp_path / "my_configs"
    (root / "ensemble").mkdir(parents=True)
    (root / "first_stages").mkdir()
    (root / "ensemble" / "with_length.yaml").write_text(
        "defaults:\n  - default\n  - _self_\n"
        f"catalog:\n  doc_length: {{_target_: {__name__}.DocLengthMember}}\n"
        "members: [cross_encoder, bm25, doc_length]\nweights: {cross_encoder: 1.0, bm25: 0.5, doc_length: 0.5}\n")
    (root / "first_stages" / "every_other.yaml").write_text(f"_target_: {__name__}.EveryOtherBM25\n")
    return root


def test_a_new_member_first_stage_and_loss_run_through_the_whole_pipeline(tiny_bert, tiny_beir, tmp_path, user_configs):
    out = tmp_path / "run"
    cfg = compose(tiny_overrides(tiny_bert, tiny_beir, out, tmp_path / "cache") + [
        f"hydra.searchpath=[file://{user_configs}]", "ensemble=with_length", "first_stages@miner.first_stage=every_other",
        f"+student.losses.query_norm={{_target_: {__name__}.QueryNormLoss, weight: 0.1}}", "student_data.epochs=1",
        "++trainer.log_every_n_steps=1"])
    run(cfg)
    results = json.loads((out / "results.json").read_text())
    # the member: scored in mining (its column in the artifact) and evaluation (its trace column), weighted as asked
    assert results["teacher"]["ensemble"]["weights"] == {"cross_encoder": 1.0, "bm25": 0.5, "doc_length": 0.5}
    artifact = pd.read_parquet(out / "mining" / "artifact.parquet")
    corpus = {json.loads(line)["_id"]: json.loads(line) for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()}
    words = artifact.docid.map(lambda d: float(len(f"{corpus[d]['title']} {corpus[d]['text']}".split())))
    assert artifact.doc_length_score.tolist() == pytest.approx(words.tolist())
    trace = pd.read_parquet(out / "traces" / "test_final.parquet").query("in_shortlist")
    assert trace.member_doc_length.notna().all() and "doc_length" in results["teacher"]["ensemble"]["test_members"]
    # the first stage: the shortlists are its own (every other BM25 hit), named by its origin
    shortlisted = artifact[artifact.origin != "qrels"]
    assert set(shortlisted.origin) == {"every_other"} and results["mining"]["miner"] == "every_other"
    # the loss: trained and logged beside the shipped ones
    metrics = pd.read_csv(out / "csv" / "student" / "metrics.csv")
    assert metrics["student/query_norm_loss"].notna().any()
