"""The composed config checked before any stage runs: a bad value, an argument its class does not take, a model
that cannot be found or a folder that cannot be written is one line naming the key, the value and what is
allowed (exit code 2), within seconds and before anything is written."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from crossdistill.evaluation.metrics import parse_metric
from crossdistill.models.runtimes import BACKENDS, missing_runtime
from crossdistill.teacher.losses import LOSSES

PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "bf16-true", "bf16", "16-mixed", "16-true", "16", "64-true")
# Set by the stages for each training stage; a value in trainer/ would be silently overridden.
STAGE_SET = {"max_epochs": "teacher_data.epochs / student_data.epochs", "callbacks": "the callbacks group",
             "logger": "the logger group", "default_root_dir": "paths.output_dir"}
_ABSENT = object()


class ConfigError(ValueError):
    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r}: {allowed}")


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], bool]
    allowed: str


def integer(low: int | None = None, high: int | None = None) -> Rule:
    bounds = " and ".join(b for b in (f">= {low}" if low is not None else "",
                                      f"<= {high}" if high is not None else "") if b)
    return Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)
                and (high is None or v <= high), f"must be an integer{' ' + bounds if bounds else ''}")


def number(gt: float | None = None, ge: float | None = None, lt: float | None = None) -> Rule:
    bounds = " and ".join(b for b in (f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
                                      f"< {lt}" if lt is not None else "") if b)
    return Rule(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and (gt is None or v > gt)
                and (ge is None or v >= ge) and (lt is None or v < lt),
                f"must be a number{' ' + bounds if bounds else ''}")


def choice(*options) -> Rule:
    return Rule(lambda v: v in options, f"must be one of {', '.join(map(str, options))}")


def either(*rules: Rule) -> Rule:
    return Rule(lambda v: any(r.check(v) for r in rules), " or ".join(r.allowed.removeprefix("must be ")
                                                                       for r in rules).join(("must be ", "")))


BOOLEAN = Rule(lambda v: isinstance(v, bool), "must be true or false")
NONE = Rule(lambda v: v is None, "null")
POSITIVE, COUNT, FRACTION = integer(1), integer(0), number(ge=0, lt=1)
RULES: dict[str, Rule] = {
    "seed": integer(0), "verbose": BOOLEAN, "keep_checkpoints": BOOLEAN, "rounds.count": POSITIVE,
    "rounds.keep_zero_shot": BOOLEAN, "rounds.teacher_must_beat_start": BOOLEAN,
    "inference_precision": choice(*PRECISIONS), "inference_backend": choice(*BACKENDS),
    "trainer.precision": choice(*PRECISIONS),
    "data.dev_size": either(COUNT, number(gt=0, lt=1)), "data.max_docs": either(NONE, POSITIVE),
    "teacher.max_length": integer(8), "teacher.loss": choice(*LOSSES), "teacher.lr": number(gt=0),
    "teacher.weight_decay": number(ge=0), "teacher.warmup_ratio": FRACTION, "teacher.inference_batch_size": POSITIVE,
    "teacher_data.negatives": POSITIVE, "teacher_data.negative_depth": POSITIVE, "teacher_data.val_depth": POSITIVE,
    "teacher_data.pseudo_queries": COUNT, "teacher_data.title_min_words": POSITIVE,
    "teacher_data.batch_size": POSITIVE, "teacher_data.val_batch_size": POSITIVE, "teacher_data.epochs": POSITIVE,
    "student.normalize": BOOLEAN, "student.scale": either(number(gt=0), choice("auto")),
    "student.max_query_length": integer(8), "student.max_doc_length": integer(8),
    "student.eval_max_doc_length": integer(8), "student.lr": number(gt=0), "student.weight_decay": number(ge=0),
    "student.warmup_ratio": FRACTION, "student.losses.kl.temperature": number(gt=0),
    "student_data.batch_size": POSITIVE, "student_data.epochs": POSITIVE,
    "miner.depth": POSITIVE, "rounds.miner.depth": POSITIVE, "pairs.pairs_per_query": POSITIVE, "pairs.top": POSITIVE,
    "evaluation.retrieval_depth": POSITIVE, "evaluation.rerank_depth": POSITIVE,
    "evaluation.shortlist": choice("student", "hybrid"), "evaluation.batch_size": POSITIVE,
    "evaluation.teacher_batch_size": POSITIVE, "evaluation.lift_k": POSITIVE,
    "evaluation.epoch_corpus": choice("full", "sample"), "evaluation.embeddings": choice("memory", "disk"),
    "evaluation.epoch_sample": COUNT,
    "ensemble.choose_on": choice("student", "hybrid"), "ensemble.saturated": number(gt=0),
    "weak_supervision.train_queries": POSITIVE, "weak_supervision.dev_queries": POSITIVE,
    "weak_supervision.min_words": POSITIVE, "weak_supervision.distill_queries": COUNT,
    "weak_supervision.kind": choice("title", "sentence", "auto"), "weak_supervision.max_words": POSITIVE,
    "weak_supervision.unjudged_queries": BOOLEAN,
    "bm25.backend": choice("numpy", "numba"),
    "evaluation.index.kind": choice("flat", "hnsw", "ivf"), "evaluation.index.hnsw_m": integer(2),
    "evaluation.index.ef_construction": POSITIVE, "evaluation.index.ef_search": POSITIVE,
    "evaluation.index.nlist": either(NONE, POSITIVE), "evaluation.index.nprobe": POSITIVE,
    "evaluation.index.batch_size": POSITIVE,
    "interpolation.alphas": Rule(lambda v: isinstance(v, ListConfig | list) and len(v) > 0 and all(
        isinstance(a, int | float) and not isinstance(a, bool) and 0 <= a <= 1 for a in v),
        "must be a non-empty list of numbers in [0, 1] (the distilled student's weight; [1.0] = off)"),
    "interpolation.tolerance": number(ge=0),
}


def _check_values(cfg: DictConfig) -> None:
    for key, rule in RULES.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and not rule.check(value):
            raise ConfigError(key, value, rule.allowed)
    if OmegaConf.select(cfg, "bm25.backend") == "numba" and importlib.util.find_spec("numba") is None:
        raise ConfigError("bm25.backend", "numba", "needs numba installed (pip install \"crossdistill[numba]\")")
    index = OmegaConf.select(cfg, "evaluation.index._target_")
    if index is not None and index.endswith(".FaissSearch") and importlib.util.find_spec("faiss") is None:
        raise ConfigError("evaluation.index", f"faiss_{OmegaConf.select(cfg, 'evaluation.index.kind')}",
                          "needs faiss installed (pip install \"crossdistill[faiss]\")")
    loggers = {str(node.get("_target_", "")).rsplit(".", 1)[-1] for node in (cfg.get("logger") or {}).values()
               if isinstance(node, DictConfig)}
    needs = {"TensorBoardLogger": ("tensorboard", "tensorboard"), "WandbLogger": ("wandb", "wandb")}
    for logger, (module, extra) in needs.items():
        if logger in loggers and importlib.util.find_spec(module) is None:
            raise ConfigError("logger", extra, f"needs {module} installed (pip install \"crossdistill[{extra}]\")")
    if OmegaConf.select(cfg, "export.onnx") and any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")):
        raise ConfigError("export.onnx", True, "needs onnx and onnxruntime installed (pip install \"crossdistill[onnx]\"), "
                          "or export.onnx=false")
    backend = OmegaConf.select(cfg, "inference_backend")
    if backend in BACKENDS and missing_runtime(backend):
        extra = "openvino" if backend == "openvino" else "onnx"
        raise ConfigError("inference_backend", backend, f"needs {missing_runtime(backend)} installed "
                          f"(pip install \"crossdistill[{extra}]\"), or inference_backend=torch")
    retrieval, rerank = (OmegaConf.select(cfg, f"evaluation.{k}") for k in ("retrieval_depth", "rerank_depth"))
    if retrieval is not None and rerank is not None and rerank > retrieval:
        raise ConfigError("evaluation.rerank_depth", rerank, f"must be <= evaluation.retrieval_depth ({retrieval})")
    if OmegaConf.select(cfg, "data.dev_size") == 0:
        if "student" in cfg and OmegaConf.select(cfg, "data.train_labels", default=True):
            raise ConfigError("data.dev_size", 0, "must be > 0 for training: dev chooses the kept epoch")
        if cfg.get("split") == "dev":
            raise ConfigError("data.dev_size", 0, "must be > 0 with split=dev (dev is carved from the train queries)")
    metric = cfg.get("optimized_metric")
    if metric is not None:
        split, _, name = str(metric).partition("/")
        try:
            parse_metric(name)
        except ValueError:
            split = ""
        if split != "dev":
            raise ConfigError("optimized_metric", metric, "must be dev/<metric>, e.g. dev/ndcg@10 (test never chooses)")
    for key, where in STAGE_SET.items():
        if key in cfg.get("trainer", {}):
            raise ConfigError(f"trainer.{key}", cfg.trainer[key], f"is set per stage by {where}; remove it")


def _check_losses(cfg: DictConfig) -> None:
    """``student.losses``: each term a ``_target_`` with a weight >= 0, at least one weight > 0."""
    losses = OmegaConf.select(cfg, "student.losses")
    if losses is None:
        return
    weight = number(ge=0)
    for name, node in losses.items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"student.losses.{name}", node, "must be {_target_: <a DistillLoss class>, weight: ...}")
        if not weight.check(node.get("weight", 1.0)):
            raise ConfigError(f"student.losses.{name}.weight", node.get("weight"), weight.allowed)
    if not any(node.get("weight", 1.0) for node in losses.values()):
        raise ConfigError("student.losses", "all weights 0", "needs at least one loss with a weight > 0")


def _arguments(target: str) -> tuple[set[str], bool] | None:
    """The keyword arguments ``target`` takes, and whether it takes any (**kwargs); None if it cannot be imported."""
    module, _, name = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    params = inspect.signature(obj).parameters.values()
    return {p.name for p in params}, any(p.kind is p.VAR_KEYWORD for p in params)


def _check_ensemble(cfg: DictConfig) -> None:
    ensemble = cfg.get("ensemble")
    if ensemble is None:
        return
    known = (*(ensemble.get("catalog") or {}), *(ensemble.get("bi_encoders") or {}))
    for key in ("members", "express_lane"):
        for member in ensemble.get(key) or []:
            if member not in known:
                raise ConfigError(f"ensemble.{key}", member, f"must be one of {', '.join(known)} "
                                  "(a member kind is an entry in ensemble.catalog, or in ensemble.bi_encoders)")
    weights = ensemble.get("weights")
    if isinstance(weights, str) and weights != "dev":
        raise ConfigError("ensemble.weights", weights, "must be dev or a mapping member -> weight")
    if isinstance(weights, DictConfig):
        for member, value in weights.items():
            if member not in (ensemble.get("members") or []) or not number(ge=0).check(value):
                raise ConfigError(f"ensemble.weights.{member}", value, "must be a weight >= 0 of a member in "
                                  "ensemble.members")
        if not any(weights.values()):
            raise ConfigError("ensemble.weights", dict(weights), "needs at least one non-zero weight")
    grid = ensemble.get("grid")
    weight = number(ge=0)
    if grid is not None and not (all(weight.check(v) for v in grid) and any(v > 0 for v in grid)):
        raise ConfigError("ensemble.grid", list(grid), "must be weights >= 0, at least one of them > 0")


def _check_arguments(node: Any, path: str = "") -> None:
    """Every ``_target_`` node's keys against its class's arguments (a typo is never silently dropped)."""
    if not isinstance(node, DictConfig) or path in ("hydra", "paths"):
        return
    target = node.get("_target_")
    if target is not None:
        args = _arguments(target)
        if args is None:
            raise ConfigError(f"{path}._target_", target, "must name an importable class or function")
        names, any_kwargs = args
        for key in node:
            if not str(key).startswith("_") and key not in names and not any_kwargs:
                raise ConfigError(f"{path}.{key}", node[key], f"is not an argument of {target}; it takes "
                                  f"{', '.join(sorted(n for n in names if n != 'self'))}")
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _check_arguments(child, f"{path}.{key}" if path else str(key))


def _check_writable(cfg: DictConfig) -> None:
    for key in ("paths.output_dir", "paths.cache_dir"):
        folder = OmegaConf.select(cfg, key)
        if folder is None:
            continue
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as err:
            raise ConfigError(key, str(folder), f"must be a folder this process can write ({os.strerror(err.errno)})"
                              if err.errno else f"must be a folder this process can write ({err})") from None


def _check_files(cfg: DictConfig) -> None:
    """Files the run reads later (a run file mining or evaluation takes shortlists from) exist now, before the
    teacher trains."""
    for i, path in enumerate(OmegaConf.select(cfg, "evaluation.transfer", default=None) or []):
        folder = Path(str(path)).expanduser()
        if not (folder / "corpus.jsonl").is_file() and not (folder.is_file() and folder.name.endswith((".tar.gz", ".tgz"))):
            raise ConfigError(f"evaluation.transfer[{i}]", str(path), "must be a BEIR folder (corpus.jsonl, queries.jsonl, "
                              "qrels/test.tsv) or a <name>.beir.tar.gz archive of one")
    for key in ("miner.first_stage.path", "rounds.miner.first_stage.path", "run_file"):
        path = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if isinstance(path, str) and path != "???" and not Path(path).expanduser().is_file():
            raise ConfigError(key, path, "must be an existing TREC run file (qid Q0 docid rank score tag)")


def _check_models(cfg: DictConfig) -> None:
    from crossdistill.models import ModelNotFound, resolve_model

    bi_encoders = OmegaConf.select(cfg, "ensemble.bi_encoders") or {}
    catalog = OmegaConf.select(cfg, "ensemble.catalog") or {}
    used = {*(OmegaConf.select(cfg, "ensemble.members") or []), *(OmegaConf.select(cfg, "ensemble.express_lane") or [])}
    keys = ["teacher.model", "student.model", "model", "reranker",
            *(f"ensemble.bi_encoders.{name}" for name in bi_encoders if name in used),
            *(f"ensemble.catalog.{name}.model" for name, node in catalog.items() if name in used and "model" in node)]
    for key in keys:
        ref = OmegaConf.select(cfg, key)
        if ref:
            try:
                resolve_model(ref)
            except ModelNotFound as err:
                raise ConfigError(key, ref, str(err).removeprefix(f"model {ref!r} ")) from None


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first problem found; cheap checks first, model references and folders last."""
    _check_values(cfg)
    _check_losses(cfg)
    _check_ensemble(cfg)
    _check_arguments(cfg)
    _check_files(cfg)
    _check_models(cfg)
    _check_writable(cfg)
