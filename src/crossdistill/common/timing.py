"""Wall time and peak memory per pipeline stage, for results.json and the printed table."""
from __future__ import annotations

import contextlib
import threading
import time

import psutil
from rich.console import Console


class StageRecorder:
    """Context manager per stage. Peak memory is sampled RSS of this process and its children (DDP workers,
    data loaders), so it reflects what the machine must hold, not only the launching process."""

    def __init__(self, console: Console | None = None, interval: float = 0.1):
        self.stages: dict[str, dict[str, float]] = {}
        self.console = console or Console()
        self.interval = interval
        self.started = time.perf_counter()

    @staticmethod
    def _rss() -> int:
        proc = psutil.Process()
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.console.rule(f"[bold]{name}")
        peak = [self._rss()]
        stop = threading.Event()

        def sample():
            while not stop.wait(self.interval):
                peak[0] = max(peak[0], self._rss())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        start = time.perf_counter()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            peak[0] = max(peak[0], self._rss())
            wall = time.perf_counter() - start
            self.stages[name] = {"wall_s": round(wall, 2), "peak_rss_mb": round(peak[0] / 2**20, 1)}
            self.console.log(f"{name}: {wall:.1f} s, peak RSS {peak[0] / 2**20:.0f} MiB")

    @property
    def total_wall_s(self) -> float:
        """Elapsed since the recorder was made: the stages plus the glue between them."""
        return round(time.perf_counter() - self.started, 2)

    @property
    def peak_rss_mb(self) -> float:
        return max((s["peak_rss_mb"] for s in self.stages.values()), default=0.0)
