"""Issue #15's scale benchmark: the framework's own cost as the corpus grows, with a tiny encoder so that model cost
does not hide it.

    python scripts/benchmark_scale.py                           # 10k, 100k and 1M documents
    python scripts/benchmark_scale.py --sizes 10000,100000      # a subset
    python scripts/benchmark_scale.py --sizes "" --mining-queries 10000,100000 --mining-docs 200000

For each size a synthetic BEIR folder is written from SciFact's vocabulary (words drawn by their SciFact frequency,
passages of MS MARCO length; each query is words of one planted relevant passage plus a random one), then one
`python train.py` runs data -> BM25 -> teacher (one epoch) -> zero-shot student -> mining -> one distillation epoch
-> test evaluation over the whole corpus, with a 2-layer, 32-wide BERT (MiniLM's tokenizer) as teacher and student
and the per-epoch dev evaluation on a sample (`evaluation.epoch_corpus=sample`). Wall time and peak memory per stage
come from the run's results.json; the growth exponent of each stage between two sizes is
log(t2 / t1) / log(n2 / n1) (1 = linear). Results: benchmarks/scale.json and benchmarks/scale.md.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_quality import describe, machine  # noqa: E402

WORK = ROOT / "outputs" / "benchmark_scale"
PASSAGE_WORDS, TITLE_WORDS = (40, 80), 6


def scifact_vocabulary(top: int = 30_000) -> tuple[list[str], np.ndarray]:
    """SciFact's words and their frequencies (the embedded archive's corpus)."""
    from crossdistill.data.embedded import EMBEDDED_ARCHIVE

    counts: collections.Counter = collections.Counter()
    with tarfile.open(EMBEDDED_ARCHIVE, "r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("corpus.jsonl"))
        for line in tar.extractfile(member):
            doc = json.loads(line)
            counts.update(re.findall(r"[a-z][a-z0-9-]+", f"{doc.get('title', '')} {doc['text']}".lower()))
    words, freq = zip(*counts.most_common(top))
    return list(words), np.asarray(freq, dtype=np.float64) / sum(freq)


def write_corpus(folder: Path, n_docs: int, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A BEIR folder: ``n_docs`` passages, ``n_train`` + ``n_test`` queries with one planted relevant passage each."""
    if (folder / "qrels" / "test.tsv").exists():
        return folder
    rng = np.random.default_rng(seed)
    words, p = scifact_vocabulary()
    words = np.asarray(words)
    folder.mkdir(parents=True, exist_ok=True)
    lengths = rng.integers(*PASSAGE_WORDS, size=n_docs)
    relevant = rng.choice(n_docs, size=n_train + n_test, replace=False)
    is_relevant = set(relevant.tolist())
    planted: dict[int, list[str]] = {}   # the relevant passages' words, to draw their queries from
    with open(folder / "corpus.jsonl", "w") as f:
        for start in range(0, n_docs, 50_000):
            stop = min(n_docs, start + 50_000)
            drawn = words[rng.choice(len(words), size=int(lengths[start:stop].sum()) + TITLE_WORDS * (stop - start),
                                     p=p)]
            at = 0
            for i in range(start, stop):
                title, body = drawn[at:at + TITLE_WORDS], drawn[at + TITLE_WORDS:at + TITLE_WORDS + lengths[i]]
                at += TITLE_WORDS + lengths[i]
                f.write(json.dumps({"_id": f"d{i}", "title": " ".join(title), "text": " ".join(body)}) + "\n")
                if i in is_relevant:
                    planted[i] = list(body)
    with open(folder / "queries.jsonl", "w") as f:
        for q, doc in enumerate(relevant):
            body = planted[int(doc)]
            terms = [body[j] for j in rng.choice(len(body), size=4, replace=False)] + [str(rng.choice(words, p=p))]
            f.write(json.dumps({"_id": f"q{q}", "text": " ".join(terms)}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, rows in (("train", range(n_train)), ("test", range(n_train, n_train + n_test))):
        with open(folder / "qrels" / f"{split}.tsv", "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines(f"q{q}\td{relevant[q]}\t1\n" for q in rows)
    return folder


def tiny_encoder(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT with all-MiniLM-L6-v2's tokenizer (real word pieces, negligible model cost)."""
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from crossdistill.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=512)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def overrides(data: Path, model: Path, out: Path, cache: Path, dev: int) -> list[str]:
    return ["data=beir", f"data.path={data}", f"data.dev_size={dev}", f"teacher.model={model}", f"student.model={model}",
            "teacher.max_length=128", "teacher_data.epochs=1", "student_data.epochs=1", "rounds.count=1",
            "student.max_doc_length=128", "student.eval_max_doc_length=128", "evaluation.epoch_corpus=sample",
            "evaluation.epoch_sample=10000", "evaluation.batch_size=256", "evaluation.show_progress=false",
            "+trainer.enable_progress_bar=false", "logger=none", "cache.teacher=false",
            # the distilled student is always the one tested: its corpus encoding is part of the cost measured
            "rounds.keep_zero_shot=false",
            f"paths.cache_dir={cache}", f"hydra.run.dir={out}"]


def run_size(work: Path, n_docs: int, model: Path, extra: list[str], n_train: int = 1000, n_test: int = 200) -> dict:
    data = write_corpus(work / "data" / f"docs{n_docs}-train{n_train}-test{n_test}", n_docs, n_train, n_test)
    out, cache = work / f"docs{n_docs}-train{n_train}", work / f"cache-docs{n_docs}-train{n_train}"
    # Every stage computed afresh: a cached zero-shot corpus encoding or mined artifact would hide its cost, and a
    # finished fit left in the run folder would be resumed (skipped) instead of run.
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    dev = min(100, n_train // 5)
    command = [sys.executable, str(ROOT / "train.py"), *overrides(data, model, out, cache, dev), *extra]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "w") as log:
        done = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"{n_docs} documents: train.py failed (exit {done.returncode}); see {out / 'train.log'}")
    res = json.loads((out / "results.json").read_text())
    return {"docs": n_docs, "train_queries": n_train, "test_queries": n_test, "stages": res["stages"],
            "total_wall_s": res["total_wall_s"], "peak_rss_mb": res["peak_rss_mb"], "evaluation": res["evaluation"],
            "student_ndcg@10": res["systems"]["student"]["ndcg@10"], "bm25_ndcg@10": res["systems"]["bm25"]["ndcg@10"],
            "mined_pairs": res["mining"]["shortlisted"], "command": "python train.py " + " ".join(command[2:])}


def exponents(small: dict, large: dict) -> dict[str, float]:
    ratio = math.log(large["docs"] / small["docs"])
    return {stage: math.log(max(large["stages"][stage]["wall_s"], 1e-3) / max(s["wall_s"], 1e-3)) / ratio
            for stage, s in small["stages"].items() if stage in large["stages"]}


def render(bench: dict) -> str:
    runs = sorted(bench["sizes"].values(), key=lambda r: r["docs"])
    md = ["# Scale benchmark (synthetic SciFact-vocabulary passages, tiny encoder)", "",
          f"Machine: {describe(bench['machine'])}; {bench['finished']}. Produced by `python scripts/benchmark_scale.py`;"
          " raw numbers in `benchmarks/scale.json`.", ""]
    stages = list(dict.fromkeys(s for r in runs for s in r["stages"]))
    md += ["Wall seconds per stage (peak RSS MiB in brackets):", "",
           "| stage | " + " | ".join(f"{r['docs']:,} docs" for r in runs) + " | exponent (last two sizes) |",
           "|---|" + "---|" * (len(runs) + 1)]
    growth = exponents(runs[-2], runs[-1]) if len(runs) > 1 else {}
    for stage in stages:
        cells = [f"{r['stages'][stage]['wall_s']:.1f} ({r['stages'][stage]['peak_rss_mb']:.0f})"
                 if stage in r["stages"] else "–" for r in runs]
        md.append(f"| {stage} | " + " | ".join(cells) + f" | {growth.get(stage, float('nan')):.2f} |")
    md.append("| **total** | " + " | ".join(f"{r['total_wall_s']:.1f} ({r['peak_rss_mb']:.0f})" for r in runs) + " | |")
    md += [f"\nNote: {note}" for note in bench.get("notes", [])]
    md += ["", "| docs | mined pairs | per-epoch dev docs | BM25 nDCG@10 | student nDCG@10 | peak GiB |",
           "|---|---|---|---|---|---|"]
    md += [f"| {r['docs']:,} | {r['mined_pairs']:,} | {r['evaluation'].get('epoch_docs', {}).get('dev', '–')} | "
           f"{r['bm25_ndcg@10']:.3f} | {r['student_ndcg@10']:.3f} | {r['peak_rss_mb'] / 1024:.2f} |" for r in runs]
    if bench.get("mining"):
        md += ["", "Mining with more queries (same corpus): peak RSS of the mining stage:", "",
               "| docs | train queries | mining wall s | mining peak MiB | run peak MiB | mined pairs |",
               "|---|---|---|---|---|---|"]
        md += [f"| {m['docs']:,} | {m['train_queries']:,} | {m['stages']['mining']['wall_s']:.1f} | "
               f"{m['stages']['mining']['peak_rss_mb']:.0f} | {m['peak_rss_mb']:.0f} | {m['mined_pairs']:,} |"
               for m in bench["mining"].values()]
        md += [f"\nNote: {note}" for note in bench.get("mining_notes", [])]
        md += ["", "Command (mining check): " + next(f"`{m['command']}`" for m in bench["mining"].values())]
    md += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in runs[:1]) + " (other sizes: their data folder)."]
    teachers, default_run = ROOT / "benchmarks" / "teachers.json", ROOT / "benchmarks" / "default-run" / "results.json"
    if teachers.exists() and default_run.exists():
        md += msmarco_on_paper(bench, json.loads(teachers.read_text()), json.loads(default_run.read_text()))
    return "\n".join(md) + "\n"


