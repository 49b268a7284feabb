"""The stage interface, the run folder's layout and the shape of the code: checked on hand-made cases."""
from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

from crossdistill.common.layout import RunLayout, dev_epoch_metrics, dev_epoch_name, round_suffix
from crossdistill.pipeline.context import RunContext
from crossdistill.pipeline.stages.base import Stage

SRC = Path(__file__).resolve().parents[1] / "src" / "crossdistill"


class Cached(Stage):
    name, provides = "cached", ("teacher_info",)

    def __init__(self, folder: Path):
        self.folder, self.calls = folder, []

    def key(self, ctx):
        return "k1"

    def outputs(self, ctx, key):
        return [self.folder / key / "done"]

    def compute(self, ctx, key):
        self.calls.append("compute")
        (self.folder / key).mkdir(parents=True)
        (self.folder / key / "done").write_text("ok")
        ctx.teacher_info = {"computed": True}

    def load(self, ctx, key):
        self.calls.append("load")
        ctx.teacher_info = {"computed": False}


def context(tmp_path) -> RunContext:
    return RunContext(cfg=None, layout=RunLayout(tmp_path, tmp_path / "cache"), recorder=None)


def test_a_stage_whose_outputs_exist_under_its_key_is_skipped(tmp_path, capsys):
    stage, ctx = Cached(tmp_path), context(tmp_path)
    stage(ctx)
    again = context(tmp_path)
    stage(again)
    assert stage.calls == ["compute", "load"]
    assert ctx.teacher_info == {"computed": True} and again.teacher_info == {"computed": False}


def test_a_stage_checks_what_it_needs_and_provides(tmp_path):
    class NeedsData(Stage):
        name, needs = "x", ("data",)

    class ProvidesNothing(Stage):
        name, provides = "y", ("bm25",)

        def compute(self, ctx, key):
            pass

    with pytest.raises(RuntimeError, match=r"stage 'x' needs \['data'\]"):
        NeedsData()(context(tmp_path))
    with pytest.raises(RuntimeError, match=r"stage 'y' did not provide \['bm25'\]"):
        ProvidesNothing()(context(tmp_path))


def test_run_layout_names_every_path_once(tmp_path):
    layout = RunLayout(tmp_path / "run", tmp_path / "cache")
    assert layout.trace(dev_epoch_name(7)) == tmp_path / "run" / "traces" / "dev_epoch=007.parquet"
    assert layout.mining(1) == tmp_path / "run" / "mining" and layout.mining(2) == tmp_path / "run" / "mining_round2"
    assert round_suffix(1) == "" and round_suffix(3) == "_round3"
    assert layout.trec_run("bm25") == tmp_path / "run" / "runs" / "bm25.test.trec"
    assert layout.cached_artifact("abc") == tmp_path / "cache" / "mining" / "abc.parquet"
    layout.traces.mkdir(parents=True)
    for epoch in (1, 0):
        layout.trace_metrics(dev_epoch_name(epoch)).write_text(f'{{"epoch": {epoch}}}')
    assert [m["epoch"] for m in dev_epoch_metrics(layout)] == [0, 1]
    with pytest.raises(ValueError, match="no cache folder"):
        RunLayout(tmp_path).cached_teacher("k")


def _modules():
    for f in SRC.rglob("*.py"):
        yield f, ast.parse(f.read_text())


def test_no_function_is_over_60_lines():
    long = [f"{f.relative_to(SRC)}:{n.name}" for f, tree in _modules() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 60]
    assert long == []


def test_no_two_packages_import_each_other():
    edges = collections.defaultdict(set)
    for f, tree in _modules():
        top = f.relative_to(SRC).parts[0].removesuffix(".py")
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("crossdistill."):
                other = n.module.split(".")[1]
                if other != top:
                    edges[top].add(other)
    assert sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ())) == []


def test_stages_stand_side_by_side():
    """No stage file imports another stage file (only the base and the fit helpers): what stages share lives below
    them (pipeline.encoding, pipeline.ensemble_choice, the packages), so the stages stand on one floor."""
    shared = {"crossdistill.pipeline.stages.base", "crossdistill.pipeline.stages.fit"}
    borrowed = [f"{f.name} <- {n.module}" for f, tree in _modules() if f.parent.name == "stages"
                for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                and n.module.startswith("crossdistill.pipeline.stages.") and n.module not in shared]
    assert borrowed == []


def _is_named_value(node) -> bool:
    return any(getattr(d, "id", getattr(d, "attr", None)) in ("property", "cached_property") for d in node.decorator_list)


def test_no_class_is_over_twelve_methods():
    """A class that does more than about twelve things is several classes (the evaluator was 25 methods: its corpus
    embeddings and reranker scores now live in retrieval/ and teacher/). Its named values (properties) and the data
    model's dunder methods aside."""
    big = {}
    for f, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                methods = [m.name for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                           and not (m.name.startswith("__") and m.name.endswith("__")) and not _is_named_value(m)]
                if len(methods) > 12:
                    big[f"{f.relative_to(SRC)}:{node.name}"] = len(methods)
    assert big == {}
