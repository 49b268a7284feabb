"""One query's score trace as a table: why each document entered the shortlist, what score it got at each stage
and where it ended up (``crossdistill explain <run_dir> <qid>``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from crossdistill.common.layout import FINAL_TEST, RunLayout, trace_files
from crossdistill.evaluation.report import format_cell
from crossdistill.evaluation.taxonomy import classify_queries


def load_query_trace(run_dir: Path, qid: str, eval_name: str | None = None) -> tuple[str, pd.DataFrame]:
    """(eval name, one query's trace rows); raises ``LookupError`` with a readable message."""
    layout = RunLayout(Path(run_dir))
    files = trace_files(layout)  # read only one
    if not files:
        raise LookupError(f"no traces found in {layout.traces}")
    name = eval_name or (FINAL_TEST if FINAL_TEST in files else list(files)[-1])
    if name not in files:
        raise LookupError(f"no trace named {name!r}; available: {', '.join(files)}")
    t = pd.read_parquet(files[name])
    rows = t[t["qid"] == str(qid)]
    if rows.empty:
        sample = ", ".join(map(str, t["qid"].unique()[:5]))
        raise LookupError(f"query {qid!r} not in trace {name!r} ({t['qid'].nunique()} queries, e.g. {sample})")
    return name, rows


def explain(run_dir: Path, qid: str, eval_name: str | None = None, console=None) -> None:
    """Print one query's trace as a Rich table, sorted by express lane rank, out-of-shortlist
    relevant docs last; unknown qids / missing traces print a message instead of raising."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    try:
        name, rows = load_query_trace(Path(run_dir), qid, eval_name)
    except LookupError as e:
        console.print(f"[bold red]error:[/] {e.args[0]}")
        return
    rows = rows.sort_values(["in_shortlist", "express_lane_rank", "student_rank"],
                            ascending=[False, True, True], na_position="last")
    q = classify_queries(rows, 3).iloc[0]
    table = Table(title=f"{name} · qid {qid}: {rows['query'].iloc[0]}",
                  caption=(f"nDCG@3 student {format_cell(q['ndcg@3_student'])} → express lane {format_cell(q['ndcg@3_express_lane'])} "
                           f"(lift {format_cell(q['lift@3'])}); {int(q['n_relevant'])} relevant, "
                           f"{int(q['missed_relevant'])} not shortlisted"))
    cols = [("express lane", "express_lane_rank"), ("docid", "docid"), ("origin", "origin"),
            ("1st rank", "first_stage_rank"), ("1st score", "first_stage_score"), ("bm25", "bm25_rank"),
            ("init rank", "student_init_rank"), ("init score", "student_init_score"),
            ("student rank", "student_rank"), ("student score", "student_score"),
            ("express lane score", "express_lane_score"), ("label", "label")]
    for header, _ in cols:
        table.add_column(header, justify="left" if header in ("docid", "origin") else "right")
    for r in rows.itertuples(index=False):
        style = "bold green" if r.label > 0 else ("dim" if not r.in_shortlist else None)
        cells = [format_cell(getattr(r, c)) for _, c in cols]
        if not r.in_shortlist:
            cells[0], cells[2] = "not shortlisted", "–"
        table.add_row(*cells, style=style)
    console.print(table)