# MS MARCO passage ranking (Nguyen et al. 2016; the BEIR copy): what the default pipeline would have to process.
MSMARCO = {"docs": 8_841_823, "train_queries": 502_939, "train_qrels": 532_761, "dev_queries": 6_980}


def msmarco_on_paper(bench: dict, teachers: dict, default_run: dict) -> list[str]:
    """The default pipeline (MiniLM teacher and student, 2 rounds of 1 epoch) on MS MARCO, extrapolated linearly
    from what was measured on this machine: the framework's own per-document cost (the 1M tiny-encoder run), the
    MiniLM cross-encoder's pairs/s (benchmarks/teachers.json) and the default SciFact run's encoding and
    distillation rates (benchmarks/default-run). No GPU was lent: GPU columns stay empty until one is."""
    big = max(bench["sizes"].values(), key=lambda r: r["docs"])
    per_doc = {stage: big["stages"][stage]["wall_s"] / big["docs"] for stage in ("data", "bm25")}
    ce = teachers["bodies"]["minilm@128"]
    stages, mined = default_run["stages"], default_run["mining"]
    scifact_docs = 5_183
    encode_rate = scifact_docs / stages["zero_shot"]["wall_s"]          # docs/s, MiniLM at 256 tokens, incl. dev eval
    pairs_per_query = mined["shortlisted"] / mined["queries"]
    # Round 2 sends the teacher only the pairs round 1 did not score: the default run's share of new ones.
    later = (default_run.get("rounds") or [{}, {}])[1:2] or [{}]
    new_share = later[0]["teacher_scored"] / later[0]["shortlisted"] if "teacher_scored" in later[0] else 1.0
    distill_rate = mined["pairs"] / stages["student"]["wall_s"]          # pairs/s, incl. the epoch's evaluation
    m = MSMARCO
    rows = [
        ("data (parse, validate, Arrow)", f"{m['docs']:,} passages", per_doc["data"] * m["docs"]),
        ("BM25 index", f"{m['docs']:,} passages", per_doc["bm25"] * m["docs"]),
        ("teacher, 1 epoch", f"{4 * m['train_qrels']:,} pairs (1 + 3 negatives)", 4 * m["train_qrels"] / ce["train_pairs_per_s"]),
        ("corpus encoding (x4: zero-shot, round 2 mining, 2 tests)", f"{4 * m['docs']:,} passages",
         4 * m["docs"] / encode_rate),
        (f"mining, teacher scoring (round 1 + round 2's new pairs, {new_share:.0%} of its shortlists)",
         f"{(1 + new_share) * pairs_per_query * m['train_queries']:,.0f} pairs",
         (1 + new_share) * pairs_per_query * m["train_queries"] / ce["inference_pairs_per_s"]),
        ("distillation, 1 epoch x 2 rounds", f"{2 * mined['pairs'] / mined['queries'] * m['train_queries']:,.0f} pairs",
         2 * mined["pairs"] / mined["queries"] * m["train_queries"] / distill_rate),
    ]
    checks = sorted(bench.get("mining", {}).values(), key=lambda r: r["train_queries"])
    if len(checks) > 1:   # BM25 search per query, from the mining check's two query counts, grown with the corpus
        a, b = checks[0], checks[-1]
        per_query = ((b["stages"]["bm25"]["wall_s"] - a["stages"]["bm25"]["wall_s"])
                     / (b["train_queries"] - a["train_queries"]) * m["docs"] / b["docs"])
        backend = "numba" if "bm25.backend=numba" in b.get("command", "") else "numpy"
        rows.insert(2, (f"BM25 search of the train queries (bm25.backend={backend})", f"{m['train_queries']:,} queries",
                        per_query * m["train_queries"]))
    md = ["", "## MS MARCO on paper", "",
          f"The default pipeline on MS MARCO passages ({m['docs']:,} passages, {m['train_queries']:,} train queries), "
          "extrapolated linearly from rates measured on this machine: the framework's own cost per document from the "
          f"{big['docs']:,}-document run above, the MiniLM cross-encoder's {ce['inference_pairs_per_s']} scored / "
          f"{ce['train_pairs_per_s']} trained pairs/s (benchmarks/teachers.md), and the default SciFact run's "
          f"encoding ({encode_rate:.0f} docs/s at 256 tokens; MS MARCO passages are shorter, so this overstates) and "
          f"distillation ({distill_rate:.1f} pairs/s, its per-epoch evaluation included; benchmarks/default-run). "
          "No GPU was lent to the session that wrote this: the one-node (8 GPUs) and four-node columns need a GPU's "
          "measured rates and are left empty rather than guessed.", "",
          "| stage | work | this CPU (2 cores), hours | 8 GPUs, one node | 4 nodes x 8 GPUs |", "|---|---|---|---|---|"]
    md += [f"| {name} | {work} | {seconds / 3600:,.1f} | not measured | not measured |" for name, work, seconds in rows]
    md.append(f"| **total** | | {sum(r[2] for r in rows) / 3600:,.0f} | | |")
    sizes = sorted(bench["sizes"].values(), key=lambda r: r["docs"])
    if len(sizes) > 1:
        slope = (sizes[-1]["peak_rss_mb"] - sizes[-2]["peak_rss_mb"]) / (sizes[-1]["docs"] - sizes[-2]["docs"])
        peak_gib = (sizes[-1]["peak_rss_mb"] + slope * (m["docs"] - sizes[-1]["docs"])) / 1024
        md += ["", f"Peak memory, the framework's own (tiny encoder), grown linearly from the last two sizes "
               f"({slope * 1024:.1f} KiB per document): **{peak_gib:.1f} GiB** at {m['docs']:,} passages; MiniLM's "
               "8.8M x 384 fp32 corpus embeddings add 13 GiB in memory, or are memory-mapped with "
               "`evaluation.embeddings=disk`."]
    return md


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--mining-queries", default="", help="train query counts for the mining-memory check")
    parser.add_argument("--mining-docs", type=int, default=200_000,
                        help="corpus of the mining check (one planted passage per query: more than the queries)")
    parser.add_argument("--mining-steps", type=int, default=50,
                        help="the mining check's teacher and student fits stop after this many steps (mining itself "
                             "covers every query)")
    parser.add_argument("--train-queries", type=int, default=1000)
    parser.add_argument("--test-queries", type=int, default=200)
    parser.add_argument("--work", default=str(WORK), help="where data, runs and caches go")
    parser.add_argument("--bench-dir", default=str(ROOT / "benchmarks"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args(argv)
    work = Path(args.work)
    bench_dir = Path(args.bench_dir)
    path = bench_dir / "scale.json"
    bench = json.loads(path.read_text()) if path.exists() else {"sizes": {}, "mining": {}}
    model = tiny_encoder(work / "tiny-encoder")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        print(f"[scale] {n:,} documents", flush=True)
        bench["sizes"][str(n)] = run_size(work, n, model, args.overrides, args.train_queries, args.test_queries)
        print(f"[scale] {n:,} documents: {bench['sizes'][str(n)]['total_wall_s']:.0f} s, peak "
              f"{bench['sizes'][str(n)]['peak_rss_mb']:.0f} MiB", flush=True)
        bench["machine"], bench["finished"] = machine(), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        path.write_text(json.dumps(bench, indent=2))
        (bench_dir / "scale.md").write_text(render(bench))
    for q in [int(s) for s in args.mining_queries.split(",") if s]:
        print(f"[scale] mining {q:,} queries over {args.mining_docs:,} documents", flush=True)
        bench["mining"][str(q)] = run_size(work, args.mining_docs, model,
                                           [*args.overrides, f"+trainer.max_steps={args.mining_steps}"], q,
                                           args.test_queries)
        bench["machine"], bench["finished"] = machine(), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        path.write_text(json.dumps(bench, indent=2))
        (bench_dir / "scale.md").write_text(render(bench))


if __name__ == "__main__":
    main()
