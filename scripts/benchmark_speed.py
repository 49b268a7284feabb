"""Issue #30's speed check: an exported run's student and cross-encoder served by each backend, side by side with
sentence-transformers in one process at equal precision (fp32), on the run's own corpus and test queries.

    python scripts/benchmark_speed.py outputs/<date>/<time>      # -> benchmarks/speed.json, benchmarks/speed.md

Measured: corpus encoding (documents/s; sentence-transformers' ``encode`` against our PyTorch loop, ONNX Runtime
fp32 and int8), cross-encoder scoring (pairs/s; ``CrossEncoder.predict`` against ONNX fp32 and int8), a single
query (encode + top 100 over the whole corpus; p50/p99 over the test queries, one at a time, after a warm-up), and
the express lane (that, plus the reranker over the student's top k). Quality of the int8 files is the run's own
record (results.json ``onnx``). Backends are timed interleaved, several rounds, and the median kept, so a load
change on the machine moves them all alike. Not measured here: training triples/s, the share of the matmul peak,
OpenVINO (an optional extra, not installed by default), GPU columns (none on this machine).
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


def throughput(run: Path, docs, pairs, rounds: int) -> dict:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from crossdistill.retrieval.dense import encode
    from crossdistill.serving.onnx_models import OnnxBiEncoder, OnnxCrossEncoder

    st = SentenceTransformer(str(run / "student"), device="cpu")
    ce = CrossEncoder(str(run / "teacher"), device="cpu")
    onnx = {name: OnnxBiEncoder(run / "student", file) for name, file in (("onnx_fp32", "model.onnx"),
                                                                           ("onnx_int8", "model_qint8.onnx"))}
    onnx_ce = {name: OnnxCrossEncoder(run / "teacher", file) for name, file in (("onnx_fp32", "model.onnx"),
                                                                                 ("onnx_int8", "model_qint8.onnx"))}
    corpus = {"sentence_transformers_fp32": lambda: st.encode(docs, batch_size=64, show_progress_bar=False),
              "ours_torch_fp32": lambda: encode(st, docs, 64, "32", False, st.max_seq_length),
              **{name: (lambda m=m: m.encode(docs, 64)) for name, m in onnx.items()}}
    scoring = {"sentence_transformers_fp32": lambda: ce.predict(pairs, batch_size=64, show_progress_bar=False),
               **{name: (lambda m=m: m.predict(pairs, 64)) for name, m in onnx_ce.items()}}
    out = {}
    for what, fns, n in (("corpus_docs_per_s", corpus, len(docs)), ("teacher_pairs_per_s", scoring, len(pairs))):
        runs = {name: [] for name in fns}
        for _ in range(rounds):   # interleaved: each round times every backend once
            for name, fn in fns.items():
                runs[name].append(rate(fn, n, 1))
        out[what] = {name: statistics.median(r) for name, r in runs.items()}
    return out


def single_queries(run: Path, queries: list[str]) -> dict:
    from sentence_transformers import SentenceTransformer, util

    from crossdistill.serving.search import Searcher

    st = SentenceTransformer(str(run / "student"), device="cpu")
    searchers = {b: Searcher.load(run, backend=b, rerank=False) for b in ("torch", "onnx", "onnx-int8")}
    doc_emb = torch.from_numpy(np.load(next((run / "serving").glob("corpus-torch-*.npy"))))
    out = {"sentence_transformers_fp32": latency(lambda q: util.semantic_search(
        st.encode([q], convert_to_tensor=True, show_progress_bar=False), doc_emb, top_k=100), queries)}
    out |= {f"searcher_{b}": latency(lambda q, s=s: s.search(q, 100), queries) for b, s in searchers.items()}
    lanes = {b: Searcher.load(run, backend=b) for b in ("onnx", "onnx-int8")}
    k = next(iter(lanes.values())).lane.rerank_depth
    out |= {f"express_lane_{b}": latency(lambda q, s=s: s.search(q, k), queries) for b, s in lanes.items()}
    return out


def render(bench: dict) -> str:
    m, t, q, met = bench["machine"], bench["throughput"], bench["latency"], bench["targets"]
    md = ["# Speed benchmark", "", f"Machine: {describe(m)}; torch {m['torch']}. Run: `{bench['run']}` "
          f"({bench['docs']} documents timed for encoding, {bench['pairs']} pairs for scoring, {q['searcher_onnx']['n']} "
          f"test queries one at a time). Generated by `python scripts/benchmark_speed.py {bench['run']}` on "
          f"{bench['finished']}.", "", "| backend | corpus docs/s | x ST fp32 | teacher pairs/s | x ST fp32 |",
          "|---|---|---|---|---|"]
    base_c, base_t = t["corpus_docs_per_s"]["sentence_transformers_fp32"], t["teacher_pairs_per_s"]["sentence_transformers_fp32"]
    for name, docs_s in t["corpus_docs_per_s"].items():
        pairs_s = t["teacher_pairs_per_s"].get(name)
        md.append(f"| {name} | {docs_s:.1f} | {docs_s / base_c:.2f} | " + (
            f"{pairs_s:.1f} | {pairs_s / base_t:.2f} |" if pairs_s else "– | – |"))
    md += ["", "Single query (encode + top 100 over the whole corpus) and the express lane (+ the reranker over the "
           "student's top k):", "", "| path | p50 ms | p99 ms | mean ms |", "|---|---|---|---|"]
    md += [f"| {name} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['mean_ms']:.2f} |" for name, v in q.items()]
    md += ["", "int8 quality (the run's results.json `onnx` record): " + bench["int8_quality"], "",
           "| target | figure | met |", "|---|---|---|"]
    md += [f"| {name} | {v['figure']} | {'met' if v['met'] else 'not met'} |" for name, v in met.items()]
    return "\n".join(md) + "\n"


def targets(t: dict, q: dict, onnx: dict) -> dict:
    c = t["corpus_docs_per_s"]
    best = max(c["onnx_fp32"], c["ours_torch_fp32"])
    query_best = min(q[f"searcher_{b}"]["p50_ms"] for b in ("onnx", "onnx-int8"))
    int8 = onnx["cross_encoder"]["int8"]
    # the cross-encoder alone over the student's top k where recorded (the express lane may weigh it 0)
    which = "test_cross_encoder_ndcg@10" if "test_cross_encoder_ndcg@10" in int8 else "test_express_lane_ndcg@10"
    drop = int8[f"{which}_fp32"] - int8[which]
    lane = min(q[f"express_lane_{b}"]["p50_ms"] for b in ("onnx", "onnx-int8"))
    rows = {"corpus encoding >= 1.5x ST (fp32, fastest faithful)": (best / c["sentence_transformers_fp32"], 1.5, ">="),
            "corpus encoding int8 >= 2.5x ST fp32": (c["onnx_int8"] / c["sentence_transformers_fp32"], 2.5, ">="),
            "single query p50 < 3 ms": (query_best, 3.0, "<"),
            "single query p99 < 10 ms": (min(q[f"searcher_{b}"]["p99_ms"] for b in ("onnx", "onnx-int8")), 10.0, "<"),
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
    from crossdistill.serving.onnx_models import OnnxCrossEncoder
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
             "throughput": throughput(args.run, docs, pairs, args.rounds), "latency": single_queries(args.run, queries)}
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
