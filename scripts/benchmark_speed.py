"""Issue #30's speed check: the pipeline's inference backends and an exported run's serving path, side by side with
sentence-transformers in one process at equal precision (fp32 on this machine), on the run's own corpus and queries.

    python scripts/benchmark_speed.py outputs/<date>/<time>      # -> benchmarks/speed.json, benchmarks/speed.md

Measured: corpus encoding (documents/s; sentence-transformers' ``encode`` against the pipeline's ``encode`` on each
``inference_backend``: torch, onnx, onnx-int8, openvino), cross-encoder scoring (pairs/s; ``CrossEncoder.predict``
against ``predict_logits`` on each backend), distillation steps (training triples/s; sentence-transformers'
``MarginMSELoss`` on (query, better, worse) triples against our student's step on the same triples as groups), the
share of the machine's measured fp32 matmul peak that encoding reaches, a single query (encode + top 100 over the
whole corpus; p50/p99 over the test queries, one at a time, after a warm-up; the exported files through
``Searcher``), and the express lane (that, plus the reranker over the student's top k). A backend's one-off export
is made before it is timed (and reported). Backends are timed interleaved, several rounds, the median kept, so a
load change on the machine moves them all alike. Quality of the int8 files is the run's own record (results.json
``onnx``). Not measured: GPU columns (no GPU on this machine).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_quality import describe, machine  # noqa: E402


def rate(fn, n: int, rounds: int) -> float:
    """Items per second of ``fn()`` (which handles ``n`` items): the median of ``rounds`` timed calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def latency(fn, queries: list[str], warmup: int = 5) -> dict:
    """p50 / p99 / mean milliseconds of ``fn(query)``, one query at a time."""
    for q in queries[:warmup]:
        fn(q)
    ms = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        ms.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(np.mean(ms)), "n": len(ms)}


FAITHFUL = ("torch", "onnx", "openvino")   # fp32 graphs that reproduce PyTorch (tests/test_runtimes.py)


def backends() -> list[str]:
    from crossdistill.models.runtimes import BACKENDS, missing_runtime

    return [b for b in BACKENDS if not missing_runtime(b)]


def interleaved(fns: dict, n: int, rounds: int) -> dict:
    """Items/s of each ``fn`` (each handles ``n`` items): every round times each once; the median per fn."""
    runs = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            runs[name].append(rate(fn, n, 1))
    return {name: statistics.median(r) for name, r in runs.items()}


def throughput(run: Path, docs, pairs, rounds: int) -> dict:
    """Corpus documents/s and cross-encoder pairs/s: sentence-transformers against the pipeline on each backend."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from crossdistill.models.cross_encoder import predict_logits
    from crossdistill.retrieval.dense import encode

    st = SentenceTransformer(str(run / "student"), device="cpu")
    ce = CrossEncoder(str(run / "teacher"), device="cpu", activation_fn=torch.nn.Identity())
    exports = {}
    for b in backends():   # the one-off export (and compile) of each backend, before any timing
        start = time.perf_counter()
        encode(st, docs[:2], 64, "32", False, st.max_seq_length, b)
        predict_logits(ce, pairs[:2], 64, "32", b)
        exports[b] = time.perf_counter() - start
    corpus = {"sentence_transformers_fp32": lambda: st.encode(docs, batch_size=64, show_progress_bar=False),
              **{b: (lambda b=b: encode(st, docs, 64, "32", False, st.max_seq_length, b)) for b in backends()}}
    scoring = {"sentence_transformers_fp32": lambda: ce.predict(pairs, batch_size=64, show_progress_bar=False),
               **{b: (lambda b=b: predict_logits(ce, pairs, 64, "32", b)) for b in backends()}}
    return {"corpus_docs_per_s": interleaved(corpus, len(docs), rounds),
            "teacher_pairs_per_s": interleaved(scoring, len(pairs), rounds),
            "export_and_compile_s": exports}


def training(run: Path, queries: list[str], docs: list[str], rounds: int, groups: int = 4, per_group: int = 4) -> dict:
    """Distillation triples/s, forward + backward + AdamW step, fp32, dropout on: sentence-transformers'
    ``MarginMSELoss`` on (query, better, worse) triples (three texts each) against our student's step on the same
    triples as ``groups`` groups of a query, its better doc and ``per_group`` worse docs (the default objective:
    margin-MSE + in-batch negatives), both at the student's training lengths."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses as st_losses

    from crossdistill.student.batch import DistillBatch
    from crossdistill.student.module import BiEncoderStudent

    torch.manual_seed(0)
    n = groups * per_group
    better, worse = docs[:groups], docs[groups:groups + n]
    owner = torch.arange(groups).repeat_interleave(per_group)
    margins = torch.randn(n)
    ours = BiEncoderStudent(model=str(run / "student")).train()
    ours_opt = torch.optim.AdamW(ours.parameters(), lr=1e-7)
    batch = DistillBatch(queries[:groups], better, worse, owner, margins)

    def ours_step():
        scored = ours.encode_batch(batch)
        loss = sum(loss.weight * loss.from_batch(scored) for loss in ours.losses.values() if loss.weight)
        loss.backward()
        ours_opt.step()
        ours_opt.zero_grad()

    st = SentenceTransformer(str(run / "student"), device="cpu").train()
    st.max_seq_length = ours.hparams.max_doc_length
    st_loss = st_losses.MarginMSELoss(st)
    st_opt = torch.optim.AdamW(st.parameters(), lr=1e-7)
    texts = ([queries[g] for g in owner.tolist()], [better[g] for g in owner.tolist()], worse)

    def st_step():
        features = [st.preprocess(list(t)) for t in texts]
        st_loss(features, margins).backward()
        st_opt.step()
        st_opt.zero_grad()

    ours_step(), st_step()   # warm-up
    return {"triples_per_step": n, **interleaved({"sentence_transformers_fp32": st_step, "torch": ours_step}, n, rounds)}


