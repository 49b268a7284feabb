"""Issue #15's search check: each FAISS backend's recall@100 against exact search, and its build and search time, on
the scale benchmark's largest corpus (the tiny encoder's zero-shot embeddings, cached by that run) with its test
queries. The backends are the configs users pick (``evaluation/index=...``), instantiated as the pipeline does.

    python scripts/benchmark_scale.py --sizes 1000000     # writes the embeddings this reads (its cache)
    python scripts/benchmark_index.py                     # -> benchmarks/index.json, benchmarks/index.md

The tiny encoder's embeddings of synthetic word bags have no cluster structure, the worst case for approximate
search, and retrieve almost nothing, so recall against the judgments says little there. ``--embeddings static``
measures the same backends on text that has topics: SciFact's 5,183 documents (with their test queries and
judgments) among distractor passages made of SciFact sentences (three from one document, one from another) up to
``--docs``, embedded by all-MiniLM-L6-v2's token table mean-pooled (sentence-transformers' StaticEmbedding: the
packaged model's own vectors, fast enough for a million passages on 2 cores; no contextual encoder runs).

    python scripts/benchmark_index.py --embeddings static     # the section "static" of the same files
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_quality import describe, machine  # noqa: E402

SCALE = ROOT / "outputs" / "benchmark_scale"
INDEXES = ("faiss_flat", "faiss_hnsw", "faiss_ivf")
SWEEP = {"ef_search": [128, 512, 2048], "nprobe": [32, 256, 1024]}   # the shipped value is one of them


def test_qrels(data: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        if line:
            qid, docid, grade = line.split("\t")
            qrels.setdefault(qid, {})[docid] = int(grade)
    return qrels


def test_queries(data: Path) -> dict[str, str]:
    judged = {line.split("\t")[0] for line in (data / "qrels" / "test.tsv").read_text().splitlines()[1:] if line}
    rows = (json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines() if line)
    return {q["_id"]: q["text"] for q in rows if q["_id"] in judged}


def static_corpus(n_docs: int, seed: int = 0) -> tuple[list[str], list[str], dict[str, str], dict]:
    """SciFact's documents as they are, then distractors ``x0..`` up to ``n_docs``: each three sentences (in their
    order) of one SciFact document and one sentence of another; SciFact's test queries and judgments.

    A distractor never takes its document's first sentence (which carries the title): one that opens as a real
    document does is, to an encoder that truncates (the StaticEmbedding reads 128 tokens), a copy of it, relevant
    but judged not, and exact copies tie, so which of them enters a top 100 is arbitrary (2026-11-29: 3 judged
    documents tied that way, 0.008 of judged recall between two exact searches)."""
    import numpy as np

    from crossdistill.data.beir import load_beir
    from crossdistill.data.corpus import texts_of
    from crossdistill.data.embedded import scifact_path
    from crossdistill.data.weak import split_sentences

    data = load_beir(scifact_path(ROOT / ".cache"), splits=("test",))
    doc_ids = data.doc_ids
    texts = texts_of(data.documents, doc_ids)
    sentences = [split_sentences(t) for t in texts]
    rng = np.random.default_rng(seed)
    # another document: a shift of 1..n-1 from the source
    source = rng.integers(0, len(texts), n_docs)
    other = (source + rng.integers(1, len(texts), n_docs)) % len(texts)
    for i in range(max(0, n_docs - len(texts))):
        own, more = sentences[source[i]][1:], sentences[other[i]]
        picked = sorted(rng.choice(len(own), size=min(3, len(own)), replace=False)) if own else []
        extra = [more[rng.integers(len(more))]] if more else []
        doc_ids.append(f"x{i}")
        texts.append(" ".join([own[j] for j in picked] + extra))
    queries = data.split_queries("test")
    return doc_ids, texts, queries, data.qrels["test"]


def static_encoder():
    """all-MiniLM-L6-v2's input token vectors, mean-pooled: a sentence-transformers StaticEmbedding model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from transformers import AutoModel, AutoTokenizer

    from crossdistill.models.references import resolve_model

    path = resolve_model("all-MiniLM-L6-v2")
    weights = AutoModel.from_pretrained(path).get_input_embeddings().weight.detach()
    return SentenceTransformer(modules=[StaticEmbedding(AutoTokenizer.from_pretrained(path), embedding_weights=weights)],
                               device="cpu")


