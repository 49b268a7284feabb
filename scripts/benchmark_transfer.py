"""Issue #31's transfer check: the default run's student on SciFact test and on collections it never saw (the shared
cacm, med, lisa, adi), beside its zero-shot start and BM25; and, where given, label-free corpus-only runs on them.

    python train.py teacher=minilm evaluation.transfer='[../shared/data/cacm.beir.tar.gz,...]'   # the default run
    python scripts/benchmark_transfer.py outputs/<date>/<time>       # -> benchmarks/transfer.json, transfer.md
    python scripts/benchmark_transfer.py RUN --label-free cacm=outputs/<a> med=outputs/<b>   # + corpus-only runs
    python scripts/benchmark_transfer.py RUN --alphas 0.5,0.75,0.9     # + the student averaged with its start
    python scripts/benchmark_transfer.py RUN --variant frozen=outputs/<c>    # + default runs with other settings

The first reads the run's results.json ``transfer`` record (each collection's test split, the whole corpus); a
label-free run is a ``python train.py experiment=label_free data=beir data.path=<collection>
weak_supervision.unjudged_queries=false`` run folder, whose test split is that collection's. Targets (issue #31):
no collection below the zero-shot start; label-free >= zero-shot on each, >= zero-shot + 0.02 on their mean.
``--alphas`` prices the forgetting guard (``interpolation``, WiSE-FT): each merged student on SciFact dev and test
and on every collection of the run's transfer record, and which alpha the pipeline's rule (smallest alpha within
``--tolerance`` of the best dev nDCG@10) keeps. ``--variant`` puts other default runs with the same
``evaluation.transfer`` beside the run (the levers against forgetting: frozen layers, L2-SP, ...): their overrides,
SciFact dev and test, each collection, minutes and peak GiB.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_quality import describe, machine  # noqa: E402

from crossdistill.evaluation.results_keys import current_names  # noqa: E402


def collect(run: Path, label_free: dict[str, Path]) -> dict:
    res = current_names(json.loads((run / "results.json").read_text()))
    s = res["systems"]
    rows = {res["dataset"]: {"bm25": s["bm25"], "student_init": s["student_init"], "student": s["student"],
                             "express_lane": s.get("express_lane")}}
    rows |= {name: rec["systems"] for name, rec in (res.get("transfer") or {}).items()}
    free = {}
    for name, folder in label_free.items():
        r = current_names(json.loads((folder / "results.json").read_text()))
        free[name] = {k: r["systems"][k] for k in ("bm25", "student_init", "student", "hybrid_zero_shot")
                      if k in r["systems"]} | {"best_epoch": r.get("best_epoch"), "run": str(folder),
                                               "guard": r.get("guard"), "pseudo_queries": r.get("pseudo_queries"),
                                               "wall_min": r["total_wall_s"] / 60, "peak_gib": r["peak_rss_mb"] / 1024,
                                               "resumed": bool((r.get("config") or {}).get("resume")),
                                               "rounds": len(r.get("rounds") or [])}
    return {"run": str(run), "machine": machine(), "collections": rows, "label_free": free,
            "dev": (res.get("dev") or {}).get("best"), "cost": run_cost(res)}


def variant_record(folder: Path) -> dict:
    """A default run with other settings: what it overrode, SciFact dev / test, each transfer collection, its cost."""
    res = current_names(json.loads((folder / "results.json").read_text()))
    overrides = folder / ".hydra" / "overrides.yaml"
    said = [o for o in (overrides.read_text().splitlines() if overrides.exists() else [])
            if "evaluation.transfer" not in o and o.lstrip("- ").strip() != "teacher=minilm"]
    return {"run": str(folder), "overrides": [o.lstrip("- ").strip() for o in said],
            "scifact_dev": res["dev"]["best"], "scifact_test": res["systems"]["student"],
            "start": {n: r["systems"]["student_init"] for n, r in (res.get("transfer") or {}).items()},
            "collections": {n: r["systems"]["student"] for n, r in (res.get("transfer") or {}).items()},
            **run_cost(res)}


def run_cost(res: dict) -> dict:
    """Minutes (the whole run; the rounds' training with their dev evaluations) and peak GiB, where recorded."""
    if "total_wall_s" not in res:
        return {}
    return {"wall_min": res["total_wall_s"] / 60, "peak_gib": res["peak_rss_mb"] / 1024,
            "student_min": sum(v["wall_s"] for k, v in (res.get("stages") or {}).items()
                               if k.startswith("student") and k != "student_init") / 60}


def interpolation_sweep(run: Path, alphas: list[float], tolerance: float) -> dict:
    """Each merged student (weight ``alpha`` on the distilled one): the run's dev and test, and each transfer
    collection's test (nDCG@10 / recall@100); alpha 0 and 1 are the run's own start and student."""
    from omegaconf import OmegaConf

    from crossdistill.commands.interpolate import measure, merged_students
    from crossdistill.configs.resolvers import user_cache
    from crossdistill.pipeline.stages.transfer import transfer_record
    from crossdistill.student.interpolation import choose_alpha

    res = current_names(json.loads((run / "results.json").read_text()))
    cfg = OmegaConf.create(res["config"])
    transfer = res.get("transfer") or {}
    rows = {a: {"scifact_" + split: m for split, m in figures.items()}
            for a, figures in measure(run, alphas, None)["alphas"].items()}
    # alpha 0 and 1: the run's own start and kept student (dev: the optimized metric, nDCG@10 by default)
    rows["0"] = {"scifact_dev": res["dev"]["student_init"], "scifact_test": res["systems"]["student_init"]}
    rows["1"] = {"scifact_dev": {"ndcg@10": res["dev"]["best"]}, "scifact_test": res["systems"]["student"]}
    cache = Path(user_cache()) / "data"
    for alpha, model in merged_students(run, alphas):
        for name, rec in transfer.items():
            rows[f"{alpha:g}"][name] = transfer_record(cfg, rec["path"], {"student": model}, cache)["systems"]["student"]
    for name, rec in transfer.items():
        rows["0"][name], rows["1"][name] = rec["systems"]["student_init"], rec["systems"]["student"]
    dev = {float(a): r["scifact_dev"]["ndcg@10"] for a, r in rows.items()}
    return {"alphas": rows, "tolerance": tolerance, "rule_keeps": choose_alpha(dev, tolerance),
            "collections": list(transfer)}


def render(bench: dict) -> str:
    md = ["# Transfer benchmark", "", f"Machine: {describe(bench['machine'])}. Run: `{bench['run']}`. nDCG@10 / "
          "recall@100 on each collection's test split (the whole corpus); Δ is the student against its zero-shot "
          "start (all-MiniLM-L6-v2).", "", "| collection | BM25 | zero-shot | student | Δ nDCG@10 | no forgetting |",
          "|---|---|---|---|---|---|"]
    for name, s in bench["collections"].items():
        delta = s["student"]["ndcg@10"] - s["student_init"]["ndcg@10"]
        cells = [f"{s[k]['ndcg@10']:.3f} / {s[k]['recall@100']:.3f}" for k in ("bm25", "student_init", "student")]
        md.append(f"| {name} | " + " | ".join(cells) + f" | {delta:+.3f} | {'met' if delta >= 0 else 'not met'} |")
    if bench["label_free"]:
        md += ["", "Label-free, corpus only (`python train.py teacher=minilm experiment=label_free data=beir "
               "data.path=<collection>`; the collections hold no unjudged queries to distil on), nDCG@10 on the judged "
               "test queries:", "",
               "| collection | BM25 | zero-shot | BM25 + zero-shot (RRF) | student | Δ | >= zero-shot | kept | minutes "
               "/ peak GiB |", "|---|---|---|---|---|---|---|---|---|"]
        deltas = []
        for name, s in bench["label_free"].items():
            delta = s["student"]["ndcg@10"] - s["student_init"]["ndcg@10"]
            deltas.append(delta)
            hybrid = f"{s['hybrid_zero_shot']['ndcg@10']:.3f}" if s.get("hybrid_zero_shot") else "-"
            md.append(f"| {name} | {s['bm25']['ndcg@10']:.3f} | {s['student_init']['ndcg@10']:.3f} | {hybrid} | "
                      f"{s['student']['ndcg@10']:.3f} | {delta:+.3f} | {'met' if delta >= 0 else 'not met'} | "
                      f"{'start' if s['best_epoch'] == -1 else 'epoch ' + str(s['best_epoch'])} | "
                      + ("resumed (its stages' times are partly another run's) |" if s.get("resumed") else
                         f"{s.get('wall_min', 0):.1f} / {s.get('peak_gib', 0):.2f} |"))
        mean = sum(deltas) / len(deltas)
        md += ["", f"Mean Δ {mean:+.3f} (target >= +0.020: {'met' if mean >= 0.02 else 'not met'}); every collection "
               f">= zero-shot: {'met' if min(deltas) >= 0 else 'not met'}. What each run's guard kept, and why:", ""]
        md += [f"- {name} ({s.get('pseudo_queries') or 'pseudo-queries'}"
               f"{'; rounds: ' + str(s['rounds']) if s.get('rounds') else ''}): "
               f"{(s.get('guard') or {}).get('reason', 'no guard record')}. Run: `{s['run']}`"
               for name, s in bench["label_free"].items()]
    else:
        md += ["", "Label-free corpus-only runs: not measured in this file (pass `--label-free name=RUN`)."]
    if bench.get("interpolation"):
        sweep = bench["interpolation"]
        names = sweep["collections"]
        md += ["", "The student averaged with its zero-shot start (`interpolation`, WiSE-FT; alpha = the distilled "
               f"student's weight), nDCG@10; the pipeline's rule (smallest alpha within {sweep['tolerance']:g} of the "
               f"best SciFact dev) keeps alpha **{sweep['rule_keeps']:g}**:", "",
               "| alpha | SciFact dev | SciFact test | " + " | ".join(names) + " | no forgetting |",
               "|---" * (4 + len(names)) + "|"]
        start = sweep["alphas"]["0"]
        for alpha, r in sorted(sweep["alphas"].items(), key=lambda a: float(a[0])):
            kept = all(r[n]["ndcg@10"] >= start[n]["ndcg@10"] for n in names)
            md.append(f"| {alpha} | {r['scifact_dev']['ndcg@10']:.3f} | {r['scifact_test']['ndcg@10']:.3f} | " +
                      " | ".join(f"{r[n]['ndcg@10']:.3f}" for n in names) + f" | {'met' if kept else 'not met'} |")
    if bench.get("variants"):
        first, *names = bench["collections"]   # the run's own collection, then its transfer collections
        md += ["", "Default runs with one lever against forgetting each (same teacher and mining cache; overrides as "
               "typed after `python train.py teacher=minilm`), nDCG@10 (Δ against the zero-shot start), the run above "
               "first; student minutes = the rounds' training and dev evaluations (wall time of runs that may have shared the "
               "machine: a step's cost side by side is benchmarks/student_step.md):", "",
               "| run | overrides | SciFact dev | SciFact test / R@100 | " + " | ".join(names) +
               " | no forgetting | student min / total min / peak GiB |", "|---" * (6 + len(names)) + "|"]
        base = bench["collections"]
        rows = [("default", {"overrides": [], "scifact_dev": bench.get("dev"), "scifact_test": base[first]["student"],
                             "start": {n: base[n]["student_init"] for n in names},
                             "collections": {n: base[n]["student"] for n in names}, **bench.get("cost", {})})]
        for name, v in [*rows, *bench["variants"].items()]:
            deltas = {n: v["collections"][n]["ndcg@10"] - v["start"][n]["ndcg@10"] for n in names}
            dev = f"{v['scifact_dev']:.3f}" if v.get("scifact_dev") is not None else "-"
            cost = (f"{v['student_min']:.1f} / {v['wall_min']:.1f} / {v['peak_gib']:.2f}" if "wall_min" in v else "-")
            md.append(f"| {name} | {' '.join(f'`{o}`' for o in v['overrides']) or '-'} | {dev} | "
                      f"{v['scifact_test']['ndcg@10']:.3f} / {v['scifact_test']['recall@100']:.3f} | " +
                      " | ".join(f"{v['collections'][n]['ndcg@10']:.3f} ({deltas[n]:+.3f})" for n in names) +
                      f" | {'met' if min(deltas.values()) >= 0 else 'not met'} | {cost} |")
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a default run folder whose results.json has a transfer record")
    p.add_argument("--label-free", nargs="*", default=[], help="name=RUN folder of a label-free corpus-only run")
    p.add_argument("--alphas", default="", help="comma-separated weights of the distilled student to price (WiSE-FT)")
    p.add_argument("--tolerance", type=float, default=0.005, help="the interpolation rule's dev tolerance")
    p.add_argument("--variant", nargs="*", default=[], help="name=RUN folder of a default run with other settings")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    args = p.parse_args(argv)
    bench = collect(args.run, {k: Path(v) for k, v in (item.split("=", 1) for item in args.label_free)})
    if args.variant:
        bench["variants"] = {k: variant_record(Path(v)) for k, v in (item.split("=", 1) for item in args.variant)}
    if args.alphas:
        bench["interpolation"] = interpolation_sweep(args.run, [float(a) for a in args.alphas.split(",")], args.tolerance)
    # a sweep or variants of the same run already measured stay in the file unless measured again
    earlier = json.loads((args.out / "transfer.json").read_text()) if (args.out / "transfer.json").exists() else {}
    if earlier.get("run") == str(args.run):
        for part in ("interpolation", "variants"):
            if part not in bench and earlier.get(part):
                bench[part] = earlier[part]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transfer.json").write_text(json.dumps(bench, indent=1))
    (args.out / "transfer.md").write_text(render(bench))
    print(render(bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
