"""What a run shows on the console: the composed config once at the start (a Rich tree, saved beside the run as
``config.yaml``), one line per stage, the results table at the end, and nothing from third-party libraries that
a user cannot act on (``verbose=true`` brings it all back; the run's log file keeps their INFO lines either way)."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.tree import Tree

from crossdistill.common.io import write_text_atomic
from crossdistill.evaluation.results_keys import current_names

COLUMNS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "lift@3")
# Loggers whose INFO and WARNING lines describe the library, not the run: Lightning's "GPU available" banner and
# tips, sentence-transformers' "converting to CrossEncoder", bm25s's DEBUG lines, matplotlib's font cache.
CHATTY_LOGGERS = ("sentence_transformers", "bm25s", "matplotlib", "datasets", "huggingface_hub", "urllib3", "PIL",
                  "numba", "httpx", "filelock", "pytorch_lightning", "lightning_fabric", "lightning")
# The order the tree shows the groups in; the rest follow as the config holds them.
CONFIG_ORDER = ("data", "teacher", "teacher_data", "ensemble", "miner", "pairs", "rounds", "student", "student_data",
                "evaluation", "trainer", "logger", "paths")


def results_table(results: dict) -> Table:
    results = current_names(results)
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


def _yaml(node: DictConfig) -> Syntax:
    return Syntax(OmegaConf.to_yaml(node, resolve=True).rstrip(), "yaml", theme="ansi_dark", background_color="default")


def config_tree(cfg: DictConfig) -> Tree:
    """The resolved config as a Rich tree: one branch per group (YAML inside), scalars in one branch of their own."""
    tree = Tree("config", guide_style="dim")
    groups = [k for k in CONFIG_ORDER if k in cfg] + [k for k in cfg if k not in CONFIG_ORDER]
    for key in (k for k in groups if isinstance(cfg[k], DictConfig)):
        tree.add(f"[bold]{key}").add(_yaml(cfg[key]))
    scalars = {k: cfg[k] for k in cfg if not isinstance(cfg[k], DictConfig)}
    if scalars:
        tree.add("[bold]run").add(_yaml(OmegaConf.create(scalars)))
    return tree


def announce_config(cfg: DictConfig, console: Console, run_dir: Path) -> Path:
    """Print the composed config once and save it, resolved, as ``<run>/config.yaml`` (Hydra's ``.hydra/`` holds
    the unresolved one and the overrides)."""
    console.print(config_tree(cfg))
    path = Path(run_dir) / "config.yaml"
    write_text_atomic(OmegaConf.to_yaml(cfg, resolve=True), path)
    return path


class LibraryChatter(logging.Filter):
    """Drops the chatty libraries' records below ERROR (a console handler's filter: the log file keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.name.startswith(CHATTY_LOGGERS)


def quiet_third_party(verbose: bool = False) -> None:
    """Keep the console to the run's own lines; third-party INFO banners and warnings stay in the log file.

    Hydra sends every logger to the console and to ``<run>/<job>.log``: here its console handlers show WARNING and
    above, and nothing below ERROR from the chatty libraries (the file handler is untouched); transformers' own
    handler shows errors only (its load report of a new classification head, its weight-loading bars), and
    deprecation notices from inside libraries are not shown."""
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)
            if not any(isinstance(f, LibraryChatter) for f in handler.filters):
                handler.addFilter(LibraryChatter())
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    # Lightning's advice for GPU clusters and data-loader workers: nothing a 2-core CPU run can act on.
    warnings.filterwarnings("ignore", message=r".*(does not have many workers|GPU available but not used).*")
    warnings.filterwarnings("ignore", message=r".*(num_workers|LeafSpec|log_every_n_steps).*")