def static_embeddings(n_docs: int, work: Path):
    """(doc_emb, doc_ids, q_emb, qids, qrels) of the static-embedding corpus; the embeddings cached under ``work``."""
    doc_ids, texts, queries, qrels = static_corpus(n_docs)
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]   # the corpus's content, not its size
    model, path = static_encoder(), work / f"static-docs{n_docs}-{digest}.pt"
    if path.exists():
        doc_emb = torch.load(path, weights_only=True)
    else:
        start = time.perf_counter()
        doc_emb = model.encode(texts, batch_size=4096, convert_to_tensor=True, normalize_embeddings=True)
        print(f"[index] encoded {len(texts):,} passages in {time.perf_counter() - start:.0f} s", flush=True)
        work.mkdir(parents=True, exist_ok=True)
        torch.save(doc_emb, path)
    qids = list(queries)
    q_emb = model.encode([queries[q] for q in qids], convert_to_tensor=True, normalize_embeddings=True)
    return doc_emb, doc_ids, q_emb, qids, qrels


def scale_embeddings(n_docs: int, work: Path):
    """(doc_emb, doc_ids, q_emb, qids, qrels): the tiny encoder's zero-shot corpus embeddings the scale benchmark
    cached, and its test queries."""
    from crossdistill.models.bi_encoder import load_bi_encoder
    from crossdistill.retrieval.dense import encode

    data = work / "data" / f"docs{n_docs}-train1000-test200"
    cached = sorted((work / f"cache-docs{n_docs}-train1000" / "evaluation" / "corpus_embeddings").glob("*.pt"),
                    key=lambda p: p.stat().st_mtime)
    if not cached or not data.exists():
        raise SystemExit(f"no cached corpus embeddings for {n_docs} documents: run benchmark_scale.py first")
    doc_emb = torch.load(cached[-1], map_location="cpu", weights_only=True)
    doc_ids = [f"d{i}" for i in range(doc_emb.shape[0])]   # benchmark_scale writes documents d0..d{n-1} in order
    queries = test_queries(data)
    encoder = load_bi_encoder(str(work / "tiny-encoder"), normalize=True)
    q_emb = encode(encoder, list(queries.values()), 256, "32", False, 64)
    return doc_emb, doc_ids, q_emb, list(queries), test_qrels(data)


DESCRIPTION = {
    "scale": "the scale benchmark's {docs:,}-document corpus (tiny encoder, {dim} dims, zero-shot embeddings) with "
             "its {queries} test queries. The tiny encoder's embeddings are barely clustered, a hard case for "
             "approximate search.",
    "static": "SciFact's 5,183 documents among distractor passages of SciFact sentences, {docs:,} in all, embedded "
              "by all-MiniLM-L6-v2's token vectors mean-pooled (sentence-transformers StaticEmbedding, {dim} dims), "
              "with SciFact's {queries} test queries and judgments: text with topics, as real corpora have.",
}


