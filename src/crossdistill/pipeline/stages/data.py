"""The data a run reads, and the BM25 first stage over it."""
from __future__ import annotations

from hydra.utils import instantiate

from crossdistill.pipeline.context import RunContext, bm25_depth
from crossdistill.pipeline.stages.base import Stage


class PrepareData(Stage):
    """The BEIR folder (or the embedded SciFact) loaded and validated, dev carved from train; with no train qrels
    (or ``data.train_labels=false``), title pseudo-queries take their place (label-free mode)."""

    name, provides = "data", ("data",)

    def compute(self, ctx: RunContext, key: str | None) -> None:
        data = instantiate(ctx.cfg.data).load(ctx.layout.data_cache)
        ctx.console.log(f"{data.dataset.name}: {len(data.doc_ids)} docs; {len(data.train_qids)} train / "
                        f"{len(data.dev_qids)} dev / {len(data.qrels['test'])} test queries")
        empty_docs = data.doc_text.count_empty()
        empty_queries = sum(not data.dataset.queries[q].strip() for split in data.qrels.values() for q in split)
        if empty_docs or empty_queries:
            ctx.console.log(f"[yellow]warning: {empty_docs} documents and {empty_queries} judged queries have no text "
                            f"(in {data.dataset.path}); they are kept, but nothing can match them")
        if not data.train_qids and "weak_supervision" in ctx.cfg:
            weak = instantiate(ctx.cfg.weak_supervision)
            data = weak.apply(data)
            ctx.console.log(f"label-free mode (no train qrels): {len(data.train_qids)} train / "
                            f"{len(data.dev_qids)} dev {weak.kind} pseudo-queries"
                            f"{'' if weak.kind_choice == weak.kind else f' ({weak.kind_choice})'}; documents are shown "
                            f"to training {data.train_view}")
        ctx.data = data


class IndexBM25(Stage):
    """BM25 over the corpus (test) and over the view training reads (train and dev; the same index unless
    label-free mode hides titles: its title pseudo-queries must not find their documents by their titles)."""

    name, needs, provides = "bm25", ("data",), ("bm25", "bm25_train", "bm25_runs")

    def compute(self, ctx: RunContext, key: str | None) -> None:
        data, queries = ctx.data, ctx.data.dataset.queries
        ctx.bm25 = instantiate(ctx.cfg.bm25).index(data.doc_ids, data.doc_text)
        ctx.bm25_train = ctx.bm25 if data.train_doc_text is data.doc_text else \
            instantiate(ctx.cfg.bm25).index(data.doc_ids, data.train_doc_text)
        depth = bm25_depth(ctx.cfg)
        ctx.bm25_runs = {split: (ctx.bm25 if split == "test" else ctx.bm25_train).search(
            {q: queries[q] for q in data.qrels[split]}, depth) for split in ("train", "dev", "test")}
