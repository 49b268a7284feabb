"""Every config in configs/ composes with the real defaults and instantiates into the class it names."""
from __future__ import annotations

import pytest
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from conftest import CONFIGS, compose, tiny_overrides
from crossdistill.common import precision
from crossdistill.common.instantiate import instantiate_group, stage_loggers
from crossdistill.pipeline.context import resolve_precisions

GROUPS = {p.name: sorted(f.stem for f in p.glob("*.yaml")) for p in CONFIGS.iterdir() if p.is_dir()
          and any(p.glob("*.yaml"))}


def test_required_config_groups_exist():
    assert {"minilm"} <= set(GROUPS["teacher"]) and {"minilm"} <= set(GROUPS["student"])
    assert {"scifact", "beir"} <= set(GROUPS["data"])
    assert {"bm25", "dense", "hybrid"} <= set(GROUPS["miner"])
    assert {"cpu", "gpu", "ddp"} <= set(GROUPS["trainer"])
    assert {"csv", "tensorboard", "wandb", "none"} <= set(GROUPS["logger"])
    assert "smoke" in GROUPS["experiment"]


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() if g not in ("hydra", "paths")
                                          for o in opts])
def test_config_composes_and_instantiates(group, option, tiny_bert, tiny_beir, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_bert, tiny_beir, tmp_path, tmp_path / "cache")
                 if not o.startswith("data") or group != "data"]
    # a first stage is chosen where it is used: the miner's (and, likewise, rounds.miner's)
    overrides.append(f"first_stages@miner.first_stage={option}" if group == "first_stages" else f"{group}={option}")
    if group == "first_stages" and option == "run_file":
        overrides.append(f"miner.first_stage.path={tmp_path / 'train.trec'}")
    if group == "data" and option == "beir":
        overrides.append(f"data.path={tiny_beir}")
    if group == "miner" and option == "run_file":
        overrides.append(f"miner.first_stage.path={tmp_path / 'train.trec'}")
    if group == "hparams_search":   # a sweeper setting: checked in the Hydra config it overrides
        from hydra import compose as hydra_compose
        from hydra import initialize_config_dir

        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = hydra_compose(config_name="train", overrides=overrides, return_hydra_config=True)
        assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.direction == "maximize"
        assert cfg.optimized_metric == "dev/ndcg@10" and set(cfg.hydra.sweeper.params) >= {"student.lr"}
        return
    cfg = compose(overrides)
    node = cfg if group == "experiment" else cfg.miner.first_stage if group == "first_stages" else cfg[group]
    if group == "experiment" and option == "label_free":
        assert cfg.data.train_labels is False
        data = instantiate(cfg.data).load(tmp_path / "cache")
        assert data.train_qids == [] and data.qrels["test"]
        weak = instantiate(cfg.weak_supervision, min_words=3, dev_queries=5)
        pseudo = weak.apply(data)
        assert pseudo.label_free and pseudo.train_qids
        # the experiment distils on the train split's queries, their judgments withheld
        assert cfg.weak_supervision.unjudged_queries is True
        assert sorted(weak.unjudged(pseudo).queries) == sorted(set(data.dataset.queries) - set(data.qrels["test"]))
        return
    if group == "experiment" and option == "gpu_strong":
        cfg = compose(["experiment=gpu_strong"])   # the tiny overrides pin one round
        assert cfg.rounds.count == 2 and cfg.trainer.accelerator == "gpu" and cfg.teacher_data.epochs == 2
        assert cfg.teacher.model == "all-mpnet-base-v2" and cfg.teacher_data.negatives == 7   # teacher=mpnet's data
        assert cfg.miner.first_stage._target_.endswith("FusedFirstStage")
        return
    if group == "experiment" and option == "strong_teacher":
        full, plain = compose(["experiment=strong_teacher"]), compose([])  # the tiny overrides would mask it
        t, td = full.teacher, full.teacher_data
        assert (td.negatives, td.batch_size, t.max_length, td.pseudo_queries, t.lr) == (7, 1, 192, 1500, 3e-5)
        # Only the teacher and its data, the student's score scale (its margins are larger) and the training
        # precision (fp32: measured better for this recipe than bf16) differ from the default run.
        assert full.student.scale == "auto" and plain.student.scale == 10.0
        assert full.trainer.precision == "32-true" and plain.trainer.precision == "auto"
        full.student.scale, full.trainer.precision = plain.student.scale, plain.trainer.precision
        mine = ("teacher", "teacher_data")
        assert {k: v for k, v in full.items() if k not in mine} == {k: v for k, v in plain.items() if k not in mine}
        instantiate(cfg.teacher)  # and the group still instantiates (tiny model)
        instantiate(cfg.student)
        return
    if group == "experiment":
        assert cfg.data.max_docs and cfg.cache.teacher is False
        return
    if group == "logger":
        if option == "wandb":
            pytest.importorskip("wandb")
        loggers = stage_loggers(cfg, "teacher", "run")   # logger=none: no experiment logger
        assert [type(lg).__name__ for lg in loggers] == [n._target_.rsplit(".", 1)[1] for n in node.values()]
        if option == "csv":
            assert loggers[0].log_dir == str(tmp_path / "csv" / "teacher")   # one CSV log per stage
        if option == "tensorboard":   # one event file per stage, holding what the stage logged
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

            assert loggers[0].log_dir == str(tmp_path / "tensorboard" / "teacher")
            loggers[0].log_metrics({"teacher/train_loss": 0.25}, step=3)
            loggers[0].finalize("success")
            events = EventAccumulator(loggers[0].log_dir)
            events.Reload()
            assert [(e.step, e.value) for e in events.Scalars("teacher/train_loss")] == [(3, 0.25)]
        return
    if group == "callbacks":
        teacher = instantiate_group(node.teacher, dirpath=str(tmp_path / "t"))
        student = instantiate_group(node.student, dirpath=str(tmp_path / "s"), evaluator="the evaluator",
                                    epoch_offset=3)
        assert teacher[0].dirpath == str(tmp_path / "t") and teacher[0].monitor == "teacher/val_ndcg@10"
        assert student[0].evaluator == "the evaluator" and student[0].epoch_offset == 3
        assert student[1].monitor == cfg.optimized_metric
        return
    if group == "trainer":
        resolve_precisions(cfg)   # as the pipeline does: 'auto' is ours, not Lightning's
        trainer = instantiate(cfg.trainer, accelerator="cpu", devices=1, strategy="auto", logger=False)
        assert isinstance(trainer, pl.Trainer)
        return
    if group == "data":
        obj = instantiate(node).load(tmp_path / "cache")
        assert obj.train_qids and obj.dev_qids and obj.qrels["test"]
        return
    else:
        obj = instantiate(node)
    assert type(obj).__name__ == node._target_.rsplit(".", 1)[1]


