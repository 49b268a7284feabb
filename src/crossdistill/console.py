"""The results table, printed with Rich at the end of a run (and by scripts that read results.json)."""
from __future__ import annotations

from rich.table import Table

COLUMNS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "lift@3")


def results_table(results: dict) -> Table:
    table = Table(title=f"{results['dataset']} - {results['split']} ({results.get('queries', '?')} queries)")
    table.add_column("system")
    for c in COLUMNS:
        table.add_column(c, justify="right")
    for name, metrics in results["systems"].items():
        table.add_row(name, *(f"{metrics[c]:.3f}" if c in metrics else "" for c in COLUMNS))
    stages = results.get("stages", {})
    if stages:
        table.caption = "  ".join(f"{s} {v['wall_s']:.0f}s/{v['peak_rss_mb']:.0f}MiB" for s, v in stages.items())
    return table
