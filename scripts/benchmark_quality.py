"""The quality benchmark of issue #3: every system and every kept lever, measured by real runs of train.py.

    python scripts/benchmark_quality.py                          # all variants, in the order below
    python scripts/benchmark_quality.py --variants default,rounds2

Each variant is one `python train.py teacher=minilm <overrides>` in its own process (so its wall time and peak
memory are its own), writing to outputs/benchmark_quality/<variant>/. Inside one run the systems (BM25, zero-shot
student, hybrid BM25+dense, the teacher reranking BM25's and the student's top-k, the distilled student per round)
are measured side by side on the same data. Results are merged into benchmarks/quality.json (a variant run again
replaces its entry) and rendered to benchmarks/quality.md and the marked block of benchmarks/README.md.
Variants after the first reuse the cached teacher when their teacher config is unchanged.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

from crossdistill.common.machine import describe, machine  # noqa: F401 (the other benchmarks import them from here)
from crossdistill.evaluation.results_keys import current_names

ROOT = Path(__file__).resolve().parents[1]
BASE = ["teacher=minilm"]
# name -> (overrides on top of the default, what it shows). Order = run order = priority.
VARIANTS: dict[str, tuple[list[str], str]] = {
    "default": ([], "the default pipeline (teacher = ensemble of the trained cross-encoder, BM25 and the zero-shot "
                "student, weights chosen on dev)"),
    "label_free": (["experiment=label_free", "rounds.count=1", "weak_supervision.unjudged_queries=false"],
                   "no train qrels: title pseudo-queries only"),
    "label_free_unjudged": (["experiment=label_free", "rounds.count=1", "weak_supervision.unjudged_queries=true"],
                            "no train qrels: the student distils on the collection's unjudged queries (SciFact's "
                            "train query texts without their judgments; pairs: the teacher's top 2 vs the rest); dev: "
                            "100 of them held out, judged by the teacher (its top 2); the title pseudo-queries train "
                            "the teacher and choose the ensemble's weights"),
    "label_free_rounds2": (["experiment=label_free"], "experiment=label_free as users run it: label_free_unjudged "
                           "with the default two rounds (round 2 re-mines the unjudged queries with the round-1 "
                           "student, BM25 + student fused)"),
    "label_free_unjudged_equal": (["experiment=label_free", "rounds.count=1", "weak_supervision.unjudged_queries=true",
                                   "ensemble.weights={cross_encoder: 1, bm25: 1, zero_shot: 1}"],
                                  "label_free_unjudged with the ensemble's weights fixed equal instead of chosen on "
                                  "the title dev (which chose BM25 alone)"),
    "label_free_rounds2_sentence": (["experiment=label_free", "weak_supervision.kind=sentence"],
                                    "label_free_rounds2 with sentence pseudo-queries (inverse cloze) instead of titles "
                                    "training the cross-encoder and choosing the ensemble's weights: what a collection "
                                    "without titles (MS MARCO passages, FiQA) has"),
    "label_free_sentence": (["experiment=label_free", "rounds.count=1", "weak_supervision.unjudged_queries=false",
                             "weak_supervision.kind=sentence"],
                            "no train qrels: one sentence of each body as the query for the rest of its document "
                            "(inverse cloze)"),
    "label_free_sentence_mmse": (["experiment=label_free", "rounds.count=1", "weak_supervision.unjudged_queries=false",
                                  "weak_supervision.kind=sentence",
                                  "student.losses.in_batch.weight=0"],
                                 "label_free_sentence learning from the teacher's margins alone (GPL's loss): no "
                                 "in-batch term that treats the pseudo-query's document as the one positive"),
    "label_free_unguarded": (["experiment=label_free", "rounds.count=1", "weak_supervision.unjudged_queries=false",
                              "ensemble.saturated=1.01",
                              "rounds.keep_zero_shot=false"],
                             "label_free with ensemble weights chosen on its saturated dev and the distilled student "
                             "kept even when dev ranks it below the zero-shot start (the code of 2026-11-29 before "
                             "those two guards)"),
    "ensemble_mpnet": (["ensemble=mpnet"], "+ all-mpnet-base-v2 as a frozen bi-encoder member of the teacher ensemble"),
    "teacher_alone": (["ensemble=cross_encoder"], "the teacher is the lone cross-encoder (raw logits): the default "
                      "until 2026-11-29"),
    "label_free_teacher_alone": (["experiment=label_free", "rounds.count=1",
                                  "weak_supervision.unjudged_queries=false", "ensemble=cross_encoder"],
                                 "label_free with the lone cross-encoder teacher"),
    "rounds1": (["rounds.count=1",
                                   "ensemble=cross_encoder"],
        "one distillation round (the default until 2026-11-28)"),
    "rounds2": (["rounds.count=2", "ensemble=cross_encoder"],
        "a second round re-mined with the student (hybrid shortlist); the default since "
                "2026-11-28"),
    "in_batch0": (["student.losses.in_batch.weight=0", "ensemble=cross_encoder"],
        "margin-MSE alone, no in-batch negatives (the default until "
                  "2026-11-28)"),
    "in_batch1": (["student.losses.in_batch.weight=1", "ensemble=cross_encoder"],
        "in-batch negatives cross-entropy at weight 1 instead of 10"),
    "in_batch5": (["student.losses.in_batch.weight=5", "ensemble=cross_encoder"],
        "in-batch negatives cross-entropy at weight 5 instead of 10"),
    "kl1": (["student.losses.kl.weight=1", "ensemble=cross_encoder"],
        "+ listwise KL over each group's docs (teacher vs student softmax) at weight 1"),
    "kl1_ensemble": (["student.losses.kl.weight=1"], "kl1 with the default teacher (the ensemble, its combined scores as "
                     "the teacher's distribution)"),
    "depth20": (["miner.depth=20", "rounds.miner.depth=20"], "mining shortlists of 20 in both rounds: the default "
                "until 2026-11-30"),
    "depth10": (["miner.depth=10", "rounds.miner.depth=10"], "mining shortlists of 10 instead of 20 in both rounds "
                "(the teacher scores half the candidates; 4 pairs per query are sampled either way); the default since "
                "2026-11-30"),
    "pseudo400": (["teacher_data.pseudo_queries=400"], "(on the depth-10 default) the teacher trains on 400 title "
                  "pseudo-queries beside the labelled queries instead of 800"),
    "lr2e-5": (["student.lr=2e-5"], "the student's learning rate 2e-5 instead of 5e-5 (196 steps a round; the same "
               "cost): the default until 2026-11-30"),
    "doc160": (["student.max_doc_length=160"], "the student trains on documents cut at 160 tokens instead of 192 "
               "(evaluation still reads 256): a cheaper step, for the 30-minute budget"),
    "student_member": (["ensemble=with_student"],
                       "the teacher ensemble's third member is the frozen student whose shortlists are scored (the "
                       "zero-shot start in round 1, round 1's best in round 2, the evaluated student in evaluation) "
                       "instead of the zero-shot start throughout; weights chosen on dev again before round 2"),
    "student_member_hybrid": (["ensemble=with_student", "ensemble.choose_on=hybrid"],
                              "student_member with the weights chosen on dev shortlists fused from BM25's and the "
                              "student's (RRF) instead of the student's own top 20, whose order already is the "
                              "student member's"),
    "no_pseudo": (["teacher_data.pseudo_queries=0", "ensemble=cross_encoder"],
        "- the teacher's 800 title pseudo-queries"),
    "miner_hybrid": (["miner=hybrid", "ensemble=cross_encoder"],
        "mining shortlists: BM25 + zero-shot student (RRF) instead of BM25"),
    "teacher_top": (["pairs=teacher_top", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                    "pairs = the teacher's top 2 of the shortlist vs the rest instead of judged positives vs the "
                    "shortlist"),
    "scale25": (["student.scale=25", "rounds.count=1",
                                   "ensemble=cross_encoder"],
        "student score 25 x cosine instead of 10 x (scale sweep)"),
    "scale_auto": (["student.scale=auto", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                   "student scale set from the mined pairs (mean |teacher margin| / mean |student margin|) instead "
                   "of 10"),
    "strong_teacher": (["experiment=strong_teacher", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                       "the issue's strongest CPU teacher recipe (1500 pseudo-queries, 7 negatives, 192 tokens, lr "
                       "3e-5, one group per step), student scale auto, one round"),
    "strong_teacher_scale10": (["experiment=strong_teacher", "student.scale=10", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                               "strong_teacher with the default student scale 10"),
    "strong_teacher_scale25": (["experiment=strong_teacher", "student.scale=25", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                               "strong_teacher, scale 25"),
    "strong_teacher_scale40": (["experiment=strong_teacher", "student.scale=40", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                               "strong_teacher, scale 40"),
    "strong_teacher_pairs8": (["experiment=strong_teacher", "pairs.pairs_per_query=8", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                             "strong_teacher, 8 distillation pairs per query instead of 4"),
    "strong_teacher_teacher_top": (["experiment=strong_teacher", "pairs=teacher_top", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                                  "strong_teacher, pairs = the teacher's top 2 of the shortlist vs the rest (labels "
                                  "only guard against false negatives) instead of judged positives vs the shortlist"),
    "strong_teacher_pseudo1500": (["experiment=strong_teacher", "weak_supervision.distill_queries=1500", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                                  "strong_teacher + 1,500 title pseudo-queries mined and distilled beside the 709 "
                                  "labelled ones (GPL-style domain adaptation of the student)"),
    "strong_teacher_teacher_top_pseudo1500": (["experiment=strong_teacher", "pairs=teacher_top",
                                               "weak_supervision.distill_queries=1500", "ensemble=cross_encoder"],
                                              "strong_teacher_teacher_top + the 1,500 distillation pseudo-queries"),
    "strong_teacher_bf16": (["experiment=strong_teacher", "trainer.precision=bf16-mixed", "ensemble=cross_encoder"],
                           "strong_teacher (two rounds) with its teacher trained in bf16-mixed instead of fp32"),
    "strong_teacher_rounds2": (["experiment=strong_teacher", "rounds.count=2", "ensemble=cross_encoder"],
                              "strong_teacher + a second round re-mined with the round-1 student (what experiment=strong_teacher "
                              "means since rounds.count=2 became the default)"),
    "strong_teacher_hybrid_scale10": (["experiment=strong_teacher", "miner=hybrid", "student.scale=10", "rounds.count=1",
                                   "ensemble=cross_encoder"],
                                      "strong_teacher_scale10, mining on BM25 + zero-shot student (RRF) shortlists"),
}
SYSTEMS = {
    "bm25": "BM25 (bm25s, stemmer + stopwords)",
    "student_init": "student zero-shot (all-MiniLM-L6-v2)",
    "hybrid_zero_shot": "hybrid BM25 + zero-shot student (RRF)",
    "teacher_over_bm25": "teacher reranks BM25 top-20",
    "express_lane": "express lane: reranker over distilled student top-20",
    "teacher_over_student": "teacher reranks distilled student top-20",
    "student": "distilled student",
    "hybrid_student": "hybrid BM25 + distilled student (RRF)",
}
METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "lift@3")
BLOCK = ("<!-- quality:start -->", "<!-- quality:end -->")


def run_variant(name: str, overrides: list[str], extra: list[str]) -> dict:
    out = ROOT / "outputs" / "benchmark_quality" / name
    command = ["python", "train.py", *BASE, *overrides, *extra]
    if out.exists():
        # A run folder keeps each finished round's weights by content key (stages/), and a rerun into it loads them
        # instead of training: its wall time would not be the variant's. The last run's folder is kept beside it.
        previous = out.with_name(f"{name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        out.rename(previous)
    out.mkdir(parents=True)
    with open(out / "train.log", "w") as log:
        proc = subprocess.run([sys.executable, "train.py", *BASE, *overrides, *extra, f"hydra.run.dir={out}"],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"variant {name} failed (exit {proc.returncode}); see {out / 'train.log'}")
    return collect(out, command)


def collect(out: Path, command: list[str]) -> dict:
    """A finished run directory's benchmark entry."""
    res = current_names(json.loads((out / "results.json").read_text()))
    keep = ("systems", "stages", "total_wall_s", "peak_rss_mb", "rounds", "teacher", "label_free", "best_epoch",
            "mining")
    return {"command": " ".join(command), "run_dir": str(out.resolve().relative_to(ROOT)), "machine": machine(),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "dev_best": res["dev"]["best"], "dev_init": res["dev"]["student_init"]["ndcg@10"],
            **{k: res.get(k) for k in keep}}