def matmul_share(run: Path, docs: list[str], docs_per_s: dict, size: int = 2048) -> dict:
    """The fp32 matmul rate this machine reaches (a [size, size] product, torch's threads) and the share of it that
    encoding reaches: the encoder's matmul FLOPs for ``docs`` (as the pipeline batches and pads them: 64 at a time,
    longest first, 256 tokens at most) times each backend's documents/s."""
    from transformers import AutoConfig, AutoTokenizer

    a, b = torch.randn(size, size), torch.randn(size, size)
    peak = 2 * size ** 3 * rate(lambda: a @ b, 1, 5) / 1e9
    cfg = AutoConfig.from_pretrained(str(run / "student"))
    tok = AutoTokenizer.from_pretrained(str(run / "student"))
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    lengths = sorted((len(ids) for ids in tok(docs, truncation=True, max_length=256)["input_ids"]), reverse=True)
    flops = 0.0
    for start in range(0, len(lengths), 64):
        s, rows = lengths[start], len(lengths[start:start + 64])   # padded to the batch's longest
        flops += layers * rows * (s * (8 * h * h + 4 * h * inter) + 4 * s * s * h)
    per_doc = flops / len(docs) / 1e9
    return {"peak_gflops": peak, "gflop_per_doc": per_doc,
            "share": {name: per_doc * r / peak for name, r in docs_per_s.items()}}


def single_queries(run: Path, queries: list[str]) -> dict:
    from sentence_transformers import SentenceTransformer, util

    from crossdistill.serving.search import BACKENDS, Searcher

    served = [b for b in BACKENDS if b in backends()]
    st = SentenceTransformer(str(run / "student"), device="cpu")
    searchers = {b: Searcher.load(run, backend=b, rerank=False) for b in served}
    doc_emb = torch.from_numpy(np.load(next((run / "serving").glob("corpus-torch-*.npy"))))
    out = {"sentence_transformers_fp32": latency(lambda q: util.semantic_search(
        st.encode([q], convert_to_tensor=True, show_progress_bar=False), doc_emb, top_k=100), queries)}
    out |= {f"searcher_{b}": latency(lambda q, s=s: s.search(q, 100), queries) for b, s in searchers.items()}
    lanes = {b: Searcher.load(run, backend=b) for b in served if b != "torch"}
    k = next(iter(lanes.values())).lane.rerank_depth
    out |= {f"express_lane_{b}": latency(lambda q, s=s: s.search(q, k), queries) for b, s in lanes.items()}
    return out