def test_default_run_is_two_rounds_with_in_batch_negatives_and_machine_dependent_precision(monkeypatch):
    cfg = compose([])
    assert cfg.rounds.count == 2 and cfg.trainer.precision == "auto" and cfg.inference_precision == "auto"
    assert cfg.student.losses.in_batch.weight == 10   # measured: dev 0.602 -> 0.652, test 0.672 -> 0.711 over 0
    for native, expected in ((True, "bf16-mixed"), (False, "32-true")):
        monkeypatch.setattr(precision, "native_bf16", lambda native=native: native)
        cfg = compose([])
        resolve_precisions(cfg)
        assert (cfg.trainer.precision, cfg.inference_precision) == (expected, expected)
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    cfg = compose(["trainer.precision=32-true"])   # an explicit value is kept even where bf16 is native
    resolve_precisions(cfg)
    assert cfg.trainer.precision == "32-true" and cfg.inference_precision == "bf16-mixed"


def test_eval_config_composes_with_the_shared_groups():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra_compose(config_name="eval", overrides=["data=beir", "data.path=/x", "reranker=/r"])
    assert cfg.model == "all-MiniLM-L6-v2" and cfg.reranker == "/r" and cfg.split == "test"
    settings = instantiate(cfg.evaluation)   # the same evaluation group as train.py, its lengths set in eval.yaml
    # documents at the model's own max_seq_length (None), so an exported student reads what it was evaluated at;
    # no dev split is carved (nothing is chosen here)
    assert (settings.max_doc_length, settings.max_query_length, settings.retrieval_depth) == (None, 64, 100)
    assert cfg.data.dev_size == 0


def _target_nodes(node, path=""):
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node:
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                yield from _target_nodes(child, f"{path}.{key}" if path else str(key))


def test_our_classes_take_their_defaults_from_the_configs_and_never_disagree():
    """One source of truth: where one of our classes has a default for a key the default config sets, it is the
    config's value (a class built outside Hydra behaves as the run does). None defaults mean 'not given' (a feature
    off, a value the run fills) and are not a second value."""
    import dataclasses
    import importlib
    import inspect

    cfg = compose([])
    disagree, covered = [], []   # covered: keys compared whole (student.losses), whose entries are not compared again
    for path, node in _target_nodes(cfg):
        module, _, name = node._target_.rpartition(".")
        if not module.startswith("crossdistill.") or any(path.startswith(c + ".") for c in covered):
            continue
        target = getattr(importlib.import_module(module), name)
        params = inspect.signature(target).parameters
        factories = {f.name: f.default_factory() for f in dataclasses.fields(target)
                     if f.default_factory is not dataclasses.MISSING} if dataclasses.is_dataclass(target) else {}
        for key in node:
            default = factories[key] if key in factories else \
                params[key].default if key in params else inspect.Parameter.empty
            raw = node._get_node(key)._value()
            if default in (inspect.Parameter.empty, None) or (isinstance(raw, str) and "${" in raw) or raw is None:
                continue
            value = OmegaConf.to_container(node[key]) if isinstance(node[key], (DictConfig, ListConfig)) else node[key]
            covered.append(f"{path}.{key}")
            if (list(default) if isinstance(default, tuple) else default) != value:
                disagree.append(f"{path}.{key}: config {value!r}, {node._target_} {default!r}")
    assert disagree == []


def test_loggers_that_keep_files_get_the_runs_files_as_artifacts(tmp_path):
    """wandb runs carry results.json, the report with its plots and the exported student; a CSV log gets none."""
    wandb = pytest.importorskip("wandb")
    from crossdistill.common.instantiate import log_artifacts

    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# report")
    (tmp_path / "report" / "epochs.png").write_bytes(b"png")
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "model.safetensors").write_bytes(b"weights")
    logged = []

    class KeepsFiles:   # what log_artifacts asks of a wandb run
        experiment = type("Run", (), {"log_artifact": staticmethod(logged.append)})()

    csv = pl.loggers.CSVLogger(tmp_path / "csv")
    log_artifacts([csv, KeepsFiles()], "10-54-16", {"results": [tmp_path / "results.json", tmp_path / "report"],
                                                   "model": [tmp_path / "student"]})
    assert all(isinstance(a, wandb.Artifact) for a in logged)
    assert [(a.name, a.type) for a in logged] == [("10-54-16-results", "results"), ("10-54-16-model", "model")]
    assert sorted(logged[0].manifest.entries) == ["report/epochs.png", "report/report.md", "results.json"]
    assert sorted(logged[1].manifest.entries) == ["student/model.safetensors"]
