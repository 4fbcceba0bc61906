"""The progress display of a single-structure CLI run, as an ``openmm.MinimizationReporter``.

The core calls ``report()`` every iteration of every stage with ``args["stage"]`` and ``args["system energy"]``
and the energy gradient; this reporter shows the stage (after ``phase``, e.g. a relax round), the iteration, the
energy, the RMS force (‖gradient‖/√N) and the elapsed time, once the run has lasted ``delay`` seconds (short runs
show nothing):

* on a terminal, one status line on stderr, redrawn at most every ``interval`` seconds; a background ticker
  keeps the elapsed time moving while no iteration is reported (preparation, a long evaluation);
* otherwise (a log file, a pipe), one plain line every ``log_interval`` seconds.

It wraps the user's reporter (``inner``), whose answer (stop or not) it passes on; it never asks to stop itself.
``--quiet`` disables it; batch runs (``--out-dir``) do not use it: they keep their one overall tqdm bar.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any, Optional, TextIO

import numpy as np
import openmm


#: Seconds a run lasts before its progress shows (short runs stay quiet); the default of ``delay``.
DELAY_SECONDS = 3.0


class ProgressReporter(openmm.MinimizationReporter):
    """``[#####.....]  40% round 2: polish  it 120  E -5321.2 kJ/mol  RMS F 12.3 kJ/mol/nm  14.2 s``.

    ``max_iterations`` (0: unknown) and ``time_budget`` (seconds, None: unknown) size the bar; with neither the
    line shows a spinner. ``enabled=None`` means: on (a live line on a TTY, plain lines otherwise).
    """

    SPINNER = "|/-\\"

    def __init__(self, stream: Optional[TextIO] = None, enabled: Optional[bool] = None, max_iterations: int = 0,
                 time_budget: Optional[float] = None, interval: float = 0.1, width: int = 24,
                 delay: Optional[float] = None, log_interval: float = 30.0,
                 inner: Optional[openmm.MinimizationReporter] = None):
        super().__init__()
        self.stream = sys.stderr if stream is None else stream
        self.enabled = True if enabled is None else bool(enabled)
        self.terminal = _isatty(self.stream)
        self.max_iterations, self.time_budget = int(max_iterations or 0), time_budget
        self.interval = float(interval) if self.terminal else float(log_interval)
        self.width, self.inner = int(width), inner
        self.delay = DELAY_SECONDS if delay is None else float(delay)
        self.start_time = time.perf_counter()
        self.last_draw = -math.inf if self.terminal else self.start_time
        self.calls, self.last_line, self.phase = 0, "", ""
        self.state = {"stage": "preparing", "iteration": None, "energy": None, "rms_force": None}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start the ticker that redraws the line while no iteration is reported (terminal only)."""
        if self.enabled and self.terminal and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="openmm_reparam-progress", daemon=True)
            self._ticker.start()

    def report(self, iteration: int, x: Any, grad: Any, args: Any) -> bool:
        stop = bool(self.inner.report(iteration, x, grad, args)) if self.inner is not None else False
        self.calls += 1
        if not self.enabled:
            return stop
        now = time.perf_counter()
        if now - self.last_draw < self.interval or now - self.start_time < self.delay:
            return stop
        get = args.get if hasattr(args, "get") else (lambda key, default=None: default)
        with self._lock:
            self.state.update(stage=str(get("stage", "minimize")), iteration=int(iteration),
                              energy=get("system energy", None), rms_force=rms_force(grad))
            self._draw(now)
        return stop

    def line(self, now: Optional[float] = None) -> str:
        """The status text for the current state."""
        elapsed = (time.perf_counter() if now is None else now) - self.start_time
        state = self.state
        stage = f"{self.phase}: {state['stage']}" if self.phase else state["stage"]
        text = f"{self._bar(state['iteration'], elapsed)} {stage:<12}"
        if state["iteration"] is not None:
            text += f" it {state['iteration']:6d}"
        if state["energy"] is not None:
            text += f"  E {float(state['energy']):.1f} kJ/mol"
        if state["rms_force"] is not None:
            text += f"  RMS F {state['rms_force']:.3g} kJ/mol/nm"
        return text + f"  {elapsed:.1f} s"

    def _bar(self, iteration: Optional[int], elapsed: float) -> str:
        fraction = None
        if self.max_iterations > 0 and iteration is not None:
            fraction = min(1.0, (iteration + 1) / self.max_iterations)
        elif self.time_budget:
            fraction = min(1.0, elapsed / self.time_budget)
        if fraction is None:
            return self.SPINNER[self.calls % len(self.SPINNER)]
        filled = int(round(fraction * self.width))
        return "[" + "#" * filled + "." * (self.width - filled) + f"] {100 * fraction:3.0f}%"

    def _draw(self, now: float) -> None:
        self.last_draw = now
        self.last_line = self.line(now)
        if self.terminal:
            self.stream.write("\r" + self.last_line + "\x1b[K")
        else:
            self.stream.write("openmm-reparam: " + self.last_line + "\n")
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            now = time.perf_counter()
            if now - self.start_time < self.delay or now - self.last_draw < 0.5:
                continue
            with self._lock:
                self.calls += 1  # turn the spinner
                self._draw(now)

    def close(self) -> None:
        """Stop the ticker and end the status line (call once the run is over)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)
        with self._lock:
            if self.enabled and self.terminal and self.last_line:
                self.stream.write("\n")
                self.stream.flush()
            self.last_line = ""


def rms_force(grad: Any) -> Optional[float]:
    """‖gradient‖/√N for a flat or (N, 3) gradient of N atoms (kJ/mol/nm); None when there is none."""
    g = np.asarray(grad, dtype=np.float64).ravel() if grad is not None else np.zeros(0)
    if g.size == 0 or g.size % 3:
        return None
    return float(np.sqrt(np.dot(g, g) / (g.size // 3)))


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