def render(bench: dict) -> str:
    m, t, q, met = bench["machine"], bench["throughput"], bench["latency"], bench["targets"]
    md = ["# Speed benchmark", "", f"Machine: {describe(m)}; torch {m['torch']}. Run: `{bench['run']}` "
          f"({bench['docs']} documents timed for encoding, {bench['pairs']} pairs for scoring, {q['searcher_onnx']['n']} "
          f"test queries one at a time). Generated by `python scripts/benchmark_speed.py {bench['run']}` on "
          f"{bench['finished']}.", "",
          "Inside the pipeline (`inference_backend=`; each backend's export made before timing, its cost in the last "
          "column):", "", "| backend | corpus docs/s | x ST fp32 | cross-encoder pairs/s | x ST fp32 | export + compile s |",
          "|---|---|---|---|---|---|"]
    base_c, base_t = t["corpus_docs_per_s"]["sentence_transformers_fp32"], t["teacher_pairs_per_s"]["sentence_transformers_fp32"]
    for name, docs_s in t["corpus_docs_per_s"].items():
        pairs_s, export = t["teacher_pairs_per_s"].get(name), t.get("export_and_compile_s", {}).get(name)
        md.append(f"| {name} | {docs_s:.1f} | {docs_s / base_c:.2f} | " + (
            f"{pairs_s:.1f} | {pairs_s / base_t:.2f} |" if pairs_s else "– | – |") + (f" {export:.1f} |" if export else " – |"))
    if "training" in bench:
        tr = bench["training"]
        md += ["", f"Distillation steps (fp32, forward + backward + AdamW, {tr['triples_per_step']} triples a step): "
               f"sentence-transformers' MarginMSELoss {tr['sentence_transformers_fp32']:.1f} triples/s, ours "
               f"{tr['torch']:.1f} triples/s ({tr['torch'] / tr['sentence_transformers_fp32']:.2f}x)."]
    if "matmul" in bench:
        mm = bench["matmul"]
        md += ["", f"Share of the measured fp32 matmul peak ({mm['peak_gflops']:.0f} GFLOP/s, a 2048 x 2048 product) "
               f"that corpus encoding reaches ({mm['gflop_per_doc']:.2f} GFLOP a document as batched): " + ", ".join(
                   f"{name} {share:.0%}" for name, share in mm["share"].items()) + "."]
    md += ["", "Single query (encode + top 100 over the whole corpus) and the express lane (+ the reranker over the "
           "student's top k), the exported files through `Searcher`:", "", "| path | p50 ms | p99 ms | mean ms |",
           "|---|---|---|---|"]
    md += [f"| {name} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['mean_ms']:.2f} |" for name, v in q.items()]
    md += ["", "int8 quality (the run's results.json `onnx` record): " + bench["int8_quality"], "",
           "| target | figure | met |", "|---|---|---|"]
    md += [f"| {name} | {v['figure']} | {'met' if v['met'] else 'not met'} |" for name, v in met.items()]
    return "\n".join(md) + "\n"


def targets(t: dict, q: dict, onnx: dict) -> dict:
    c, p = t["corpus_docs_per_s"], t["teacher_pairs_per_s"]
    best = max(c[b] for b in FAITHFUL if b in c)
    best_pairs = max(p[b] for b in FAITHFUL if b in p)
    served = [b for b in ("onnx", "onnx-int8", "openvino") if f"searcher_{b}" in q]
    query_best = min(q[f"searcher_{b}"]["p50_ms"] for b in served)
    int8 = onnx["cross_encoder"]["int8"]
    # the cross-encoder alone over the student's top k where recorded (the express lane may weigh it 0)
    which = "test_cross_encoder_ndcg@10" if "test_cross_encoder_ndcg@10" in int8 else "test_express_lane_ndcg@10"
    drop = int8[f"{which}_fp32"] - int8[which]
    lane = min(q[f"express_lane_{b}"]["p50_ms"] for b in served)
    rows = {"corpus encoding >= 1.5x ST (fp32, fastest faithful)": (best / c["sentence_transformers_fp32"], 1.5, ">="),
            "cross-encoder scoring >= 1.5x ST (fp32, fastest faithful)": (
                best_pairs / p["sentence_transformers_fp32"], 1.5, ">="),
            "corpus encoding int8 >= 2.5x ST fp32": (c["onnx-int8"] / c["sentence_transformers_fp32"], 2.5, ">="),
            "single query p50 < 3 ms": (query_best, 3.0, "<"),
            "single query p99 < 10 ms": (min(q[f"searcher_{b}"]["p99_ms"] for b in served), 10.0, "<"),
            "single query >= 2.5x faster than ST fp32 encode": (
                q["sentence_transformers_fp32"]["p50_ms"] / query_best, 2.5, ">="),
            "express lane p50 < 60 ms": (lane, 60.0, "<"),
            "int8 reranker nDCG@10 within 0.005 of fp32": (drop, 0.005, "<=")}
    return {name: {"figure": f"{v:.3f}", "met": bool(v >= lim if op == ">=" else v < lim if op == "<" else v <= lim)}
            for name, (v, lim, op) in rows.items()}