def render(runs: dict, depth: int) -> str:
    judged = f"recall@{depth}"
    md = ["# Dense search backends at scale", "",
          f"Produced by `python scripts/benchmark_index.py` (`--embeddings scale`, the default, and `--embeddings "
          f"static`); raw numbers in `benchmarks/index.json`. recall@{depth} vs exact = the share of exact search's "
          f"top {depth} each backend also returns; {judged} (judged) = the retrieval metric against the judgments, "
          "and its difference from exact search's (the issue's target: within 0.01)."]
    for kind, bench in runs.items():
        results = bench["results"]
        md += ["", f"## {kind} embeddings", "",
               f"Machine: {describe(bench['machine'])}; {bench['finished']}. On "
               + DESCRIPTION[kind].format(**bench) + (f" Corpus built and encoded in {bench['prepare_s']:.0f} s."
                                                      if "prepare_s" in bench else ""), "",
               f"| backend | config | build s | search s | recall@{depth} vs exact | {judged} (judged) | vs exact |",
               "|---|---|---|---|---|---|---|"]
        for name, r in results.items():
            config = ", ".join(f"{k}={v}" for k, v in r.get("config", {}).items() if k != "kind") or "–"
            md.append(f"| {name} | {config} | {r.get('build_s', 0):.1f} | {r['search_s']:.2f} | "
                      f"{r['recall_vs_exact']:.4f} | {r[judged]:.4f} | {r[judged] - results['exact'][judged]:+.4f} |")
        md += [f"\n{note}" for note in bench.get("notes", [])]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", choices=("scale", "static"), default="scale")
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--work", default=str(SCALE))
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--bench-dir", default=str(ROOT / "benchmarks"))
    args = parser.parse_args(argv)
    from crossdistill.evaluation.metrics import evaluate
    from crossdistill.retrieval.dense import exact_search
    from crossdistill.retrieval.index import recall_against_exact

    start = time.perf_counter()
    if args.embeddings == "scale":
        doc_emb, doc_ids, q_emb, qids, qrels = scale_embeddings(args.docs, Path(args.work))
    else:
        doc_emb, doc_ids, q_emb, qids, qrels = static_embeddings(args.docs, ROOT / "outputs" / "benchmark_index")
    prepared = time.perf_counter() - start
    judged = f"recall@{args.depth}"
    start = time.perf_counter()
    exact = exact_search(q_emb, doc_emb, qids, doc_ids, args.depth)
    results = {"exact": {"search_s": round(time.perf_counter() - start, 2), "recall_vs_exact": 1.0,
                         judged: round(evaluate(exact, qrels, (judged,))[judged], 4)}}
    print(f"[index] exact: {results['exact']}", flush=True)
    for name in INDEXES:
        cfg = yaml.safe_load((ROOT / "src" / "crossdistill" / "configs" / "evaluation" / "index" / f"{name}.yaml").read_text())
        index = instantiate(cfg)
        start = time.perf_counter()
        index._built = (doc_emb, index._build(doc_emb.float().numpy()))
        built = time.perf_counter() - start
        # The search-time knob swept over the one built index, narrowest search first.
        knob, values = {"faiss_hnsw": ("ef_search", SWEEP["ef_search"]),
                        "faiss_ivf": ("nprobe", SWEEP["nprobe"])}.get(name, (None, [None]))
        for value in values:
            if knob == "ef_search":
                index.ef_search = index._built[1].hnsw.efSearch = value
            elif knob == "nprobe":
                index.nprobe = index._built[1].nprobe = value
            start = time.perf_counter()
            run = index.search(q_emb, doc_emb, qids, doc_ids, args.depth)
            label = name if knob is None else f"{name} ({knob}={value}{', shipped' if value == cfg[knob] else ''})"
            results[label] = {"build_s": round(built, 2), "search_s": round(time.perf_counter() - start, 2),
                              "recall_vs_exact": round(recall_against_exact(run, exact, args.depth), 4),
                              judged: round(evaluate(run, qrels, (judged,))[judged], 4),
                              "config": index.describe()}
            print(f"[index] {label}: {results[label]}", flush=True)
    bench = {"machine": machine(), "docs": doc_emb.shape[0], "dim": doc_emb.shape[1], "queries": len(qids),
             "depth": args.depth, "results": results,
             "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if args.embeddings == "static":
        bench["prepare_s"] = round(prepared, 1)   # corpus built and encoded (or read back from the cache)
    out = Path(args.bench_dir)
    path = out / "index.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs = runs.get("runs", {"scale": runs} if runs else {})   # the file once held the scale run alone
    runs[args.embeddings] = {**bench, "notes": runs.get(args.embeddings, {}).get("notes", [])}
    path.write_text(json.dumps({"runs": runs}, indent=2))
    (out / "index.md").write_text(render(runs, args.depth))


if __name__ == "__main__":
    main()
