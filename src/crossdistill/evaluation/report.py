"""A run's Markdown report with plots (one query's trace as a table is ``explain.py``).

Everything is derived from files a run leaves behind (traces, the Lightning CSV log,
results.json), so a report can be regenerated for any finished or interrupted run without
re-running models. Sections whose inputs are missing are skipped rather than failing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # OO API: Agg canvas, no global pyplot state
from matplotlib.ticker import MaxNLocator

from crossdistill.common.layout import FINAL_TEST as FINAL_EVAL
from crossdistill.common.layout import RunLayout, dev_epoch_metrics, has_later_rounds
from crossdistill.evaluation.results_keys import current_names
from crossdistill.evaluation.taxonomy import (
    TAXONOMY_KEYS,
    classify_queries,
    lift_by_slice,
    ndcg_by_query,
    taxonomy_counts,
)
from crossdistill.evaluation.trace import read_traces


# ----------------------------------------------------------------------------- helpers
def format_cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_table(df: pd.DataFrame) -> str:
    """Minimal GitHub Markdown table (avoids an optional ``tabulate`` dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(format_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _save(fig: Figure, path: Path) -> str:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return f"![{path.stem}]({path.name})"


def _final_eval(traces: dict) -> str:
    return FINAL_EVAL if FINAL_EVAL in traces else list(traces)[-1]


def _json_epoch_metrics(layout: RunLayout) -> pd.DataFrame:
    """Per-epoch dev metrics from the ``dev_epoch=NNN.metrics.json`` files beside the traces."""
    rows = dev_epoch_metrics(layout)
    return pd.DataFrame([{"epoch": r["epoch"], **{f"dev/{k}": v for k, v in r.items()
                                                  if k not in ("eval", "split", "epoch")}} for r in rows])


def _trace_epoch_metrics(traces: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-epoch dev metrics recomputed from dev traces (used when there is no CSV log)."""
    rows = []
    for name, t in traces.items():
        if t.empty or t["split"].iloc[0] != "dev":
            continue
        q = classify_queries(t, 3)
        q = q[q["n_relevant"] > 0]
        rows.append({"epoch": int(t["epoch"].iloc[0]),
                     "dev/ndcg@10": ndcg_by_query(t, "student_rank", 10).mean(),
                     "dev/ndcg@3_student": q["ndcg@3_student"].mean(),
                     "dev/ndcg@3_reranked": q["ndcg@3_express_lane"].mean(),
                     "dev/lift@3": q["lift@3"].mean()})
    return pd.DataFrame(rows).sort_values("epoch") if rows else pd.DataFrame()


def _csv_epoch_metrics(path: Path) -> pd.DataFrame:
    """Collapse the sparse Lightning CSV to one row per epoch: last logged dev value, mean train value."""
    df = pd.read_csv(path)
    if "epoch" not in df:
        return pd.DataFrame()
    df = df.dropna(subset=["epoch"])
    dev = [c for c in df.columns if c.startswith("dev/")]
    train = [c for c in df.columns if c.startswith("train/")]
    g = df.groupby(df["epoch"].astype(int))
    out = pd.concat([g[dev].last(), g[train].mean()], axis=1).dropna(how="all", subset=dev or None)
    return out.reset_index()


# ----------------------------------------------------------------------------- sections
def _results_section(layout: RunLayout) -> list[str]:
    path = layout.results
    if not path.exists():
        return []
    res = current_names(json.loads(path.read_text()))
    md = ["## Results", ""]
    meta = [f"{k}: **{res[k]}**" for k in ("dataset", "split", "best_epoch") if k in res]
    if meta:
        md += [", ".join(meta), ""]
    if res.get("systems"):
        systems = pd.DataFrame.from_dict(res["systems"], orient="index")
        md += [_md_table(systems.rename_axis("system").reset_index()), ""]
    md += guard_lines(res.get("guard") or {})
    md += interpolation_lines(res.get("interpolation") or {})
    md += transfer_lines(res.get("transfer") or {})
    teacher = res.get("teacher") or {}
    md += _ensemble_lines(teacher.get("ensemble") or {})
    md += _ensemble_lines(teacher.get("express_lane") or {}, "The express lane (the reranker over the student's top-k) is "
                          "its own ensemble")
    if res.get("stages"):
        stages = pd.DataFrame.from_dict(res["stages"], orient="index")
        md += ["Stage costs:", "", _md_table(stages.rename_axis("stage").reset_index()), ""]
    return md


def guard_lines(record: dict) -> list[str]:
    """The keep-the-start guard (``guard``): what the run kept, and why."""
    if not record:
        return []
    kept = "the zero-shot start" if record["kept"] == "start" else "the distilled student"
    return [f"Guard: kept **{kept}**: {record['reason']}.", ""]


def interpolation_lines(record: dict) -> list[str]:
    """The forgetting guard (``interpolation``): each alpha's dev figure and the alpha kept, with the reason."""
    if not record:
        return []
    cells = ", ".join(f"{alpha} {value:.4f}" for alpha, value in sorted(record["alphas"].items(), key=lambda a: float(a[0])))
    return [f"Interpolation with the zero-shot start (weight of the distilled student: {record['metric']}): {cells}; "
            f"kept alpha **{record['chosen']:g}**: {record['reason']}.", ""]


def transfer_lines(transfer: dict) -> list[str]:
    """Other collections' test splits (``evaluation.transfer``): BM25 and each model, nDCG@10 and recall@100, and each
    model against the first one (the zero-shot start)."""
    if not transfer:
        return []
    models = [n for n in next(iter(transfer.values()))["systems"] if n != "bm25"]
    head = ["collection", "docs", "queries", "bm25", *models, *(f"{m} - {models[0]}" for m in models[1:])]
    rows = []
    for name, rec in transfer.items():
        s = rec["systems"]
        cells = [f"{s[m]['ndcg@10']:.3f} / {s[m].get('recall@100', float('nan')):.3f}" for m in ("bm25", *models)]
        rows.append([name, str(rec["docs"]), str(rec["queries"]), *cells,
                     *(f"{rec['ndcg@10_vs_start'][m]:+.3f}" for m in models[1:])])
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]
    return ["On other collections (their test split, the whole corpus; nDCG@10 / recall@100):", "", *table, ""]


def _ensemble_lines(ensemble: dict, what: str = "The teacher is an ensemble") -> list[str]:
    """An ensemble (the teacher, or the express lane): members, weights, and each member alone reranking
    the same shortlists (dev: those its latest weights were chosen on)."""
    if "dev_members" not in ensemble:
        return []
    test, on = ensemble.get("test_members") or {}, ensemble.get("shortlists", "student")
    dev = "dev nDCG@10 (zero-shot top-k)" if on in ("student", "hybrid", "zero-shot dev") else f"dev nDCG@10 ({on})"
    tab = pd.DataFrame({"member": [*ensemble["members"], "ensemble"],
                        "weight": [ensemble["weights"].get(m, 0.0) for m in ensemble["members"]] + [None],
                        dev: [*ensemble["dev_members"].values(), ensemble["dev_ndcg@10"]],
                        "test nDCG@10 (distilled top-k)": [test.get(m) for m in ensemble["members"]]
                        + [ensemble.get("test_ndcg@10")]})
    return [f"{what} (weights chosen on {ensemble.get('chosen_on', 'dev')}); each member alone reranking the same "
            "shortlists:", "", _md_table(tab), ""]


EPOCH_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "p@3_student", "p@3_reranked", "ndcg@10_reranked",
                 "lift@3")


def _epochs_section(layout: RunLayout, traces: dict[str, pd.DataFrame], out_dir: Path) -> list[str]:
    csv = layout.csv_metrics("student")
    per_epoch, source = (_csv_epoch_metrics(csv), "metrics.csv") if csv.exists() else (pd.DataFrame(), "")
    if per_epoch.empty or has_later_rounds(layout):
        # Every epoch of every round, as the evaluation callback wrote them (epochs numbered across rounds).
        per_epoch, source = _json_epoch_metrics(layout), "dev_epoch=*.metrics.json"
    if per_epoch.empty:
        per_epoch, source = _trace_epoch_metrics(traces), "dev traces"
    if per_epoch.empty:
        return []
    # Taxonomy counts and per-slice lifts have their own sections; here only the headline metrics.
    main = [c for c in per_epoch.columns if c == "epoch" or c.removeprefix("dev/") in EPOCH_METRICS]
    per_epoch = per_epoch[main]
    init = layout.trace_metrics("dev_init")
    if init.exists() and (per_epoch["epoch"] >= 0).all():  # epoch -1: the zero-shot student, before distillation
        before = json.loads(init.read_text())
        row = {"epoch": -1, **{c: before.get(c.removeprefix("dev/")) for c in main if c != "epoch"}}
        per_epoch = pd.concat([pd.DataFrame([row]), per_epoch], ignore_index=True)
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    metrics = [c for c in per_epoch.columns if c.startswith("dev/") and "lift" not in c]
    for c in metrics:
        ax1.plot(per_epoch["epoch"], per_epoch[c], marker="o", label=c)
    ax1.set(xlabel="epoch", title="dev metrics")
    if metrics:
        ax1.legend(fontsize=7)
    lifts = [c for c in per_epoch.columns if "lift" in c]
    for c in lifts:
        ax2.plot(per_epoch["epoch"], per_epoch[c], marker="o", color="tab:purple", label=c)
    ax2.axhline(0, color="grey", lw=0.8)
    ax2.set(xlabel="epoch", title="express lane lift@3 over the student")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    img = _save(fig, out_dir / "epochs.png")
    return ["## Metrics per epoch", "", f"Source: {source}.", "", _md_table(per_epoch), "", img, ""]


def _taxonomy_section(traces: dict[str, pd.DataFrame], out_dir: Path) -> list[str]:
    rows = []
    # chronological: dev epochs, then test evals (test_init has epoch -1, so it precedes test_final)
    order = sorted(traces, key=lambda n: (traces[n]["split"].iloc[0] != "dev", traces[n]["epoch"].iloc[0], n)
                   if len(traces[n]) else (True, 0, n))
    for name in order:
        t = traces[name]
        q = classify_queries(t, 3)
        rows.append({"eval": name, **taxonomy_counts(t, 3),
                     "lift@3": q.loc[q["n_relevant"] > 0, "lift@3"].mean()})
    tab = pd.DataFrame(rows)[["eval", *TAXONOMY_KEYS, "lift@3"]]
    tab = tab.astype({key: int for key in TAXONOMY_KEYS})  # counts, not means
    fig = Figure(figsize=(max(8, 1.6 * len(tab)), 4))
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(len(tab))
    # exclusive outcomes per query: relevant never shortlisted / shortlisted but below top 3 / found
    ok = tab["queries"] - tab["candidate_failure"] - tab["scoring_failure"]
    bottom = np.zeros(len(tab))
    for label, vals, color in (("express lane top-3 hit", ok, "tab:green"),
                               ("scoring failure", tab["scoring_failure"], "tab:orange"),
                               ("candidate failure", tab["candidate_failure"], "tab:red")):
        ax1.bar(x, vals, bottom=bottom, label=label, color=color)
        bottom += vals.to_numpy(float)
    ax1.set(title="outcome per query")
    ax2.bar(x - 0.2, tab["fixed_by_express_lane"], 0.4, label="fixed by the express lane", color="tab:green")
    ax2.bar(x + 0.2, tab["broken_by_express_lane"], 0.4, label="broken by the express lane", color="tab:red")
    ax2.set(title="express lane vs student top-3")
    for ax in (ax1, ax2):
        ax.set_xticks(x, tab["eval"], rotation=30, ha="right", fontsize=8)
        ax.set(ylabel="queries", ylim=(0, 1.4 * max(1, ax.get_ylim()[1])))  # headroom for the legend
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="upper left")
    img = _save(fig, out_dir / "taxonomy.png")
    return ["## Failure taxonomy", "",
            "Candidate failure: no relevant doc in the shortlist (no reranker can fix it); "
            "scoring failure: relevant docs shortlisted but none in the express lane's top 3; "
            "fixed/broken: the express lane's top 3 has a relevant doc and the student's does not / the reverse.",
            "", _md_table(tab), "", img, ""]