def _f(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def member_table(e: dict, intro: str, dev: str, total: str) -> list[str]:
    """One ensemble's members, each alone, and the combination: dev nDCG@10 (where the weights were chosen) and test
    nDCG@10 over the distilled student's top-20."""
    if "dev_members" not in e:
        return []
    weights = ", ".join(f"{m} {w:g}" for m, w in e["weights"].items())
    test = e.get("test_members") or {}
    return ["", f"{intro}: {weights}):", "",
            f"| reranker | dev nDCG@10 ({dev}) | test nDCG@10 (distilled student top-20) |", "|---|---|---|",
            *(f"| {m} | {_f(e['dev_members'][m])} | {_f(test.get(m))} |" for m in e["members"]),
            f"| **{total}** | {_f(e['dev_ndcg@10'])} | {_f(e.get('test_ndcg@10'))} |"]


def ensemble_rows(run: dict) -> list[str]:
    """The teacher ensemble of a run and the express lane, each member alone and combined."""
    teacher = run.get("teacher") or {}
    e, r = teacher.get("ensemble") or {}, teacher.get("express_lane") or {}
    return (member_table(e, "Teacher ensemble members, each alone as a reranker of the same shortlists (weights chosen "
                            f"on dev from {e.get('combinations', 1)} combinations", "zero-shot student top-20", "ensemble")
            + member_table(r, "The express lane, its members each alone over the same shortlists (weights "
                              f"chosen on the dev trace of the kept epoch, `{r.get('shortlists')}`",
                           "kept student's top-20", "express lane"))


def render(bench: dict) -> str:
    """The Markdown tables: systems of the default run, per-stage cost, then one row per variant (ablation). Entries
    recorded before 2026-12-06 carry the old system names: read as the new ones."""
    v = {name: current_names(record) for name, record in bench["variants"].items()}
    m = v.get("default", {}).get("machine") or bench["machine"]
    md = [f"Machine: {describe(m)}; torch {m['torch']}. SciFact test split (300 queries, 5,183 docs); one seed (13).",
          ""]
    if "default" in v:
        d = v["default"]
        md += [f"Systems, measured side by side in one run of `{d['command']}` "
               f"({d['total_wall_s'] / 60:.1f} min, peak RSS {d['peak_rss_mb'] / 1024:.2f} GiB):", "",
               "| system | nDCG@10 | MRR@10 | R@10 | R@100 | lift@3 |", "|---|---|---|---|---|---|"]
        for key, label in SYSTEMS.items():
            s = d["systems"].get(key)
            if s:
                md.append(f"| {label} | " + " | ".join(_f(s.get(k)) for k in METRICS) + " |")
        md += ensemble_rows(d)
        md += ["", "Stage wall time and peak memory (default run):", "", "| stage | wall s | peak RSS MiB |",
               "|---|---|---|"]
        md += [f"| {k} | {s['wall_s']:.0f} | {s['peak_rss_mb']:.0f} |" for k, s in d["stages"].items()]
    md += ["", "Ablation: each variant is the default with one lever changed (distilled student, test split; "
           "Δ vs the default's student; the teacher column is the teacher reranking BM25 top-20, teacher/student the "
           "express lane over the distilled student's top-20 (the teacher itself until 2026-11-30, since "
           "then the teacher's members with the student's own score, weights on dev); agree is the share of mined "
           "pairs the mining student "
           "(zero-shot in round 1) already ordered as the teacher does):", "",
           "| variant | command | dev nDCG@10 | nDCG@10 | Δ | MRR@10 | R@100 | lift@3 | teacher | teacher/student "
           "| agree | wall min | peak GiB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = v.get("default", {}).get("systems", {}).get("student", {}).get("ndcg@10")
    for name, r in v.items():
        s, t = r["systems"]["student"], r["systems"]["teacher_over_bm25"]
        over_student = r["systems"].get("express_lane", {}).get("ndcg@10")
        delta = "" if base is None or name == "default" else f"{s['ndcg@10'] - base:+.3f}"
        extra = r["command"].removeprefix("python train.py teacher=minilm").strip() or "(none)"
        md.append(f"| {name} | `{extra}` | {_f(r['dev_best'])} | {_f(s['ndcg@10'])} | {delta} | {_f(s['mrr@10'])} | "
                  f"{_f(s['recall@100'])} | {_f(s.get('lift@3'))} | {_f(t['ndcg@10'])} | {_f(over_student)} | "
                  f"{_f((r.get('mining') or {}).get('student_agreement'))} | "
                  f"{r['total_wall_s'] / 60:.1f}{' (teacher cached)' if (r.get('teacher') or {}).get('cached') else ''}"
                  f" | {r['peak_rss_mb'] / 1024:.2f} |")
        for rnd in r.get("rounds") or []:
            if "test" in rnd:
                md.append(f"| {name}: round {rnd['round']} ({rnd['miner']} shortlists) | | {_f(rnd['dev'])} | "
                          f"{_f(rnd['test']['ndcg@10'])} | | {_f(rnd['test']['mrr@10'])} | "
                          f"{_f(rnd['test']['recall@100'])} | {_f(rnd['test']['lift@3'])} | | | "
                          f"{_f(rnd.get('student_agreement'))} | | |")
    md += ["", "Variants: " + "; ".join(f"**{n}**: {VARIANTS[n][1]}" for n in v if n in VARIANTS) + "."]
    md += [f"Note on **{n}**: {r['note']}." for n, r in v.items() if r.get("note")]
    md += [f"Machine of **{n}**: {describe(r['machine'])}." for n, r in v.items()
           if r.get("machine") and describe(r["machine"]) != describe(m)]
    md += ["Produced by `python scripts/benchmark_quality.py`; raw numbers in `benchmarks/quality.json`."]
    return "\n".join(md) + "\n"


def write_outputs(bench: dict, bench_dir: Path) -> None:
    (bench_dir / "quality.json").write_text(json.dumps(bench, indent=2, default=float))
    table = render(bench)
    (bench_dir / "quality.md").write_text("# Quality benchmark (SciFact)\n\n" + table)
    readme = bench_dir / "README.md"
    text = readme.read_text() if readme.exists() else ""
    block = f"{BLOCK[0]}\n{table}{BLOCK[1]}"
    if BLOCK[0] in text and BLOCK[1] in text:
        head, rest = text.split(BLOCK[0], 1)
        text = head + block + rest.split(BLOCK[1], 1)[1]
    else:
        text = text.rstrip() + "\n\n## Quality benchmark\n\n" + block + "\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--bench-dir", default=str(ROOT / "benchmarks"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every variant (e.g. trainer=gpu)")
    args = parser.parse_args(argv)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    bench_dir = Path(args.bench_dir)
    path = bench_dir / "quality.json"
    bench = json.loads(path.read_text()) if path.exists() else {"variants": {}}
    bench["machine"] = machine()
    for name in names:
        print(f"[benchmark] {name}: python train.py {' '.join(BASE + VARIANTS[name][0] + args.overrides)}", flush=True)
        bench["variants"][name] = run_variant(name, VARIANTS[name][0], args.overrides)
        # Variants in VARIANTS order, whatever order they were run in; written after each, so nothing is lost.
        bench["variants"] = {n: bench["variants"][n] for n in VARIANTS if n in bench["variants"]}
        write_outputs(bench, bench_dir)
        s = bench["variants"][name]["systems"]["student"]
        print(f"[benchmark] {name}: student nDCG@10 {s['ndcg@10']:.3f} R@100 {s['recall@100']:.3f}", flush=True)


if __name__ == "__main__":
    main()
