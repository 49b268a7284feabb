"""Exported folders carry model cards of our own: rendered from results.json, never the base model's card."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import ROOT, compose, tiny_overrides
from crossdistill.model_card import run_command, student_card, teacher_card

MACHINE = {"cpu": "Test CPU 9000", "gpu": None, "torch": "9.9.9", "python": "3.11.0"}
BASE_CARD = "# all-MiniLM-L6-v2\n\nTrained on s2orc, MS MARCO, WikiAnswers and 1B sentence pairs.\n"


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def no_base_card_text(card: str) -> bool:
    return "s2orc" not in card.lower() and "ms marco" not in card.lower()


def table_row(card: str, label: str) -> str:
    return next(line for line in card.splitlines() if line.startswith(f"| {label} |"))


def hand_made_results(**extra) -> dict:
    config = {"student": {"model": "/models/tiny-bert", "normalize": True}, "teacher": {"model": "/models/tiny-ce"},
              "data": {"path": "/data/tiny", "dev_size": 6}, "evaluation": {"rerank_depth": 5},
              "teacher_data": {"negatives": 2, "val_depth": 20}}
    return {"dataset": "tiny", "queries": 8, "docs": 60, "splits": {"train": 18, "dev": 6, "test": 8},
            "best_epoch": 1, "label_free": False, "total_wall_s": 42.0, "config": config,
            "systems": {"bm25": {"ndcg@10": 0.5012, "mrr@10": 0.4, "recall@100": 0.9},
                        "student_init": {"ndcg@10": 0.3141, "mrr@10": 0.3, "recall@100": 0.8, "lift@3": 0.1},
                        "teacher_rerank": {"ndcg@10": 0.6, "mrr@10": 0.55, "recall@100": 0.9},
                        "teacher_rerank_student": {"ndcg@10": 0.7077, "mrr@10": 0.65, "recall@100": 0.95},
                        "student": {"ndcg@10": 0.6543, "mrr@10": 0.6, "recall@100": 0.95, "lift@3": 0.05}},
            "teacher": {"best_epoch": 0, "best_val_ndcg@10": 0.5561,
                        "ensemble": {"members": ["cross_encoder", "bm25", "zero_shot"], "chosen_on": "dev",
                                     "weights": {"cross_encoder": 1.0, "bm25": 0.5, "zero_shot": 0.0},
                                     "test_members": {"cross_encoder": 0.6111}}},
            **extra}


def test_student_card_of_the_default_run_describes_this_run_not_the_base_model():
    results = json.loads((ROOT / "benchmarks" / "default-run" / "results.json").read_text())
    card = student_card(results, "python train.py teacher=minilm", "2026-12-01", MACHINE)
    meta = front_matter(card)
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "sentence-similarity"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["license"] == "cc-by-nc-2.0" and meta["datasets"] == ["BeIR/scifact"]
    assert {"sentence-transformers", "sentence-similarity", "crossdistill", "distillation"} <= set(meta["tags"])
    student, express = results["systems"]["student"], results["systems"]["teacher_rerank_student"]
    row = table_row(card, "**this model**")
    assert f"{student['ndcg@10']:.3f}" in row and f"{student['mrr@10']:.3f}" in row
    assert f"{student['recall@100']:.3f}" in row and f"{student['lift@3']:.3f}" in row
    assert f"{express['ndcg@10']:.3f}" in table_row(card, "express lane: this model's top-20 reranked by cross_encoder x0.5 "
                                                          "+ bm25 x1 + student x0.5; weights chosen on dev")
    assert f"{results['systems']['bm25']['ndcg@10']:.3f}" in table_row(card, "BM25")
    assert "```bash\npython train.py teacher=minilm\n```" in card
    # distilled from the ensemble's members with their weights; the collection with its counts
    assert "cross_encoder x0.5 + bm25 x1 (weight 0: zero_shot)" in card
    assert "5183 documents" in card and "300 test queries" in card and "709 train queries" in card
    assert "Test CPU 9000" in card and "torch 9.9.9" in card and "2026-12-01" in card
    assert "<details>" in card and "max_doc_length: 160" in card          # the resolved config, collapsed
    assert 'SentenceTransformer("path/to/student")' in card and "CC BY-NC 2.0" in card
    assert "not measured" in card
    assert no_base_card_text(card)


def test_teacher_card_reports_the_cross_encoder_and_loads_as_a_reranker():
    results = json.loads((ROOT / "benchmarks" / "default-run" / "results.json").read_text())
    card = teacher_card(results, None, "2026-12-01", MACHINE)
    meta = front_matter(card)
    assert meta["pipeline_tag"] == "text-ranking" and meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["license"] == "cc-by-nc-2.0"
    assert f"{results['teacher']['best_val_ndcg@10']:.3f}" in card
    assert f"{results['teacher']['ensemble']['test_members']['cross_encoder']:.3f}" in card
    assert f"{results['systems']['teacher_rerank']['ndcg@10']:.3f}" in table_row(card, "the teacher over BM25's top-20")
    assert 'CrossEncoder("path/to/teacher")' in card and "raw logits" in card
    assert "Not recorded" in card and no_base_card_text(card)


def test_cards_from_a_hand_made_record():
    metrics = lambda ndcg: {"ndcg@10": ndcg, "recall@100": 0.5}   # noqa: E731
    results = hand_made_results(transfer={"nfcorpus": {
        "docs": 3633, "queries": 323, "systems": {"bm25": metrics(0.3), "student_init": metrics(0.25),
                                                  "student": metrics(0.2468)},
        "ndcg@10_vs_start": {"student_init": 0.0, "student": -0.0032}}})
    card = student_card(results, "python train.py data=beir data.path=/data/tiny", "2026-01-02", MACHINE, path="/run/student")
    meta = front_matter(card)
    assert meta["base_model"] == "/models/tiny-bert" and meta["license"] == "unknown" and meta["datasets"] == ["tiny"]
    assert "0.654" in table_row(card, "**this model**") and "0.708" in card and "0.314" in card
    assert "18 train, 6 dev, 8 test queries" in card and "60 documents" in card
    assert "cross_encoder x1 + bm25 x0.5 (weight 0: zero_shot)" in card
    assert "| nfcorpus | 3633 | 323 | 0.300 / 0.500 | 0.250 / 0.500 | 0.247 / 0.500 | -0.003 |" in card   # transfer
    assert "not measured" not in card
    assert 'SentenceTransformer("/run/student")' in card and "zero-shot start" not in card
    # a run that kept the zero-shot start says so; a licence given in the config wins
    kept = hand_made_results(best_epoch=-1)
    kept["config"]["data"]["license"] = "cc-by-4.0"
    card = student_card(kept, None, "2026-01-02", MACHINE)
    assert "zero-shot start" in card and front_matter(card)["license"] == "cc-by-4.0"
    teacher = teacher_card(results, None, "2026-01-02", MACHINE)
    assert front_matter(teacher)["base_model"] == "/models/tiny-ce" and "0.556" in teacher and "0.611" in teacher


def test_the_command_is_read_from_hydras_overrides(tmp_path):
    assert run_command(tmp_path) is None
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["teacher=minilm", "data.path=/my data/x"]))
    assert run_command(tmp_path) == "python train.py teacher=minilm 'data.path=/my data/x'"


def test_export_replaces_the_base_models_card(tiny_bert, tmp_path):
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from crossdistill.export import export_student, export_teacher
    from crossdistill.student.module import BiEncoderStudent
    from crossdistill.teacher.module import CrossEncoderTeacher

    base = tmp_path / "base"
    SentenceTransformer(str(tiny_bert), device="cpu").save(str(base))
    (base / "README.md").write_text(BASE_CARD)   # as all-MiniLM-L6-v2's folder holds it
    student, teacher = BiEncoderStudent(model=str(base)), CrossEncoderTeacher(model=str(base))
    assert "s2orc" in student.encoder._model_card_text   # what sentence-transformers would copy on save
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "README.md").write_text(BASE_CARD)   # a stale card in the folder exported into
    for folder, kind in ((export_student(student, tmp_path / "student"), "sentence-similarity"),
                         (export_teacher(teacher, tmp_path / "teacher"), "text-ranking")):
        card = (folder / "README.md").read_text()
        assert no_base_card_text(card) and "crossdistill" in card
        assert front_matter(card)["base_model"] == str(base) and front_matter(card)["pipeline_tag"] == kind
    assert SentenceTransformer(str(tmp_path / "student"), device="cpu").encode(["cell gene"]).shape[0] == 1
    assert CrossEncoder(str(tmp_path / "teacher"), device="cpu").predict([("cell", "cell gene")]).shape == (1,)


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tiny_beir, tmp_path_factory):
    """One tiny run (one round, one epoch) through the real configs."""
    from crossdistill.pipeline.train import run

    out, cache = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("cache")
    run(compose([*tiny_overrides(tiny_bert, tiny_beir, out, cache), "student_data.epochs=1"]))
    return out


def test_a_finished_run_exports_folders_with_our_cards(finished_run, tiny_bert):
    from sentence_transformers import CrossEncoder, SentenceTransformer

    results = json.loads((finished_run / "results.json").read_text())
    assert results["splits"] == {"train": 18, "dev": 6, "test": 8}
    card = (finished_run / "student" / "README.md").read_text()
    meta = front_matter(card)
    assert meta["base_model"] == str(tiny_bert) and meta["license"] == "unknown"
    assert f"{results['systems']['student']['ndcg@10']:.3f}" in table_row(card, "**this model**")
    assert "18 train, 6 dev, 8 test queries" in card and "Not recorded" in card     # run(cfg): no Hydra command line
    assert f'SentenceTransformer("{finished_run / "student"}")' in card and no_base_card_text(card)
    assert SentenceTransformer(str(finished_run / "student"), device="cpu").encode(["cell gene"]).shape[0] == 1
    teacher = (finished_run / "teacher" / "README.md").read_text()
    assert front_matter(teacher)["pipeline_tag"] == "text-ranking" and front_matter(teacher)["base_model"] == str(tiny_bert)
    assert f"{results['systems']['teacher_rerank']['ndcg@10']:.3f}" in teacher
    assert CrossEncoder(str(finished_run / "teacher"), device="cpu").predict([("cell", "cell gene")]).shape == (1,)


def test_a_finished_run_keeps_what_a_user_takes_home_not_its_checkpoints(finished_run):
    """keep_checkpoints=false (the default): what only resume= needs is gone once the run ends; the rest stays."""
    left = {p.name for p in finished_run.iterdir()}
    assert not {"checkpoints", "stages", ".exchange"} & left
    assert {"student", "teacher", "results.json", "traces", "runs", "report", "mining", "csv", "config.yaml"} <= left
    config = (finished_run / "config.yaml").read_text()   # the resolved config, as the console showed it
    assert "keep_checkpoints: false" in config and "${" not in config
