"""What a teacher costs on this machine: cross-encoder inference and training throughput per body, side by side in
one process, and the default pipeline's teacher work priced with it.

    python scripts/benchmark_teachers.py                       # minilm (128 tokens), mpnet (256 and 128 tokens)
    python scripts/benchmark_teachers.py --pairs 512 --steps 6

Real SciFact (query, document) pairs; inference in the run's inference precision (bf16 autocast where bf16 is
native), training steps as the teacher trains (groups of 1 positive + 3 negatives, 4 groups a step, AdamW) in the
trainer's precision. The pipeline's teacher work (training pairs, mined pairs, reranked pairs) is read from a
finished default run's results.json (--run). Results: benchmarks/teachers.json and benchmarks/teachers.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_quality import describe, machine  # noqa: E402

BODIES = {"minilm@128": ("all-MiniLM-L6-v2", 128), "mpnet@256": ("all-mpnet-base-v2", 256),
          "mpnet@128": ("all-mpnet-base-v2", 128)}


def scifact_pairs(n: int) -> list[tuple[str, str]]:
    from crossdistill.data.beir import load_beir
    from crossdistill.data.embedded import scifact_path

    data = load_beir(scifact_path(ROOT / ".cache"))
    text = data.documents
    pairs = [(data.queries[q], text[d]) for q, docs in sorted(data.qrels["train"].items()) for d in docs]
    return (pairs * (n // len(pairs) + 1))[:n]


def measure(model: str, max_length: int, pairs: list[tuple[str, str]], steps: int, precision: str) -> dict:
    from crossdistill.common.precision import autocast
    from crossdistill.teacher.module import CrossEncoderTeacher

    teacher = CrossEncoderTeacher(model=model, max_length=max_length).eval()
    queries, docs = zip(*pairs)
    bf16 = precision.startswith("bf16")
    with torch.inference_mode(), autocast("bf16" if bf16 else "32", torch.device("cpu")):
        teacher.score(queries[:8], docs[:8])   # warm-up
        start = time.perf_counter()
        for i in range(0, len(pairs), 64):
            teacher.score(queries[i:i + 64], docs[i:i + 64])
        infer = len(pairs) / (time.perf_counter() - start)
    teacher.train()
    optim = torch.optim.AdamW(teacher.parameters(), lr=2e-5)
    group = 16   # 4 groups of 1 positive + 3 negatives
    times = []
    for step in range(steps + 1):
        i = (step * group) % (len(pairs) - group)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            scores = teacher.score(queries[i:i + group], docs[i:i + group]).view(4, 4)
        torch.nn.functional.cross_entropy(scores.float(), torch.zeros(4, dtype=torch.long)).backward()
        optim.step()
        optim.zero_grad()
        if step:   # the first step pays one-off allocations
            times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in teacher.parameters())
    return {"model": model, "max_length": max_length, "params_m": round(params / 1e6, 1),
            "inference_pairs_per_s": round(infer, 1), "train_pairs_per_s": round(group * len(times) / sum(times), 1)}


def pipeline_work(run_dir: Path) -> dict:
    """The teacher's work in a finished run: training pairs, mined (scored) pairs, evaluation rerank pairs."""
    res = json.loads((run_dir / "results.json").read_text())
    cfg = res["config"]
    td = cfg["teacher_data"]
    mined = sum(r["shortlisted"] for r in res["rounds"])
    k = cfg["evaluation"]["rerank_depth"]
    evals = len(res["dev"]["history"]) + 2   # dev per epoch + dev/test zero-shot; test rerank pairs are cached once
    rerank = k * (res["queries"] * (2 + len(res["rounds"])) + 100 * evals)
    return {"negatives": td["negatives"], "mined_pairs": mined, "rerank_pairs": rerank,
            "teacher_wall_s": res["stages"]["teacher"]["wall_s"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", default=",".join(BODIES))
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--run", default=str(ROOT / "benchmarks" / "default-run"), help="a finished default run")
    parser.add_argument("--bench-dir", default=str(ROOT / "benchmarks"))
    args = parser.parse_args(argv)
    from crossdistill.common.precision import resolve_precision

    torch.manual_seed(0)
    precision = resolve_precision("auto")
    pairs = scifact_pairs(args.pairs)
    results = {}
    for name in args.bodies.split(","):
        model, length = BODIES[name]
        results[name] = measure(model, length, pairs, args.steps, precision)
        print(f"[teachers] {name}: {results[name]}", flush=True)
    bench = {"machine": machine(), "precision": precision, "bodies": results,
             "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    run = Path(args.run)
    if (run / "results.json").exists():
        bench["work"] = pipeline_work(run)
    bench_dir = Path(args.bench_dir)
    (bench_dir / "teachers.json").write_text(json.dumps(bench, indent=2))
    (bench_dir / "teachers.md").write_text(render(bench))


def render(bench: dict) -> str:
    md = ["# Teacher cost (cross-encoder bodies on this machine)", "",
          f"Machine: {describe(bench['machine'])}; precision {bench['precision']}; {bench['finished']}. Produced by "
          "`python scripts/benchmark_teachers.py`, side by side in one process.", "",
          "| body | params (M) | tokens | inference pairs/s | training pairs/s |", "|---|---|---|---|---|"]
    md += [f"| {b['model']} | {b['params_m']} | {b['max_length']} | {b['inference_pairs_per_s']} | "
           f"{b['train_pairs_per_s']} |" for b in bench["bodies"].values()]
    work = bench.get("work")
    if work:
        md += ["", f"The default run's teacher work: {work['mined_pairs']:,} mined pairs scored, about "
               f"{work['rerank_pairs']:,} evaluation rerank pairs (cached per pair across epochs, so fewer are "
               f"scored), training as in its teacher stage ({work['teacher_wall_s']:.0f} s with MiniLM). Priced per body "
               "(scoring only, training scaled by the training-throughput ratio to MiniLM):", "",
               "| body | mining + rerank s (upper bound: every rerank pair scored) | teacher training s (est.) |", "|---|---|---|"]
        base = bench["bodies"].get("minilm@128")
        for name, b in bench["bodies"].items():
            score_s = (work["mined_pairs"] + work["rerank_pairs"]) / b["inference_pairs_per_s"]
            train_s = work["teacher_wall_s"] * base["train_pairs_per_s"] / b["train_pairs_per_s"] if base else None
            md.append(f"| {name} | {score_s:,.0f} | {'–' if train_s is None else f'{train_s:,.0f}'} |")
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