def cross_encoder_int8_quality(run: Path) -> dict:
    """For runs whose record predates it: the cross-encoder alone reranking the test shortlists (the trace's fp32
    logits, then the int8 file's), nDCG@10 each."""
    import pandas as pd

    from crossdistill.evaluation.runs import reranked_ndcg
    from crossdistill.models.onnx_models import OnnxCrossEncoder
    from crossdistill.serving.search import run_corpus

    trace = pd.read_parquet(run / "traces" / "test_final.parquet")
    qrels = {q: {d: int(g) for d, g in zip(t.docid, t.label) if g > 0} for q, t in trace.groupby("qid")}
    frame = trace[trace.in_shortlist].reset_index(drop=True)
    docs = run_corpus(run)
    int8 = OnnxCrossEncoder(run / "teacher", "model_qint8.onnx").predict(list(zip(frame["query"], docs.many(frame.docid))))
    return {"test_cross_encoder_ndcg@10": reranked_ndcg(frame, pd.Series(int8), qrels),
            "test_cross_encoder_ndcg@10_fp32": reranked_ndcg(frame, frame.member_cross_encoder, qrels)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run folder with ONNX files and express_lane.json")
    p.add_argument("--docs", type=int, default=1000, help="documents timed for corpus encoding")
    p.add_argument("--pairs", type=int, default=1000, help="(query, document) pairs timed for scoring")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    args = p.parse_args(argv)
    from crossdistill.serving.search import run_corpus

    results = json.loads((args.run / "results.json").read_text())
    corpus = run_corpus(args.run)
    docs = corpus.texts(range(min(args.docs, len(corpus))))
    trace = __import__("pandas").read_parquet(args.run / "traces" / "test_final.parquet").query("in_shortlist")
    pairs = list(zip(trace["query"], corpus.many(trace.docid)))[: args.pairs]
    queries = list(dict.fromkeys(trace["query"]))
    bench = {"run": str(args.run), "machine": machine(), "docs": len(docs), "pairs": len(pairs),
             "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "throughput": throughput(args.run, docs, pairs, args.rounds)}
    bench["matmul"] = matmul_share(args.run, docs, bench["throughput"]["corpus_docs_per_s"])
    bench["training"] = training(args.run, queries, docs, args.rounds)
    bench["latency"] = single_queries(args.run, queries)
    bench["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    onnx = results["onnx"]
    if "test_cross_encoder_ndcg@10" not in onnx["cross_encoder"]["int8"]:
        onnx["cross_encoder"]["int8"] |= cross_encoder_int8_quality(args.run)
    bench["int8_quality"] = (
        f"student test nDCG@10 {onnx['student']['int8']['test']['ndcg@10']:.3f} (fp32 "
        f"{results['systems']['student']['ndcg@10']:.3f}); express lane over the student's top k with the int8 "
        f"cross-encoder {onnx['cross_encoder']['int8']['test_express_lane_ndcg@10']:.3f} (fp32 "
        f"{onnx['cross_encoder']['int8']['test_express_lane_ndcg@10_fp32']:.3f}); the cross-encoder alone over the same "
        f"top k {onnx['cross_encoder']['int8']['test_cross_encoder_ndcg@10']:.3f} (fp32 "
        f"{onnx['cross_encoder']['int8']['test_cross_encoder_ndcg@10_fp32']:.3f})")
    bench["targets"] = targets(bench["throughput"], bench["latency"], onnx)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(bench, indent=1))
    (args.out / "speed.md").write_text(render(bench))
    print(render(bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