def _slices_section(traces: dict[str, pd.DataFrame], out_dir: Path) -> list[str]:
    name = _final_eval(traces)
    slices = lift_by_slice(traces[name], 3)
    keys = [k for k in slices if not k.endswith(":n")]
    if not keys:
        return []
    tab = pd.DataFrame({"slice": keys, "queries": [int(slices[f"{k}:n"]) for k in keys],
                        "lift@3": [slices[k] for k in keys]})
    fig = Figure(figsize=(max(6, 0.6 * len(tab)), 4))
    ax = fig.subplots()
    ax.bar(tab["slice"], tab["lift@3"], color=["tab:green" if v >= 0 else "tab:red" for v in tab["lift@3"]])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(ylabel="mean lift@3", title=f"lift@3 by slice ({name})")
    ax.set_xticks(range(len(tab)), tab["slice"], rotation=45, ha="right", fontsize=8)
    img = _save(fig, out_dir / "slices.png")
    return [f"## lift@3 by slice ({name})", "", _md_table(tab), "", img, ""]


def _helped_hurt_section(traces: dict[str, pd.DataFrame], n: int = 10) -> list[str]:
    """Queries whose nDCG@10 moved most between the initial and the distilled student."""
    final = traces.get(FINAL_EVAL)
    if final is None or final.empty:
        return []
    if final["student_init_rank"].notna().any():
        init = ndcg_by_query(final, "student_init_rank", 10)
    elif "test_init" in traces:  # same queries and qrels, so its student ranks are the init ranks
        init = ndcg_by_query(traces["test_init"], "student_rank", 10)
    else:
        return []
    after = ndcg_by_query(final, "student_rank", 10)
    query = final.groupby("qid", sort=False)["query"].first()
    df = pd.DataFrame({"ndcg@10 init": init, "ndcg@10 distilled": after}).reindex(after.index).dropna()
    df["delta"] = df["ndcg@10 distilled"] - df["ndcg@10 init"]
    df.insert(0, "query", query.reindex(df.index).str.slice(0, 100))
    df = df.rename_axis("qid").reset_index()
    helped = df[df["delta"] > 0].sort_values("delta", ascending=False).head(n)
    hurt = df[df["delta"] < 0].sort_values("delta").head(n)
    md = ["## Queries the distillation helped and hurt most", "",
          f"Per-query student nDCG@10 on {FINAL_EVAL}, before vs after distillation "
          f"({int((df['delta'] > 0).sum())} helped, {int((df['delta'] < 0).sum())} hurt, "
          f"{int((df['delta'] == 0).sum())} unchanged).", ""]
    for title, part in (("Helped most", helped), ("Hurt most", hurt)):
        md += [f"### {title}", "", _md_table(part) if len(part) else "_none_", ""]
    return md


# ----------------------------------------------------------------------------- public API
def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write ``report.md`` (default ``run_dir/report/report.md``) with PNG plots beside it."""
    layout = RunLayout(Path(run_dir))
    traces = read_traces(layout.root)
    if not traces:
        raise FileNotFoundError(f"no traces in {layout.traces}; nothing to report")
    out = Path(out) if out is not None else layout.report
    out.parent.mkdir(parents=True, exist_ok=True)
    md = [f"# crossdistill report: `{layout.root.name}`", "", f"Evaluations: {', '.join(traces)}.", ""]
    md += _results_section(layout)
    md += _epochs_section(layout, traces, out.parent)
    if any(t["express_lane_rank"].notna().any() for t in traces.values()):  # the failure taxonomy needs a reranker
        md += _taxonomy_section(traces, out.parent)
        md += _slices_section(traces, out.parent)
    md += _helped_hurt_section(traces)
    out.write_text("\n".join(md))
    return out
