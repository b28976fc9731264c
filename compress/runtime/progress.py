"""Progress lines for long work: what is being built, how far along, time left.

compress has no pytest import, so the sink is pluggable: the pytest plugin
installs one that writes past output capture (so lines show while
``pytest claims -n 4`` runs, not only with ``-s``); a notebook gets stderr.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

__all__ = ["Progress", "set_sink", "emit", "format_seconds"]

_sink: Callable[[str], None] | None = None


def set_sink(sink: Callable[[str], None] | None) -> None:
    """Route progress lines to ``sink`` (None restores stderr)."""
    global _sink
    _sink = sink


def emit(line: str) -> None:
    """Write one progress line, prefixed with the xdist worker id when there is one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    text = f"[{worker}] {line}" if worker else line
    if _sink is not None:
        _sink(text)
    else:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Throttled progress for one task of ``total`` steps.

    Parameters
    ----------
    what : str
        What is being built, e.g. ``train(arch=resnet18, seed=2)``.
    total : int
        Number of steps (epochs).
    every_s : float
        Minimum seconds between two intermediate lines (first and last always print).
    """

    def __init__(self, what: str, total: int, *, every_s: float = 10.0, unit: str = "epoch"):
        self.what, self.total, self.every_s, self.unit = what, total, every_s, unit
        self.start = time.perf_counter()
        self._last = self.start

    def update(self, done: int, **metrics: float) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        left = elapsed / max(done, 1) * (self.total - done)
        # First line only when the task will take a while; then at most one per every_s; always the last.
        first_worth_it = done == 1 and left > self.every_s
        if done < self.total and now - self._last < self.every_s and not first_worth_it:
            return
        self._last = now
        extra = "".join(f", {k} {v:.3g}" for k, v in metrics.items())
        if done >= self.total:
            emit(f"{self.what}: done, {self.total} {self.unit}s in {format_seconds(elapsed)}{extra}")
        else:
            emit(f"{self.what}: {self.unit} {done}/{self.total}{extra}, {format_seconds(left)} left")
