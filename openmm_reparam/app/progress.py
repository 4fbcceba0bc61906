"""A one-line terminal progress display for minimization runs, as an ``openmm.MinimizationReporter``.

The core calls ``report()`` every iteration of every stage with ``args["stage"]`` and ``args["system energy"]``;
this reporter redraws one status line on stderr at most ``interval`` seconds apart (so it costs nothing
measurable), and stays silent when the stream is not a terminal.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

import openmm


class ProgressReporter(openmm.MinimizationReporter):
    """Draws ``[#####.....] stage  iteration  energy  elapsed`` on a terminal; never asks the run to stop.

    ``max_iterations`` (0: unknown) and ``time_budget`` (seconds, None: unknown) size the bar; with neither
    the line shows a spinner. ``enabled=None`` means: only when ``stream`` is a TTY.
    """

    SPINNER = "|/-\\"

    def __init__(self, stream: Optional[TextIO] = None, enabled: Optional[bool] = None, max_iterations: int = 0,
                 time_budget: Optional[float] = None, interval: float = 0.1, width: int = 24):
        super().__init__()
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _isatty(self.stream) if enabled is None else bool(enabled)
        self.max_iterations = int(max_iterations or 0)
        self.time_budget = time_budget
        self.interval = float(interval)
        self.width = int(width)
        self.start = time.perf_counter()
        self.last_draw = -float("inf")
        self.calls = 0
        self.last_line = ""

    def report(self, iteration: int, x: Any, grad: Any, args: Any) -> bool:
        self.calls += 1
        if not self.enabled:
            return False
        now = time.perf_counter()
        if now - self.last_draw < self.interval:
            return False
        self.last_draw = now
        stage = str(args.get("stage", "minimize")) if hasattr(args, "get") else "minimize"
        energy = args.get("system energy") if hasattr(args, "get") else None
        self._draw(stage, int(iteration), energy, now - self.start)
        return False

    def _draw(self, stage: str, iteration: int, energy: Optional[float], elapsed: float) -> None:
        fraction = None
        if self.max_iterations > 0:
            fraction = min(1.0, (iteration + 1) / self.max_iterations)
        elif self.time_budget:
            fraction = min(1.0, elapsed / self.time_budget)
        if fraction is None:
            bar = self.SPINNER[self.calls % len(self.SPINNER)]
        else:
            filled = int(round(fraction * self.width))
            bar = "[" + "#" * filled + "." * (self.width - filled) + f"] {100 * fraction:3.0f}%"
        text = f"{bar} {stage:<10} it {iteration:6d}"
        if energy is not None:
            text += f"  E {float(energy):14.3f} kJ/mol"
        text += f"  {elapsed:7.1f} s"
        self.last_line = text
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        """End the status line (call once the run is over)."""
        if self.enabled and self.last_line:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
