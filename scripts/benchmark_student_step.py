"""What the forgetting levers cost a training step: seconds per step (forward, backward, AdamW) of the default student
as it is, with frozen embeddings and lower layers, and with the L2-SP term; the variants alternate step by step in
one process so each sees the same machine load, then the mean over the steps after the first.

    python scripts/benchmark_student_step.py [--data BEIR_FOLDER] [--steps 20]   # -> benchmarks/student_step.{json,md}

Batches are the default's shape: 4 groups of (query, better document, 4 worse documents), SciFact texts drawn at
random, documents cut at the student's 160 training tokens.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_quality import describe, machine  # noqa: E402

from crossdistill.student.data import collate_pairs  # noqa: E402
from crossdistill.student.module import DEFAULT_LOSSES, BiEncoderStudent  # noqa: E402

VARIANTS = {
    "default": {},
    "student.freeze_embeddings=true student.frozen_layers=2": {"freeze_embeddings": True, "frozen_layers": 2},
    "student.losses.start_anchor.weight=1.0": {"losses": {**DEFAULT_LOSSES,
                                                          "start_anchor": {**DEFAULT_LOSSES["start_anchor"], "weight": 1.0}}},
}


def batches(data: Path | None, n: int, seed: int = 0) -> list:
    if data is None:
        from crossdistill.configs.resolvers import user_cache
        from crossdistill.data.embedded import scifact_path

        data = scifact_path(Path(user_cache()) / "data")
    rng = random.Random(seed)
    rows = [json.loads(line) for line in (data / "corpus.jsonl").open()]
    docs = [f"{r.get('title', '')} {r['text']}".strip() for r in rng.sample(rows, min(2000, len(rows)))]
    queries = [json.loads(line)["text"] for line in (data / "queries.jsonl").open()]
    return [collate_pairs([{"queries": rng.choice(queries), "docs_a": rng.choice(docs), "docs_b": rng.sample(docs, 4),
                            "margins": [rng.uniform(0, 6) for _ in range(4)]} for _ in range(4)]) for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="a BEIR folder (default: the embedded SciFact)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    models = {k: BiEncoderStudent(**v) for k, v in VARIANTS.items()}
    for m in models.values():
        m.log = lambda *a, **k: None
    opts = {k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=5e-5, weight_decay=0.01)
            for k, m in models.items()}
    seconds = {k: [] for k in models}
    for i, batch in enumerate(batches(args.data, args.steps + 1)):
        for k, m in models.items():
            start = time.perf_counter()
            opts[k].zero_grad()
            m.training_step(batch, i).backward()
            opts[k].step()
            if i:   # the first step warms up
                seconds[k].append(time.perf_counter() - start)
    rows = {k: {"s_per_step": sum(v) / len(v), "steps": len(v),
                "trainable_params": sum(p.numel() for p in models[k].parameters() if p.requires_grad)}
            for k, v in seconds.items()}
    base = rows["default"]["s_per_step"]
    md = ["# Student training step", "", f"Machine: {describe(machine())}. `python scripts/benchmark_student_step.py "
          f"--steps {args.steps}`: the variants alternate step by step in one process (same load); mean of "
          f"{args.steps} steps after a warm-up step.", "", "| overrides | s / step | vs default | trainable parameters |",
          "|---|---|---|---|"]
    md += [f"| {k} | {r['s_per_step']:.3f} | {r['s_per_step'] / base:.2f}x | {r['trainable_params'] / 1e6:.1f} M |"
           for k, r in rows.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "student_step.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    (args.out / "student_step.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
