"""BM25 search speed per backend (``bm25.backend``): the train-query search mining starts from, on the scale
benchmark's synthetic corpus, side by side in one process. Same index settings as the pipeline (Lucene scoring,
stemmer, stopwords, the documents as the pipeline reads them); the runs of both backends are compared (scores, and
documents above each query's k-th score).

    python scripts/benchmark_scale.py --sizes "" --mining-queries 10000    # writes the data folder this reads
    python scripts/benchmark_bm25.py                                         # -> benchmarks/bm25.json, bm25.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_quality import describe, machine  # noqa: E402

DATA = ROOT / "outputs" / "benchmark_scale" / "data"


def agreement(a, b) -> dict:
    """Share of queries whose scores agree (rel 1e-5) and whose documents above the k-th score are the same, in order."""
    same_scores = same_docs = 0
    for qid in a:
        sa, sb = np.asarray([s for _, s in a[qid]]), np.asarray([s for _, s in b[qid]])
        same_scores += len(sa) == len(sb) and bool(np.allclose(sa, sb, rtol=1e-5, atol=1e-6))
        above = [d for d, s in a[qid] if len(sa) and s > sa[-1] + 1e-5]
        same_docs += [d for d, _ in b[qid][:len(above)]] == above
    return {"scores": same_scores / len(a), "documents_above_kth": same_docs / len(a)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA / "docs200000-train10000-test200"))
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--depth", type=int, default=100, help="the BM25 train-query depth mining uses")
    parser.add_argument("--bench-dir", default=str(ROOT / "benchmarks"))
    args = parser.parse_args(argv)
    from crossdistill.data.beir import load_beir
    from crossdistill.retrieval.bm25 import BM25Retriever

    data = load_beir(args.data, splits=("train",))   # validated as the pipeline reads it; documents as it indexes them
    ids, texts = data.doc_ids, data.documents
    queries = dict(list(data.split_queries("train").items())[:args.queries])
    rows, runs = {}, {}
    for backend in ("numpy", "numba"):
        start = time.perf_counter()
        retriever = BM25Retriever(backend=backend).index(ids, texts)
        built = time.perf_counter() - start
        retriever.search(dict(list(queries.items())[:300]), args.depth)   # warm-up (numba compiles here)
        start = time.perf_counter()
        runs[backend] = retriever.search(queries, args.depth)
        searched = time.perf_counter() - start
        rows[backend] = {"index_s": round(built, 1), "search_s": round(searched, 2),
                         "ms_per_query": round(1000 * searched / len(queries), 3)}
        print(f"[bm25] {backend}: index {built:.1f} s, {len(queries)} queries in {searched:.2f} s", flush=True)
    rows["numba"]["agreement_with_numpy"] = agreement(runs["numpy"], runs["numba"])
    bench = {"machine": machine(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "data": Path(args.data).name, "docs": len(ids), "queries": len(queries), "depth": args.depth,
             "backends": rows}
    out = Path(args.bench_dir)
    (out / "bm25.json").write_text(json.dumps(bench, indent=1) + "\n")
    md = ["# BM25 search per backend", "",
          f"Machine: {describe(bench['machine'])}; {bench['date']}. Produced by `python scripts/benchmark_bm25.py` on "
          f"the scale benchmark's `{bench['data']}` ({len(ids):,} synthetic passages), {len(queries):,} of its train "
          f"queries at depth {args.depth} (mining's BM25 train run), both backends side by side in one process "
          "(after a 300-query warm-up, which is when numba compiles). Raw numbers: `benchmarks/bm25.json`.", "",
          "| backend | index s | search s | ms per query | same scores | same documents above the k-th score |",
          "|---|---|---|---|---|---|"]
    for backend, r in rows.items():
        agree = r.get("agreement_with_numpy", {"scores": 1.0, "documents_above_kth": 1.0})
        md.append(f"| {backend} | {r['index_s']} | {r['search_s']} | {r['ms_per_query']} | {agree['scores']:.4f} | "
                  f"{agree['documents_above_kth']:.4f} |")
    (out / "bm25.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
