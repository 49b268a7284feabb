"""Transfer: the run's students on collections they never trained on (``evaluation.transfer``), beside BM25: the
zero-shot start and the kept student of a training run (what distillation costs or gains there: forgetting), or the
evaluated model of eval.py. Each collection's test split, the whole corpus searched, no reranking."""
from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from crossdistill.data.source import BeirSource
from crossdistill.evaluation.evaluator import HEADLINE, RetrievalEvaluator
from crossdistill.evaluation.metrics import evaluate
from crossdistill.models.bi_encoder import load_bi_encoder
from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage


def collection_name(path: str) -> str:
    name = Path(path).name
    return name.split(".")[0] if name.endswith((".tar.gz", ".tgz")) else name


def transfer_record(cfg, path: str, models: dict, data_cache: Path) -> dict:
    """One collection: its size, BM25's and each model's test metrics, and each model's nDCG@10 against the first
    (the zero-shot start)."""
    data = BeirSource(path=path, dev_size=0).load(data_cache)
    qrels = data.qrels["test"]
    settings = instantiate(cfg.evaluation, show_progress=False)
    bm25 = instantiate(cfg.bm25).index(data.doc_ids, data.doc_text)
    bm25_run = bm25.search({q: data.dataset.queries[q] for q in qrels}, settings.retrieval_depth)
    ev = RetrievalEvaluator(settings, data.doc_text, data.dataset.queries, {"test": qrels}, {"test": bm25_run})
    systems = {"bm25": evaluate(bm25_run, qrels, HEADLINE)}
    systems |= {name: ev.evaluate(encoder, "test", f"transfer_{name}", 0).metrics for name, encoder in models.items()}
    first = next(iter(models))
    return {"path": str(path), "docs": len(data.doc_ids), "queries": len(qrels), "systems": systems,
            "ndcg@10_vs_start": {name: systems[name]["ndcg@10"] - systems[first]["ndcg@10"] for name in models}}


class TransferTest(Stage):
    """After the test: each collection of ``evaluation.transfer`` (a BEIR folder or archive), its test split."""

    name, needs, provides, rank_zero_only = "transfer", ("student",), ("transfer",), True

    def applies(self, ctx: RunContext) -> bool:
        return bool(OmegaConf.select(ctx.cfg, "evaluation.transfer"))

    def compute(self, ctx: RunContext, key: str | None) -> None:
        cfg = ctx.cfg
        if "student" in cfg:   # a training run: its start, then the student it kept (loaded by the test)
            models = {"student_init": load_bi_encoder(cfg.student.model, cfg.student.normalize),
                      "student": ctx.student.encoder}
        else:                  # eval.py: the model evaluated
            models = {"model": ctx.student}
        ctx.transfer = {}
        for path in cfg.evaluation.transfer:
            record = transfer_record(cfg, str(path), models, ctx.layout.data_cache)
            ctx.transfer[collection_name(str(path))] = record
            ctx.console.log(f"transfer {collection_name(str(path))} ({record['docs']} docs, {record['queries']} queries): "
                            + ", ".join(f"{n} {m['ndcg@10']:.3f}" for n, m in record["systems"].items()) + " nDCG@10")
