"""One interface for every stage: what it needs from the run context, what it provides, and, for stages whose
outputs are content-addressed, their key and files, so a stage whose outputs already exist is skipped."""
from __future__ import annotations

from pathlib import Path

from crossdistill.common.io import quarantine
from crossdistill.pipeline.context import RunContext


class Stage:
    name: str = ""
    needs: tuple[str, ...] = ()       # RunContext fields an earlier stage must have set
    provides: tuple[str, ...] = ()    # RunContext fields this stage sets
    rank_zero_only: bool = False      # under DDP, only rank 0 runs it (evaluation, exports, reports)

    def applies(self, ctx: RunContext) -> bool:
        """Whether this run needs the stage at all (False: not run, not timed)."""
        return True

    def key(self, ctx: RunContext) -> str | None:
        """Content key of the outputs; None: the stage runs every time."""
        return None

    def outputs(self, ctx: RunContext, key: str) -> list[Path]:
        """The files that, all present, mean the stage's work under ``key`` is done."""
        return []

    def compute(self, ctx: RunContext, key: str | None) -> None:
        raise NotImplementedError

    def load(self, ctx: RunContext, key: str) -> None:
        """Fill ``provides`` from the outputs a run with the same key wrote."""
        raise NotImplementedError

    def discard(self, ctx: RunContext, key: str) -> list[Path]:
        """Move unreadable outputs aside so they are rebuilt; returns where they went."""
        return [quarantine(p) for p in self.outputs(ctx, key) if p.exists()]

    def __call__(self, ctx: RunContext) -> None:
        missing = [n for n in self.needs if getattr(ctx, n) is None]
        if missing:
            raise RuntimeError(f"stage {self.name!r} needs {missing} from an earlier stage")
        key = self.key(ctx)
        outputs = self.outputs(ctx, key) if key else []
        loaded = False
        if outputs and all(p.exists() for p in outputs):
            try:
                self.load(ctx, key)
                loaded = True
                ctx.console.log(f"{self.name}: outputs exist under key {key} ({outputs[0].parent}): skipped")
            except Exception as err:  # noqa: BLE001 - whatever made them unreadable, they are rebuilt, not trusted
                moved = self.discard(ctx, key)
                ctx.console.log(f"[yellow]{self.name}: outputs under key {key} cannot be read ({type(err).__name__}: "
                                f"{err}); moved aside to {', '.join(p.name for p in moved)}; recomputing")
        if not loaded:
            self.compute(ctx, key)
        unset = [n for n in self.provides if getattr(ctx, n) is None]
        if unset:
            raise RuntimeError(f"stage {self.name!r} did not provide {unset}")
